"""Messages on SQLite or PostgreSQL: atomic, idempotent batches; sequence-ordered reads for pages and streams.

On PostgreSQL, where several instances write at once, a batch first locks its conversations
and idempotency keys (advisory locks, see :func:`chat_services.storage.lock`): the next
sequence is read and written under the conversation's lock, so sequences stay contiguous,
and a concurrent retry of the same key waits, then finds the stored message.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from chat_services.errors import AlreadyExists, InvalidArgument, NotFound, PermissionDenied
from chat_services.message.model import Attachment, Draft, Profile, StoredMessage
from chat_services.storage import Connection, Migration, Storage, conversation_key, lock

# (connection, conversation_id, author_id) → raises when the author may not write there.
WriterRule = Callable[[Connection, str, str], None]
# (connection, conversation_id) → raises when the caller may not read there.
ReaderRule = Callable[[Connection, str], None]

MIGRATIONS = (
    Migration(
        "message-001",
        """
        CREATE TABLE messages (
            id TEXT PRIMARY KEY,
            conversation_id TEXT NOT NULL,
            sequence INTEGER NOT NULL,
            author_id TEXT NOT NULL,
            content TEXT NOT NULL,
            idempotency_key TEXT NOT NULL UNIQUE,
            created_at_ns INTEGER NOT NULL,
            UNIQUE (conversation_id, sequence)
        );
        CREATE TABLE message_files (
            message_id TEXT NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
            position INTEGER NOT NULL,
            file_id TEXT NOT NULL,
            name TEXT NOT NULL,
            media_type TEXT NOT NULL,
            size_bytes INTEGER NOT NULL,
            url TEXT NOT NULL,
            sha256 TEXT NOT NULL,
            PRIMARY KEY (message_id, position)
        );
        CREATE TABLE user_profiles (
            user_id TEXT PRIMARY KEY,
            display_name TEXT NOT NULL,
            avatar_url TEXT NOT NULL
        )
        """,
    ),
    Migration("message-002", "ALTER TABLE messages ADD COLUMN edited_at_ns INTEGER"),
    # Idempotency keys are scoped by author: two users may use the same key, and one
    # user's key tells nothing about another's. SQLite cannot drop a UNIQUE column
    # constraint, so the table is rebuilt (its files are kept: foreign keys are off).
    Migration(
        "message-003",
        """
        CREATE TABLE messages_by_author (
            id TEXT PRIMARY KEY,
            conversation_id TEXT NOT NULL,
            sequence INTEGER NOT NULL,
            author_id TEXT NOT NULL,
            content TEXT NOT NULL,
            idempotency_key TEXT NOT NULL,
            created_at_ns INTEGER NOT NULL,
            edited_at_ns INTEGER,
            UNIQUE (conversation_id, sequence),
            UNIQUE (author_id, idempotency_key)
        );
        INSERT INTO messages_by_author
            SELECT id, conversation_id, sequence, author_id, content, idempotency_key, created_at_ns,
                   edited_at_ns
            FROM messages;
        DROP TABLE messages;
        ALTER TABLE messages_by_author RENAME TO messages
        """,
        rebuilds_tables=True,
        postgres="""
        ALTER TABLE messages DROP CONSTRAINT messages_idempotency_key_key;
        ALTER TABLE messages ADD CONSTRAINT messages_author_id_idempotency_key_key
            UNIQUE (author_id, idempotency_key)
        """,
    ),
    # PostgreSQL only: every stored message notifies NOTIFY_CHANNEL ("<sequence> <conversation>")
    # at commit, when it is durable, so other instances' followers are nudged at once.
    Migration(
        "message-004",
        "",
        postgres="""
        CREATE FUNCTION notify_chat_message() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('chat_messages', NEW.sequence || ' ' || NEW.conversation_id);
            RETURN NULL;
        END;
        $$;
        CREATE TRIGGER messages_notify AFTER INSERT ON messages
            FOR EACH ROW EXECUTE FUNCTION notify_chat_message()
        """,
    ),
)

_COLUMNS = "id, conversation_id, sequence, author_id, content, idempotency_key, created_at_ns, edited_at_ns"


@dataclass(frozen=True)
class MessageView:
    """Messages as a reader asked for them: files attached if asked, the authors' profiles if asked."""

    messages: list[StoredMessage]
    profiles: dict[str, Profile] | None


