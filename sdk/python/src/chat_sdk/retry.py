"""Retrying calls that are safe to repeat, within one overall deadline."""

from __future__ import annotations

import asyncio
import errno
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import cache
from typing import TypeVar

from google.protobuf import descriptor_pb2
from google.rpc import error_details_pb2
from grpclib.const import Status
from grpclib.exceptions import GRPCError, StreamTerminatedError

from chat_sdk.schema import file_descriptor_set

T = TypeVar("T")

_SAFE_LEVELS = {descriptor_pb2.MethodOptions.NO_SIDE_EFFECTS, descriptor_pb2.MethodOptions.IDEMPOTENT}
# The network's own failures to reach a host; other OSErrors (permissions, files) are local.
_UNREACHABLE = frozenset({errno.EHOSTUNREACH, errno.ENETUNREACH, errno.ENETDOWN, errno.EHOSTDOWN})
_MAX_CAUSE = 200  # characters of a transport error kept in the UNAVAILABLE status message


@dataclass(frozen=True)
class RetryPolicy:
    """When and how often to retry: exponential backoff with full jitter."""

    max_attempts: int = 4
    initial_backoff: float = 0.1
    max_backoff: float = 2.0
    multiplier: float = 2.0
    retryable: frozenset[Status] = field(default_factory=lambda: frozenset({Status.UNAVAILABLE}))

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.initial_backoff < 0 or self.max_backoff < self.initial_backoff or self.multiplier < 1:
            raise ValueError("need 0 <= initial_backoff <= max_backoff and multiplier >= 1")

    def backoff(self, attempt: int) -> float:
        """The pause before retry number ``attempt`` (1 for the first retry), in seconds."""
        ceiling = min(self.max_backoff, self.initial_backoff * self.multiplier ** (attempt - 1))
        return random.uniform(0, ceiling)


@cache
def _safe_methods() -> frozenset[str]:
    return frozenset(
        f"/{file.package}.{service.name}/{method.name}"
        for file in file_descriptor_set().file
        for service in file.service
        for method in service.method
        if method.options.idempotency_level in _SAFE_LEVELS
    )


def retry_delay(error: GRPCError) -> float | None:
    """The wait a ``google.rpc.RetryInfo`` detail asks for, in seconds; None without one."""
    for detail in error.details or ():
        if isinstance(detail, error_details_pb2.RetryInfo):
            seconds: float = detail.retry_delay.ToTimedelta().total_seconds()
            return max(0.0, seconds)
    return None


def is_retry_safe(method: str) -> bool:
    """Whether the schema marks ``/package.Service/Method`` free of side effects or idempotent."""
    return method in _safe_methods()


def _as_unavailable(error: BaseException) -> tuple[GRPCError, bool] | None:
    """A transport failure as ``UNAVAILABLE``, and whether the request surely never left; None otherwise.

    A refused connection means nothing listened on the port: no request was sent. Any
    other lost connection (reset, broken, a stream terminated mid-call) may have come
    after the server read the request. TLS failures are configuration, an expired
    deadline (``TimeoutError``, itself an ``OSError``) is the caller's, and other
    ``OSError``s are local: none of them counts.
    """
    network = isinstance(error, OSError) and error.errno in _UNREACHABLE
    if not (isinstance(error, ConnectionError | StreamTerminatedError) or network):
        return None
    never_sent = isinstance(error, ConnectionRefusedError)
    what = "connection refused" if never_sent else "connection failed or lost"
    cause = f"{type(error).__name__}: {error}"[:_MAX_CAUSE]
    return GRPCError(Status.UNAVAILABLE, f"{what} ({cause})"), never_sent


async def call_with_retry(
    call: Callable[[float | None], Awaitable[T]],
    *,
    timeout: float | None = None,
    policy: RetryPolicy | None = None,
    idempotent: bool = False,
) -> T:
    """Await ``call(remaining_timeout)`` until it succeeds, retrying retryable statuses.

    ``timeout`` bounds all attempts and pauses together; each attempt is passed what
    is left of it, so pass it on to the stub: ``lambda t: stub.get_message(req, timeout=t)``.
    Only retry calls that are safe to repeat (see :func:`is_retry_safe`). An error
    carrying ``google.rpc.RetryInfo`` (a rate limit) is retried too, no sooner than it
    asks. The last status is raised unchanged; an exhausted deadline raises
    ``asyncio.TimeoutError`` (an attempt's own deadline too: it is never retried).

    Transport failures count as ``UNAVAILABLE``: a refused connection (the server is
    down or restarting; no request left) is retried for any call. A connection lost
    once the request may have been sent (reset, ``StreamTerminatedError``) is retried
    only when ``idempotent`` is true: pass ``is_retry_safe(method)``, or ``True`` for a
    write that carries an idempotency key. A transport failure that ends the retries is
    raised as ``GRPCError(Status.UNAVAILABLE)`` with the original error as its cause.
    """
    policy = policy or RetryPolicy()
    give_up_at = None if timeout is None else time.monotonic() + timeout

    def next_pause(attempt: int, asked: float = 0.0) -> float | None:
        """The pause before the next attempt; None when the attempts or the deadline are used up."""
        if attempt >= policy.max_attempts:
            return None
        pause = max(policy.backoff(attempt), asked)
        if give_up_at is not None and time.monotonic() + pause >= give_up_at:
            return None
        return pause

    attempt = 1
    while True:
        remaining = None if give_up_at is None else give_up_at - time.monotonic()
        if remaining is not None and remaining <= 0:
            raise TimeoutError(f"deadline of {timeout} s exhausted after {attempt - 1} attempts")
        try:
            return await call(remaining)
        except GRPCError as error:
            asked = retry_delay(error)
            retryable = error.status in policy.retryable or asked is not None
            pause = next_pause(attempt, asked or 0.0) if retryable else None
            if pause is None:
                raise
        except (OSError, StreamTerminatedError) as error:
            failure = _as_unavailable(error)
            if failure is None:
                raise
            unavailable, never_sent = failure
            retryable = Status.UNAVAILABLE in policy.retryable and (never_sent or idempotent)
            pause = next_pause(attempt) if retryable else None
            if pause is None:
                raise unavailable from error
        await asyncio.sleep(pause)
        attempt += 1
