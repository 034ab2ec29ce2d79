"""Rate limits shared through PostgreSQL hold across instances; per-process ones would not.

Each "instance" is its own :class:`SharedRateLimiter` on its own connection to one fresh
database, as two processes would be (tests/services/test_scale_out.py runs two real
servers sharing a caller's limit).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from chat_services.security.ratelimit import Limit, RateLimitConfig, RateLimiter
from chat_services.security.shared_limits import MIGRATIONS, SharedRateLimiter, bucket_key
from chat_services.storage import Storage, open_storage

from ..clients import until

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
    now = [0.0]
    fast = RateLimitConfig(default=Limit(rate=1000.0, burst=1000))  # leases of 50 calls
    first = SharedRateLimiter(fast, databases[0], clock=lambda: now[0])
    assert await granted(first, 50) == 50
    assert first.lease_reads == 1  # one round trip for the whole lease
    now[0] += 2.0  # past LEASE_TTL: the rest of the lease is dropped, never carried over
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
    assert not limiter.shared


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
