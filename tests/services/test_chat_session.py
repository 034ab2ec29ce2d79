"""One ChatStream session over a real store and hub: who hears what, and what a retried send does."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from grpclib.const import Status
from grpclib.exceptions import GRPCError

from chat.v1 import message_service_pb2 as pb
from chat_services.conversation.store import MIGRATIONS as CONVERSATION_MIGRATIONS
from chat_services.conversation.store import ConversationStore
from chat_services.errors import (
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
)
from chat_services.message.chat import MAX_JOINED, ChatSession
from chat_services.message.hub import ConversationHub, Listener, Presence, PresenceChange, Typing
from chat_services.message.model import StoredMessage
from chat_services.message.store import MIGRATIONS as MESSAGE_MIGRATIONS
from chat_services.message.store import MessageStore
from chat_services.security.access import ConversationAccess
from chat_services.security.identity import Identity, IdentityKind, bind_identity, unbind_identity
from chat_services.security.meter import Meter, bind_meter, unbind_meter
from chat_services.security.ratelimit import Limit, RateLimitConfig, RateLimiter
from chat_services.storage import Database
from chat_services.validation import RequestValidator

from .test_message_store import open_store


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[MessageStore]:
    opened = await open_store(tmp_path / "chat.db")
    try:
        yield opened
    finally:
        await opened.database.close()


def heard(listener: Listener) -> list[tuple[str, ...]]:
    """What a listener has been told so far, in order, as short tuples."""
    told: list[tuple[str, ...]] = []
    for event in listener.pending():
        if isinstance(event, StoredMessage):
            told.append(("message", event.idempotency_key, str(event.sequence)))
        elif isinstance(event, PresenceChange):
            told.append((event.state.name.lower(), event.user_id))
        elif isinstance(event, Typing):
            told.append(("typing" if event.typing else "stopped", event.user_id))
    return told


def send(key: str, author: str, conversation: str = "room", content: str = "hi") -> pb.ChatStreamRequest:
    new = pb.NewMessage(idempotency_key=key, conversation_id=conversation, author_id=author, content=content)
    return pb.ChatStreamRequest(send=new)


def join(user: str, conversation: str = "room") -> pb.ChatStreamRequest:
    return pb.ChatStreamRequest(join=pb.ChatJoin(conversation_id=conversation, user_id=user))


async def two_in_a_room(store: MessageStore) -> tuple[ChatSession, ChatSession, ConversationHub]:
    hub = ConversationHub()
    ann, bo = ChatSession(store, hub), ChatSession(store, hub)
    await ann.apply(join("ann"))
    await bo.apply(join("bo"))
    assert heard(ann.listener) == [("joined", "bo")]
    assert heard(bo.listener) == []
    return ann, bo, hub


async def test_a_new_message_reaches_everyone_in_the_room_and_a_retry_only_its_sender(
    store: MessageStore,
) -> None:
    ann, bo, _ = await two_in_a_room(store)
    await ann.apply(send("a-1", "ann"))
    await ann.apply(send("a-1", "ann"))  # the client did not see the acknowledgement and retried
    await ann.apply(send("a-2", "ann"))
    assert heard(ann.listener) == [("message", "a-1", "1"), ("message", "a-1", "1"), ("message", "a-2", "2")]
    assert heard(bo.listener) == [("message", "a-1", "1"), ("message", "a-2", "2")]


async def test_typing_reaches_the_others_only(store: MessageStore) -> None:
    ann, bo, _ = await two_in_a_room(store)
    await ann.apply(
        pb.ChatStreamRequest(typing=pb.ChatTyping(conversation_id="room", user_id="ann", typing=True))
    )
    await ann.apply(pb.ChatStreamRequest(typing=pb.ChatTyping(conversation_id="room", user_id="ann")))
    assert heard(bo.listener) == [("typing", "ann"), ("stopped", "ann")]
    assert heard(ann.listener) == []


async def test_leaving_tells_the_others_and_stops_what_the_leaver_hears(store: MessageStore) -> None:
    ann, bo, hub = await two_in_a_room(store)
    await bo.apply(pb.ChatStreamRequest(leave=pb.ChatLeave(conversation_id="room")))
    await ann.apply(send("a-1", "ann"))
    assert heard(ann.listener) == [("left", "bo"), ("message", "a-1", "1")]
    assert heard(bo.listener) == []
    assert hub.listener_count("room") == 1
    with pytest.raises(FailedPrecondition, match="this stream has not joined conversation 'room'"):
        await bo.apply(pb.ChatStreamRequest(leave=pb.ChatLeave(conversation_id="room")))


async def test_closing_leaves_every_joined_room(store: MessageStore) -> None:
    ann, bo, hub = await two_in_a_room(store)
    await bo.apply(join("bo", "hall"))
    bo.close()
    assert heard(ann.listener) == [("left", "bo")]
    assert hub.listener_count("room") == 1 and hub.listener_count("hall") == 0
    assert bo.members == {}


async def test_joining_again_as_the_same_user_changes_nothing_and_as_another_swaps_them(
    store: MessageStore,
) -> None:
    ann, bo, hub = await two_in_a_room(store)
    await bo.apply(join("bo"))
    assert heard(ann.listener) == []
    await bo.apply(join("cy"))
    assert heard(ann.listener) == [("left", "bo"), ("joined", "cy")]
    assert bo.members == {"room": "cy"} and hub.listener_count("room") == 2


async def test_sending_needs_the_room_joined_as_the_author(store: MessageStore) -> None:
    ann, _, _ = await two_in_a_room(store)
    with pytest.raises(FailedPrecondition, match="join conversation 'hall' on this stream first") as raised:
        await ann.apply(send("a-1", "ann", conversation="hall"))
    assert raised.value.field == "send.conversation_id"
    with pytest.raises(InvalidArgument, match="this stream joined 'room' as 'ann', not 'bo'") as wrong:
        await ann.apply(send("a-1", "bo"))
    assert wrong.value.field == "send.author_id"
    with pytest.raises(InvalidArgument) as typing:
        await ann.apply(pb.ChatStreamRequest(typing=pb.ChatTyping(conversation_id="room", user_id="bo")))
    assert typing.value.field == "typing.user_id"


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        (pb.ChatStreamRequest(), "event"),
        (join("ann", conversation=""), "join.conversation_id"),
        (join(""), "join.user_id"),
        (pb.ChatStreamRequest(leave=pb.ChatLeave()), "leave.conversation_id"),
        (send("", "ann"), "send.idempotency_key"),
        (pb.ChatStreamRequest(typing=pb.ChatTyping(user_id="ann")), "typing.conversation_id"),
    ],
    ids=["nothing", "join-no-room", "join-no-user", "leave-no-room", "send-no-key", "typing-no-room"],
)
def test_a_chat_request_missing_a_required_part_is_refused_at_the_boundary_naming_it(
    request_: pb.ChatStreamRequest, field: str
) -> None:
    # The schema declares these (buf.validate); the boundary refuses them before a session sees them.
    with pytest.raises(GRPCError) as raised:
        RequestValidator().check(request_)
    assert raised.value.status is Status.INVALID_ARGUMENT
    assert [violation.field for violation in raised.value.details[0].field_violations] == [field]


async def test_a_chat_message_with_neither_content_nor_files_names_the_content(store: MessageStore) -> None:
    # What no schema rule can say (content or files) stays with the session.
    session = ChatSession(store, ConversationHub())
    await session.apply(join("ann"))
    with pytest.raises(InvalidArgument) as raised:
        await session.apply(send("a-1", "ann", content=""))
    assert raised.value.field == "send.content"


def test_presence_has_two_states() -> None:
    assert [state.name for state in Presence] == ["JOINED", "LEFT"]


async def test_events_name_their_conversation(store: MessageStore) -> None:
    ann, bo, _ = await two_in_a_room(store)
    await bo.apply(
        pb.ChatStreamRequest(typing=pb.ChatTyping(conversation_id="room", user_id="bo", typing=True))
    )
    await bo.apply(pb.ChatStreamRequest(leave=pb.ChatLeave(conversation_id="room")))
    await ann.apply(join("ann", "hall"))
    told = ann.listener.pending()
    assert [type(event).__name__ for event in told] == ["Typing", "PresenceChange"]
    assert all(event.conversation_id == "room" for event in told)
    cy = ChatSession(store, ann.hub)
    await cy.apply(join("cy", "hall"))
    [joined] = ann.listener.pending()
    assert isinstance(joined, PresenceChange) and joined.conversation_id == "hall"


async def test_leaving_a_room_never_joined_blames_the_leave_request(store: MessageStore) -> None:
    with pytest.raises(FailedPrecondition) as raised:
        await ChatSession(store, ConversationHub()).apply(
            pb.ChatStreamRequest(leave=pb.ChatLeave(conversation_id="x"))
        )
    assert raised.value.field == "leave.conversation_id"


async def test_typing_in_a_room_not_joined_blames_the_typing_request(store: MessageStore) -> None:
    ann, _, _ = await two_in_a_room(store)
    with pytest.raises(FailedPrecondition, match="join conversation 'hall' on this stream first") as raised:
        await ann.apply(pb.ChatStreamRequest(typing=pb.ChatTyping(conversation_id="hall", user_id="ann")))
    assert raised.value.field == "typing.conversation_id"


async def test_an_authenticated_caller_joins_as_themselves_only(store: MessageStore) -> None:
    session = ChatSession(store, ConversationHub())
    token = bind_identity(Identity("ann", IdentityKind.USER))
    try:
        with pytest.raises(PermissionDenied, match="the caller 'ann' may not act as another user") as raised:
            await session.apply(join("bo"))
        assert raised.value.field == "join.user_id"
        assert session.members == {}
        # join() itself holds the rule too, for a caller that skips admit_join.
        with pytest.raises(PermissionDenied) as direct:
            session.join("room", "bo")
        assert direct.value.field == "join.user_id"
        assert session.members == {}
        await session.apply(join("ann"))
    finally:
        unbind_identity(token)
    assert session.members == {"room": "ann"}


async def test_a_stream_joins_at_most_a_bounded_number_of_conversations(store: MessageStore) -> None:
    """One stream cannot subscribe itself to unbounded conversations (each join holds a listener)."""
    hub = ConversationHub()
    session = ChatSession(store, hub)
    for index in range(MAX_JOINED):
        await session.apply(join("u-1", conversation=f"c-{index}"))
    with pytest.raises(ResourceExhausted) as refused:
        await session.apply(join("u-1", conversation="one-too-many"))
    assert refused.value.field == "join.conversation_id"
    assert len(session.members) == MAX_JOINED
    await session.apply(join("u-1", conversation="c-0"))  # rejoining a joined one is no new join
    session.close()


@contextmanager
def calling_as(identity: Identity) -> Iterator[None]:
    token = bind_identity(identity)
    try:
        yield
    finally:
        unbind_identity(token)


async def test_with_membership_rules_only_members_join_and_a_removed_member_can_no_longer_send(
    tmp_path: Path,
) -> None:
    """The README's table: a join or a post needs membership of an existing conversation (NOT_FOUND
    naming the request's field otherwise); a conversation nobody made yet is made by its first writer;
    membership is checked again on every send, so a removal ends posting on a stream joined before."""
    database = Database(tmp_path / "rules.db")
    await database.open([*MESSAGE_MIGRATIONS, *CONVERSATION_MIGRATIONS])
    try:
        conversations = ConversationStore(database)
        await conversations.create("c-1", "ann", ["bo"])
        store, hub, access = MessageStore(database), ConversationHub(), ConversationAccess(conversations)
        cy, bo = ChatSession(store, hub, access), ChatSession(store, hub, access)
        with calling_as(Identity("cy", IdentityKind.USER)):
            with pytest.raises(NotFound) as outsider:
                await cy.apply(join("cy", "c-1"))
            assert (outsider.value.field, outsider.value.message) == (
                "join.conversation_id",
                "conversation 'c-1' not found",
            )
            assert cy.members == {}
            await cy.apply(join("cy", "c-new"))
        assert await conversations.is_member("c-new", "cy")
        with calling_as(Identity("bo", IdentityKind.USER)):
            await bo.apply(join("bo", "c-1"))
            await bo.apply(send("b-1", "bo", conversation="c-1"))
            assert heard(bo.listener) == [("message", "b-1", "1")]
            assert await conversations.remove("c-1", "bo", by="ann")
            with pytest.raises(NotFound) as removed:
                await bo.apply(send("b-2", "bo", conversation="c-1"))
        assert (removed.value.field, removed.value.message) == (
            "send.conversation_id",
            "conversation 'c-1' not found",
        )
        assert heard(bo.listener) == []
        assert [message.idempotency_key for message in await store.after("c-1", 0, 10)] == ["b-1"]
    finally:
        await database.close()


async def test_joins_and_sends_are_charged_to_the_callers_budgets(store: MessageStore) -> None:
    """Each join and each message stored costs one unit of the caller's work budget (ratelimit.Work)."""
    spent = Limit(rate=0.001, burst=1)  # one unit, then nothing for a thousand seconds
    limiter = RateLimiter(RateLimitConfig(work={"joins": spent, "messages": spent}))
    session = ChatSession(store, ConversationHub())
    token = bind_meter(Meter(limiter, "user:ann", "/chat.v1.MessageService/ChatStream"))
    try:
        await session.apply(join("ann"))
        with pytest.raises(GRPCError, match="joins budget is spent") as joins:
            await session.apply(join("ann", "hall"))
        await session.apply(send("a-1", "ann"))
        with pytest.raises(GRPCError, match="messages budget is spent") as messages:
            await session.apply(send("a-2", "ann"))
    finally:
        unbind_meter(token)
    assert joins.value.status is messages.value.status is Status.RESOURCE_EXHAUSTED
    assert session.members == {"room": "ann"}
    assert heard(session.listener) == [("message", "a-1", "1")]
