"""Errors as HTTP: gRPC codes mapped per google/rpc/code.proto, bodies shaped like google.rpc.Status."""

from __future__ import annotations

from typing import Any

from google.protobuf import any_pb2, duration_pb2, json_format
from google.protobuf.message import Message
from google.rpc import error_details_pb2, status_pb2
from grpclib.const import Status

MAX_DESCRIPTION = 200  # characters of a text that may carry client values: never echoed unbounded
MAX_UPSTREAM_MESSAGE = 200  # characters of an upstream status message passed on

# The HTTP mapping written beside each code in google/rpc/code.proto.
HTTP_STATUS: dict[Status, int] = {
    Status.OK: 200,
    Status.CANCELLED: 499,
    Status.UNKNOWN: 500,
    Status.INVALID_ARGUMENT: 400,
    Status.DEADLINE_EXCEEDED: 504,
    Status.NOT_FOUND: 404,
    Status.ALREADY_EXISTS: 409,
    Status.PERMISSION_DENIED: 403,
    Status.UNAUTHENTICATED: 401,
    Status.RESOURCE_EXHAUSTED: 429,
    Status.FAILED_PRECONDITION: 400,
    Status.ABORTED: 409,
    Status.OUT_OF_RANGE: 400,
    Status.UNIMPLEMENTED: 501,
    Status.INTERNAL: 500,
    Status.UNAVAILABLE: 503,
    Status.DATA_LOSS: 500,
}


class GatewayError(Exception):
    """An error the gateway answers itself, as a status with details.

    ``retry_after`` (seconds) becomes a ``Retry-After`` header and a ``google.rpc.RetryInfo``
    detail; ``http_status`` overrides the code's HTTP mapping (413 for a body over the limit).
    """

    def __init__(
        self,
        status: Status,
        message: str,
        details: list[Message] | None = None,
        *,
        retry_after: int | None = None,
        http_status: int | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.details = details or []
        self.retry_after = retry_after
        if retry_after is not None:
            self.details.append(
                error_details_pb2.RetryInfo(retry_delay=duration_pb2.Duration(seconds=retry_after))
            )
        self._http_status = http_status

    @property
    def http_status(self) -> int:
        """The HTTP status of this error."""
        if self._http_status is not None:
            return self._http_status
        return HTTP_STATUS.get(self.status, 500)

    @property
    def headers(self) -> dict[str, str]:
        """HTTP headers of the answer (``Retry-After`` when the caller should come back)."""
        return {} if self.retry_after is None else {"retry-after": str(self.retry_after)}


class BadRequest(GatewayError):
    """A request that does not fit the schema: INVALID_ARGUMENT with a field violation.

    ``field`` is the ProtoJSON path of the field (lowerCamel names, ``[i]`` for list
    items and for the elements of a streamed body); empty for the body as a whole.
    """

    def __init__(self, field: str, description: str, *, http_status: int | None = None) -> None:
        violation = error_details_pb2.BadRequest.FieldViolation(field=field, description=description)
        where = f"{field}: " if field else ""
        super().__init__(
            Status.INVALID_ARGUMENT,
            f"invalid request: {where}{description}",
            [error_details_pb2.BadRequest(field_violations=[violation])],
            http_status=http_status,
        )


class BodyTooLarge(BadRequest):
    """A request body over the limit: 413, read no further than the limit."""

    def __init__(self, limit: int) -> None:
        super().__init__("", f"the body is larger than {limit} bytes", http_status=413)


def status_body(status: Status, message: str, details: list[Any] | None = None) -> dict[str, Any]:
    """A ``google.rpc.Status`` as ProtoJSON; details are packed into ``Any`` (unknown ones dropped)."""
    packed = []
    for detail in details or []:
        if isinstance(detail, Message):
            wrapped = any_pb2.Any()
            wrapped.Pack(detail)
            packed.append(wrapped)
    proto = status_pb2.Status(code=status.value, message=message, details=packed)
    return json_format.MessageToDict(proto)


def bounded(text: str) -> str:
    """``text`` cut to :data:`MAX_DESCRIPTION` characters."""
    return text if len(text) <= MAX_DESCRIPTION else text[: MAX_DESCRIPTION - 1] + "…"
