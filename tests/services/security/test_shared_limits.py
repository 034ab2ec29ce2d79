"""Rate limits shared through PostgreSQL hold across instances; per-process ones would not.

Each "instance" is its own :class:`SharedRateLimiter` on its own connection to one fresh
database, as two processes would be (tests/services/test_scale_out.py runs two real
servers sharing a caller's limit).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest

from chat_services.devpostgres import Cluster
from chat_services.observability.metrics import ServerMetrics
from chat_services.security import shared_limits
from chat_services.security.ratelimit import Limit, RateLimitConfig, RateLimiter
from chat_services.security.shared_limits import (
    CLEANUP_INTERVAL,
    LEASE_TTL,
    MIGRATIONS,
    RETRY_SECONDS,
    SharedRateLimiter,
    bucket_key,
)
from chat_services.storage import Storage, open_storage

from ..clients import until
from ..test_postgres_storage import terminate_sessions

SLOW = Limit(rate=0.001, burst=10)  # nothing comes back within a test: only the burst counts


async def opened(dsn: str) -> Storage:
    database = open_storage(dsn)
    await database.open(list(MIGRATIONS))
    return database


@pytest.fixture
async def databases(postgres_dsn: str) -> AsyncIterator[tuple[Storage, Storage]]:
    first = await opened(postgres_dsn)
    second = await opened(postgres_dsn)
    try:
        yield first, second
    finally:
        await first.close()
        await second.close()


def limiters(databases: tuple[Storage, Storage], limit: Limit = SLOW) -> tuple[SharedRateLimiter, ...]:
    config = RateLimitConfig(default=limit)
    return tuple(SharedRateLimiter(config, database) for database in databases)


async def granted(limiter: RateLimiter, calls: int, caller: str = "user:alice", method: str = "/m") -> int:
    results = [await limiter.try_acquire(caller, method) for _ in range(calls)]
    return sum(result is None for result in results)


class Clock:
    """A monotonic clock the test moves (the database keeps its own)."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def shared(database: Storage, limit: Limit, clock: Clock) -> SharedRateLimiter:
    return SharedRateLimiter(RateLimitConfig(default=limit), database, clock=clock)


async def test_two_instances_together_grant_one_burst_not_two(databases: tuple[Storage, Storage]) -> None:
    first, second = limiters(databases)
    total = 0
    for _ in range(15):  # alternating, as a client spread over instances calls
        total += await granted(first, 1) + await granted(second, 1)
    assert total == SLOW.burst
    # Per process, the same calls would have had a burst each.
    local = RateLimiter(RateLimitConfig(default=SLOW)), RateLimiter(RateLimitConfig(default=SLOW))
    assert await granted(local[0], 15) + await granted(local[1], 15) == 2 * SLOW.burst


async def test_work_charges_share_the_bucket_too(databases: tuple[Storage, Storage]) -> None:
    config = RateLimitConfig(work={"messages": Limit(rate=0.001, burst=100)})
    first, second = (SharedRateLimiter(config, database) for database in databases)
    assert await first.try_charge("user:alice", "messages", 60) is None
    wait = await second.try_charge("user:alice", "messages", 60)  # 40 left across both
    assert wait is not None and wait > 0
    assert await second.try_charge("user:alice", "messages", 40) is None


async def test_each_caller_and_method_has_its_own_bucket(databases: tuple[Storage, Storage]) -> None:
    first, second = limiters(databases)
    assert await granted(first, 12, "user:alice") == SLOW.burst
    assert await granted(second, 12, "user:bob") == SLOW.burst
    assert await granted(second, 12, "user:alice", "/other") == SLOW.burst


async def test_a_refused_caller_is_refused_locally_until_its_tokens_are_back(
    databases: tuple[Storage, Storage],
) -> None:
    (first, _) = limiters(databases)
    assert await granted(first, SLOW.burst) == SLOW.burst
    reads = first.lease_reads
    wait = await first.try_acquire("user:alice", "/m")
    assert wait is not None and 900 < wait <= 1000  # one token at 0.001 a second
    assert first.lease_reads == reads + 1
    assert await granted(first, 200) == 0
    assert first.lease_reads == reads + 1  # hammering a spent bucket costs the database nothing


