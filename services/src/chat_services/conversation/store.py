"""Conversations and their members on SQLite or PostgreSQL.

A conversation exists once it has a row in ``conversations``: made by CreateConversation,
or by the first user who posts in or joins a conversation nobody has made yet (who then
owns it). Conversations stored before members existed are backfilled: whoever wrote in
one is a member, the author of its first message the owner.

Inserts that can race between instances on PostgreSQL (two first posts in a new
conversation, two joins of one user) are ``ON CONFLICT DO NOTHING``: the loser reads
what the winner stored instead of failing.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

from chat_services.errors import (
    AlreadyExists,
    FailedPrecondition,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    echo,
)
from chat_services.storage import Connection, Migration, Storage, conversation_key, lock

MIGRATIONS = (
    Migration(
        "conversation-001",
        """
        CREATE TABLE conversations (
            conversation_id TEXT PRIMARY KEY,
            owner_id TEXT NOT NULL,
            created_at_ns INTEGER NOT NULL
        );
        CREATE TABLE conversation_members (
            position INTEGER PRIMARY KEY AUTOINCREMENT,
            conversation_id TEXT NOT NULL REFERENCES conversations (conversation_id) ON DELETE CASCADE,
            user_id TEXT NOT NULL,
            role INTEGER NOT NULL,
            joined_at_ns INTEGER NOT NULL,
            UNIQUE (conversation_id, user_id)
        );
        INSERT INTO conversations (conversation_id, owner_id, created_at_ns)
            SELECT conversation_id, author_id, created_at_ns FROM messages WHERE sequence = 1;
        INSERT INTO conversation_members (conversation_id, user_id, role, joined_at_ns)
            SELECT conversation_id, author_id, CASE WHEN MIN(sequence) = 1 THEN 1 ELSE 2 END,
                   MIN(created_at_ns)
            FROM messages GROUP BY conversation_id, author_id ORDER BY MIN(created_at_ns)
        """,
    ),
)

MAX_MEMBERS = 10_000  # members of one conversation; AddMember past it is RESOURCE_EXHAUSTED


class Role(Enum):
    """What a member may do beyond reading and posting (values as on the wire)."""

    OWNER = 1
    MEMBER = 2


@dataclass(frozen=True)
class Membership:
    """One user's membership; ``position`` orders members by when they joined."""

    conversation_id: str
    user_id: str
    role: Role
    joined_at_ns: int
    position: int


@dataclass(frozen=True)
class ConversationRecord:
    """A conversation, its owner and how many members it has."""

    conversation_id: str
    owner_id: str
    created_at_ns: int
    member_count: int


def not_found(conversation_id: str, field: str = "conversation_id") -> NotFound:
    """The one answer for a conversation that does not exist or that the caller may not see."""
    return NotFound(f"conversation {echo(conversation_id)} not found", field=field)


class ConversationStore:
    """Every read and write of conversations and members; each method is one trip to the database."""

    def __init__(self, database: Storage) -> None:
        self.database = database

    async def create(
        self, conversation_id: str, owner_id: str, member_ids: Sequence[str]
    ) -> ConversationRecord:
        """A new conversation owned by ``owner_id``, with ``member_ids``; ALREADY_EXISTS if taken."""
        conversation_id = conversation_id or uuid.uuid4().hex

        def create(connection: Connection) -> ConversationRecord:
            _lock_members(connection, conversation_id)
            now = time.time_ns()
            if not _insert_conversation(connection, conversation_id, owner_id, now):
                raise AlreadyExists(
                    f"conversation {echo(conversation_id)} exists already", field="conversation_id"
                )
            for user_id in dict.fromkeys(member_ids):
                if user_id != owner_id:
                    _insert_member(connection, conversation_id, user_id, Role.MEMBER, now)
            return _record(connection, conversation_id)

        return await self.database.transaction(create)

    async def is_member(self, conversation_id: str, user_id: str) -> bool:
        """Whether ``user_id`` is a member of the conversation (False when it does not exist)."""
        return await self.database.read(lambda c: is_member(c, conversation_id, user_id))

    async def exists(self, conversation_id: str) -> bool:
        """Whether the conversation exists."""
        return await self.database.read(lambda c: _exists(c, conversation_id))

    async def add(self, conversation_id: str, user_id: str) -> Membership:
        """Add ``user_id`` (a no-op for a member); NOT_FOUND when the conversation does not exist."""

        def add(connection: Connection) -> Membership:
            _lock_members(connection, conversation_id)  # before counting: two adds might both see room
            if not _exists(connection, conversation_id):
                raise not_found(conversation_id)
            found = _membership(connection, conversation_id, user_id)
            if found is not None:
                return found
            (count,) = connection.execute(
                "SELECT COUNT(*) FROM conversation_members WHERE conversation_id = ?", (conversation_id,)
            ).fetchone()
            if count >= MAX_MEMBERS:
                raise ResourceExhausted(
                    f"a conversation has at most {MAX_MEMBERS} members", field="conversation_id"
                )
            _insert_member(connection, conversation_id, user_id, Role.MEMBER, time.time_ns())
            membership = _membership(connection, conversation_id, user_id)
            if membership is None:  # inserted just above (or by a concurrent add), in this transaction
                raise RuntimeError("a member added in this transaction is missing")
            return membership

        return await self.database.transaction(add)

    async def remove(self, conversation_id: str, user_id: str, *, by: str | None) -> bool:
        """Remove ``user_id``; ``by`` (None: an admin or an open server) must be them or the owner."""

        def remove(connection: Connection) -> bool:
            if not _exists(connection, conversation_id):
                raise not_found(conversation_id)
            record = _record(connection, conversation_id)
            if user_id == record.owner_id:
                raise FailedPrecondition("the owner of a conversation cannot be removed", field="user_id")
            if by is not None and by not in (user_id, record.owner_id):
                raise PermissionDenied(
                    "only the owner removes other members; members may remove themselves", field="user_id"
                )
            removed = connection.execute(
                "DELETE FROM conversation_members WHERE conversation_id = ? AND user_id = ?",
                (conversation_id, user_id),
            )
            return removed.rowcount > 0

        return await self.database.transaction(remove)

    async def members(self, conversation_id: str, after_position: int, limit: int) -> list[Membership]:
        """Up to ``limit`` members who joined after ``after_position``, in joining order."""
        return await self.database.call(
            lambda connection: [
                _membership_of(row)
                for row in connection.execute(
                    "SELECT * FROM conversation_members WHERE conversation_id = ? AND position > ?"
                    " ORDER BY position LIMIT ?",
                    (conversation_id, after_position, limit),
                )
            ]
        )


