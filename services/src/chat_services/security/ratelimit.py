"""Rate limits per caller and method (token buckets from aiolimiter), and concurrent streams per caller.

Configured in one TOML file::

    [defaults]
    rate = 100        # calls a second, per caller and method
    burst = 200       # calls a caller may make at once before the rate applies
    max_streams = 32  # streaming calls a caller may hold open at once

    [methods."/chat.v1.MessageService/SendMessages"]
    rate = 5
    burst = 10

    [work.messages]      # messages stored, however many calls carry them
    rate = 50
    burst = 1000

Calls are counted per caller and method; work is charged per caller and kind, whatever
the method: messages stored (SendMessages and ChatStream sends), conversations joined on
chat streams, and bytes of document text ingested. Callers are principals
(``user:alice``, ``service:bridge``) or, for calls without credentials, ``addr:<ip>``.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiolimiter import AsyncLimiter

_MAX_BUCKETS = 50_000  # buckets kept; the least recently created are dropped past this


@dataclass(frozen=True)
class Limit:
    """A token bucket: ``burst`` tokens, refilled at ``rate`` tokens a second."""

    rate: float = 100.0
    burst: int = 200

    def __post_init__(self) -> None:
        if self.rate <= 0 or self.burst < 1:
            raise ValueError("a rate limit needs rate > 0 and burst >= 1")

    @property
    def refill_seconds(self) -> float:
        """How long one token takes to come back: the wait a refused caller is told."""
        return 1.0 / self.rate


class Work:
    """The kinds of work charged besides calls, with their default buckets."""

    MESSAGES = "messages"  # messages stored
    JOINS = "joins"  # conversations joined on chat streams
    DOCUMENT_BYTES = "document_bytes"  # bytes of document text ingested

    DEFAULTS: Mapping[str, Limit] = {
        MESSAGES: Limit(rate=50.0, burst=1000),  # one full SendMessages batch, then 50 a second
        JOINS: Limit(rate=10.0, burst=100),
        DOCUMENT_BYTES: Limit(rate=1024 * 1024.0, burst=16 * 1024 * 1024),  # one maximal document
    }


@dataclass(frozen=True)
class RateLimitConfig:
    """The default bucket, per-method overrides, work buckets, and the concurrent stream limit."""

    default: Limit = field(default_factory=Limit)
    methods: Mapping[str, Limit] = field(default_factory=dict)
    max_streams: int = 32
    work: Mapping[str, Limit] = field(default_factory=lambda: dict(Work.DEFAULTS))

    @classmethod
    def load(cls, path: Path) -> RateLimitConfig:
        """Read the TOML file described in this module's docstring."""
        with path.open("rb") as file:
            return cls.from_mapping(tomllib.load(file))

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> RateLimitConfig:
        """Build from parsed TOML; unknown keys fail rather than being ignored."""
        defaults = dict(data.get("defaults", {}))
        max_streams = int(defaults.pop("max_streams", 32))
        default = _limit(Limit(), defaults, "defaults")
        methods = {
            name: _limit(default, dict(entry), name) for name, entry in data.get("methods", {}).items()
        }
        if max_streams < 1:
            raise ValueError("max_streams must be at least 1")
        work = dict(Work.DEFAULTS)
        for kind, entry in dict(data.get("work", {})).items():
            if kind not in Work.DEFAULTS:
                raise ValueError(f"rate limits [work.{kind}]: unknown work; known: {sorted(Work.DEFAULTS)}")
            work[kind] = _limit(Work.DEFAULTS[kind], dict(entry), f"work.{kind}")
        unknown = set(data) - {"defaults", "methods", "work"}
        if unknown:
            raise ValueError(f"rate limits: unknown tables {sorted(unknown)}")
        return cls(default, methods, max_streams, work)

    def limit_for(self, method: str) -> Limit:
        """The bucket that applies to ``method``."""
        return self.methods.get(method, self.default)


def _limit(base: Limit, entry: dict[str, Any], where: str) -> Limit:
    unknown = set(entry) - {"rate", "burst"}
    if unknown:
        raise ValueError(f"rate limits [{where}]: unknown keys {sorted(unknown)}")
    return Limit(rate=float(entry.get("rate", base.rate)), burst=int(entry.get("burst", base.burst)))


class RateLimiter:
    """Buckets keyed by (caller, method) and open-stream counts keyed by caller."""

    def __init__(self, config: RateLimitConfig) -> None:
        self.config = config
        self._buckets: dict[tuple[str, str], AsyncLimiter] = {}
        self._streams: dict[str, int] = {}

    async def try_acquire(self, caller: str, method: str) -> float | None:
        """Take a token; None if taken, else the seconds after which one will be there."""
        return await self._take((caller, method), self.config.limit_for(method), 1)

    async def try_charge(self, caller: str, work: str, units: int) -> float | None:
        """Charge ``units`` of ``work``; None if charged, else the seconds until they fit."""
        limit = self.config.work.get(work)
        if limit is None or units <= 0:
            return None
        # More than a full bucket never fits: charge what fits and refuse the rest's wait.
        return await self._take((caller, "work:" + work), limit, min(units, limit.burst))

    async def _take(self, key: tuple[str, str], limit: Limit, units: int) -> float | None:
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= _MAX_BUCKETS:
                del self._buckets[next(iter(self._buckets))]
            bucket = self._buckets[key] = AsyncLimiter(limit.burst, limit.burst / limit.rate)
        if not bucket.has_capacity(units):
            return units * limit.refill_seconds
        await bucket.acquire(units)  # there is capacity, so this takes the tokens without waiting
        return None

    def open_stream(self, caller: str) -> bool:
        """Count one more open stream for ``caller``; False (nothing counted) when at the limit."""
        open_now = self._streams.get(caller, 0)
        if open_now >= self.config.max_streams:
            return False
        self._streams[caller] = open_now + 1
        return True

    def close_stream(self, caller: str) -> None:
        """A stream counted by :meth:`open_stream` has ended."""
        left = self._streams.get(caller, 1) - 1
        if left > 0:
            self._streams[caller] = left
        else:
            self._streams.pop(caller, None)