async def test_a_lease_spends_locally_and_what_it_leaves_unspent_expires(
    databases: tuple[Storage, Storage],
) -> None:
    clock = Clock()
    first = shared(databases[0], Limit(rate=1000.0, burst=1000), clock)  # leases of 100 calls
    assert await granted(first, 50) == 50
    assert first.lease_reads == 1  # one round trip for the whole lease
    clock.now += 2.0  # past LEASE_TTL: the rest of the lease is dropped, never carried over
    assert await granted(first, 1) == 1
    assert first.lease_reads == 2


async def test_tokens_come_back_at_the_rate(databases: tuple[Storage, Storage]) -> None:
    first, second = limiters(databases, Limit(rate=20.0, burst=1))
    assert await first.try_acquire("user:alice", "/m") is None
    wait = await second.try_acquire("user:alice", "/m")
    assert wait is not None and 0 < wait <= 0.05
    reads = second.lease_reads

    async def admitted() -> bool:
        return await second.try_acquire("user:alice", "/m") is None

    await until(admitted)
    assert second.lease_reads == reads + 1  # refused locally for the told wait; then the token was there


async def test_without_the_database_each_process_limits_on_its_own(postgres_dsn: str) -> None:
    database = await opened(postgres_dsn)
    (limiter,) = limiters((database,))  # type: ignore[arg-type]
    assert await granted(limiter, 3) == 3
    await database.close()  # from here on every lease fails
    assert await granted(limiter, 20) == SLOW.burst  # a burst of its own: neither none nor all
    assert await granted(limiter, 20, "user:bob") == SLOW.burst  # and a bucket per caller still
    assert limiter.shared is False


async def test_full_buckets_are_deleted_and_spent_ones_kept(databases: tuple[Storage, Storage]) -> None:
    first, _ = limiters(databases, Limit(rate=1000.0, burst=5))
    slow, _ = limiters(databases)
    assert await granted(first, 1, "user:quick") == 1  # full again within 5 ms
    assert await granted(slow, 1, "user:slow") == 1  # full again in 1,000 s
    deleted = []

    async def quick_one_deleted() -> bool:
        deleted.append(await first.delete_full_buckets())
        return sum(deleted) >= 1

    await until(quick_one_deleted)
    assert sum(deleted) == 1

    def keys(connection: object) -> list[str]:
        return [row[0] for row in connection.execute("SELECT key FROM rate_buckets").fetchall()]  # type: ignore[attr-defined]

    assert await databases[0].call(keys) == [bucket_key("user:slow", "/m")]


async def tokens_left(database: Storage, caller: str, method: str = "/m") -> float:
    key = bucket_key(caller, method)

    def read(connection: Any) -> float:
        return float(
            connection.execute("SELECT tokens FROM rate_buckets WHERE key = ?", (key,)).fetchone()[0]
        )

    return await database.call(read)


async def test_a_lease_is_a_tenth_of_a_second_of_the_rate_spent_to_the_last_token(
    databases: tuple[Storage, Storage],
) -> None:
    limiter = shared(databases[0], Limit(rate=1000.0, burst=1000), Clock())
    assert await granted(limiter, 100) == 100
    assert limiter.lease_reads == 1  # 100 calls (1000/s x 0.1 s) from one lease, the last token too
    assert await tokens_left(databases[0], "user:alice") == 900
    assert await granted(limiter, 1) == 1
    assert limiter.lease_reads == 2


async def test_a_lease_ends_at_its_ttl_exactly(databases: tuple[Storage, Storage]) -> None:
    clock = Clock()
    limiter = shared(databases[0], Limit(rate=1000.0, burst=1000), clock)
    assert await granted(limiter, 1) == 1
    clock.now += LEASE_TTL - 1e-6
    assert await granted(limiter, 1) == 1
    assert limiter.lease_reads == 1
    clock.now += 1e-6  # LEASE_TTL after the lease: what is left of it is dropped
    assert await granted(limiter, 1) == 1
    assert limiter.lease_reads == 2


