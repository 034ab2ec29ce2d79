"""Which PostgreSQL driver, used the way the services would use it: psycopg 3 or asyncpg.

``python -m chat_bench.pg_drivers [--calls 3000]`` starts a throwaway cluster (fsync on) and
times, at 50 calls in flight, a GetMessage-like primary-key read and a SendMessages-like
transaction (lock the conversation, look up the idempotency key, read the last sequence,
insert) through:

- ``psycopg-threads``: the services' backend (:class:`chat_services.postgres.PostgresDatabase`,
  sync closures on 4 threads with a connection each);
- ``psycopg-async``: psycopg's ``AsyncConnection``, 4 of them shared through a queue;
- ``asyncpg``: an asyncpg pool of 4 (``pip install asyncpg`` first).
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from chat_services.devpostgres import running_cluster
from chat_services.message.model import Draft
from chat_services.message.store import MIGRATIONS, MessageStore
from chat_services.storage import open_storage

IN_FLIGHT = 50
CONNECTIONS = 4
# psycopg's placeholders; asyncpg gets them numbered ($1, $2...) by numbered().
READ = (
    "SELECT id, conversation_id, sequence, author_id, content, idempotency_key, created_at_ns"
    " FROM messages WHERE id = %s"
)
LOCK = "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))"
BY_KEY = "SELECT id FROM messages WHERE author_id = %s AND idempotency_key = %s"
LAST = "SELECT COALESCE(MAX(sequence), 0) FROM messages WHERE conversation_id = %s"
INSERT = (
    "INSERT INTO messages (id, conversation_id, sequence, author_id, content, idempotency_key, created_at_ns)"
    " VALUES (%s, %s, %s, %s, %s, %s, %s)"
)


def numbered(sql: str) -> str:
    """``sql`` with asyncpg's placeholders."""
    parts = sql.split("%s")
    return "".join(f"{part}${i}" for i, part in enumerate(parts[:-1], start=1)) + parts[-1]


