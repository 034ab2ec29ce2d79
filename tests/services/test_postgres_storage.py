"""PostgreSQL storage across instances: contiguous sequences, idempotency, faults, start-up errors.

Two :class:`PostgresDatabase` objects on one database stand for two server instances: each
has its own connections, and nothing but PostgreSQL coordinates them.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import psycopg
import psycopg.errors
import pytest
from grpclib.const import Status
from psycopg import sql

from chat_services.conversation import store as conversation_store
from chat_services.conversation.store import MIGRATIONS as CONVERSATION_MIGRATIONS
from chat_services.conversation.store import ConversationStore
from chat_services.devpostgres import Cluster
from chat_services.errors import AlreadyExists, ResourceExhausted, Unavailable
from chat_services.message.model import Draft
from chat_services.message.store import MIGRATIONS as MESSAGE_MIGRATIONS
from chat_services.message.store import MessageStore
from chat_services.postgres import NOTIFY_CHANNEL, PostgresDatabase, postgres_fault, redact
from chat_services.rag.store import MIGRATIONS as RAG_MIGRATIONS
from chat_services.security.access import ConversationAccess
from chat_services.storage import StorageOpenError, open_storage

from .clients import until

MIGRATIONS = [*MESSAGE_MIGRATIONS, *CONVERSATION_MIGRATIONS, *RAG_MIGRATIONS]
STEP = 30.0  # seconds any one wait may take before the test fails


def draft(key: str, conversation: str, author: str = "u-1", content: str = "hi") -> Draft:
    return Draft(idempotency_key=key, conversation_id=conversation, author_id=author, content=content)


async def opened(dsn: str, **options: float) -> PostgresDatabase:
    database = open_storage(dsn, **options)
    assert isinstance(database, PostgresDatabase)
    await database.open(MIGRATIONS)
    return database


@asynccontextmanager
async def listening(dsn: str, channel: str) -> AsyncIterator[Callable[[int], Awaitable[list[str]]]]:
    """LISTEN on ``channel``; yield a function awaiting the next ``count`` payloads (STEP s at most)."""
    listener = await psycopg.AsyncConnection.connect(dsn, autocommit=True)
    try:
        await listener.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))

        async def heard(count: int) -> list[str]:
            return [notice.payload async for notice in listener.notifies(timeout=STEP, stop_after=count)]

        yield heard
    finally:
        await listener.close()


@pytest.fixture
async def instances(postgres_dsn: str) -> AsyncIterator[tuple[PostgresDatabase, PostgresDatabase]]:
    """Two "instances" on one database, opened at once (their migrations race)."""
    pair = await asyncio.gather(opened(postgres_dsn), opened(postgres_dsn))
    try:
        yield pair
    finally:
        for database in pair:
            await database.close()


async def test_instances_opening_at_once_apply_each_migration_once(
    instances: tuple[PostgresDatabase, PostgresDatabase],
) -> None:
    first, _ = instances
    names = await first.call(lambda c: [r[0] for r in c.execute("SELECT name FROM schema_migrations")])
    assert sorted(names) == sorted(m.name for m in MIGRATIONS)
    assert first.backend == "postgresql" and first.dsn.startswith("postgresql://")


async def test_concurrent_writers_on_two_instances_keep_sequences_contiguous_and_keys_unique(
    instances: tuple[PostgresDatabase, PostgresDatabase],
) -> None:
    stores = [MessageStore(database) for database in instances]
    admit = ConversationAccess(ConversationStore(instances[0])).writer_rule(field="message.conversation_id")
    conversations = ["c-1", "c-2", "c-3"]

    async def writer(number: int) -> list[tuple[str, int, bool]]:
        results = []
        for batch in range(15):
            keys = [f"w{number}-b{batch}-{i}" for i in range(2)]
            drafts = [draft(key, conversations[(number + batch + i) % 3]) for i, key in enumerate(keys)]
            first = await stores[number % 2].store(drafts, admit)
            # The client retries the same batch through the other instance: nothing new is stored.
            again = await stores[(number + 1) % 2].store(drafts, admit)
            assert [m.id for m, _ in again] == [m.id for m, _ in first]
            assert [created for _, created in again] == [False, False]
            results += [(m.conversation_id, m.sequence, created) for m, created in first]
        return results

    written = [row for rows in await asyncio.gather(*(writer(n) for n in range(8))) for row in rows]
    assert all(created for _, _, created in written)
    by_conversation: dict[str, list[int]] = defaultdict(list)
    for conversation, sequence, _ in written:
        by_conversation[conversation].append(sequence)
    for conversation, sequences in by_conversation.items():
        assert sorted(sequences) == list(range(1, len(sequences) + 1)), conversation  # no gap, no duplicate
        stored = await stores[0].after(conversation, 0, 10_000)
        assert [m.sequence for m in stored] == sorted(sequences)
    assert sum(len(s) for s in by_conversation.values()) == 8 * 15 * 2  # nothing lost
    members = await ConversationStore(instances[1]).members("c-1", 0, 10)
    assert [m.user_id for m in members] == ["u-1"]  # made once, by whichever writer came first


async def test_adds_racing_on_both_instances_take_the_last_places_once(
    instances: tuple[PostgresDatabase, PostgresDatabase], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Eight users added at once through two instances (eight connections) to a conversation
    with room for three more: three are added and five refused (each add counts under the
    conversation's lock), and two pages list every member once."""
    monkeypatch.setattr(conversation_store, "MAX_MEMBERS", 4)
    stores = [ConversationStore(database) for database in instances]

    async def add(conversation: str, number: int) -> bool:
        try:
            await stores[number % 2].add(conversation, f"u-{number}")
        except ResourceExhausted:
            return False
        return True

    for round_number in range(5):  # the race is lost in about one round of three without the lock
        conversation = f"c-full-{round_number}"
        await stores[0].create(conversation, "owner", [])
        added = await asyncio.gather(*(add(conversation, number) for number in range(8)))
        assert sum(added) == 3, added
        members = await stores[1].members(conversation, 0, 100)
        assert len(members) == 4 and members[0].user_id == "owner"
        # Pages follow positions: every member is on exactly one page of two.
        first_page = await stores[0].members(conversation, 0, 2)
        rest = await stores[1].members(conversation, first_page[-1].position, 100)
        assert [m.user_id for m in first_page + rest] == [m.user_id for m in members]


