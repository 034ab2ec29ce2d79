"""The database thread's queue, from its contract: transactions waiting together share one BEGIN and
one COMMIT (a lone one runs alone), a plain call sees every write queued before it, a failure is
raised to its own caller (never handed back as a value), a group whose COMMIT fails leaves nothing
and the connection usable, a caller that stopped waiting holds up nobody, and closing ends the thread."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, cast

import pytest

from chat_services.storage import Connection, Database, Migration, _Worker

MIGRATIONS = [
    Migration("test-001", "CREATE TABLE items (n INTEGER)"),
    Migration(
        "test-002",
        "CREATE TABLE parents (id INTEGER PRIMARY KEY);"
        " CREATE TABLE children (parent INTEGER REFERENCES parents (id) DEFERRABLE INITIALLY DEFERRED)",
    ),
]
BOUND = 10.0  # seconds to wait for a result before failing instead of hanging


@pytest.fixture
async def database(tmp_path: Path) -> AsyncIterator[Database]:
    opened = Database(tmp_path / "q.db")
    await opened.open(MIGRATIONS)
    try:
        yield opened
    finally:
        await opened.close()


class Held:
    """Holds the database thread until released, so the calls queued meanwhile run as one batch."""

    def __init__(self, blocker: asyncio.Future[bool], gate: threading.Event) -> None:
        self.blocker = blocker
        self.gate = gate

    @classmethod
    async def start(cls, database: Database) -> Held:
        """Occupy the thread (and wait until it is, so the blocker runs in a batch of its own)."""
        gate, started = threading.Event(), threading.Event()

        def hold(_connection: Connection) -> bool:
            started.set()
            return gate.wait(BOUND)

        blocker = asyncio.ensure_future(database.call(hold))
        await asyncio.to_thread(started.wait, BOUND)
        return cls(blocker, gate)

    async def release(self) -> None:
        self.gate.set()
        assert await asyncio.wait_for(self.blocker, BOUND) is True


def insert(number: int) -> Callable[[Connection], int]:
    def work(connection: Connection) -> int:
        connection.execute("INSERT INTO items VALUES (?)", (number,))
        return number

    return work


def constant(value: int) -> Callable[[Connection], int]:
    return lambda _connection: value


async def rows(database: Database) -> list[int]:
    return await database.call(lambda c: sorted(r[0] for r in c.execute("SELECT n FROM items")))


def rolled_back(connection: Connection) -> int:
    """A transaction's work that SQLite rolls back itself, as on SQLITE_FULL, then fails."""
    connection.execute("ROLLBACK")
    raise ValueError("disk full")


async def traced(database: Database) -> list[str]:
    """Every statement the connection runs from now on, upper-cased (SQL keywords have no case)."""
    statements: list[str] = []
    # The SQLite backend hands its work the sqlite3 connection itself.
    await database.call(
        lambda c: cast(sqlite3.Connection, c).set_trace_callback(lambda s: statements.append(s.upper()))
    )
    return statements


async def test_transactions_queued_together_share_one_commit(database: Database) -> None:
    statements = await traced(database)
    held = await Held.start(database)
    writes = [asyncio.ensure_future(database.transaction(insert(n))) for n in range(5)]
    await held.release()
    assert await asyncio.wait_for(asyncio.gather(*writes), BOUND) == list(range(5))
    controls = [s for s in statements if not s.startswith("INSERT")]
    assert controls == ["BEGIN IMMEDIATE"] + ["SAVEPOINT JOB", "RELEASE JOB"] * 5 + ["COMMIT"]


async def test_a_lone_transaction_runs_without_savepoints(database: Database) -> None:
    statements = await traced(database)
    assert await database.transaction(insert(1)) == 1
    assert [s for s in statements if not s.startswith("INSERT")] == ["BEGIN IMMEDIATE", "COMMIT"]


async def test_a_plain_call_sees_the_writes_queued_before_it(database: Database) -> None:
    held = await Held.start(database)
    write = asyncio.ensure_future(database.transaction(insert(1)))
    seen = asyncio.ensure_future(rows(database))
    await held.release()
    await asyncio.wait_for(write, BOUND)
    assert await asyncio.wait_for(seen, BOUND) == [1]


async def test_a_failed_transaction_of_a_group_is_raised_to_its_caller(database: Database) -> None:
    def refused(connection: Connection) -> int:
        connection.execute("INSERT INTO items VALUES (-1)")
        raise ValueError("refused")

    held = await Held.start(database)
    first = asyncio.ensure_future(database.transaction(insert(1)))
    failing = asyncio.ensure_future(database.transaction(refused))
    last = asyncio.ensure_future(database.transaction(insert(2)))
    await held.release()
    with pytest.raises(ValueError, match="refused"):
        await asyncio.wait_for(failing, BOUND)
    assert (await first, await last) == (1, 2)
    assert await rows(database) == [1, 2]