def claim(connection: Connection, conversation_id: str, user_id: str, *, join_existing: bool) -> bool:
    """Make a conversation that does not exist yet, owned by ``user_id``; then whether they are a member.

    ``join_existing`` adds ``user_id`` to an existing conversation too (servers without
    authentication record who takes part, so that turning authentication on later keeps
    every participant's access). Runs inside the caller's transaction.
    """
    _lock_members(connection, conversation_id)
    now = time.time_ns()
    if not _exists(connection, conversation_id) and _insert_conversation(
        connection, conversation_id, user_id, now
    ):
        return True
    if _membership(connection, conversation_id, user_id) is not None:
        return True
    if join_existing:
        _insert_member(connection, conversation_id, user_id, Role.MEMBER, now)
        return True
    return False


def _lock_members(connection: Connection, conversation_id: str) -> None:
    """Serialize this transaction with every other one that adds to the conversation or writes in it.

    Taken first, before any row is read or written (a write's transaction already holds it:
    taking it again is free). On PostgreSQL members' positions then grow in the order their
    joins commit, so a page read after position N never misses a member who joins later,
    and two adds cannot both take the last place under ``MAX_MEMBERS``.
    """
    lock(connection, [conversation_key(conversation_id)])


def _exists(connection: Connection, conversation_id: str) -> bool:
    row = connection.execute(
        "SELECT 1 FROM conversations WHERE conversation_id = ?", (conversation_id,)
    ).fetchone()
    return row is not None


def _insert_conversation(connection: Connection, conversation_id: str, owner_id: str, now: int) -> bool:
    """Make the conversation with its owner; False (nothing done) when it exists already."""
    made = connection.execute(
        "INSERT INTO conversations (conversation_id, owner_id, created_at_ns) VALUES (?, ?, ?)"
        " ON CONFLICT (conversation_id) DO NOTHING",
        (conversation_id, owner_id, now),
    )
    if made.rowcount == 0:
        return False
    _insert_member(connection, conversation_id, owner_id, Role.OWNER, now)
    return True


def _insert_member(
    connection: Connection,
    conversation_id: str,
    user_id: str,
    role: Role,
    now: int,
) -> None:
    """Add a member; nothing when they are one already (a concurrent join on another instance).

    The caller holds the conversation's lock (:func:`_lock_members`) from the start of its
    transaction.
    """
    connection.execute(
        "INSERT INTO conversation_members (conversation_id, user_id, role, joined_at_ns)"
        " VALUES (?, ?, ?, ?) ON CONFLICT (conversation_id, user_id) DO NOTHING",
        (conversation_id, user_id, role.value, now),
    )


def is_member(connection: Connection, conversation_id: str, user_id: str) -> bool:
    """Whether ``user_id`` is a member of the conversation, read in the caller's trip to the database."""
    return _membership(connection, conversation_id, user_id) is not None


def _membership(connection: Connection, conversation_id: str, user_id: str) -> Membership | None:
    row = connection.execute(
        "SELECT * FROM conversation_members WHERE conversation_id = ? AND user_id = ?",
        (conversation_id, user_id),
    ).fetchone()
    return None if row is None else _membership_of(row)


def _membership_of(row: Any) -> Membership:
    return Membership(
        row["conversation_id"], row["user_id"], Role(row["role"]), row["joined_at_ns"], row["position"]
    )


def _record(connection: Connection, conversation_id: str) -> ConversationRecord:
    row = connection.execute(
        "SELECT c.conversation_id, c.owner_id, c.created_at_ns, COUNT(m.user_id) AS member_count"
        " FROM conversations c LEFT JOIN conversation_members m USING (conversation_id)"
        " WHERE c.conversation_id = ? GROUP BY c.conversation_id",
        (conversation_id,),
    ).fetchone()
    if row is None:
        raise not_found(conversation_id)
    return ConversationRecord(
        row["conversation_id"], row["owner_id"], row["created_at_ns"], row["member_count"]
    )