async def test_concurrent_calls_wait_for_one_lease_and_spend_it(databases: tuple[Storage, Storage]) -> None:
    limiter = shared(databases[0], Limit(rate=50.0, burst=100), Clock())  # leases of 5
    results = await asyncio.gather(*(limiter.try_acquire("user:alice", "/m") for _ in range(5)))
    assert results == [None] * 5
    assert limiter.lease_reads == 1  # the four that waited spent the first one's lease
    assert await granted(limiter, 1) == 1
    assert limiter.lease_reads == 2  # and left nothing of it


async def test_a_local_refusal_tells_the_wait_that_is_left(databases: tuple[Storage, Storage]) -> None:
    clock = Clock()
    limiter = shared(databases[0], SLOW, clock)
    assert await granted(limiter, SLOW.burst) == SLOW.burst
    first = await limiter.try_acquire("user:alice", "/m")
    assert first is not None
    clock.now += 100.0
    later = await limiter.try_acquire("user:alice", "/m")
    assert later == pytest.approx(first - 100.0)
    reads = limiter.lease_reads
    clock.now = limiter._leases[("user:alice", "/m")].refused_until  # the told wait is over
    assert await limiter.try_acquire("user:alice", "/m") is not None  # still empty in the database
    assert limiter.lease_reads == reads + 1  # but asked of it, not refused locally


