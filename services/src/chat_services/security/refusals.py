"""The statuses the guard answers with, each carrying a ``google.rpc`` detail a client can act on."""

from __future__ import annotations

from google.rpc import error_details_pb2
from grpclib.const import Status
from grpclib.exceptions import GRPCError

from chat_services.errors import retry_info

DOMAIN = "chat.v1"


def unauthenticated(reason: str, message: str, method: str) -> GRPCError:
    """UNAUTHENTICATED with an ``ErrorInfo`` (reason such as ``TOKEN_EXPIRED``)."""
    info = error_details_pb2.ErrorInfo(reason=reason, domain=DOMAIN, metadata={"method": method})
    return GRPCError(Status.UNAUTHENTICATED, message, [info])


def permission_denied(method: str, missing: frozenset[str] | None) -> GRPCError:
    """PERMISSION_DENIED naming the scopes the caller lacks (or that nobody may call the method)."""
    if missing is None:
        info = error_details_pb2.ErrorInfo(
            reason="METHOD_NOT_ALLOWED", domain=DOMAIN, metadata={"method": method}
        )
        return GRPCError(Status.PERMISSION_DENIED, f"{method} is not open to any caller", [info])
    needed = " ".join(sorted(missing))
    info = error_details_pb2.ErrorInfo(
        reason="MISSING_SCOPE", domain=DOMAIN, metadata={"method": method, "missing_scopes": needed}
    )
    return GRPCError(Status.PERMISSION_DENIED, f"{method} needs the scope(s) {needed}", [info])


def rate_limited(method: str, retry_after: float, message: str) -> GRPCError:
    """RESOURCE_EXHAUSTED with a ``RetryInfo`` saying when to try again, and an ``ErrorInfo``."""
    info = error_details_pb2.ErrorInfo(reason="RATE_LIMITED", domain=DOMAIN, metadata={"method": method})
    return GRPCError(Status.RESOURCE_EXHAUSTED, message, [retry_info(retry_after), info])
