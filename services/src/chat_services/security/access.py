"""The data rules of the authorization table (:mod:`chat_services.security.scopes`), decided in one place.

The guard checks a method's scopes before its handler runs; what a call may touch is
only known inside the handler (the conversation of a message, the owner of a document),
so handlers ask here. With authentication off there is no caller, and every rule allows.
"""

from __future__ import annotations

from chat_services.conversation.store import ConversationStore, claim, is_member, not_found
from chat_services.errors import NotFound, PermissionDenied
from chat_services.message.store import ReaderRule, WriterRule
from chat_services.security.identity import Identity, current_identity
from chat_services.security.scopes import DOCUMENTS_ADMIN, MESSAGES_ADMIN, PLUGINS_ADMIN
from chat_services.storage import Connection


class ConversationAccess:
    """Membership rules: only members read, follow, post in and join a conversation."""

    def __init__(self, store: ConversationStore) -> None:
        self.store = store

    async def require_member(
        self,
        conversation_id: str,
        *,
        field: str = "conversation_id",
        hidden: NotFound | None = None,
        user: str | None = None,
    ) -> None:
        """NOT_FOUND (``hidden``, or the conversation's) unless the caller may read the conversation.

        ``user`` is whose membership counts when a service acts for a user (an edit's editor);
        by default the caller's.
        """
        acting = self.acting_user()
        if acting is not None and not await self.store.is_member(conversation_id, user or acting):
            raise hidden if hidden is not None else not_found(conversation_id, field)

    def reader_rule(self, *, hidden: NotFound) -> ReaderRule | None:
        """:meth:`require_member` for the caller, run inside a read's own (on the database thread or
        the event loop, see :meth:`chat_services.storage.Storage.read`).

        None when no rule applies (an open server, an admin service). The membership is read
        afresh on every call, never cached: a member removed from a conversation cannot read
        it from the next call on.
        """
        acting = self.acting_user()  # read here, in the call's context: the rule may run on another thread
        if acting is None:
            return None

        def admit(connection: Connection, conversation_id: str) -> None:
            if not is_member(connection, conversation_id, acting):
                raise hidden

        return admit

    def writer_rule(self, *, field: str) -> WriterRule:
        """The rule that lets a user write in a conversation, run inside the write's own transaction.

        A conversation nobody made yet is made with the writer as its owner. Otherwise the
        writer (already checked to be the caller, or a user a service may act for) must be
        a member (NOT_FOUND if not), unless the caller is an admin service. An open server
        records every writer as a member.
        """
        caller = current_identity()  # read here, on the event loop: the rule runs on the database thread

        def admit(connection: Connection, conversation_id: str, user_id: str) -> None:
            if caller is None:
                claim(connection, conversation_id, user_id, join_existing=True)
            elif not claim(connection, conversation_id, user_id, join_existing=False) and not caller.is_admin(
                MESSAGES_ADMIN
            ):
                raise not_found(conversation_id, field)

        return admit

    async def admit_writer(self, conversation_id: str, user_id: str, *, field: str) -> None:
        """:meth:`writer_rule` in a transaction of its own (a chat stream's join)."""
        admit = self.writer_rule(field=field)
        await self.store.database.transaction(lambda connection: admit(connection, conversation_id, user_id))

    def acting_user(self) -> str | None:
        """The user whose memberships count (None: an open server or an admin service)."""
        caller = _ruled(MESSAGES_ADMIN)
        return None if caller is None else caller.subject


def _ruled(admin_scope: str) -> Identity | None:
    """The caller when data rules apply to it; None on an open server or for an ``admin_scope`` service."""
    caller = current_identity()
    return None if caller is None or caller.is_admin(admin_scope) else caller


def require_scope(scope: str, *, field: str, why: str) -> None:
    """PERMISSION_DENIED unless the caller holds ``scope`` (always allowed without authentication)."""
    caller = current_identity()
    if caller is not None and scope not in caller.scopes:
        raise PermissionDenied(f"{why} needs the scope {scope}", field=field)


def caller_principal() -> str | None:
    """The caller's principal (``user:alice``), or None on an open server."""
    caller = current_identity()
    return None if caller is None else caller.principal


def document_owner() -> str:
    """Who owns what the caller ingests: its principal, or empty on an open server."""
    return caller_principal() or ""


def document_reader() -> str | None:
    """Whose private documents the caller reads besides shared ones; None means every document."""
    caller = _ruled(DOCUMENTS_ADMIN)
    return None if caller is None else caller.principal


def event_audience() -> str | None:
    """Whose plugin invocations' events the caller sees; None means everyone's."""
    caller = _ruled(PLUGINS_ADMIN)
    return None if caller is None else caller.principal