async def test_a_caller_that_moves_on_gets_a_fresh_lease_elsewhere_and_old_ones_are_evicted(
    databases: tuple[Storage, Storage], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(shared_limits, "_MAX_BUCKETS", 2)
    limiter = shared(databases[0], SLOW, Clock())
    for caller in ("user:a", "user:b", "user:c"):
        assert await granted(limiter, 1, caller) == 1
    assert sorted(caller for caller, _ in limiter._leases) == ["user:b", "user:c"]


def test_a_bucket_key_is_the_first_32_hex_digits_of_the_callers_and_names_digest() -> None:
    # Every instance must compute the same key, whatever version: the format is pinned.
    digest = hashlib.sha256(b"user:alice\x00/chat.v1.MessageService/GetMessage").hexdigest()
    assert bucket_key("user:alice", "/chat.v1.MessageService/GetMessage") == digest[:32]


async def test_an_outage_is_logged_once_and_its_end_once(
    postgres_cluster: Cluster, postgres_dsn: str, caplog: pytest.LogCaptureFixture
) -> None:
    database = await opened(postgres_dsn)
    clock = Clock()
    limiter = shared(database, SLOW, clock)  # every call leases one token from the database
    caplog.set_level(logging.INFO, "chat_services.security")
    try:
        assert await granted(limiter, 2) == 2
        assert limiter.shared is True
        assert not caplog.records  # nothing to say while the database answers
        await terminate_sessions(postgres_cluster, postgres_dsn)

        async def fell_back() -> bool:  # whichever connection was killed fails one lease
            await limiter.try_acquire("user:alice", "/m")
            return not limiter.shared

        await until(fell_back)
        assert limiter.shared is False
        clock.now += RETRY_SECONDS  # the database is tried again a second later: it answers
        assert await granted(limiter, 1) == 1
        assert limiter.shared is True
    finally:
        await database.close()
    ours = [record for record in caplog.records if record.name == "chat_services.security"]
    [down] = [record for record in ours if record.levelno == logging.WARNING]
    assert (
        down.getMessage() == "shared rate limits unavailable; limiting per process until the database is back"
    )
    error = getattr(down, "error", "")
    assert error and error != "None" and len(error) <= 200
    [back] = [record for record in ours if record.levelno == logging.INFO]
    assert back.getMessage() == "shared rate limits back"


async def test_full_buckets_are_deleted_every_cleanup_interval(databases: tuple[Storage, Storage]) -> None:
    clock = Clock()
    limiter = shared(databases[0], Limit(rate=1000.0, burst=5), clock)  # full 5 ms after a call

    async def quick_bucket_full(caller: str) -> None:
        assert await limiter.try_acquire(caller, "/m") is None

        def full(connection: Any) -> bool:
            row = connection.execute(
                "SELECT full_at <= extract(epoch FROM clock_timestamp()) FROM rate_buckets WHERE key = ?",
                (bucket_key(caller, "/m"),),
            ).fetchone()
            return bool(row[0])

        await until(lambda: databases[0].call(full))

    async def rows() -> int:
        return await databases[0].call(
            lambda c: int(c.execute("SELECT count(*) FROM rate_buckets").fetchone()[0])
        )

    await quick_bucket_full("user:q1")
    clock.now += CLEANUP_INTERVAL - 0.1
    assert await limiter._take(("user:s1", "/m"), SLOW, 1) is None  # a lease: not yet time
    assert limiter._cleanup is None
    clock.now += 0.1  # CLEANUP_INTERVAL since the limiter started
    assert await limiter._take(("user:s2", "/m"), SLOW, 1) is None
    assert limiter._cleanup is not None
    assert await limiter._cleanup == 1  # the quick bucket, full again; the slow ones kept
    assert await rows() == 2
    await quick_bucket_full("user:q2")
    clock.now += CLEANUP_INTERVAL
    assert await limiter._take(("user:s3", "/m"), SLOW, 1) is None
    assert await limiter._cleanup == 1  # and again an interval later
    assert await rows() == 3


async def test_a_failed_cleanup_is_logged_and_counts_nothing(
    postgres_dsn: str, caplog: pytest.LogCaptureFixture
) -> None:
    database = await opened(postgres_dsn)
    limiter = shared(database, SLOW, Clock())
    await database.close()
    assert await limiter.delete_full_buckets() == 0
    [failed] = [
        r for r in caplog.records if r.name == "chat_services.security" and r.levelno == logging.WARNING
    ]
    assert failed.getMessage() == "deleting full rate buckets failed"
    assert getattr(failed, "error", "") not in ("", "None")


async def test_metrics_count_leases_by_outcome_and_show_whether_limits_are_shared(postgres_dsn: str) -> None:
    database = await opened(postgres_dsn)
    limiter = shared(database, Limit(rate=0.001, burst=2), Clock())
    metrics = ServerMetrics()
    metrics.watch_shared_limits(limiter)

    def sample(name: str, **labels: str) -> float | None:
        return metrics.registry.get_sample_value(name, labels)

    assert sample("chat_rate_limits_shared") == 1.0
    assert await granted(limiter, 3) == 2  # two leases granted, one refused
    assert sample("chat_rate_limit_leases_total", outcome="granted") == 2.0
    assert sample("chat_rate_limit_leases_total", outcome="refused") == 1.0
    await database.close()
    assert await granted(limiter, 1, "user:bob") == 1  # its own process bucket meanwhile
    assert sample("chat_rate_limit_leases_total", outcome="unavailable") == 1.0
    assert sample("chat_rate_limits_shared") == 0.0


async def test_without_the_database_a_lease_is_tried_again_once_a_second_not_per_call(
    postgres_dsn: str,
) -> None:
    database = await opened(postgres_dsn)
    clock = Clock()
    limiter = shared(database, Limit(rate=0.001, burst=50), clock)
    await database.close()
    assert await granted(limiter, 20) == 20  # the process's own bucket
    assert limiter.lease_reads == 1  # the first call found the database gone; the others did not wait on it
    clock.now += RETRY_SECONDS - 1e-6
    assert await granted(limiter, 1) == 1
    assert limiter.lease_reads == 1
    clock.now += 1e-6
    assert await granted(limiter, 1) == 1
    assert limiter.lease_reads == 2  # tried again, a second after the failure
    assert limiter.shared is False
