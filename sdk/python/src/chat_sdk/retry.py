"""Retrying calls that are safe to repeat, within one overall deadline."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import cache
from typing import TypeVar

from google.protobuf import descriptor_pb2
from google.rpc import error_details_pb2
from grpclib.const import Status
from grpclib.exceptions import GRPCError

from chat_sdk.schema import file_descriptor_set

T = TypeVar("T")

_SAFE_LEVELS = {descriptor_pb2.MethodOptions.NO_SIDE_EFFECTS, descriptor_pb2.MethodOptions.IDEMPOTENT}


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


async def call_with_retry(
    call: Callable[[float | None], Awaitable[T]],
    *,
    timeout: float | None = None,
    policy: RetryPolicy | None = None,
) -> T:
    """Await ``call(remaining_timeout)`` until it succeeds, retrying retryable statuses.

    ``timeout`` bounds all attempts and pauses together; each attempt is passed what
    is left of it, so pass it on to the stub: ``lambda t: stub.get_message(req, timeout=t)``.
    Only retry calls that are safe to repeat (see :func:`is_retry_safe`). An error
    carrying ``google.rpc.RetryInfo`` (a rate limit) is retried too, no sooner than it
    asks. The last error is raised unchanged; an exhausted deadline raises
    ``asyncio.TimeoutError``.
    """
    policy = policy or RetryPolicy()
    give_up_at = None if timeout is None else time.monotonic() + timeout
    attempt = 1
    while True:
        remaining = None if give_up_at is None else give_up_at - time.monotonic()
        if remaining is not None and remaining <= 0:
            raise TimeoutError(f"deadline of {timeout} s exhausted after {attempt - 1} attempts")
        try:
            return await call(remaining)
        except GRPCError as error:
            asked = retry_delay(error)
            if (error.status not in policy.retryable and asked is None) or attempt >= policy.max_attempts:
                raise
            pause = max(policy.backoff(attempt), asked or 0.0)
            if give_up_at is not None and time.monotonic() + pause >= give_up_at:
                raise
        await asyncio.sleep(pause)
        attempt += 1
