"""Storage faults: a full disk is a status and NOT_SERVING until writes fit again; a bad file stops start-up.

The full disk is SQLite's own: ``PRAGMA max_page_count`` caps the database at the pages
it has, so the real engine answers SQLITE_FULL to the next write that needs a page, and
raising the cap again is freeing space. The start-up faults are ones root (which CI runs
as, and which ignores file permissions) cannot get around either: a database path under
a regular file, a file that is not a database, a directory where the file should be.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from google.rpc import error_details_pb2
from grpclib.const import Status
from grpclib.health.v1.health_grpc import HealthStub
from grpclib.health.v1.health_pb2 import HealthCheckRequest, HealthCheckResponse

from chat.v1 import message_service_grpc, message_service_pb2
from chat_services.errors import ResourceExhausted
from chat_services.server import App, build_app
from chat_services.storage import Connection, Database, Storage, storage_fault

from .clients import channel, expect_status, until
from .conftest import make_config

BIG = "x" * 65536  # a message that needs new pages
UNCAPPED = 1073741823  # SQLite's largest max_page_count


def new_message(key: str, content: str = "hi") -> message_service_pb2.SendMessagesRequest:
    return message_service_pb2.SendMessagesRequest(
        message=message_service_pb2.NewMessage(
            idempotency_key=key, conversation_id="c-1", author_id="u-1", content=content
        )
    )


async def cap_at_current_size(database: Storage, pages: int | None = None) -> None:
    """The disk is full: the database may not grow past the pages it has (``pages``: set that cap)."""

    def cap(connection: Connection) -> None:
        limit = pages if pages is not None else connection.execute("PRAGMA page_count").fetchone()[0]
        connection.execute(f"PRAGMA max_page_count = {int(limit)}")

    await database.call(cap)


async def health_status(port: int) -> int:
    async with channel(port) as opened:
        reply = await HealthStub(opened).Check(HealthCheckRequest(service=""), timeout=10)
    return int(reply.status)


@pytest.fixture
async def probing_app(tmp_path: Path) -> AsyncIterator[App]:
    """A server that probes a faulted disk every 50 ms."""
    built = await build_app(make_config(tmp_path, storage_probe_interval=0.05))
    await built.start()
    try:
        yield built
    finally:
        await built.shutdown()


async def test_a_full_disk_is_resource_exhausted_and_not_serving_until_space_is_freed(
    probing_app: App, caplog: pytest.LogCaptureFixture
) -> None:
    app = probing_app
    async with channel(app.port) as opened:
        stub = message_service_grpc.MessageServiceStub(opened)
        kept = await stub.SendMessages([new_message("k-0")], timeout=10)
        await cap_at_current_size(app.database)
        with caplog.at_level(logging.INFO, logger="chat_services"):
            # Four writers at once: their transactions commit as one group, and all fail.
            errors = await asyncio.gather(
                *(
                    expect_status(
                        stub.SendMessages([new_message(f"k-{n}", BIG)], timeout=10), Status.RESOURCE_EXHAUSTED
                    )
                    for n in range(1, 5)
                )
            )
            for error in errors:
                assert "storage is full" in (error.message or "")
                assert any(isinstance(d, error_details_pb2.RetryInfo) for d in error.details or [])
            assert await health_status(app.port) == HealthCheckResponse.NOT_SERVING
            # Reads still work, and what was acknowledged before is there.
            reply = await stub.GetMessage(
                message_service_pb2.GetMessageRequest(message_id=kept.messages[0].id), timeout=10
            )
            assert reply.message.content == "hi"

            await cap_at_current_size(app.database, UNCAPPED)  # space freed: the probe sees it
            await until(lambda: app.database.fault is None)
            assert await health_status(app.port) == HealthCheckResponse.SERVING
        faults = [r for r in caplog.records if "storage fault" in r.getMessage()]
        assert len(faults) == 1, "one line per episode, not one per failed call"
        assert [r for r in caplog.records if r.exc_info] == [], "no traceback"
        assert any("storage recovered" in r.getMessage() for r in caplog.records)

        sent = await stub.SendMessages([new_message("k-1", BIG)], timeout=10)
        assert sent.created_count == 1
    check = await app.database.call(lambda c: c.execute("PRAGMA integrity_check").fetchone()[0])
    assert check == "ok"


async def test_without_a_probe_the_first_write_that_fits_again_ends_the_episode(tmp_path: Path) -> None:
    built = await build_app(make_config(tmp_path, storage_probe_interval=3600.0))
    await built.start()
    try:
        async with channel(built.port) as opened:
            stub = message_service_grpc.MessageServiceStub(opened)
            await stub.SendMessages([new_message("k-0")], timeout=10)
            await cap_at_current_size(built.database)
            await expect_status(
                stub.SendMessages([new_message("k-1", BIG)], timeout=10), Status.RESOURCE_EXHAUSTED
            )
            assert await health_status(built.port) == HealthCheckResponse.NOT_SERVING
            await cap_at_current_size(built.database, UNCAPPED)
            assert await health_status(built.port) == HealthCheckResponse.NOT_SERVING  # nothing wrote yet
            await stub.SendMessages([new_message("k-1", BIG)], timeout=10)
            assert await health_status(built.port) == HealthCheckResponse.SERVING
    finally:
        await built.shutdown()


async def test_a_group_commit_that_hits_a_full_disk_stores_none_of_its_transactions(tmp_path: Path) -> None:
    database = Database(tmp_path / "t.db", probe_interval=3600.0)
    await database.open([])
    changes: list[bool] = []
    database.on_fault = changes.append
    try:
        await database.transaction(lambda c: c.execute("CREATE TABLE t (b BLOB)"))
        await cap_at_current_size(database)

        async def insert(size: int) -> None:
            await database.transaction(lambda c: c.execute("INSERT INTO t VALUES (zeroblob(?))", (size,)))

        # A small write that fits and a big one that does not, waiting together: SQLite
        # rolls the whole group back, so the small one must not be reported stored.
        results = await asyncio.gather(insert(10), insert(200_000), return_exceptions=True)
        assert all(isinstance(result, ResourceExhausted) for result in results), results
        assert await database.call(lambda c: c.execute("SELECT count(*) FROM t").fetchone()[0]) == 0
        assert changes == [True]
        await cap_at_current_size(database, UNCAPPED)
        await insert(10)
        assert changes == [True, False]
        assert not database.faulted
    finally:
        await database.close()


def _not_a_database(tmp_path: Path) -> Path:
    path = tmp_path / "notes.db"
    path.write_bytes(b"these are notes, not an SQLite database\n" * 100)
    return path


def _under_a_file(tmp_path: Path) -> Path:
    (tmp_path / "plain-file").write_text("a file, not a folder")
    return tmp_path / "plain-file" / "chat.db"


def _a_directory(tmp_path: Path) -> Path:
    path = tmp_path / "chat.db"
    path.mkdir()
    return path


@pytest.mark.parametrize(
    ("make_path", "cause"),
    [
        (_not_a_database, "file is not a database"),
        (_under_a_file, "File exists"),
        (_a_directory, "unable to open database file"),
    ],
)
def test_a_database_that_cannot_be_opened_is_a_one_line_start_up_error(
    tmp_path: Path, make_path: Callable[[Path], Path], cause: str
) -> None:
    database = make_path(tmp_path)
    result = subprocess.run(
        [sys.executable, "-m", "chat_services", "serve", "--port", "0", "--database", str(database)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    [line] = [line for line in result.stderr.splitlines() if "chat-services:" in line]
    assert f"cannot open the database {database}: " in line
    assert cause in line, line
    assert "serving" not in result.stderr


async def test_a_database_turned_read_only_is_unavailable_until_writes_work_again(probing_app: App) -> None:
    # PRAGMA query_only makes the real engine refuse every write with SQLITE_READONLY,
    # as a volume remounted read-only would.
    app = probing_app
    async with channel(app.port) as opened:
        stub = message_service_grpc.MessageServiceStub(opened)
        await app.database.call(lambda c: c.execute("PRAGMA query_only = 1"))
        error = await expect_status(stub.SendMessages([new_message("k-1")], timeout=10), Status.UNAVAILABLE)
        assert "storage failed (SQLITE_READONLY)" in (error.message or "")
        assert await health_status(app.port) == HealthCheckResponse.NOT_SERVING
        await app.database.call(lambda c: c.execute("PRAGMA query_only = 0"))
        await until(lambda: not app.database.faulted)
        assert await health_status(app.port) == HealthCheckResponse.SERVING
        sent = await stub.SendMessages([new_message("k-1")], timeout=10)
        assert sent.created_count == 1


@pytest.mark.parametrize(
    ("code", "status"),
    [
        (sqlite3.SQLITE_FULL, Status.RESOURCE_EXHAUSTED),
        (sqlite3.SQLITE_IOERR, Status.UNAVAILABLE),
        (sqlite3.SQLITE_IOERR | (4 << 8), Status.UNAVAILABLE),  # SQLITE_IOERR_FSYNC, an extended code
        (sqlite3.SQLITE_READONLY, Status.UNAVAILABLE),
        (sqlite3.SQLITE_CANTOPEN, Status.UNAVAILABLE),
        (sqlite3.SQLITE_CONSTRAINT, None),  # the data's fault, not the disk's: not a storage fault
    ],
)
def test_storage_errors_map_to_statuses_by_their_primary_code(code: int, status: Status | None) -> None:
    error = sqlite3.OperationalError("from the engine")
    error.sqlite_errorcode = code
    error.sqlite_errorname = "SQLITE_X"
    fault = storage_fault(error)
    assert (fault.status if fault is not None else None) is status