class MessageStore:
    """Every read and write of messages; each method is one trip to the database thread."""

    def __init__(self, database: Storage) -> None:
        self.database = database

    async def store(
        self, drafts: Sequence[Draft], admit: WriterRule | None = None
    ) -> list[tuple[StoredMessage, bool]]:
        """Store ``drafts`` all or nothing; each result says whether it was newly created.

        A draft whose idempotency key is already stored returns that message; the
        same key with a different payload is refused (ALREADY_EXISTS), since it is a
        client bug rather than a retry. ``admit`` decides, in the same transaction,
        whether each draft's author may write in its conversation.
        """

        def store_all(connection: Connection) -> list[tuple[StoredMessage, bool]]:
            lock(connection, _lock_keys(drafts))
            stored = []
            for draft in drafts:
                if admit is not None:
                    admit(connection, draft.conversation_id, draft.author_id)
                stored.append(_store_one(connection, draft))
            return stored

        return await self.database.transaction(store_all)

    async def edit(self, message_id: str, editor_id: str, content: str) -> StoredMessage:
        """Replace the content of a message and stamp ``edited_at``; only its author may."""

        def replace_content(connection: Connection) -> StoredMessage:
            [stored] = _attach_files(connection, [_by_id(connection, message_id)])
            if stored.author_id != editor_id:
                raise PermissionDenied(
                    f"only the author ({stored.author_id!r}) may edit message {message_id!r}",
                    field="editor_id",
                )
            if not content and not stored.files:
                raise InvalidArgument("a message without files needs content", field="content")
            edited = replace(stored, content=content, edited_at_ns=time.time_ns())
            connection.execute(
                "UPDATE messages SET content = ?, edited_at_ns = ? WHERE id = ?",
                (edited.content, edited.edited_at_ns, message_id),
            )
            return edited

        return await self.database.transaction(replace_content)

    async def get(self, message_id: str) -> StoredMessage:
        """The message with ``message_id``; NOT_FOUND when there is none."""
        return await self.database.read(lambda connection: _by_id(connection, message_id))

    async def view(
        self, message_id: str, *, include_user: bool, include_files: bool, admit: ReaderRule | None = None
    ) -> MessageView:
        """The message with ``message_id`` with what the reader asked for, in one read; NOT_FOUND if none.

        ``admit`` runs in the same read, on the message's conversation, before anything else
        is read: a membership check costs no second read (no second hop to the database
        thread on a backend that makes one, see :meth:`Storage.read`).
        """

        def read(connection: Connection) -> MessageView:
            message = _by_id(connection, message_id)
            if admit is not None:
                admit(connection, message.conversation_id)
            return _view(connection, [message], include_user, include_files)

        return await self.database.read(read)

    async def view_after(
        self,
        conversation_id: str,
        after_sequence: int,
        limit: int,
        *,
        include_user: bool,
        include_files: bool,
    ) -> MessageView:
        """:meth:`after`, with files and profiles as asked, in one trip to the database thread."""
        return await self.database.call(
            lambda connection: _view(
                connection,
                _after(connection, conversation_id, after_sequence, limit),
                include_user,
                include_files,
            )
        )

    async def after(self, conversation_id: str, after_sequence: int, limit: int) -> list[StoredMessage]:
        """Up to ``limit`` messages of the conversation with a sequence above ``after_sequence``, in order."""
        return await self.database.call(
            lambda connection: _after(connection, conversation_id, after_sequence, limit)
        )

    async def recent(self, conversation_id: str, limit: int) -> list[StoredMessage]:
        """The last ``limit`` messages of the conversation, oldest first."""
        newest_first = await self.database.read(
            lambda connection: _select(
                connection,
                f"SELECT {_COLUMNS} FROM messages WHERE conversation_id = ? ORDER BY sequence DESC LIMIT ?",
                (conversation_id, limit),
            )
        )
        return newest_first[::-1]

    async def conversation_exists(self, conversation_id: str) -> bool:
        """Whether the conversation has at least one message."""
        row = await self.database.read(
            lambda connection: connection.execute(
                "SELECT 1 FROM messages WHERE conversation_id = ? LIMIT 1", (conversation_id,)
            ).fetchone()
        )
        return row is not None

    async def with_files(self, messages: Sequence[StoredMessage]) -> list[StoredMessage]:
        """``messages`` with their attachments filled in."""
        if not messages:
            return []
        return await self.database.call(lambda connection: _attach_files(connection, messages))

    async def profiles(self, user_ids: Sequence[str]) -> dict[str, Profile]:
        """The profile of each user; a user with no stored profile shows their ID as name."""
        if not user_ids:
            return {}
        return await self.database.call(lambda connection: _profiles(connection, user_ids))

    async def save_profile(self, profile: Profile) -> None:
        """Create or replace a user's profile."""
        await self.database.transaction(
            lambda connection: connection.execute(
                "INSERT INTO user_profiles (user_id, display_name, avatar_url) VALUES (?, ?, ?)"
                " ON CONFLICT (user_id) DO UPDATE"
                " SET display_name = excluded.display_name, avatar_url = excluded.avatar_url",
                (profile.user_id, profile.display_name, profile.avatar_url),
            )
        )


def _lock_keys(drafts: Sequence[Draft]) -> list[str]:
    """What a batch locks: each conversation (its next sequence) and each author's idempotency key."""
    keys = [conversation_key(d.conversation_id) for d in drafts]
    return keys + [f"idempotency {d.author_id} {d.idempotency_key}" for d in drafts]


