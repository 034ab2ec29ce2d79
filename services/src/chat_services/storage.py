"""The embedded SQLite database: one connection on one worker thread, migrated on start.

Every domain store shares one :class:`Database`. Calls run on a single dedicated
thread, so SQLite sees one writer and the event loop never blocks on disk. Each
store declares its schema as named migrations, applied once, in order.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from time import perf_counter
from typing import TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Migration:
    """One schema step, applied once: ``name`` is unique across all stores (``message-001``)."""

    name: str
    sql: str


class Database:
    """An SQLite file (or ``:memory:``) used from asyncio through one worker thread."""

    def __init__(self, path: Path | str) -> None:
        self.path = str(path)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite")
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
            with connection:
                connection.execute("BEGIN")
                for statement in _statements(migration.sql):
                    connection.execute(statement)
                connection.execute(
                    "INSERT INTO schema_migrations (name, applied_at) VALUES (?, datetime('now'))",
                    (migration.name,),
                )
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

    async def _run_raw(self, function: Callable[..., T], *args: object) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, function, *args)

    async def close(self) -> None:
        """Checkpoint and close the file; later calls fail."""
        if self._connection is not None:
            await self._run_raw(self._close)
        self._executor.shutdown(wait=True)

    def _close(self) -> None:
        assert self._connection is not None
        if self.path != ":memory:":
            self._connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        self._connection.close()
        self._connection = None


def _statements(sql: str) -> list[str]:
    """Split a migration script into statements (migrations hold no semicolons in literals)."""
    return [statement.strip() for statement in sql.split(";") if statement.strip()]
