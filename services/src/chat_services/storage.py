"""The embedded SQLite database: one connection on one worker thread, migrated on start.

Every domain store shares one :class:`Database`. Calls run on a single dedicated
thread, so SQLite sees one writer and the event loop never blocks on disk. Each
store declares its schema as named migrations, applied once, in order.

The thread takes every call waiting in its queue at once and hands all their results
back to the event loop in one wake-up: under load that is one cross-thread hand-off
per batch instead of one per call (an executor's future per call costs a system call
and a loop wake-up each). Transactions waiting together commit together (group
commit): each runs in its own savepoint, so one that fails is rolled back alone, and
the batch costs one fsync instead of one per transaction. No result is handed back
before its commit is on disk.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import sqlite3
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from time import perf_counter
from typing import Any, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Migration:
    """One schema step, applied once: ``name`` is unique across all stores (``message-001``)."""

    name: str
    sql: str
    # A migration that rebuilds a table other tables reference (SQLite's twelve-step
    # ALTER) must run with foreign keys off, or dropping the old table deletes the rows
    # that reference it; they are checked before the migration commits.
    rebuilds_tables: bool = False


class Database:
    """An SQLite file (or ``:memory:``) used from asyncio through one worker thread."""

    def __init__(self, path: Path | str) -> None:
        self.path = str(path)
        self._worker = _Worker(self._execute)
        self._connection: sqlite3.Connection | None = None
        # Told ("call" or "transaction", seconds) after each operation; the server's metrics set it.
        self.observer: Callable[[str, float], None] | None = None

    async def open(self, migrations: Sequence[Migration]) -> None:
        """Open (creating the file and its folder) and apply any migration not yet applied."""
        await self._run_raw(self._open_and_migrate, list(migrations))

    def _open_and_migrate(self, migrations: list[Migration]) -> None:
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        connection = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        connection.row_factory = sqlite3.Row
        connection.execute("PRAGMA foreign_keys = ON")
        if self.path != ":memory:":
            connection.execute("PRAGMA journal_mode = WAL")
        # FULL: a commit is on disk before the call that made it is acknowledged.
        connection.execute("PRAGMA synchronous = FULL")
        connection.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (name TEXT PRIMARY KEY, applied_at TEXT)"
        )
        applied = {row[0] for row in connection.execute("SELECT name FROM schema_migrations")}
        for migration in migrations:
            if migration.name in applied:
                continue
            if migration.rebuilds_tables:
                connection.execute("PRAGMA foreign_keys = OFF")  # a no-op inside a transaction
            try:
                with connection:
                    connection.execute("BEGIN")
                    for statement in _statements(migration.sql):
                        connection.execute(statement)
                    if connection.execute("PRAGMA foreign_key_check").fetchone() is not None:
                        raise sqlite3.IntegrityError(f"migration {migration.name} broke a foreign key")
                    connection.execute(
                        "INSERT INTO schema_migrations (name, applied_at) VALUES (?, datetime('now'))",
                        (migration.name,),
                    )
            finally:
                connection.execute("PRAGMA foreign_keys = ON")
        self._connection = connection

    async def call(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``work(connection)`` on the database thread and return its result."""
        return await self._timed("call", self._with_connection, work)

    async def transaction(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``work(connection)`` in one transaction: all of it is committed, or none."""
        return await self._timed("transaction", self._in_transaction, work)

    async def _timed(
        self,
        operation: str,
        run: Callable[[Callable[[sqlite3.Connection], T]], T],
        work: Callable[[sqlite3.Connection], T],
    ) -> T:
        if self.observer is None:
            return await self._run_raw(run, work)
        start = perf_counter()
        try:
            return await self._run_raw(run, work)
        finally:
            self.observer(operation, perf_counter() - start)

    def _with_connection(self, work: Callable[[sqlite3.Connection], T]) -> T:
        if self._connection is None:
            raise RuntimeError("the database is not open")
        return work(self._connection)

    def _in_transaction(self, work: Callable[[sqlite3.Connection], T]) -> T:
        connection = self._connection
        if connection is None:
            raise RuntimeError("the database is not open")
        connection.execute("BEGIN IMMEDIATE")
        try:
            result = work(connection)
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        connection.execute("COMMIT")
        return result

    def _execute(self, jobs: list[_Job]) -> list[_Settled]:
        """Run a batch in order on the database thread; consecutive transactions share one commit."""
        done: list[_Settled] = []
        group: list[tuple[asyncio.Future[Any], Callable[[sqlite3.Connection], Any]]] = []
        for future, function, args in jobs:
            if function == self._in_transaction:
                group.append((future, args[0]))  # type: ignore[arg-type]
                continue
            done += self._commit_group(group)  # a plain call never sees uncommitted writes
            done.append(_settle(future, function, *args))
        return done + self._commit_group(group)

    def _commit_group(
        self, group: list[tuple[asyncio.Future[Any], Callable[[sqlite3.Connection], Any]]]
    ) -> list[_Settled]:
        """Run ``group`` in one transaction, each in a savepoint; empties ``group``."""
        if not group:
            return []
        jobs, connection = list(group), self._connection
        group.clear()
        if len(jobs) == 1 or connection is None:
            return [_settle(future, self._in_transaction, work) for future, work in jobs]
        settled: list[_Settled] = []
        try:
            connection.execute("BEGIN IMMEDIATE")
            for future, work in jobs:
                connection.execute("SAVEPOINT job")
                try:
                    value = work(connection)
                except BaseException as error:
                    connection.execute("ROLLBACK TO job")
                    connection.execute("RELEASE job")
                    settled.append((future, False, error))
                    continue
                connection.execute("RELEASE job")
                settled.append((future, True, value))
            connection.execute("COMMIT")
        except sqlite3.Error as error:  # the group's BEGIN or COMMIT failed: none of it is stored
            if connection.in_transaction:
                connection.execute("ROLLBACK")
            return [(future, False, error) for future, _ in jobs]
        return settled

    async def _run_raw(self, function: Callable[..., T], *args: object) -> T:
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._worker.submit(future, function, args)
        return await future

    async def close(self) -> None:
        """Checkpoint and close the file; later calls fail."""
        if self._connection is not None:
            await self._run_raw(self._close)
        self._worker.stop()

    def _close(self) -> None:
        connection = self._connection
        if connection is None:  # closed already: nothing to checkpoint
            return
        if self.path != ":memory:":
            connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        connection.close()
        self._connection = None


_Job = tuple["asyncio.Future[Any]", Callable[..., Any], tuple[object, ...]]
_Settled = tuple["asyncio.Future[Any]", bool, Any]  # the future, whether it succeeded, result or error
_STOP = None


def _settle(future: asyncio.Future[Any], function: Callable[..., Any], *args: object) -> _Settled:
    try:
        return (future, True, function(*args))
    except BaseException as error:  # handed to the awaiting caller, as an executor would
        return (future, False, error)


class _Worker:
    """The database thread: runs submitted calls in order, returning results to the loop in batches."""

    def __init__(self, execute: Callable[[list[_Job]], list[_Settled]]) -> None:
        self._execute = execute
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._stopped = False

    def submit(
        self, future: asyncio.Future[Any], function: Callable[..., Any], args: tuple[object, ...]
    ) -> None:
        """Queue ``function(*args)``; its result or exception is set on ``future`` in its loop."""
        if self._stopped:
            raise RuntimeError("the database is closed")
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="sqlite", daemon=True)
            self._thread.start()
        self._jobs.put((future, function, args))

    def stop(self) -> None:
        """Finish the queued calls and end the thread."""
        self._stopped = True
        if self._thread is not None:
            self._jobs.put(_STOP)
            self._thread.join()

    def _run(self) -> None:
        while True:
            batch = [self._jobs.get()]
            while True:  # everything else already waiting joins this batch
                try:
                    batch.append(self._jobs.get_nowait())
                except queue.Empty:
                    break
            stop = _STOP in batch
            done = self._execute([job for job in batch if job is not None])
            by_loop: dict[asyncio.AbstractEventLoop, list[_Settled]] = {}
            for settled in done:
                by_loop.setdefault(settled[0].get_loop(), []).append(settled)
            for loop, results in by_loop.items():
                # A closed loop has nobody waiting for these results any more.
                with contextlib.suppress(RuntimeError):
                    loop.call_soon_threadsafe(_deliver, results)
            if stop:
                return


def _deliver(done: list[_Settled]) -> None:
    """On the loop: settle each future of a batch (a cancelled caller has stopped waiting)."""
    for future, ok, value in done:
        if future.cancelled():
            continue
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value)


def _statements(sql: str) -> list[str]:
    """Split a migration script into statements (migrations hold no semicolons in literals)."""
    return [statement.strip() for statement in sql.split(";") if statement.strip()]