async def test_the_same_key_sent_to_both_instances_at_once_is_stored_once(
    instances: tuple[PostgresDatabase, PostgresDatabase],
) -> None:
    stores = [MessageStore(database) for database in instances]
    for round_number in range(10):
        key = f"k-{round_number}"
        [[(one, one_created)], [(two, two_created)]] = await asyncio.gather(
            stores[0].store([draft(key, "c-1")]), stores[1].store([draft(key, "c-1")])
        )
        assert one.id == two.id and sorted([one_created, two_created]) == [False, True]
        with pytest.raises(AlreadyExists):  # the same key with another payload is a client bug
            await stores[round_number % 2].store([draft(key, "c-1", content="other")])
    assert [m.sequence for m in await stores[0].after("c-1", 0, 100)] == list(range(1, 11))


async def test_a_stored_message_is_notified_at_commit(
    instances: tuple[PostgresDatabase, PostgresDatabase],
) -> None:
    database, _ = instances
    async with listening(database.dsn, NOTIFY_CHANNEL) as heard:
        await MessageStore(database).store([draft("k-1", "c-9"), draft("k-2", "c-9")])
        assert await heard(2) == ["1 c-9", "2 c-9"]


async def test_a_stored_and_a_deleted_document_notify_their_id_at_commit(
    instances: tuple[PostgresDatabase, PostgresDatabase],
) -> None:
    """The database itself tells the other instances (its trigger), whichever statement wrote."""
    database, _ = instances
    async with listening(database.dsn, "chat_documents") as heard:

        def store(connection: Any) -> None:
            connection.execute(
                "INSERT INTO documents (document_id, title, source_uri, media_type, metadata_json,"
                " chunk_count, size_bytes, created_at_ns) VALUES ('d-1', '', '', '', '{}', 0, 0, 0)"
            )

        def delete(connection: Any) -> None:
            connection.execute("DELETE FROM documents WHERE document_id = 'd-1'")

        # Two transactions: PostgreSQL delivers a payload repeated within one transaction once.
        await database.transaction(store)
        await database.transaction(delete)
        assert await heard(2) == ["d-1", "d-1"]