def _store_one(connection: Connection, draft: Draft) -> tuple[StoredMessage, bool]:
    existing = _select(
        connection,
        f"SELECT {_COLUMNS} FROM messages WHERE author_id = ? AND idempotency_key = ?",
        (draft.author_id, draft.idempotency_key),
    )
    if existing:
        stored = _attach_files(connection, existing)[0]
        if not stored.matches(draft):
            raise AlreadyExists(
                f"idempotency key {draft.idempotency_key!r} was used for a different message",
                field="message.idempotency_key",
            )
        return stored, False
    (last,) = connection.execute(
        "SELECT COALESCE(MAX(sequence), 0) FROM messages WHERE conversation_id = ?", (draft.conversation_id,)
    ).fetchone()
    message = StoredMessage(
        id=uuid.uuid4().hex,
        conversation_id=draft.conversation_id,
        sequence=last + 1,
        author_id=draft.author_id,
        content=draft.content,
        idempotency_key=draft.idempotency_key,
        created_at_ns=time.time_ns(),
        files=draft.files,
    )
    connection.execute(
        f"INSERT INTO messages ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (
            message.id,
            message.conversation_id,
            message.sequence,
            message.author_id,
            message.content,
            message.idempotency_key,
            message.created_at_ns,
            message.edited_at_ns,
        ),
    )
    connection.executemany(
        "INSERT INTO message_files (message_id, position, file_id, name, media_type, size_bytes, url, sha256)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (message.id, position, f.file_id, f.name, f.media_type, f.size_bytes, f.url, f.sha256)
            for position, f in enumerate(message.files)
        ],
    )
    return message, True


def _view(
    connection: Connection, messages: list[StoredMessage], include_user: bool, include_files: bool
) -> MessageView:
    if include_files and messages:
        messages = _attach_files(connection, messages)
    profiles = _profiles(connection, [m.author_id for m in messages]) if include_user else None
    return MessageView(messages, profiles)


def _profiles(connection: Connection, user_ids: Sequence[str]) -> dict[str, Profile]:
    """The profile of each user; a user with no stored profile shows their ID as name."""
    unique = sorted(set(user_ids))
    if not unique:
        return {}
    marks = ",".join("?" * len(unique))
    rows = connection.execute(
        f"SELECT user_id, display_name, avatar_url FROM user_profiles WHERE user_id IN ({marks})", unique
    ).fetchall()
    stored = {row["user_id"]: Profile(row["user_id"], row["display_name"], row["avatar_url"]) for row in rows}
    return {user_id: stored.get(user_id, Profile(user_id, user_id)) for user_id in unique}


def _after(
    connection: Connection, conversation_id: str, after_sequence: int, limit: int
) -> list[StoredMessage]:
    return _select(
        connection,
        f"SELECT {_COLUMNS} FROM messages WHERE conversation_id = ? AND sequence > ?"
        " ORDER BY sequence LIMIT ?",
        (conversation_id, after_sequence, limit),
    )


def missing_message(message_id: str) -> NotFound:
    """The one answer for a message that does not exist or that the caller may not read."""
    return NotFound(f"no message has id {message_id!r}", field="message_id")


def _by_id(connection: Connection, message_id: str) -> StoredMessage:
    """The message with ``message_id`` (without its files); NOT_FOUND when there is none."""
    found = _select(connection, f"SELECT {_COLUMNS} FROM messages WHERE id = ?", (message_id,))
    if not found:
        raise missing_message(message_id)
    return found[0]


def _select(connection: Connection, sql: str, parameters: tuple[object, ...]) -> list[StoredMessage]:
    return [
        StoredMessage(
            id=row["id"],
            conversation_id=row["conversation_id"],
            sequence=row["sequence"],
            author_id=row["author_id"],
            content=row["content"],
            idempotency_key=row["idempotency_key"],
            created_at_ns=row["created_at_ns"],
            edited_at_ns=row["edited_at_ns"],
        )
        for row in connection.execute(sql, parameters).fetchall()
    ]


def _attach_files(connection: Connection, messages: Sequence[StoredMessage]) -> list[StoredMessage]:
    ids = [m.id for m in messages]
    marks = ",".join("?" * len(ids))
    rows = connection.execute(
        "SELECT message_id, file_id, name, media_type, size_bytes, url, sha256 FROM message_files"
        f" WHERE message_id IN ({marks}) ORDER BY message_id, position",
        ids,
    ).fetchall()
    files: dict[str, list[Attachment]] = {}
    for row in rows:
        files.setdefault(row["message_id"], []).append(
            Attachment(
                row["file_id"], row["name"], row["media_type"], row["size_bytes"], row["url"], row["sha256"]
            )
        )
    return [replace(m, files=tuple(files.get(m.id, ()))) for m in messages]
