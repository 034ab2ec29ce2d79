"""One ChatStream session: the conversations it joined and what its requests do."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from chat.v1 import message_service_pb2
from chat_services.errors import FailedPrecondition, InvalidArgument, ResourceExhausted, ServiceError, echo
from chat_services.message import wire
from chat_services.message.hub import ConversationHub, Listener, Presence, PresenceChange, Typing
from chat_services.message.store import MessageStore
from chat_services.security.access import ConversationAccess
from chat_services.security.identity import check_acting_as
from chat_services.security.meter import charge
from chat_services.security.ratelimit import Work

MAX_JOINED = 100  # conversations one chat stream may have joined at once


@contextmanager
def _fields_under(request_field: str) -> Iterator[None]:
    """Re-aim the field paths of message checks (``message.content``) at ``send.content`` and the like."""
    try:
        yield
    except ServiceError as error:
        if error.field is None or not error.field.startswith("message."):
            raise
        raise type(error)(
            error.message, field=f"{request_field}.{error.field.removeprefix('message.')}"
        ) from error


class ChatSession:
    """Applies a client's chat requests; every event for the client arrives on ``listener``."""

    def __init__(
        self, store: MessageStore, hub: ConversationHub, access: ConversationAccess | None = None
    ) -> None:
        self.store = store
        self.hub = hub
        self.access = access  # None: no membership rules (the session's own tests)
        self.listener = Listener()
        self.members: dict[str, str] = {}  # joined conversation → the user who joined it

    async def apply(self, request: message_service_pb2.ChatStreamRequest) -> None:
        """Carry out one request; a bad one raises a ``ServiceError`` naming the field."""
        kind = request.WhichOneof("event")
        if kind == "join":
            await self.admit_join(request.join.conversation_id, request.join.user_id)
            self.join(request.join.conversation_id, request.join.user_id)
        elif kind == "send":
            await self.send(request.send)
        elif kind == "typing":
            self.typing(request.typing)
        elif kind == "leave":
            self.leave(request.leave.conversation_id)

    async def admit_join(self, conversation_id: str, user_id: str) -> None:
        """Refuse a join by another user, past the stream's limit, or to a conversation the user is not in."""
        check_acting_as(user_id, "join.user_id")
        if conversation_id not in self.members and len(self.members) >= MAX_JOINED:
            raise ResourceExhausted(
                f"a chat stream joins at most {MAX_JOINED} conversations; leave one first",
                field="join.conversation_id",
            )
        await charge(Work.JOINS)
        if self.access is not None:
            await self.access.admit_writer(conversation_id, user_id, field="join.conversation_id")

    def join(self, conversation_id: str, user_id: str) -> None:
        check_acting_as(user_id, "join.user_id")
        previous = self.members.get(conversation_id)
        if previous == user_id:
            return
        if previous is not None:
            self.leave(conversation_id)  # one user per conversation per stream: the old one leaves
        self.members[conversation_id] = user_id
        self.hub.subscribe(conversation_id, self.listener)
        self.hub.publish(
            conversation_id, PresenceChange(conversation_id, user_id, Presence.JOINED), skip=self.listener
        )

    async def send(self, new: message_service_pb2.NewMessage) -> None:
        with _fields_under("send"):
            draft = wire.draft(new)
            self._member(draft.conversation_id, "send.conversation_id", draft.author_id, "send.author_id")
            await charge(Work.MESSAGES)
            # Still a member: removal ends the right to post on streams joined before it.
            admit = None if self.access is None else self.access.writer_rule(field="message.conversation_id")
            [(stored, created)] = await self.store.store([draft], admit)
        if created:
            self.hub.publish(stored.conversation_id, stored)
        else:
            # A retried send is acknowledged to its sender only; the others saw it the first time.
            self.listener.deliver(stored)

    def typing(self, typing: message_service_pb2.ChatTyping) -> None:
        self._member(typing.conversation_id, "typing.conversation_id", typing.user_id, "typing.user_id")
        self.hub.publish(
            typing.conversation_id,
            Typing(typing.conversation_id, typing.user_id, typing.typing),
            skip=self.listener,
        )

    def leave(self, conversation_id: str) -> None:
        user_id = self.members.pop(conversation_id, None)
        if user_id is None:
            raise FailedPrecondition(
                f"this stream has not joined conversation {echo(conversation_id)}",
                field="leave.conversation_id",
            )
        self.hub.unsubscribe(conversation_id, self.listener)
        self.hub.publish(conversation_id, PresenceChange(conversation_id, user_id, Presence.LEFT))

    def close(self) -> None:
        """Leave every joined conversation (the stream ended)."""
        for conversation_id in list(self.members):
            self.leave(conversation_id)

    def _member(self, conversation_id: str, conversation_field: str, user_id: str, user_field: str) -> None:
        joined_as = self.members.get(conversation_id)
        if joined_as is None:
            raise FailedPrecondition(
                f"join conversation {echo(conversation_id)} on this stream first", field=conversation_field
            )
        if user_id != joined_as:
            raise InvalidArgument(
                f"this stream joined {echo(conversation_id)} as {echo(joined_as)}, not {echo(user_id)}",
                field=user_field,
            )
