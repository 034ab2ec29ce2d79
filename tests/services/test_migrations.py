"""A database written by 2.0.0 opens under 2.1.0 with nothing lost and access kept for who had it."""

from __future__ import annotations

from pathlib import Path

from chat_services.conversation.store import MIGRATIONS as CONVERSATION_MIGRATIONS
from chat_services.conversation.store import ConversationStore, Role
from chat_services.message.model import Draft
from chat_services.message.store import MIGRATIONS as MESSAGE_MIGRATIONS
from chat_services.message.store import MessageStore
from chat_services.rag.store import MIGRATIONS as RAG_MIGRATIONS
from chat_services.storage import Database

RELEASED_2_0 = ("message-001", "message-002", "rag-001")


async def test_a_2_0_database_keeps_its_files_and_gains_members_and_owners(tmp_path: Path) -> None:
    path = tmp_path / "chat.db"
    old = Database(path)
    await old.open([m for m in (*MESSAGE_MIGRATIONS, *RAG_MIGRATIONS) if m.name in RELEASED_2_0])

    def seed(connection: object) -> None:
        execute = connection.execute  # type: ignore[attr-defined]
        for sequence, (author, key) in enumerate([("ann", "k-1"), ("bo", "k-2"), ("ann", "k-3")], start=1):
            execute(
                "INSERT INTO messages VALUES (?, 'c-1', ?, ?, 'hi', ?, ?, NULL)",
                (f"m-{sequence}", sequence, author, key, 1_000 + sequence),
            )
        execute(
            "INSERT INTO message_files VALUES ('m-1', 0, 'f-1', 'a.png', 'image/png', 3, 'https://x', '')"
        )
        execute("INSERT INTO documents VALUES ('d-1', 't', '', 'text/plain', '{}', 1, 4, 5)")

    await old.transaction(seed)
    await old.close()

    new = Database(path)
    await new.open([*MESSAGE_MIGRATIONS, *CONVERSATION_MIGRATIONS, *RAG_MIGRATIONS])
    try:
        messages = MessageStore(new)
        [first] = await messages.with_files([await messages.get("m-1")])
        assert [f.file_id for f in first.files] == ["f-1"]  # the table rebuild kept every file
        conversations = ConversationStore(new)
        members = await conversations.members("c-1", 0, 10)
        assert [(m.user_id, m.role) for m in members] == [("ann", Role.OWNER), ("bo", Role.MEMBER)]
        # Keys are now per author: bo may reuse ann's key; ann's retry still finds her message.
        [(reused, created)] = await messages.store([Draft("k-1", "c-1", "bo", "again")])
        assert created and reused.sequence == 4
        [(retried, created)] = await messages.store([Draft("k-3", "c-1", "ann", "hi")])
        assert not created and retried.id == "m-3"
        row = await new.call(
            lambda c: c.execute(
                "SELECT owner_id, visibility FROM documents WHERE document_id = 'd-1'"
            ).fetchone()
        )
        assert (row["owner_id"], row["visibility"]) == ("", 2)  # readable by all, as before; no owner
    finally:
        await new.close()
