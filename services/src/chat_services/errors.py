"""Domain errors and their gRPC statuses: the one place where failures become statuses.

Domain code raises these; handlers run inside :func:`grpc_status`, which turns them
into ``GRPCError`` with a clear message and, where a field is at fault, a
``google.rpc.BadRequest`` detail naming it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from google.protobuf import duration_pb2
from google.rpc import error_details_pb2
from grpclib.const import Status
from grpclib.exceptions import GRPCError

# grpclib HPACK-encodes trailers in pure Python, in time quadratic in their length, on the
# event loop: a long status message stalls every call on the server. Client values echoed
# into a message are cut to ECHO_MAX_CHARS, and a whole message to STATUS_MESSAGE_MAX_CHARS.
ECHO_MAX_CHARS = 200
STATUS_MESSAGE_MAX_CHARS = 1024


def echo(value: object) -> str:
    """``repr(value)`` for an error message, cut to a few hundred characters and marked if cut.

    ``echo("m" * 1_000_000)`` is ``'mmmm…' (1000000 bytes, truncated)``: the reader sees
    what was sent and how big it was, and the status message stays short.
    """
    if isinstance(value, str | bytes) and len(value) > ECHO_MAX_CHARS:
        size = len(value.encode("utf-8", "surrogatepass")) if isinstance(value, str) else len(value)
        head = repr(value[:ECHO_MAX_CHARS])
        return f"{head[:-1]}…{head[-1]} ({size} bytes, truncated)"
    text = repr(value)
    if len(text) > ECHO_MAX_CHARS:
        return f"{text[:ECHO_MAX_CHARS]}… ({len(text)} characters, truncated)"
    return text


def bounded_message(message: str, *, limit: int = STATUS_MESSAGE_MAX_CHARS) -> str:
    """``message`` if short enough for a status message, else its start marked as truncated."""
    if len(message) <= limit:
        return message
    return f"{message[:limit]}… ({len(message)} characters, truncated)"


class ServiceError(Exception):
    """A failure the caller can act on; subclasses fix the gRPC status."""

    status = Status.UNKNOWN

    def __init__(self, message: str, *, field: str | None = None, retry_after: float | None = None) -> None:
        message = bounded_message(message)
        super().__init__(message)
        self.message = message
        self.field = None if field is None else bounded_message(field, limit=ECHO_MAX_CHARS)
        # Seconds after which a retry may succeed: sent as a ``google.rpc.RetryInfo`` detail.
        self.retry_after = retry_after


class NotFound(ServiceError):
    """The named resource does not exist."""

    status = Status.NOT_FOUND


class InvalidArgument(ServiceError):
    """A request field is missing or malformed; ``field`` names it."""

    status = Status.INVALID_ARGUMENT


class AlreadyExists(ServiceError):
    """The resource the request would create exists already."""

    status = Status.ALREADY_EXISTS


class PermissionDenied(ServiceError):
    """The caller may not do this to this resource (for example, edit another user's message)."""

    status = Status.PERMISSION_DENIED


class FailedPrecondition(ServiceError):
    """The system is not in a state where the request can run (for example, join first)."""

    status = Status.FAILED_PRECONDITION


class DeadlineExceeded(ServiceError):
    """The work did not finish in the time allowed."""

    status = Status.DEADLINE_EXCEEDED


class ResourceExhausted(ServiceError):
    """A size or quota limit was hit."""

    status = Status.RESOURCE_EXHAUSTED


class Unavailable(ServiceError):
    """The server is shutting down or a dependency is down; retry elsewhere or later."""

    status = Status.UNAVAILABLE


class Internal(ServiceError):
    """A component failed in a way the caller cannot fix (for example, a plugin crashed)."""

    status = Status.INTERNAL


def to_grpc_error(error: ServiceError) -> GRPCError:
    """The ``GRPCError`` for a domain error.

    It carries a ``BadRequest`` detail when a field is at fault, and a ``RetryInfo``
    when the same request may succeed later.
    """
    if error.field is not None:
        return bad_request(error.message, [(error.field, error.message)], status=error.status)
    if error.retry_after is not None:
        return GRPCError(error.status, error.message, [retry_info(error.retry_after)])
    return GRPCError(error.status, error.message)


def retry_info(retry_after: float) -> error_details_pb2.RetryInfo:
    """A ``google.rpc.RetryInfo`` asking the client to wait ``retry_after`` seconds (at least 1 ns)."""
    delay = duration_pb2.Duration()
    delay.FromNanoseconds(max(1, round(retry_after * 1e9)))
    return error_details_pb2.RetryInfo(retry_delay=delay)


def bad_request(
    message: str, violations: Sequence[tuple[str, str]], *, status: Status = Status.INVALID_ARGUMENT
) -> GRPCError:
    """A ``GRPCError`` carrying a ``google.rpc.BadRequest`` with one (field, description) per violation."""
    detail = error_details_pb2.BadRequest(
        field_violations=[
            error_details_pb2.BadRequest.FieldViolation(field=field, description=description)
            for field, description in violations
        ]
    )
    return GRPCError(status, message, [detail])


@contextmanager
def grpc_status() -> Iterator[None]:
    """Run a handler body, turning domain errors into their gRPC status."""
    try:
        yield
    except ServiceError as error:
        raise to_grpc_error(error) from error
