"""The data rules of the authorization table, called directly with a caller bound and a real SQLite database.

Written from the table in the README (who may read, write, join; which admin scope lifts
which rule), not from the code's own constants: each scope is spelled out here.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from chat_services.conversation.store import MIGRATIONS as CONVERSATION_MIGRATIONS
from chat_services.conversation.store import ConversationStore
from chat_services.errors import NotFound, PermissionDenied
from chat_services.message.store import MIGRATIONS as MESSAGE_MIGRATIONS
from chat_services.security import access
from chat_services.security.access import ConversationAccess
from chat_services.security.identity import Identity, IdentityKind, bind_identity, unbind_identity
from chat_services.storage import Database

ALICE = Identity("alice", IdentityKind.USER, frozenset({"messages:read", "messages:write"}))
BOB = Identity("bob", IdentityKind.USER, frozenset({"messages:read", "messages:write"}))


def service(name: str, *scopes: str) -> Identity:
    return Identity(name, IdentityKind.SERVICE, frozenset(scopes))


# A user holding an admin scope is still a user: admin scopes lift the rules for services only.
ADMIN_USER = Identity(
    "mallory", IdentityKind.USER, frozenset({"messages:admin", "documents:admin", "plugins:admin"})
)
HIDDEN = NotFound("the message was not found", field="message_id")


@contextmanager
def calling_as(identity: Identity | None) -> Iterator[None]:
    token = bind_identity(identity)
    try:
        yield
    finally:
        unbind_identity(token)


@pytest.fixture
async def rules(tmp_path: Path) -> AsyncIterator[ConversationAccess]:
    """Access over a database where alice owns c-1 (bob is no member of it)."""
    database = Database(tmp_path / "access.db")
    await database.open([*MESSAGE_MIGRATIONS, *CONVERSATION_MIGRATIONS])
    store = ConversationStore(database)
    await store.create("c-1", "alice", [])
    try:
        yield ConversationAccess(store)
    finally:
        await database.close()


async def test_only_members_read_a_conversation(rules: ConversationAccess) -> None:
    with calling_as(ALICE):
        await rules.require_member("c-1")
    with calling_as(BOB), pytest.raises(NotFound) as hidden:
        await rules.require_member("c-1", field="request.conversation_id")
    assert hidden.value.field == "request.conversation_id" and "c-1" in hidden.value.message
    with calling_as(BOB), pytest.raises(NotFound) as default_field:
        await rules.require_member("c-1")
    assert default_field.value.field == "conversation_id"
    with calling_as(BOB), pytest.raises(NotFound) as given:
        await rules.require_member("c-1", hidden=HIDDEN)
    assert given.value is HIDDEN
    with calling_as(BOB), pytest.raises(NotFound):
        await rules.require_member("no-such-conversation")


async def test_a_service_acting_for_a_user_is_held_to_that_users_membership(
    rules: ConversationAccess,
) -> None:
    bridge = service("bridge", "messages:write", "messages:impersonate")
    with calling_as(bridge):
        await rules.require_member("c-1", user="alice")
        with pytest.raises(NotFound):
            await rules.require_member("c-1", user="bob")
        with pytest.raises(NotFound):
            await rules.require_member("c-1")  # by default the caller's own membership counts
    with calling_as(BOB), pytest.raises(NotFound):
        await rules.require_member("c-1", user="bob")


async def test_the_open_server_and_a_messages_admin_service_read_every_conversation(
    rules: ConversationAccess,
) -> None:
    for caller in (None, service("moderator", "messages:admin")):
        with calling_as(caller):
            await rules.require_member("c-1")
            await rules.require_member("no-such-conversation")
            assert rules.reader_rule(hidden=HIDDEN) is None
            assert rules.acting_user() is None
    for caller in (ADMIN_USER, service("indexer", "documents:admin", "plugins:admin")):
        with calling_as(caller), pytest.raises(NotFound):
            await rules.require_member("c-1")


async def test_the_reader_rule_admits_members_only_and_reads_membership_afresh(
    rules: ConversationAccess,
) -> None:
    with calling_as(BOB):
        rule = rules.reader_rule(hidden=HIDDEN)
    assert rule is not None
    with pytest.raises(NotFound) as refused:
        await rules.store.database.call(lambda connection: rule(connection, "c-1"))
    assert refused.value is HIDDEN
    await rules.store.add("c-1", "bob")
    await rules.store.database.call(lambda connection: rule(connection, "c-1"))  # the caller read on the loop
    with calling_as(service("bot", "messages:read")):
        assert rules.acting_user() == "bot"
        assert rules.reader_rule(hidden=HIDDEN) is not None


async def test_a_writer_makes_a_new_conversation_and_must_be_a_member_of_an_existing_one(
    rules: ConversationAccess,
) -> None:
    with calling_as(BOB):
        await rules.admit_writer("c-2", "bob", field="message.conversation_id")
        with pytest.raises(NotFound) as refused:
            await rules.admit_writer("c-1", "bob", field="message.conversation_id")
    assert refused.value.field == "message.conversation_id" and "c-1" in refused.value.message
    assert await rules.store.is_member("c-2", "bob")
    assert not await rules.store.is_member("c-1", "bob")
    with calling_as(ALICE):
        await rules.admit_writer("c-1", "alice", field="message.conversation_id")
    with calling_as(ADMIN_USER), pytest.raises(NotFound):
        await rules.admit_writer("c-1", "mallory", field="message.conversation_id")


async def test_a_messages_admin_service_writes_anywhere_without_joining(rules: ConversationAccess) -> None:
    with calling_as(service("moderator", "messages:admin")):
        await rules.admit_writer("c-1", "moderator", field="message.conversation_id")
    assert not await rules.store.is_member("c-1", "moderator")
    with calling_as(service("indexer", "documents:admin")), pytest.raises(NotFound):
        await rules.admit_writer("c-1", "indexer", field="message.conversation_id")


async def test_the_open_server_records_every_writer_as_a_member(rules: ConversationAccess) -> None:
    with calling_as(None):
        await rules.admit_writer("c-1", "bob", field="message.conversation_id")
        await rules.admit_writer("c-3", "carol", field="message.conversation_id")
    assert await rules.store.is_member("c-1", "bob")
    assert await rules.store.is_member("c-3", "carol")


def test_a_scope_a_handler_asks_for_is_required_of_every_caller_but_the_open_server() -> None:
    with calling_as(None):
        access.require_scope("documents:share", field="document.shared", why="sharing a document")
    with calling_as(service("indexer", "documents:share")):
        access.require_scope("documents:share", field="document.shared", why="sharing a document")
    with calling_as(ALICE), pytest.raises(PermissionDenied) as refused:
        access.require_scope("documents:share", field="document.shared", why="sharing a document")
    assert refused.value.field == "document.shared"
    assert refused.value.message == "sharing a document needs the scope documents:share"


def test_what_a_caller_owns_and_sees_is_keyed_by_its_principal() -> None:
    with calling_as(None):
        assert access.caller_principal() is None
        assert access.document_owner() == ""
        assert access.document_reader() is None
        assert access.event_audience() is None
    with calling_as(ALICE):
        assert access.caller_principal() == "user:alice"
        assert access.document_owner() == "user:alice"
        assert access.document_reader() == "user:alice"
        assert access.event_audience() == "user:alice"
    with calling_as(ADMIN_USER):  # admin scopes lift nothing for a user
        assert access.document_reader() == "user:mallory"
        assert access.event_audience() == "user:mallory"
    with calling_as(service("indexer", "documents:admin")):
        assert access.document_owner() == "service:indexer"
        assert access.document_reader() is None
        assert access.event_audience() == "service:indexer"
    with calling_as(service("runner", "plugins:admin")):
        assert access.document_reader() == "service:runner"
        assert access.event_audience() is None
