"""Charging the running call's caller for work done, not only for the call (see :mod:`.ratelimit`)."""

from __future__ import annotations

import contextvars
from dataclasses import dataclass

from chat_services.security import refusals
from chat_services.security.ratelimit import RateLimiter


@dataclass(frozen=True)
class Meter:
    """Where the running call's work is charged: the limiter, the caller's key and the method."""

    limiter: RateLimiter
    caller: str
    method: str


_CURRENT: contextvars.ContextVar[Meter | None] = contextvars.ContextVar("chat_meter", default=None)


def bind_meter(meter: Meter | None) -> contextvars.Token[Meter | None]:
    """Charge the rest of this task's work to ``meter`` (the guard calls this)."""
    return _CURRENT.set(meter)


def unbind_meter(token: contextvars.Token[Meter | None]) -> None:
    """Undo :func:`bind_meter`."""
    _CURRENT.reset(token)


async def charge(work: str, units: int = 1) -> None:
    """Charge ``units`` of ``work``; RESOURCE_EXHAUSTED with RetryInfo when the caller has no budget left.

    Without rate limits (an open server without a limits file) nothing is charged.
    """
    meter = _CURRENT.get()
    if meter is None:
        return
    retry_after = await meter.limiter.try_charge(meter.caller, work, units)
    if retry_after is not None:
        raise refusals.rate_limited(
            meter.method, retry_after, f"this caller's {work} budget is spent; retry in {retry_after:.3g} s"
        )
