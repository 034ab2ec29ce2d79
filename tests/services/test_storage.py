"""The storage's worker threads, on each backend: calls in order, errors and cancellations apart.

SQLite runs everything on one thread and commits transactions waiting together as one
group; PostgreSQL runs them on several connections. Either way each call gets its own
result and a failing transaction rolls back alone. Short reads on an SQLite file run on
the event loop over a read-only connection, and see every write acknowledged before them.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from grpclib.const import Status

from chat_services.errors import ServiceError
from chat_services.storage import Connection, Migration, open_storage

MIGRATIONS = [Migration("test-001", "CREATE TABLE items (n INTEGER)")]


async def test_concurrent_calls_each_get_their_own_result_or_error(database_target: str) -> None:
    database = open_storage(database_target)
    await database.open(MIGRATIONS)
    gate = threading.Event()
    try:
        # The first call holds a thread: on SQLite the others queue up and run as one batch.
        blocker = asyncio.ensure_future(database.call(lambda _c: gate.wait(10)))

        def fail(_connection: Connection) -> int:
            raise ValueError("boom")

        def select(number: int) -> Callable[[Connection], int]:
            return lambda connection: int(connection.execute("SELECT ?", (number,)).fetchone()[0])

        calls = [database.call(select(n)) for n in range(50)]
        failing = asyncio.ensure_future(database.call(fail))
        gathered = asyncio.gather(*calls)
        cancelled = asyncio.ensure_future(database.call(lambda _c: 1))
        await asyncio.sleep(0)
        cancelled.cancel()
        gate.set()
        assert await blocker is True
        assert await gathered == list(range(50))
        with pytest.raises(ValueError, match="boom"):
            await failing
        with pytest.raises(asyncio.CancelledError):
            await cancelled
        assert await database.call(lambda c: c.execute("SELECT 7").fetchone()[0]) == 7
    finally:
        gate.set()
        await database.close()


async def test_a_failed_transaction_leaves_nothing_and_later_ones_commit(database_target: str) -> None:
    database = open_storage(database_target)
    await database.open(MIGRATIONS)
    try:

        def insert_then_fail(connection: Connection) -> None:
            connection.execute("INSERT INTO items VALUES (1)")
            raise ValueError("rolled back")

        with pytest.raises(ValueError, match="rolled back"):
            await database.transaction(insert_then_fail)
        await database.transaction(lambda c: c.execute("INSERT INTO items VALUES (2)"))
        rows = await database.call(lambda c: [r[0] for r in c.execute("SELECT n FROM items")])
        assert rows == [2]
    finally:
        await database.close()
    with pytest.raises(RuntimeError):
        await database.call(lambda c: None)


async def test_transactions_waiting_together_commit_together_and_fail_alone(database_target: str) -> None:
    database = open_storage(database_target)
    await database.open(MIGRATIONS)
    gate = threading.Event()
    try:
        blocker = asyncio.ensure_future(database.call(lambda _c: gate.wait(10)))

        def insert(number: int) -> Callable[[Connection], int]:
            def work(connection: Connection) -> int:
                connection.execute("INSERT INTO items VALUES (?)", (number,))
                if number == 3:
                    connection.execute("INSERT INTO items VALUES (-3)")
                    raise ValueError("three is refused")
                return number

            return work

        # SQLite: queued behind the blocker, the ten run as one batch (one transaction, ten
        # savepoints). PostgreSQL: they run on the other connections, one transaction each.
        writes = [asyncio.ensure_future(database.transaction(insert(n))) for n in range(10)]
        await asyncio.sleep(0)
        gate.set()
        await blocker
        outcomes = await asyncio.gather(*writes, return_exceptions=True)
        assert [o for o in outcomes if not isinstance(o, BaseException)] == [0, 1, 2, 4, 5, 6, 7, 8, 9]
        assert isinstance(outcomes[3], ValueError)
        rows = await database.call(lambda c: sorted(r[0] for r in c.execute("SELECT n FROM items")))
        assert rows == [0, 1, 2, 4, 5, 6, 7, 8, 9]
    finally:
        gate.set()
        await database.close()
    reopened = open_storage(database_target)
    await reopened.open(MIGRATIONS)
    try:
        assert await reopened.call(lambda c: tuple(c.execute("SELECT COUNT(*) FROM items").fetchone())) == (
            9,
        )
    finally:
        await reopened.close()


async def test_a_short_read_sees_every_acknowledged_write_on_each_backend(database_target: str) -> None:
    database = open_storage(database_target)
    await database.open(MIGRATIONS)
    try:
        for n in range(3):
            await database.transaction(_insert(n))
            seen = await database.read(
                lambda c: [row[0] for row in c.execute("SELECT n FROM items ORDER BY n")]
            )
            assert seen == list(range(n + 1))
    finally:
        await database.close()


def _insert(number: int) -> Callable[[Connection], object]:
    return lambda connection: connection.execute("INSERT INTO items (n) VALUES (?)", (number,))


def _thread_and_rows(connection: Connection) -> tuple[str, int]:
    return threading.current_thread().name, connection.execute("SELECT count(*) FROM items").fetchone()[0]


async def test_a_short_read_on_an_sqlite_file_runs_on_the_event_loop(tmp_path: Path) -> None:
    database = open_storage(tmp_path / "reads.db")
    await database.open(MIGRATIONS)
    try:
        await database.transaction(lambda c: c.execute("INSERT INTO items (n) VALUES (1)"))
        observed: list[str] = []
        database.observer = lambda operation, seconds: observed.append(operation)
        assert await database.read(_thread_and_rows) == (threading.current_thread().name, 1)
        assert observed == ["call"]  # timed as a call, as the server's metrics count it
        assert await database.call(_thread_and_rows) == ("sqlite", 1)
        with pytest.raises(sqlite3.OperationalError, match="readonly"):  # the loop's connection only reads
            await database.read(lambda c: c.execute("DELETE FROM items"))
        assert await database.call(_thread_and_rows) == ("sqlite", 1)
        assert not database.faulted  # a read that tried to write is a bug of the caller, not a fault
    finally:
        await database.close()
    with pytest.raises(RuntimeError, match="closed"):
        await database.read(_thread_and_rows)


async def test_a_short_read_takes_the_trip_on_an_in_memory_database_or_when_sqlite_is_busy(
    tmp_path: Path,
) -> None:
    in_memory = open_storage(":memory:")
    await in_memory.open(MIGRATIONS)
    try:
        assert await in_memory.read(_thread_and_rows) == (
            "sqlite",
            0,
        )  # a second connection: another database
    finally:
        await in_memory.close()
    database = open_storage(tmp_path / "busy.db")
    await database.open(MIGRATIONS)
    tried: list[str] = []

    def busy_on_the_loop(connection: Connection) -> tuple[str, int]:
        tried.append(threading.current_thread().name)
        if len(tried) == 1:
            error = sqlite3.OperationalError("database is locked")
            error.sqlite_errorcode = sqlite3.SQLITE_BUSY  # what SQLite says when the reader would wait
            raise error
        return _thread_and_rows(connection)

    observed: list[str] = []
    database.observer = lambda operation, seconds: observed.append(operation)
    try:
        assert await database.read(busy_on_the_loop) == ("sqlite", 0)
        assert tried == [threading.current_thread().name, "sqlite"]
        assert observed == ["call"]  # the trip only: the busy try is not counted
        assert not database.faulted
    finally:
        await database.close()


async def test_the_event_loops_reader_never_waits_for_a_lock_and_reads_rows_by_name(tmp_path: Path) -> None:
    database = open_storage(tmp_path / "reader.db")
    await database.open(MIGRATIONS)
    try:
        # A busy timeout would hold the whole event loop while SQLite waits for the lock.
        assert await database.read(lambda c: c.execute("PRAGMA busy_timeout").fetchone()[0]) == 0
        assert await database.read(lambda c: c.execute("SELECT 7 AS seven").fetchone()["seven"]) == 7
    finally:
        await database.close()


async def test_a_storage_fault_in_a_read_on_the_loop_begins_an_episode_and_is_not_retried(
    tmp_path: Path,
) -> None:
    database = open_storage(tmp_path / "fault.db")
    await database.open(MIGRATIONS)
    tried: list[str] = []

    def failing_disk(_connection: Connection) -> None:
        tried.append(threading.current_thread().name)
        error = sqlite3.OperationalError("disk I/O error")
        error.sqlite_errorcode = sqlite3.SQLITE_IOERR
        error.sqlite_errorname = "SQLITE_IOERR"
        raise error

    try:
        with pytest.raises(ServiceError) as raised:
            await database.read(failing_disk)
        assert raised.value.status is Status.UNAVAILABLE
        assert "storage failed (SQLITE_IOERR)" in raised.value.message
        assert isinstance(raised.value.__cause__, sqlite3.OperationalError)
        assert database.faulted
        assert tried == [threading.current_thread().name]  # not tried again on the thread
    finally:
        await database.close()


async def test_an_error_of_the_work_itself_leaves_a_read_on_the_loop_as_it_is_and_timed(
    tmp_path: Path,
) -> None:
    database = open_storage(tmp_path / "work.db")
    await database.open(MIGRATIONS)
    observed: list[tuple[str, float]] = []
    database.observer = lambda operation, seconds: observed.append((operation, seconds))
    loop = asyncio.get_running_loop()

    def missing(_connection: Connection) -> None:
        raise LookupError("no such item")

    try:
        began = loop.time()
        with pytest.raises(LookupError, match="no such item"):
            await database.read(missing)
        took = loop.time() - began
        assert not database.faulted
        [(operation, seconds)] = observed
        assert operation == "call"
        assert 0 <= seconds <= took + 0.001  # the read's own duration, not a clock reading
    finally:
        await database.close()