async def test_a_killed_connection_is_unavailable_then_the_next_write_reconnects(
    postgres_cluster: Cluster, postgres_dsn: str
) -> None:
    database = await opened(postgres_dsn, probe_interval=3600.0)  # no probe: a client write ends it
    assert isinstance(database, PostgresDatabase)
    heard: list[bool] = []
    database.on_fault = heard.append
    store = MessageStore(database)
    try:
        await store.store([draft("k-1", "c-1")])
        await terminate_sessions(postgres_cluster, postgres_dsn)
        # Each connection that was killed fails its next job: UNAVAILABLE, an episode begins.
        outcomes = await asyncio.gather(
            *(store.store([draft(f"k-{i}", "c-1")]) for i in range(2, 10)), return_exceptions=True
        )
        failures = [o for o in outcomes if isinstance(o, BaseException)]
        assert failures and all(isinstance(f, Unavailable) for f in failures), failures
        assert failures[0].status is Status.UNAVAILABLE and "retry" in failures[0].message  # type: ignore[attr-defined]
        assert heard[0] is True
        for attempt in range(20):  # every thread reconnects on its next job
            await store.store([draft(f"again-{attempt}", "c-1")])
        assert not database.faulted and heard[-1] is False
        sequences = [m.sequence for m in await store.after("c-1", 0, 100)]
        assert sequences == list(range(1, len(sequences) + 1))
    finally:
        await database.close()


async def test_the_probe_ends_an_episode_without_client_writes(
    postgres_cluster: Cluster, postgres_dsn: str
) -> None:
    database = await opened(postgres_dsn, probe_interval=0.05)
    changes: asyncio.Queue[bool] = asyncio.Queue()
    database.on_fault = changes.put_nowait
    try:
        await database.call(lambda c: c.execute("SELECT 1").fetchone())
        await terminate_sessions(postgres_cluster, postgres_dsn)
        for _ in range(8):  # whichever thread held the killed connection fails once
            try:
                await database.call(lambda c: c.execute("SELECT 1").fetchone())
            except Unavailable:
                break
        else:
            pytest.fail("no call saw the killed connection")
        assert await asyncio.wait_for(changes.get(), STEP) is True
        assert await asyncio.wait_for(changes.get(), STEP) is False  # the probe's write reconnected
    finally:
        await database.close()


async def test_a_restarted_server_is_unavailable_while_down_and_serving_once_back(
    postgres_cluster: Cluster, postgres_dsn: str
) -> None:
    database = await opened(postgres_dsn, probe_interval=0.05)
    changes: asyncio.Queue[bool] = asyncio.Queue()
    database.on_fault = changes.put_nowait
    store = MessageStore(database)
    try:
        await store.store([draft("k-1", "c-1")])
        await asyncio.to_thread(postgres_cluster.stop, remove=False)
        try:
            with pytest.raises(Unavailable):
                await store.store([draft("k-2", "c-1")])
            assert await asyncio.wait_for(changes.get(), STEP) is True
            assert database.faulted  # the probe cannot connect while the server is down
        finally:
            await asyncio.to_thread(postgres_cluster.start)
        assert await asyncio.wait_for(changes.get(), STEP) is False  # the probe reconnected
        [(stored, created)] = await store.store([draft("k-2", "c-1")])
        assert created and stored.sequence == 2
    finally:
        await database.close()


