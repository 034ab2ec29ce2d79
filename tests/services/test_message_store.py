"""The message domain on a real SQLite file and a real PostgreSQL database: drafts, the store, the hub."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import TypeVar

import pytest

from chat_services.errors import AlreadyExists, InvalidArgument, NotFound, PermissionDenied
from chat_services.message.hub import ConversationHub, Listener, Presence, PresenceChange, Typing
from chat_services.message.model import Attachment, Draft, Profile
from chat_services.message.store import MIGRATIONS, MessageStore
from chat_services.storage import Connection, Database, open_storage

T = TypeVar("T")


def draft(
    key: str,
    conversation: str = "c-1",
    author: str = "u-1",
    content: str = "hi",
    files: tuple[Attachment, ...] = (),
) -> Draft:
    return Draft(
        idempotency_key=key, conversation_id=conversation, author_id=author, content=content, files=files
    )


async def open_store(target: str | Path) -> MessageStore:
    database = open_storage(target)
    await database.open(MIGRATIONS)
    return MessageStore(database)


@pytest.fixture
async def store(database_target: str) -> AsyncIterator[MessageStore]:
    """A store on each backend: an SQLite file, then a PostgreSQL database."""
    opened = await open_store(database_target)
    try:
        yield opened
    finally:
        await opened.database.close()


# Drafts -------------------------------------------------------------------------------------------


# Field limits (lengths, counts, required IDs) are schema rules enforced at the boundary:
# tests/services/test_validation.py. A draft checks only the rule across its fields.


def test_a_draft_needs_content_or_a_file() -> None:
    with pytest.raises(InvalidArgument) as raised:
        Draft(idempotency_key="k-1", conversation_id="c-1", author_id="u-1", content="")
    assert raised.value.field == "message.content"
    assert raised.value.message


def test_drafts_with_content_or_only_files_are_accepted() -> None:
    draft("k-1", content="hi")
    draft("k-1", content="", files=(Attachment("f-1"),))


# The store ----------------------------------------------------------------------------------------


async def test_a_batch_is_stored_in_order_with_sequences_per_conversation(store: MessageStore) -> None:
    results = await store.store([draft("a-1"), draft("b-1", conversation="c-2"), draft("a-2")])
    assert [created for _, created in results] == [True, True, True]
    assert [(m.conversation_id, m.sequence) for m, _ in results] == [("c-1", 1), ("c-2", 1), ("c-1", 2)]
    assert len({m.id for m, _ in results}) == 3
    assert all(m.created_at_ns > 0 and m.edited_at_ns is None for m, _ in results)
    got = await store.get(results[2][0].id)
    assert got == results[2][0]


async def test_a_conflict_anywhere_in_a_batch_rolls_the_whole_batch_back(store: MessageStore) -> None:
    [(original, _)] = await store.store([draft("taken", content="original")])
    with pytest.raises(AlreadyExists) as raised:
        await store.store([draft("fresh-1"), draft("fresh-2"), draft("taken", content="clash")])
    assert raised.value.field == "message.idempotency_key"
    assert raised.value.message == "idempotency key 'taken' was used for a different message"
    assert [m.idempotency_key for m in await store.after("c-1", 0, 10)] == ["taken"]
    # The rolled-back batch used no sequence numbers.
    [(next_one, created)] = await store.store([draft("fresh-1")])
    assert created and next_one.sequence == original.sequence + 1


async def test_a_retry_returns_the_stored_message_and_stores_nothing(store: MessageStore) -> None:
    files = (Attachment("f-1", "a.txt", "text/plain", 3, "https://files/f-1", "ab" * 32),)
    [(first, created)] = await store.store([draft("k-1", files=files)])
    assert created
    [(again, created_again)] = await store.store([draft("k-1", files=files)])
    assert not created_again
    assert again == first
    assert [m.id for m in await store.after("c-1", 0, 10)] == [first.id]


async def test_a_key_repeated_within_one_batch_is_stored_once(store: MessageStore) -> None:
    results = await store.store([draft("k-1"), draft("k-1")])
    assert [created for _, created in results] == [True, False]
    assert results[0][0].id == results[1][0].id


@pytest.mark.parametrize(
    "changed",
    [
        draft("k-1", content="other words"),
        draft("k-1", conversation="c-2"),
        draft("k-1", files=(Attachment("f-9"),)),
    ],
)
async def test_a_key_reused_for_a_different_message_is_refused(store: MessageStore, changed: Draft) -> None:
    await store.store([draft("k-1")])
    with pytest.raises(AlreadyExists):
        await store.store([changed])


async def test_the_same_key_of_another_author_is_another_message(store: MessageStore) -> None:
    [(first, _)] = await store.store([draft("k-1")])
    [(other, created)] = await store.store([draft("k-1", author="u-2")])
    assert created and other.id != first.id and other.sequence == first.sequence + 1


async def test_reads_by_sequence_and_recent(store: MessageStore) -> None:
    await store.store([draft(f"k-{i}", content=f"m{i}") for i in range(6)])
    assert [m.sequence for m in await store.after("c-1", 2, 3)] == [3, 4, 5]
    assert await store.after("c-1", 6, 10) == []
    assert [m.content for m in await store.recent("c-1", 2)] == ["m4", "m5"]
    assert await store.conversation_exists("c-1")
    assert not await store.conversation_exists("c-2")
    with pytest.raises(NotFound) as raised:
        await store.get("absent")
    assert raised.value.field == "message_id"


async def test_files_are_read_only_when_asked_and_keep_their_order(store: MessageStore) -> None:
    files = (Attachment("f-2", "second"), Attachment("f-1", "first", size_bytes=10))
    [(stored, _), _] = await store.store([draft("k-1", files=files), draft("k-2")])
    [bare] = await store.after("c-1", 0, 1)
    assert bare.files == ()
    with_files = await store.with_files(await store.after("c-1", 0, 10))
    assert [m.files for m in with_files] == [files, ()]
    assert stored.files == files
    assert await store.with_files([]) == []


class CountingDatabase(Database):
    """The real database, counting the operations its callers run: a trip to the database
    thread, or a read at once on the event loop (which falls back to a trip only when busy)."""

    trips = 0

    async def call(self, work: Callable[[Connection], T]) -> T:
        self.trips += 1
        return await super().call(work)

    async def read(self, work: Callable[[Connection], T]) -> T:
        self.trips += 1
        return await super().read(work)


async def test_a_view_reads_message_files_and_authors_in_one_trip(tmp_path: Path) -> None:
    database = CountingDatabase(tmp_path / "messages.db")
    await database.open(MIGRATIONS)
    store = MessageStore(database)
    try:
        await store.save_profile(Profile("ada", "Ada", "https://avatars/ada"))
        files = (Attachment("f-1", "first"),)
        [(one, _), (two, _)] = await store.store([draft("k-1", author="ada", files=files), draft("k-2")])
        database.trips = 0
        view = await store.view(one.id, include_user=True, include_files=True)
        assert database.trips == 1
        assert view.messages == [one]
        assert view.profiles == {"ada": Profile("ada", "Ada", "https://avatars/ada")}
        bare = await store.view(one.id, include_user=False, include_files=False)
        assert bare.messages[0].files == () and bare.profiles is None
        page = await store.view_after("c-1", 0, 10, include_user=True, include_files=True)
        assert database.trips == 3
        assert page.messages == [one, two]
        assert page.profiles == {
            "ada": Profile("ada", "Ada", "https://avatars/ada"),
            "u-1": Profile("u-1", "u-1"),
        }
        with pytest.raises(NotFound):
            await store.view("absent", include_user=True, include_files=True)
    finally:
        await database.close()


async def test_profiles_default_to_the_user_id(store: MessageStore) -> None:
    await store.save_profile(Profile("u-2", "Ada", "https://avatars/ada"))
    assert await store.profiles(["u-1", "u-2", "u-1"]) == {
        "u-1": Profile("u-1", "u-1"),
        "u-2": Profile("u-2", "Ada", "https://avatars/ada"),
    }
    assert await store.profiles([]) == {}


async def test_edits_only_by_the_author_and_never_to_nothing(store: MessageStore) -> None:
    [(text, _), (attachment, _)] = await store.store(
        [draft("k-1", author="ada"), draft("k-2", author="ada", content="", files=(Attachment("f-1"),))]
    )
    with pytest.raises(PermissionDenied):
        await store.edit(text.id, "bob", "mine now")
    with pytest.raises(NotFound):
        await store.edit("absent", "ada", "x")
    with pytest.raises(InvalidArgument):
        await store.edit(text.id, "ada", "")
    emptied = await store.edit(attachment.id, "ada", "")
    assert emptied.content == "" and emptied.files == (Attachment("f-1"),)
    edited = await store.edit(text.id, "ada", "better")
    assert edited.edited_at_ns is not None and edited.edited_at_ns >= edited.created_at_ns
    assert await store.get(text.id) == edited
    # The original send, retried after the edit, is still recognised as a retry.
    [(retried, created)] = await store.store([draft("k-1", author="ada")])
    assert not created and retried.content == "better"


async def test_messages_and_migrations_survive_reopening_the_database(database_target: str) -> None:
    path = database_target
    first = await open_store(path)
    stored = [m for m, _ in await first.store([draft(f"k-{i}") for i in range(3)])]
    await first.database.close()

    second = await open_store(path)
    try:
        assert await second.after("c-1", 0, 10) == stored
        [(next_one, _)] = await second.store([draft("k-9")])
        assert next_one.sequence == 4
        names = await second.database.call(
            lambda c: [row[0] for row in c.execute("SELECT name FROM schema_migrations ORDER BY name")]
        )
        assert names == [m.name for m in MIGRATIONS]
    finally:
        await second.database.close()


# The hub ------------------------------------------------------------------------------------------


async def test_the_hub_delivers_to_each_listener_of_the_conversation_except_the_skipped_one() -> None:
    hub = ConversationHub()
    alice, bob, elsewhere = Listener(), Listener(), Listener()
    hub.subscribe("room", alice)
    hub.subscribe("room", bob)
    hub.subscribe("room", bob)  # subscribing twice is once
    hub.subscribe("other", elsewhere)
    assert hub.listener_count("room") == 2

    joined = PresenceChange("room", "bob", Presence.JOINED)
    hub.publish("room", joined, skip=bob)
    typing = Typing("room", "alice", True)
    hub.publish("room", typing)
    assert alice.pending() == [joined, typing]
    assert bob.pending() == [typing]
    assert elsewhere.pending() == []

    hub.unsubscribe("room", alice)
    hub.unsubscribe("room", bob)
    hub.unsubscribe("room", bob)  # already gone: nothing happens
    hub.unsubscribe("nowhere", alice)
    assert hub.listener_count("room") == 0
    hub.publish("room", typing)  # nobody listens: nothing is queued anywhere
    assert alice.pending() == bob.pending() == []
