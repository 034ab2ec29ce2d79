"""The embedded SQLite database: one connection on one worker thread (and one for reads), migrated on start.

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

Storage faults are statuses, not crashes. A full disk (``SQLITE_FULL``) is
RESOURCE_EXHAUSTED with a ``RetryInfo``, an I/O error or a file turned read-only
UNAVAILABLE; either begins a fault episode: one warning is logged, the
:attr:`Database.on_fault` listener hears it (the server turns health NOT_SERVING),
and a small probe write runs every ``probe_interval`` seconds until one succeeds, as
does any transaction, which ends the episode. A database that cannot be opened raises
:class:`StorageOpenError`, naming the path and the cause.

Short reads by key (a message, a membership: a few rows from the page cache, microseconds)
need no trip to the thread: on an SQLite file, which is in WAL mode, :meth:`Storage.read`
runs them at once on the event loop over a second, read-only connection. WAL lets a reader
run beside the writer, and a reader sees every transaction committed before it began; a
result is handed back only after its commit, so a read sees every write already
acknowledged. The reader never waits for a lock (it would wait on the event loop): when
SQLite says busy, the read takes the trip to the thread instead. At one call in flight the
trip (two thread switches, two loop wake-ups) cost a GetMessage 8% of its latency.

:class:`Storage` is what the stores see: ``call`` and ``transaction`` run a closure
``work(connection)`` off the event loop, ``read`` a short one on it where the backend can,
``connection`` being a :class:`Connection` (the
DB-API subset every store uses: ``execute`` with ``?`` placeholders, rows read by name or
position, ``executemany``). :class:`Database` is SQLite; :mod:`chat_services.postgres` is
PostgreSQL behind the same interface. :func:`open_storage` picks one from ``--database``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import re
import sqlite3
import threading
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from time import perf_counter
from typing import Any, ClassVar, Protocol, TypeVar

from chat_services.errors import ResourceExhausted, ServiceError, Unavailable, bounded_message

T = TypeVar("T")
log = logging.getLogger("chat_services.storage")

PROBE_INTERVAL = 5.0  # seconds between probe writes while storage is faulted
# A probe writes this many bytes (and deletes them): enough new pages that its success
# means ordinary writes fit again, not only an update of a page already there.
PROBE_BYTES = 64 * 1024
_FULL = frozenset({sqlite3.SQLITE_FULL})
_BUSY = frozenset({sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED})
_FAILED = frozenset({sqlite3.SQLITE_IOERR, sqlite3.SQLITE_READONLY, sqlite3.SQLITE_CANTOPEN})


POSTGRES_SCHEMES = ("postgresql://", "postgres://")


class Cursor(Protocol):
    """What ``Connection.execute`` returns: rows by ``fetchone``/``fetchall`` or iteration."""

    @property
    def rowcount(self) -> int:
        """Rows changed by an INSERT, UPDATE or DELETE."""
        ...

    def fetchone(self) -> Any:
        """The next row (read by name or position), or None."""
        ...

    def fetchall(self) -> list[Any]:
        """Every remaining row."""
        ...

    def __iter__(self) -> Iterator[Any]: ...


class Connection(Protocol):
    """The part of a DB-API connection the stores use, on either backend (``?`` placeholders)."""

    def execute(self, sql: str, parameters: Sequence[Any] = ..., /) -> Cursor:
        """Run one statement."""
        ...

    def executemany(self, sql: str, parameters: Iterable[Sequence[Any]], /) -> Cursor:
        """Run one statement once per parameter row."""
        ...


def is_postgres(target: str | Path) -> bool:
    """Whether ``--database`` names a PostgreSQL server (a ``postgresql://`` URL) rather than a file."""
    return str(target).startswith(POSTGRES_SCHEMES)


def open_storage(target: str | Path, *, probe_interval: float = PROBE_INTERVAL) -> Storage:
    """The storage ``--database`` names: a PostgreSQL URL, else an SQLite file (not yet opened)."""
    if is_postgres(target):
        from chat_services.postgres import PostgresDatabase  # psycopg is imported only when used

        return PostgresDatabase(str(target), probe_interval=probe_interval)
    return Database(target, probe_interval=probe_interval)


def conversation_key(conversation_id: str) -> str:
    """The :func:`lock` key of a conversation: its next sequence and its list of members."""
    return f"conversation {conversation_id}"


def lock(connection: Connection, keys: Iterable[str]) -> None:
    """Serialize this transaction with every other one that locks any of ``keys``, until it ends.

    SQLite has one writer (``BEGIN IMMEDIATE``), so nothing is needed; PostgreSQL takes
    advisory transaction locks, in a fixed order so that two transactions never deadlock.
    """
    if isinstance(connection, sqlite3.Connection):
        return
    from chat_services.postgres import advisory_lock

    advisory_lock(connection, keys)


class StorageOpenError(Exception):
    """The database cannot be opened, migrated or written: says which one (no password) and why."""

    def __init__(self, path: str, cause: BaseException) -> None:
        self.path = path
        self.cause = bounded_message(_describe(cause), limit=300)
        super().__init__(f"cannot open the database {path}: {self.cause}")


def storage_fault(error: sqlite3.Error) -> ServiceError | None:
    """The status a storage error of the disk or file (not of the data) deserves; None for others."""
    code = getattr(error, "sqlite_errorcode", 0) & 0xFF  # the primary code of an extended one
    if code in _FULL:
        return ResourceExhausted(
            "the server's storage is full; nothing of this call was stored, retry later",
            retry_after=PROBE_INTERVAL,
        )
    if code in _FAILED:
        name = getattr(error, "sqlite_errorname", "SQLITE_IOERR")
        return Unavailable(
            f"the server's storage failed ({name}); nothing of this call was stored, retry later"
        )
    return None


def _describe(error: BaseException) -> str:
    name = getattr(error, "sqlite_errorname", None)
    return f"{error} ({name})" if name else str(error)


@dataclass(frozen=True)
class Migration:
    """One schema step, applied once: ``name`` is unique across all stores (``message-001``).

    ``postgres`` is the same step in PostgreSQL's dialect; None: ``sql`` with its types
    translated (:attr:`postgres_sql`). An empty script is a step one backend does not need,
    recorded all the same.
    """

    name: str
    sql: str
    # A migration that rebuilds a table other tables reference (SQLite's twelve-step
    # ALTER) must run with foreign keys off, or dropping the old table deletes the rows
    # that reference it; they are checked before the migration commits.
    rebuilds_tables: bool = False
    postgres: str | None = None

    @property
    def postgres_sql(self) -> str:
        """The script PostgreSQL runs: ``postgres``, else ``sql`` with PostgreSQL's types."""
        if self.postgres is not None:
            return self.postgres
        sql = re.sub(
            r"\bINTEGER PRIMARY KEY AUTOINCREMENT\b",
            "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY",
            self.sql,
        )
        # SQLite's INTEGER holds 64 bits (nanosecond timestamps): PostgreSQL's is 32.
        return re.sub(r"\bBLOB\b", "BYTEA", re.sub(r"\bINTEGER\b", "BIGINT", sql))


class Storage:
    """What every store uses: closures run off the event loop, storage faults as statuses.

    Subclasses run the closures (:meth:`_run_raw`) and say which driver errors are faults
    of the storage itself (:meth:`_fault_of`); the fault episode is common to both.
    """

    backend: ClassVar[str]  # "sqlite" or "postgresql"
    dsn: str | None = (
        None  # PostgreSQL's full URL (for a connection of one's own, e.g. LISTEN); None on SQLite
    )

    def __init__(self, path: str, *, probe_interval: float = PROBE_INTERVAL) -> None:
        self.path = path  # what logs and errors name: a file, or a URL without its password
        self.probe_interval = probe_interval
        # Told ("call" or "transaction", seconds) after each operation; the server's metrics set it.
        self.observer: Callable[[str, float], None] | None = None
        # Told True when a storage fault episode begins, False when a write succeeds again.
        self.on_fault: Callable[[bool], None] | None = None
        self.fault: ServiceError | None = None  # the status writes get during an episode
        self._probe: asyncio.Task[None] | None = None

    async def open(self, migrations: Sequence[Migration]) -> None:
        """Connect, apply new migrations, check that it takes writes; :class:`StorageOpenError` if not."""
        raise NotImplementedError

    async def close(self) -> None:
        """Close; later calls fail."""
        raise NotImplementedError

    async def call(self, work: Callable[[Connection], T]) -> T:
        """Run ``work(connection)`` off the event loop and return its result."""
        result: T = await self._timed("call", lambda: self._run_call(work))
        return result

    async def read(self, work: Callable[[Connection], T]) -> T:
        """Run ``work(connection)``, a short read by key that writes nothing, and return its result.

        As :meth:`call`, unless the backend can run it at once on the event loop (SQLite).
        """
        return await self.call(work)

    async def transaction(self, work: Callable[[Connection], T]) -> T:
        """Run ``work(connection)`` in one transaction: all of it is committed, or none."""
        result: T = await self._timed("transaction", lambda: self._run_transaction(work))
        self._recovered()
        return result

    def _run_call(self, work: Callable[[Connection], T]) -> Awaitable[T]:
        """Run ``work`` outside any explicit transaction, off the event loop."""
        raise NotImplementedError

    def _run_transaction(self, work: Callable[[Connection], T]) -> Awaitable[T]:
        """Run ``work`` in one transaction, off the event loop."""
        raise NotImplementedError

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` has run (no probe is started then)."""
        raise NotImplementedError

    def _fault_of(self, error: Exception) -> ServiceError | None:
        """The status a driver error of the storage itself (not of the data) deserves; None for others."""
        raise NotImplementedError

    def _probe_work(self, size: int) -> Callable[[Connection], None]:
        """A write of ``size`` bytes that leaves nothing behind."""
        raise NotImplementedError

    async def _timed(self, operation: str, run: Callable[[], Any]) -> Any:
        start = perf_counter()
        try:
            return await run()
        except Exception as error:
            fault = self._episode_fault(error)
            if fault is None:
                raise
            raise fault from error
        finally:
            if self.observer is not None:
                self.observer(operation, perf_counter() - start)

    def _episode_fault(self, error: Exception) -> ServiceError | None:
        """The status of a fault of the storage itself, beginning an episode; None for other errors."""
        fault = self._fault_of(error)
        if fault is not None:
            self._faulted(fault, error)
        return fault

    @property
    def faulted(self) -> bool:
        """True during a storage fault episode (from a full disk or an I/O error to the next write)."""
        return self.fault is not None

    def _faulted(self, fault: ServiceError, error: BaseException) -> None:
        """Begin an episode (once: later faults of the same episode are not logged)."""
        if self.fault is not None:
            return
        self.fault = fault
        log.warning(
            "storage fault: writes refused until one succeeds again",
            extra={"database": self.path, "cause": _describe(error), "status": fault.status.name},
        )
        if self.on_fault is not None:
            self.on_fault(True)
        if self._probe is None and not self.closed:
            self._probe = asyncio.get_running_loop().create_task(self._probe_until_recovered())

    def _recovered(self) -> None:
        if self.fault is None:
            return
        self.fault = None
        log.info("storage recovered: writes succeed again", extra={"database": self.path})
        if self._probe is not None and self._probe is not asyncio.current_task():
            self._probe.cancel()
        self._probe = None
        if self.on_fault is not None:
            self.on_fault(False)

    async def _probe_until_recovered(self) -> None:
        """While faulted, try a write now and then: freed space ends the episode without client writes."""
        while self.fault is not None:
            await asyncio.sleep(self.probe_interval)
            with contextlib.suppress(ServiceError):  # still faulted: the next probe tries again
                await self.transaction(self._probe_work(PROBE_BYTES))

    def _stop_probe(self) -> None:
        if self._probe is not None:
            self._probe.cancel()
            self._probe = None


class Database(Storage):
    """An SQLite file (or ``:memory:``) used from asyncio through one worker thread."""

    backend = "sqlite"

    def __init__(self, path: Path | str, *, probe_interval: float = PROBE_INTERVAL) -> None:
        super().__init__(str(path), probe_interval=probe_interval)
        self._worker = _Worker(self._execute)
        self._connection: sqlite3.Connection | None = None
        # Used on the event loop only (see Database.read); None: every read takes the trip.
        self._reader: sqlite3.Connection | None = None

    async def open(self, migrations: Sequence[Migration]) -> None:
        """Open (creating the file and its folder), apply new migrations, check that it is writable.

        :class:`StorageOpenError` when any of it fails: a missing or read-only folder, a file
        that is not a database, a disk that cannot take a write.
        """
        try:
            await self._run_raw(self._open_and_migrate, list(migrations))
            self._reader = self._open_reader()
        except (sqlite3.Error, OSError) as error:
            await self.close()
            raise StorageOpenError(self.path, error) from error

    def _open_reader(self) -> sqlite3.Connection | None:
        """The event loop's read-only connection; None for ``:memory:`` (a second connection would
        be another, empty database)."""
        if self.path == ":memory:":
            return None
        # timeout=0: a reader that would wait for a lock says busy at once (see read).
        reader = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=0)
        try:
            reader.row_factory = sqlite3.Row
            reader.execute("PRAGMA query_only = ON")
        except BaseException:
            reader.close()
            raise
        return reader

    async def read(self, work: Callable[[Connection], T]) -> T:
        """Run ``work`` at once on the event loop over the read-only connection (see the module's
        docstring); over the thread's connection when there is none or SQLite says busy."""
        reader = self._reader
        if reader is None:
            return await self.call(work)
        start = perf_counter()
        code = 0
        try:
            return work(reader)
        except Exception as error:
            code = getattr(error, "sqlite_errorcode", 0) & 0xFF
            # READONLY here is the caller's bug (a write through read), not a fault of the file.
            fault = None if code in _BUSY or code == sqlite3.SQLITE_READONLY else self._episode_fault(error)
            if fault is not None:
                raise fault from error
            if code not in _BUSY:
                raise
        finally:
            if self.observer is not None and code not in _BUSY:
                self.observer("call", perf_counter() - start)
        return await self.call(work)  # SQLite said busy: the thread's connection waits for it instead

    def _open_and_migrate(self, migrations: list[Migration]) -> None:
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        connection = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        try:
            self._migrate(connection, migrations)
            self._connection = connection
            # A database that opens read-only (a read-only volume, an existing WAL file) would
            # fail every write later: write once now, so the server does not start at all.
            self._in_transaction(_probe_write(1))
        except BaseException:
            self._connection = None
            connection.close()
            raise

    def _migrate(self, connection: sqlite3.Connection, migrations: list[Migration]) -> None:
        connection.row_factory = sqlite3.Row
        connection.execute("PRAGMA foreign_keys = ON")
        if self.path != ":memory:":
            connection.execute("PRAGMA journal_mode = WAL")
        # FULL: a commit is on disk before the call that made it is acknowledged.
        connection.execute("PRAGMA synchronous = FULL")
        connection.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (name TEXT PRIMARY KEY, applied_at TEXT)"
        )
        connection.execute("CREATE TABLE IF NOT EXISTS storage_probe (filler BLOB)")
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

    def _run_call(self, work: Callable[[Connection], T]) -> Awaitable[T]:
        return self._run_raw(self._with_connection, work)

    def _run_transaction(self, work: Callable[[Connection], T]) -> Awaitable[T]:
        return self._run_raw(self._in_transaction, work)

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` has run."""
        return self._worker.stopped

    def _fault_of(self, error: Exception) -> ServiceError | None:
        return storage_fault(error) if isinstance(error, sqlite3.Error) else None

    def _probe_work(self, size: int) -> Callable[[Connection], None]:
        return _probe_write(size)

    def _with_connection(self, work: Callable[[Connection], T]) -> T:
        if self._connection is None:
            raise RuntimeError("the database is not open")
        return work(self._connection)

    def _in_transaction(self, work: Callable[[Connection], T]) -> T:
        connection = self._connection
        if connection is None:
            raise RuntimeError("the database is not open")
        connection.execute("BEGIN IMMEDIATE")
        try:
            result = work(connection)
        except BaseException:
            _rollback(connection)
            raise
        try:
            connection.execute("COMMIT")
        except sqlite3.Error:
            _rollback(connection)
            raise
        return result

    def _execute(self, jobs: list[_Job]) -> list[_Settled]:
        """Run a batch in order on the database thread; consecutive transactions share one commit."""
        done: list[_Settled] = []
        group: list[tuple[asyncio.Future[Any], Callable[[Connection], Any]]] = []
        for future, function, args in jobs:
            if function == self._in_transaction:
                group.append((future, args[0]))  # type: ignore[arg-type]
                continue
            done += self._commit_group(group)  # a plain call never sees uncommitted writes
            done.append(_settle(future, function, *args))
        return done + self._commit_group(group)

    def _commit_group(
        self, group: list[tuple[asyncio.Future[Any], Callable[[Connection], Any]]]
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
                    if not connection.in_transaction:
                        # SQLite rolled the whole transaction back (a full disk, an I/O
                        # error): the jobs before this one are gone too, so all of this
                        # group fail, and only they (the batch's other calls and groups
                        # are settled already, some committed).
                        return [(future, False, error) for future, _ in jobs]
                    connection.execute("ROLLBACK TO job")
                    connection.execute("RELEASE job")
                    settled.append((future, False, error))
                    continue
                connection.execute("RELEASE job")
                settled.append((future, True, value))
            connection.execute("COMMIT")
        except sqlite3.Error as error:  # the group's BEGIN or COMMIT failed: none of it is stored
            _rollback(connection)
            return [(future, False, error) for future, _ in jobs]
        return settled

    async def _run_raw(self, function: Callable[..., T], *args: object) -> T:
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._worker.submit(future, function, args)
        return await future

    async def close(self) -> None:
        """Checkpoint and close the file; later calls fail."""
        self._stop_probe()
        if self._reader is not None:
            self._reader.close()
            self._reader = None
        if self._connection is not None:
            await self._run_raw(self._close)
        self._worker.stop()

    def _close(self) -> None:
        connection = self._connection
        if connection is None:  # closed already: nothing to checkpoint
            return
        if self.path != ":memory:":
            try:
                connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            except (
                sqlite3.Error
            ) as error:  # a full disk: the WAL keeps every commit, the next open replays it
                log.warning(
                    "checkpoint on close failed", extra={"database": self.path, "cause": _describe(error)}
                )
        connection.close()
        self._connection = None


def _rollback(connection: sqlite3.Connection) -> None:
    """Roll back what is left of a transaction: SQLite may have rolled it back itself (SQLITE_FULL)."""
    if connection.in_transaction:
        with contextlib.suppress(sqlite3.Error):  # the error that got us here is the one to report
            connection.execute("ROLLBACK")


def _probe_write(size: int) -> Callable[[Connection], None]:
    """A write of ``size`` bytes that leaves nothing behind: can the database take writes?"""

    def probe(connection: Connection) -> None:
        connection.execute("INSERT INTO storage_probe (filler) VALUES (zeroblob(?))", (size,))
        connection.execute("DELETE FROM storage_probe")

    return probe


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
        self.stopped = False

    def submit(
        self, future: asyncio.Future[Any], function: Callable[..., Any], args: tuple[object, ...]
    ) -> None:
        """Queue ``function(*args)``; its result or exception is set on ``future`` in its loop."""
        if self.stopped:
            raise RuntimeError("the database is closed")
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="sqlite", daemon=True)
            self._thread.start()
        self._jobs.put((future, function, args))

    def stop(self) -> None:
        """Finish the queued calls and end the thread."""
        if self.stopped:
            return
        self.stopped = True
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
            jobs = [job for job in batch if job is not None]
            try:
                done = self._execute(jobs)
            except BaseException as error:  # a failed ROLLBACK TO: this thread must live on
                done = [(future, False, error) for future, _, _ in jobs]
            by_loop: dict[asyncio.AbstractEventLoop, list[_Settled]] = {}
            for settled in done:
                by_loop.setdefault(settled[0].get_loop(), []).append(settled)
            for loop, results in by_loop.items():
                # A closed loop has nobody waiting for these results any more.
                with contextlib.suppress(RuntimeError):
                    loop.call_soon_threadsafe(deliver, results)
            if stop:
                return


def deliver(done: list[_Settled]) -> None:
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