async def terminate_sessions(cluster: Cluster, dsn: str) -> None:
    """End every session on ``dsn``'s database, as an administrator (or a failover) would."""
    name = dsn.rsplit("/", 1)[1]

    def terminate() -> int:
        with psycopg.connect(cluster.dsn, autocommit=True) as admin:
            row = admin.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = %s", (name,)
            ).fetchone()
        return int(row[0]) if row else 0

    def sessions_gone() -> bool:
        with psycopg.connect(cluster.dsn, autocommit=True) as admin:
            row = admin.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = %s", (name,)
            ).fetchone()
        return row == (0,)

    assert await asyncio.to_thread(terminate) > 0
    # pg_terminate_backend only signals: wait until the sessions are gone, or a call made
    # meanwhile on a loaded machine is still served by its doomed session.
    await until(lambda: asyncio.to_thread(sessions_gone))


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (psycopg.errors.DiskFull("no space left"), Status.RESOURCE_EXHAUSTED),
        (psycopg.errors.AdminShutdown("terminating connection"), Status.UNAVAILABLE),
        (psycopg.errors.CannotConnectNow("the database system is starting up"), Status.UNAVAILABLE),
        (psycopg.errors.TooManyConnections("too many clients"), Status.UNAVAILABLE),
        (psycopg.errors.ConnectionFailure("connection failure"), Status.UNAVAILABLE),
        (psycopg.OperationalError("server closed the connection unexpectedly"), Status.UNAVAILABLE),
        (psycopg.errors.UniqueViolation("duplicate key"), None),  # the data's fault: not a storage fault
        (ValueError("not a driver error"), None),
    ],
)
def test_postgres_errors_map_to_statuses(error: Exception, status: Status | None) -> None:
    fault = postgres_fault(error)
    assert (fault.status if fault is not None else None) is status


@pytest.mark.parametrize(
    "make_dsn",
    [
        lambda port: f"postgresql://chat:s3cret-pw@127.0.0.1:{port}/chat",  # nobody listens there
        lambda port: "postgresql://chat:s3cret-pw@127.0.0.1:notaport/chat",  # not a URL psycopg reads
        lambda port: f"postgres://chat@127.0.0.1:{port}/chat?password=s3cret-pw",
    ],
)
async def test_a_server_that_cannot_be_reached_is_a_start_up_error_without_the_password(
    make_dsn: Callable[[int], str],
) -> None:
    from chat_services.devpostgres import free_port

    dsn = make_dsn(free_port())

    async def start() -> None:
        await open_storage(dsn).open(MIGRATIONS)

    with pytest.raises(StorageOpenError) as raised:
        await start()
    text = str(raised.value)
    assert "s3cret-pw" not in text and "cannot open the database postgres" in text
    assert "\n" not in text


def test_serve_on_an_unreachable_postgres_exits_1_with_one_line_and_no_password() -> None:
    from chat_services.devpostgres import free_port

    dsn = f"postgresql://chat:s3cret-pw@127.0.0.1:{free_port()}/chat"
    result = subprocess.run(
        [sys.executable, "-m", "chat_services", "serve", "--port", "0", "--database", dsn],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr and "s3cret-pw" not in result.stderr
    [line] = [line for line in result.stderr.splitlines() if "chat-services:" in line]
    assert f"cannot open the database {redact(dsn)}: " in line
    assert "chat:***@127.0.0.1" in line


@pytest.mark.parametrize(
    ("dsn", "shown"),
    [
        ("postgresql://u:pw@h:5432/d", "postgresql://u:***@h:5432/d"),
        (
            "postgresql://u@h/d?password=pw&sslmode=require",
            "postgresql://u@h/d?password=%2A%2A%2A&sslmode=require",
        ),
        ("host=h user=u password=pw dbname=d", "user=u password=*** dbname=d host=h"),
    ],
)
def test_redact_hides_the_password(dsn: str, shown: str) -> None:
    assert redact(dsn) == shown
