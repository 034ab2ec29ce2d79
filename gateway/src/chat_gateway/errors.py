"""Errors as HTTP: gRPC codes mapped per google/rpc/code.proto, bodies shaped like google.rpc.Status."""

from __future__ import annotations

from typing import Any

from google.protobuf import any_pb2, json_format
from google.protobuf.message import Message
from google.rpc import error_details_pb2, status_pb2
from grpclib.const import Status

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
    """An error the gateway answers itself, as a status with details."""

    def __init__(self, status: Status, message: str, details: list[Message] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.details = details or []

    @property
    def http_status(self) -> int:
        """The HTTP status of this error."""
        return HTTP_STATUS.get(self.status, 500)


class BadRequest(GatewayError):
    """A request that does not fit the schema: INVALID_ARGUMENT with a field violation."""

    def __init__(self, field: str, description: str) -> None:
        violation = error_details_pb2.BadRequest.FieldViolation(field=field, description=description)
        where = f"{field}: " if field else ""
        super().__init__(
            Status.INVALID_ARGUMENT,
            f"invalid request: {where}{description}",
            [error_details_pb2.BadRequest(field_violations=[violation])],
        )


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