async def test_a_group_whose_commit_fails_stores_nothing_and_the_next_commits(database: Database) -> None:
    """A deferred foreign key fails the COMMIT itself: every transaction of the group fails with it."""
    await database.call(lambda c: c.execute("PRAGMA foreign_keys = ON"))

    def orphan(connection: Connection) -> int:
        connection.execute("INSERT INTO children VALUES (42)")  # no parent 42: refused at COMMIT
        return 0

    held = await Held.start(database)
    group = [asyncio.ensure_future(database.transaction(work)) for work in (insert(1), orphan, insert(2))]
    await held.release()
    for write in group:
        with pytest.raises(sqlite3.IntegrityError):
            await asyncio.wait_for(write, BOUND)
    assert await rows(database) == []
    assert await database.transaction(insert(3)) == 3
    assert await rows(database) == [3]


async def test_a_transaction_sqlite_rolled_back_fails_its_whole_batch_and_the_thread_lives_on(
    database: Database,
) -> None:
    """When SQLite itself rolls the group back (a full disk), the writes before it are gone too."""

    held = await Held.start(database)
    group = [
        asyncio.ensure_future(database.transaction(work)) for work in (insert(1), rolled_back, insert(2))
    ]
    await held.release()
    for write in group:
        with pytest.raises(ValueError, match="disk full"):
            await asyncio.wait_for(write, BOUND)
    assert await asyncio.wait_for(rows(database), BOUND) == []


async def test_a_group_sqlite_rolled_back_fails_only_itself_not_what_the_batch_committed_before(
    database: Database,
) -> None:
    """A committed write's caller is told it succeeded, even when a later group of its batch is lost."""

    held = await Held.start(database)
    committed = asyncio.ensure_future(database.transaction(insert(5)))
    plain = asyncio.ensure_future(database.call(constant(7)))  # commits the write before it
    group = [
        asyncio.ensure_future(database.transaction(work)) for work in (insert(1), rolled_back, insert(2))
    ]
    await held.release()
    assert await asyncio.wait_for(committed, BOUND) == 5
    assert await asyncio.wait_for(plain, BOUND) == 7
    for write in group:
        with pytest.raises(ValueError, match="disk full"):
            await asyncio.wait_for(write, BOUND)
    assert await asyncio.wait_for(rows(database), BOUND) == [5]


async def test_a_caller_that_stopped_waiting_holds_up_nobody_behind_it(database: Database) -> None:
    held = await Held.start(database)
    cancelled = asyncio.ensure_future(database.call(lambda _c: 1))
    behind = [asyncio.ensure_future(database.call(constant(n))) for n in range(3)]
    await asyncio.sleep(0)  # queued
    cancelled.cancel()
    await held.release()
    assert await asyncio.wait_for(asyncio.gather(*behind), BOUND) == [0, 1, 2]


async def test_the_thread_is_a_daemon_named_sqlite_and_closing_ends_it(tmp_path: Path) -> None:
    database = Database(tmp_path / "t.db")
    await database.open(MIGRATIONS)
    try:
        [thread] = [t for t in threading.enumerate() if t.name == "sqlite" and t.is_alive()]
        assert thread.daemon
    finally:
        await database.close()
    assert not thread.is_alive()
    with pytest.raises(RuntimeError, match=r"^the database is closed$"):
        await database.call(lambda _c: None)


async def test_a_result_for_a_loop_that_closed_is_dropped_and_the_thread_lives_on(database: Database) -> None:
    """A caller's loop may close before its result comes back (a client's thread ends)."""
    gate = threading.Event()
    ready = threading.Event()

    def in_another_loop() -> None:
        loop = asyncio.new_event_loop()
        future: asyncio.Future[Any] = loop.create_future()

        def hold(_connection: Connection) -> bool:
            ready.set()
            return gate.wait(BOUND)

        database._worker.submit(future, database._with_connection, (hold,))
        loop.close()

    await asyncio.to_thread(in_another_loop)
    await asyncio.to_thread(ready.wait, BOUND)
    gate.set()
    assert await asyncio.wait_for(database.call(lambda _c: 7), BOUND) == 7


async def test_a_batch_whose_run_raises_fails_each_of_its_callers_and_the_thread_lives_on() -> None:
    """Whatever escapes running a batch (a failed ROLLBACK TO) is each waiting caller's error, raised."""
    batches: list[int] = []

    def execute(jobs: list[Any]) -> list[Any]:
        batches.append(len(jobs))
        if len(batches) == 1:
            raise sqlite3.OperationalError("cannot rollback - no transaction is active")
        return [(future, True, function(*args)) for future, function, args in jobs]

    worker = _Worker(execute)
    loop = asyncio.get_running_loop()
    try:
        failed: asyncio.Future[int] = loop.create_future()
        worker.submit(failed, lambda: 1, ())
        with pytest.raises(sqlite3.OperationalError, match="no transaction is active"):
            await asyncio.wait_for(failed, BOUND)
        later: asyncio.Future[int] = loop.create_future()
        worker.submit(later, lambda: 2, ())
        assert await asyncio.wait_for(later, BOUND) == 2
    finally:
        await asyncio.to_thread(worker.stop)
    assert batches[:2] == [1, 1]  # (stopping runs one more, empty batch)
