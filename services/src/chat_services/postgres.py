"""PostgreSQL storage: the stores' closures on worker threads, each with its own psycopg connection.

The stores are written as synchronous closures ``work(connection)`` (see
:mod:`chat_services.storage`); here each runs on one of ``connections`` threads owning a
psycopg 3 connection, so several run at once and PostgreSQL's own group commit batches
their WAL flushes. Each :meth:`PostgresDatabase.transaction` is one PostgreSQL transaction:
one that fails rolls back alone. A closure sees a small adapter that speaks the stores'
dialect (``?`` placeholders, rows read by name or position).

Several instances share one database safely: migrations run under an advisory lock (one
instance applies them, the others wait and find them applied), per-conversation sequences
are taken under an advisory transaction lock (:func:`advisory_lock`), and idempotency keys
are a UNIQUE constraint read under the same kind of lock.

Faults: a lost connection (a server restart, ``pg_terminate_backend``, a network cut) or a
server that refuses connections is UNAVAILABLE and begins a fault episode (health
NOT_SERVING until a write succeeds); the thread reconnects on its next job. A full disk is
RESOURCE_EXHAUSTED. Deadlocks and serialization failures are retried a few times.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import queue
import re
import threading
import urllib.parse
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from typing import Any, TypeVar

import psycopg
import psycopg.conninfo
import psycopg.errors
from psycopg.rows import RowMaker

from chat_services.errors import ResourceExhausted, ServiceError, Unavailable
from chat_services.storage import PROBE_INTERVAL, Connection, Migration, Storage, StorageOpenError, deliver

T = TypeVar("T")

CONNECTIONS = 4  # worker threads, each with one connection, per process
CONNECT_TIMEOUT = 5  # seconds, unless the URL sets connect_timeout
RETRIES = 5  # attempts of a transaction that lost a deadlock or a serialization conflict
MIGRATION_LOCK = 0x63686174_6D696772  # "chatmigr": the advisory lock migrations run under
NOTIFY_CHANNEL = "chat_messages"  # the messages trigger's pg_notify channel: "<sequence> <conversation_id>"
_RETRIED = (psycopg.errors.DeadlockDetected, psycopg.errors.SerializationFailure)
# SQLSTATEs of a server going away or refusing connections (class 08 is any connection exception).
_GONE = frozenset({"57P01", "57P02", "57P03", "53300", "53200", "58030"})


def redact(dsn: str) -> str:
    """``dsn`` without its password, for logs and errors (a URL, or ``key=value`` pairs)."""
    if "://" in dsn:
        parts = urllib.parse.urlsplit(dsn)
        netloc = parts.netloc.rsplit("@", 1)
        if len(netloc) == 2:
            user = netloc[0].split(":", 1)[0]
            netloc = [f"{user}:***@{netloc[1]}" if ":" in netloc[0] else f"{user}@{netloc[1]}"]
        query = urllib.parse.urlencode(
            [
                (key, "***" if key == "password" else value)
                for key, value in urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
            ]
        )
        return urllib.parse.urlunsplit((parts.scheme, netloc[0], parts.path, query, ""))
    try:
        params = psycopg.conninfo.conninfo_to_dict(dsn)
    except psycopg.Error:
        return "(an unreadable connection string)"
    return " ".join(f"{key}={'***' if key == 'password' else value}" for key, value in params.items())


def advisory_lock(connection: Connection, keys: Iterable[str]) -> None:
    """Take a transaction-scoped advisory lock per key, in ascending order (so never a deadlock)."""
    for key in sorted({_lock_id(key) for key in keys}):
        connection.execute("SELECT pg_advisory_xact_lock(?)", (key,))


def _lock_id(key: str) -> int:
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "big", signed=True)


class Row:
    """A row read by column name (``row["id"]``) or position (``row[0]``), as ``sqlite3.Row``."""

    __slots__ = ("_names", "_values")

    def __init__(self, values: Sequence[Any], names: dict[str, int]) -> None:
        self._values = values
        self._names = names

    def __getitem__(self, key: int | str) -> Any:
        return self._values[self._names[key]] if isinstance(key, str) else self._values[key]

    def __iter__(self) -> Iterator[Any]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def keys(self) -> list[str]:
        """The column names, in order."""
        return list(self._names)


def _rows(cursor: psycopg.Cursor[Any]) -> RowMaker[Row]:
    names = {column.name: i for i, column in enumerate(cursor.description or ())}
    return lambda values: Row(values, names)


@functools.lru_cache(maxsize=512)
def _dialect(sql: str) -> str:
    """The stores' ``?`` placeholders as psycopg's ``%s`` (outside string literals; ``%`` doubled)."""
    parts = sql.split("'")
    for i in range(0, len(parts), 2):  # even parts are outside quotes
        parts[i] = parts[i].replace("%", "%%").replace("?", "%s")
    return "'".join(parts)


class _Adapter:
    """The :class:`~chat_services.storage.Connection` a closure sees on PostgreSQL."""

    __slots__ = ("raw",)

    def __init__(self, raw: psycopg.Connection[Row]) -> None:
        self.raw = raw

    def execute(self, sql: str, parameters: Sequence[Any] = (), /) -> psycopg.Cursor[Row]:
        if not parameters:
            return self.raw.execute(sql)
        return self.raw.execute(_dialect(sql), parameters)

    def executemany(self, sql: str, parameters: Iterable[Sequence[Any]], /) -> psycopg.Cursor[Row]:
        cursor = self.raw.cursor()
        rows = list(parameters)
        if rows:
            cursor.executemany(_dialect(sql), rows)
        return cursor


def postgres_fault(error: Exception) -> ServiceError | None:
    """The status a psycopg error of the server or the connection (not of the data) deserves."""
    if not isinstance(error, psycopg.Error):
        return None
    state = error.sqlstate or ""
    if state == "53100":  # disk_full
        return ResourceExhausted(
            "the server's storage is full; nothing of this call was stored, retry later",
            retry_after=PROBE_INTERVAL,
        )
    lost = isinstance(error, psycopg.OperationalError | psycopg.InterfaceError) and not state
    if lost or state.startswith("08") or state in _GONE:
        return Unavailable(
            "the server lost its database connection; retry later (a write retried with the same"
            " idempotency key is stored once)"
        )
    return None


class PostgresDatabase(Storage):
    """A PostgreSQL database used from asyncio through ``connections`` worker threads."""

    backend = "postgresql"
    dsn: str

    def __init__(
        self, dsn: str, *, probe_interval: float = PROBE_INTERVAL, connections: int = CONNECTIONS
    ) -> None:
        super().__init__(redact(dsn), probe_interval=probe_interval)
        self.dsn = dsn  # the full URL, for a LISTEN connection of one's own
        try:
            params = psycopg.conninfo.conninfo_to_dict(dsn)
        except psycopg.Error as error:  # refused before any thread or connection exists
            raise StorageOpenError(
                self.path, RuntimeError(f"not a valid PostgreSQL URL: {_scrub(error, dsn)}")
            ) from None
        params.setdefault("connect_timeout", CONNECT_TIMEOUT)
        params.setdefault("application_name", "chat-services")
        self._conninfo = psycopg.conninfo.make_conninfo("", **params)
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._threads = [
            threading.Thread(target=self._run, name=f"postgres-{i}", daemon=True) for i in range(connections)
        ]
        self._started = False
        self._stopped = False
        # Bumped when a fault episode is seen: every connection opened before it may be as dead
        # as the one that failed (a restarted server ends them all), so each thread opens a new
        # one before its next job instead of failing that job on a dead connection.
        self._generation = 0

    def connect(self, *, autocommit: bool = True) -> psycopg.Connection[Row]:
        """A new connection to this database (rows by name or position)."""
        return psycopg.connect(self._conninfo, autocommit=autocommit, row_factory=_rows)

    async def open(self, migrations: Sequence[Migration]) -> None:
        """Connect, apply new migrations (one instance at a time), check that the database takes writes.

        :class:`StorageOpenError` naming the URL without its password when any of it fails.
        """
        try:
            await self._submit(self._migrate, list(migrations))
            await self._submit(self._in_transaction, self._probe_work(1))
        except psycopg.Error as error:
            await self._stop_threads()
            raise StorageOpenError(self.path, RuntimeError(_scrub(error, self.dsn))) from None

    def _migrate(self, connection: _Adapter, migrations: list[Migration]) -> None:
        raw = connection.raw
        with raw.transaction():
            raw.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))  # other instances wait here
            raw.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations"
                " (name TEXT PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
            )
            raw.execute("CREATE TABLE IF NOT EXISTS storage_probe (filler BYTEA)")
            applied = {row[0] for row in raw.execute("SELECT name FROM schema_migrations")}
            for migration in migrations:
                if migration.name in applied:
                    continue
                if migration.postgres_sql.strip():
                    raw.execute(migration.postgres_sql.encode())  # no parameters: a whole script
                raw.execute("INSERT INTO schema_migrations (name) VALUES (%s)", (migration.name,))

    def _run_call(self, work: Callable[[Connection], T]) -> Awaitable[T]:
        return self._submit(self._plain, work)  # on a worker thread, each statement its own transaction

    def _run_transaction(self, work: Callable[[Connection], T]) -> Awaitable[T]:
        return self._submit(self._in_transaction, work)

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` has run."""
        return self._stopped

    def _fault_of(self, error: Exception) -> ServiceError | None:
        return postgres_fault(error)

    def _faulted(self, fault: ServiceError, error: BaseException) -> None:
        self._generation += 1
        super()._faulted(fault, error)

    def _probe_work(self, size: int) -> Callable[[Connection], None]:
        def probe(connection: Connection) -> None:
            connection.execute("INSERT INTO storage_probe (filler) VALUES (?)", (bytes(size),))
            connection.execute("DELETE FROM storage_probe")

        return probe

    @staticmethod
    def _plain(connection: _Adapter, work: Callable[[Connection], T]) -> T:
        return work(connection)

    @staticmethod
    def _in_transaction(connection: _Adapter, work: Callable[[Connection], T]) -> T:
        for attempt in range(RETRIES):
            try:
                with connection.raw.transaction():
                    return work(connection)
            except _RETRIED:
                if attempt == RETRIES - 1:
                    raise
        raise AssertionError("unreachable")

    async def _submit(self, function: Callable[..., T], *args: object) -> T:
        if self._stopped:
            raise RuntimeError("the database is closed")
        if not self._started:
            self._started = True
            for thread in self._threads:
                thread.start()
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._jobs.put((future, function, args))
        return await future

    def _run(self) -> None:
        """A worker thread: one connection, (re)opened when a job finds it missing or broken."""
        raw: psycopg.Connection[Row] | None = None
        opened_in = self._generation
        try:
            while (job := self._jobs.get()) is not None:
                future, function, args = job
                try:
                    if raw is None or raw.closed or raw.broken or opened_in != self._generation:
                        with contextlib.suppress(psycopg.Error):
                            raw.close() if raw is not None else None
                        raw = None
                        opened_in = self._generation
                        raw = self.connect()
                    outcome: tuple[bool, Any] = (True, function(_Adapter(raw), *args))
                except BaseException as error:  # handed to the awaiting caller
                    outcome = (False, error)
                with contextlib.suppress(RuntimeError):  # a closed loop waits for nothing any more
                    future.get_loop().call_soon_threadsafe(deliver, [(future, *outcome)])
        finally:
            if raw is not None:
                with contextlib.suppress(psycopg.Error):
                    raw.close()

    async def close(self) -> None:
        """Finish the queued calls, close every connection; later calls fail."""
        self._stop_probe()
        await self._stop_threads()

    async def _stop_threads(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        if not self._started:
            return
        for _ in self._threads:
            self._jobs.put(None)
        for thread in self._threads:
            await asyncio.to_thread(thread.join)


_Job = tuple["asyncio.Future[Any]", Callable[..., Any], tuple[object, ...]]


def _scrub(error: BaseException, dsn: str) -> str:
    """The error's first line, with the URL's password (if any) blotted out."""
    text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    passwords = {urllib.parse.urlsplit(dsn).password} if "://" in dsn else set()
    with contextlib.suppress(psycopg.Error, ValueError):
        passwords.add(psycopg.conninfo.conninfo_to_dict(dsn).get("password"))  # type: ignore[arg-type]
    for password in passwords - {None, ""}:
        text = text.replace(str(password), "***")
    text = re.sub(r"(://[^:/@\s]*:)[^@\s]*@", r"\1***@", text)
    return re.sub(r"(password\s*=\s*)\S+", r"\1***", text)
