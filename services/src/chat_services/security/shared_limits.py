"""Rate limits that hold across every instance on one PostgreSQL database: buckets leased in chunks.

With :class:`~chat_services.security.ratelimit.RateLimiter` each process keeps its own
buckets, so N processes let a caller through N times the configured rate. Here each
bucket lives once, in the ``rate_buckets`` table, and a process takes tokens from it in
small leases (:data:`LEASE_SECONDS` of the bucket's rate, at least what the call needs)
through one statement, ``rate_lease()``, which refills the bucket by the database's clock
and takes the lease under the row's lock. Calls then spend the lease locally: a caller
at the rate costs one round trip per lease, not per call.

- A caller never gets more than the configured burst plus rate times the time in total, whichever
  instances it calls: tokens leased and not spent within :data:`LEASE_TTL` are dropped, as
  spent (a caller that moves to another instance may lose a lease's worth; never gains).
- A refused caller is told when its tokens will be back and is refused locally until then:
  a client hammering a spent bucket costs no database work.
- If the database cannot be reached, each process falls back to its own buckets (the
  per-process limits) and tries a lease again at most once every :data:`RETRY_SECONDS`
  (calls meanwhile never wait on the database) until one succeeds: calls are neither all
  refused, nor unlimited, nor slowed while PostgreSQL is down.
- Full buckets are deleted now and then (a full bucket is the same as no row): the table
  holds only the callers that spent tokens within a bucket's refill time.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from chat_services.security.ratelimit import _MAX_BUCKETS, Limit, RateLimitConfig, RateLimiter
from chat_services.storage import Connection, Migration, Storage

log = logging.getLogger("chat_services.security")

LEASE_SECONDS = 0.1  # a lease holds this long's worth of the bucket's rate (at least the call's units)
LEASE_TTL = 1.0  # seconds a lease may be spent in; what is left after is dropped
RETRY_SECONDS = 1.0  # while the database is unreachable, a lease is tried again at most this often
CLEANUP_INTERVAL = 60.0  # seconds between deletions of full buckets
LEASE_OUTCOMES = ("granted", "refused", "unavailable")  # what on_lease is told after each lease

MIGRATIONS = (
    # PostgreSQL only (SQLite serves one process): one row per (caller, bucket) with tokens,
    # and the database time at which the bucket would be full again (when the row may go).
    Migration(
        "ratelimit-001",
        "",
        postgres="""
        CREATE TABLE rate_buckets (
            key TEXT PRIMARY KEY,
            tokens DOUBLE PRECISION NOT NULL,
            updated_at DOUBLE PRECISION NOT NULL,
            full_at DOUBLE PRECISION NOT NULL
        );
        CREATE INDEX rate_buckets_full_at ON rate_buckets (full_at);
        -- Tokens leased (> 0), or minus the seconds until ``units`` fit (< 0).
        CREATE FUNCTION rate_lease(
            bucket TEXT, rate DOUBLE PRECISION, burst DOUBLE PRECISION,
            units DOUBLE PRECISION, chunk DOUBLE PRECISION
        ) RETURNS DOUBLE PRECISION LANGUAGE plpgsql AS $$
        DECLARE
            now_at DOUBLE PRECISION := extract(epoch FROM clock_timestamp());
            available DOUBLE PRECISION;
            taken DOUBLE PRECISION := 0;
        BEGIN
            INSERT INTO rate_buckets (key, tokens, updated_at, full_at)
                VALUES (bucket, burst, now_at, now_at) ON CONFLICT (key) DO NOTHING;
            SELECT least(burst, tokens + greatest(0, now_at - updated_at) * rate) INTO available
                FROM rate_buckets WHERE key = bucket FOR UPDATE;
            IF available >= units THEN
                taken := least(available, greatest(units, chunk));
            END IF;
            UPDATE rate_buckets
                SET tokens = available - taken, updated_at = now_at,
                    full_at = now_at + (burst - (available - taken)) / rate
                WHERE key = bucket;
            IF taken > 0 THEN
                RETURN taken;
            END IF;
            RETURN -((units - available) / rate);
        END;
        $$
        """,
    ),
)


@dataclass
class _Lease:
    """Tokens of one bucket held by this process, and until when a refusal stands."""

    tokens: float = 0.0
    expires: float = 0.0
    refused_until: float = 0.0
    refused_units: int = 0
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class SharedRateLimiter(RateLimiter):
    """A :class:`RateLimiter` whose call and work buckets are shared through ``database`` (PostgreSQL).

    Open-stream counts stay per process (a stream holds a connection to one instance).
    """

    def __init__(
        self, config: RateLimitConfig, database: Storage, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        super().__init__(config)
        self.database = database
        self.clock = clock
        self.lease_reads = 0  # leases asked of the database (tests and diagnosis)
        self.on_lease: Callable[[str], None] = _ignore  # told each lease's outcome (metrics)
        self.shared = True  # False while the database cannot be reached (process buckets meanwhile)
        self._leases: dict[tuple[str, str], _Lease] = {}
        self._retry_at = 0.0  # while not shared: when the database is tried again
        self._cleaned_at = clock()
        self._cleanup: asyncio.Future[int] | None = None

    async def _take(self, key: tuple[str, str], limit: Limit, units: int) -> float | None:
        lease = self._lease_of(key)
        now = self.clock()
        if lease.tokens >= units and now < lease.expires:
            lease.tokens -= units
            return None
        if now < lease.refused_until and units >= lease.refused_units:
            return lease.refused_until - now
        if not self.shared and now < self._retry_at:
            return await super()._take(key, limit, units)
        async with lease.lock:  # one lease at a time per bucket; those waiting spend it
            now = self.clock()
            if lease.tokens >= units and now < lease.expires:
                lease.tokens -= units
                return None
            try:
                leased = await self._lease(key, limit, units)
            except Exception as error:  # the database is unreachable: this process's buckets
                self.on_lease("unavailable")
                if self.shared:
                    log.warning(
                        "shared rate limits unavailable; limiting per process until the database is back",
                        extra={"error": str(error)[:200]},
                    )
                self.shared = False
                self._retry_at = self.clock() + RETRY_SECONDS
                return await super()._take(key, limit, units)
            if not self.shared:
                log.info("shared rate limits back")
                self.shared = True
            self._clean_now_and_then()
            now = self.clock()
            self.on_lease("granted" if leased > 0 else "refused")
            if leased > 0:
                lease.tokens, lease.expires = leased - units, now + LEASE_TTL
                lease.refused_until = 0.0
                return None
            lease.tokens = 0.0
            lease.refused_until, lease.refused_units = now - leased, units
            return -leased

    def _lease_of(self, key: tuple[str, str]) -> _Lease:
        lease = self._leases.get(key)
        if lease is None:
            if len(self._leases) >= _MAX_BUCKETS:
                del self._leases[next(iter(self._leases))]
            lease = self._leases[key] = _Lease()
        return lease

    async def _lease(self, key: tuple[str, str], limit: Limit, units: int) -> float:
        """Tokens leased from the shared bucket, or minus the seconds until ``units`` fit."""
        self.lease_reads += 1
        bucket = bucket_key(*key)
        chunk = max(1.0, limit.rate * LEASE_SECONDS)

        def lease(connection: Connection) -> float:
            arguments = (bucket, limit.rate, float(limit.burst), float(units), chunk)
            row = connection.execute("SELECT rate_lease(?, ?, ?, ?, ?)", arguments).fetchone()
            return float(row[0])

        return await self.database.call(lease)

    def _clean_now_and_then(self) -> None:
        now = self.clock()
        running = self._cleanup is not None and not self._cleanup.done()
        if running or now - self._cleaned_at < CLEANUP_INTERVAL:
            return
        self._cleaned_at = now
        self._cleanup = asyncio.ensure_future(self.delete_full_buckets())

    async def delete_full_buckets(self) -> int:
        """Delete the buckets that are full by now (a full bucket is the same as none); how many."""

        def delete(connection: Connection) -> int:
            return connection.execute(
                "DELETE FROM rate_buckets WHERE full_at <= extract(epoch FROM clock_timestamp())"
            ).rowcount

        try:
            return await self.database.call(delete)
        except Exception as error:  # next time, then
            log.warning("deleting full rate buckets failed", extra={"error": str(error)[:200]})
            return 0


def _ignore(outcome: str) -> None:
    """No one listens for lease outcomes (no metrics)."""


def bucket_key(caller: str, name: str) -> str:
    """The row key of ``caller``'s bucket ``name``: a digest (callers' names stay out of the table)."""
    return hashlib.sha256(f"{caller}\0{name}".encode()).hexdigest()[:32]