async def timed(calls: int, one: Callable[[int], Awaitable[object]]) -> tuple[float, float, float]:
    """(calls per second, p50 ms, p99 ms) of ``calls`` calls, ``IN_FLIGHT`` at a time."""
    latencies: list[float] = []
    numbers = iter(range(calls))

    async def worker() -> None:
        for number in numbers:
            start = time.perf_counter()
            await one(number)
            latencies.append(time.perf_counter() - start)

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(IN_FLIGHT)))
    elapsed = time.perf_counter() - start
    latencies.sort()
    return (
        calls / elapsed,
        1000 * latencies[len(latencies) // 2],
        1000 * latencies[int(len(latencies) * 0.99)],
    )


async def psycopg_threads(dsn: str, calls: int) -> dict[str, tuple[float, float, float]]:
    database = open_storage(dsn)
    await database.open(MIGRATIONS)
    store = MessageStore(database)
    try:
        prefix = uuid.uuid4().hex[:6]
        sent = await timed(
            calls, lambda n: store.store([Draft(f"{prefix}-{n}", f"c-{n % 20}", "u-1", "hi there")])
        )
        ids = [m.id for m in await store.after("c-1", 0, 100)]
        read = await timed(calls, lambda n: store.get(ids[n % len(ids)]))
    finally:
        await database.close()
    return {"get": read, "send": sent}


@asynccontextmanager
async def psycopg_async_pool(dsn: str) -> AsyncIterator[asyncio.Queue[Any]]:
    import psycopg

    pool: asyncio.Queue[Any] = asyncio.Queue()
    connections = [await psycopg.AsyncConnection.connect(dsn, autocommit=True) for _ in range(CONNECTIONS)]
    for connection in connections:
        pool.put_nowait(connection)
    try:
        yield pool
    finally:
        for connection in connections:
            await connection.close()


async def psycopg_async(dsn: str, calls: int, ids: list[str]) -> dict[str, tuple[float, float, float]]:
    async with psycopg_async_pool(dsn) as pool:

        async def get(n: int) -> object:
            connection = await pool.get()
            try:
                cursor = await connection.execute(READ, (ids[n % len(ids)],))
                return await cursor.fetchone()
            finally:
                pool.put_nowait(connection)

        prefix = uuid.uuid4().hex[:6]

        async def send(n: int) -> None:
            connection = await pool.get()
            try:
                conversation, key = f"c-{n % 20}", f"{prefix}-pa-{n}"
                async with connection.transaction():
                    await connection.execute(LOCK.replace("$1", "%s"), (conversation,))
                    await (
                        await connection.execute(BY_KEY.replace("$1", "%s").replace("$2", "%s"), ("u-1", key))
                    ).fetchone()
                    row = await (
                        await connection.execute(LAST.replace("$1", "%s"), (conversation,))
                    ).fetchone()
                    await connection.execute(
                        INSERT.replace("$1", "%s").replace("$2", "%s").replace("$3", "%s").replace("$4", "%s")
                        .replace("$5", "%s").replace("$6", "%s").replace("$7", "%s"),
                        (uuid.uuid4().hex, conversation, row[0] + 1, "u-1", "hi there", key, time.time_ns()),
                    )  # fmt: skip
            finally:
                pool.put_nowait(connection)

        return {"get": await timed(calls, get), "send": await timed(calls, send)}


async def asyncpg_pool(dsn: str, calls: int, ids: list[str]) -> dict[str, tuple[float, float, float]]:
    import asyncpg  # type: ignore[import-not-found,import-untyped,unused-ignore]

    pool = await asyncpg.create_pool(dsn, min_size=CONNECTIONS, max_size=CONNECTIONS)
    prefix = uuid.uuid4().hex[:6]
    try:

        async def get(n: int) -> object:
            return await pool.fetchrow(numbered(READ), ids[n % len(ids)])

        async def send(n: int) -> None:
            conversation, key = f"c-{n % 20}", f"{prefix}-ap-{n}"
            async with pool.acquire() as connection, connection.transaction():
                await connection.execute(LOCK, conversation)
                await connection.fetchrow(BY_KEY, "u-1", key)
                last = await connection.fetchval(LAST, conversation)
                await connection.execute(
                    INSERT,
                    uuid.uuid4().hex,
                    conversation,
                    last + 1,
                    "u-1",
                    "hi there",
                    key,
                    time.time_ns(),
                )

        return {"get": await timed(calls, get), "send": await timed(calls, send)}
    finally:
        await pool.close()


async def measure(calls: int) -> None:
    with running_cluster() as cluster:
        dsn = cluster.create_database("drivers")
        results = {"psycopg-threads": await psycopg_threads(dsn, calls)}
        database = open_storage(dsn)
        await database.open(MIGRATIONS)
        ids = [m.id for m in await MessageStore(database).after("c-1", 0, 100)]
        await database.close()
        results["psycopg-async"] = await psycopg_async(dsn, calls, ids)
        try:
            results["asyncpg"] = await asyncpg_pool(dsn, calls, ids)
        except ImportError:
            print("asyncpg is not installed: skipped")
    print(f"{calls} calls each, {IN_FLIGHT} in flight, {CONNECTIONS} connections, PostgreSQL fsync on")
    print(
        f"{'driver':<16} {'get/s':>8} {'p50 ms':>7} {'p99 ms':>7} {'send/s':>8} {'p50 ms':>7} {'p99 ms':>7}"
    )
    for name, figures in results.items():
        get, send = figures["get"], figures["send"]
        row = (f"{get[0]:8.0f}", f"{get[1]:7.2f}", f"{get[2]:7.2f}", f"{send[0]:8.0f}", f"{send[1]:7.2f}")
        print(f"{name:<16} {' '.join(row)} {send[2]:7.2f}")


def main() -> None:
    """Print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=3000)
    asyncio.run(measure(parser.parse_args().calls))


if __name__ == "__main__":
    main()
