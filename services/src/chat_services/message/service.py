"""MessageService handlers: thin, over the message store and the conversation hub."""

from __future__ import annotations

import asyncio
from collections import OrderedDict

from grpclib.const import Status
from grpclib.exceptions import GRPCError
from grpclib.server import Stream

from chat.v1 import message_service_grpc, message_service_pb2
from chat.v1.message_service_pb2 import (
    ChatStreamRequest,
    ChatStreamResponse,
    EditMessageRequest,
    EditMessageResponse,
    GetMessageRequest,
    GetMessageResponse,
    ListMessagesRequest,
    ListMessagesResponse,
    SendMessagesRequest,
    SendMessagesResponse,
    StreamMessagesRequest,
    StreamMessagesResponse,
)
from chat_services.budget import MemoryBudget
from chat_services.errors import InvalidArgument, ResourceExhausted, grpc_status
from chat_services.flow import send_when_read
from chat_services.framing import one_request
from chat_services.lifecycle import Lifecycle
from chat_services.message import wire
from chat_services.message.chat import ChatSession
from chat_services.message.hub import ConversationHub, Event, Listener
from chat_services.message.model import Draft, StoredMessage
from chat_services.message.store import MessageStore, MessageView, missing_message
from chat_services.pagination import decode_token, encode_token, page_size, position_after
from chat_services.security.access import ConversationAccess
from chat_services.security.identity import check_acting_as, current_identity
from chat_services.security.meter import charge
from chat_services.security.ratelimit import Work

REPLAY_BATCH = 500
SEND_BATCH_LIMIT = 1000  # messages per SendMessages call, all stored in one transaction
FOLLOWER_TIMEOUT = 60.0
HANDED_RESPONSES = 256  # responses kept for followers still to be handed the same message
_FELL_BEHIND = "this chat stream fell too far behind; reconnect"
_SHUTTING_DOWN = "the server is shutting down; reconnect to another instance"


class MessageService(message_service_grpc.MessageServiceBase):
    """Stores and reads messages; fans new ones out to live listeners."""

    def __init__(
        self,
        store: MessageStore,
        hub: ConversationHub,
        lifecycle: Lifecycle,
        access: ConversationAccess,
        *,
        follower_timeout: float = FOLLOWER_TIMEOUT,
        budget: MemoryBudget | None = None,
    ) -> None:
        self.store = store
        self.hub = hub
        self.lifecycle = lifecycle
        self.access = access
        self.follower_timeout = follower_timeout  # seconds a StreamMessages client may leave a message unread
        # Recently handed-over messages as responses, shared by followers (never mutated once built).
        self._responses: OrderedDict[tuple[str, bool], StreamMessagesResponse] = OrderedDict()
        self.budget = budget or MemoryBudget()  # request bytes SendMessages calls may hold

    async def GetMessage(self, stream: Stream[GetMessageRequest, GetMessageResponse]) -> None:
        request = await one_request(stream)
        with grpc_status():
            # A message of a conversation the caller may not read is as missing as one never
            # stored; membership is read in the same trip to the database as the message.
            view = await self.store.view(
                request.message_id,
                include_user=request.include_user,
                include_files=request.include_files,
                admit=self.access.reader_rule(hidden=missing_message(request.message_id)),
            )
            [message] = _wire(view, request.include_files)
        await stream.send_message(GetMessageResponse(message=message))

    async def ListMessages(self, stream: Stream[ListMessagesRequest, ListMessagesResponse]) -> None:
        request = await one_request(stream)
        with grpc_status():
            conversation_id = request.conversation_id
            await self.access.require_member(conversation_id)
            size = page_size(request.page.page_size)
            after = 0
            if request.page.page_token:
                position = decode_token(request.page.page_token, scope={"conversation": conversation_id})
                after = position_after(position.get("after"))
            view = await self.store.view_after(
                conversation_id,
                after,
                size + 1,
                include_user=request.include_user,
                include_files=request.include_files,
            )
            # A conversation without messages is an empty page, not NOT_FOUND. With
            # authentication on, one the caller is not a member of (or that nobody made)
            # was refused above; an open server lists an unknown one as empty.
            found = view.messages
            page = found[:size]
            messages = _wire(MessageView(page, view.profiles), request.include_files)
        response = ListMessagesResponse(messages=messages)
        response.page.SetInParent()  # always present, so clients need not check for None
        if len(found) > size:
            response.page.next_page_token = encode_token(
                {"conversation": conversation_id, "after": page[-1].sequence}
            )
        await stream.send_message(response)

    async def StreamMessages(self, stream: Stream[StreamMessagesRequest, StreamMessagesResponse]) -> None:
        request = await one_request(stream)
        conversation_id = request.conversation_id
        with grpc_status():
            await self.access.require_member(conversation_id)
        listener = Listener()
        if request.follow:
            # Subscribe before the replay, so nothing stored in between is missed.
            self.hub.subscribe(conversation_id, listener)
        try:
            # Headers now: the call is accepted (a gateway answers 200 only then), even when
            # nothing is stored yet and the first message is a live one.
            await stream.send_initial_metadata()
            last = await self._replay(stream, request, request.after_sequence)
            while request.follow:
                event = await self.lifecycle.until_stopping(listener.next())
                if event is None and self.lifecycle.draining:
                    raise _resume_later(last)
                handed = [] if event is None else [event, *listener.pending()]
                last = await self._hand_on(stream, request, handed, last)
                if listener.overflowed:
                    # Cut off for falling behind: the store has everything, so take a fresh
                    # listener and catch up from it instead of failing the stream.
                    self.hub.unsubscribe(conversation_id, listener)
                    listener = Listener()
                    self.hub.subscribe(conversation_id, listener)
                    last = await self._replay(stream, request, last)
        finally:
            self.hub.unsubscribe(conversation_id, listener)

    async def _hand_on(
        self,
        stream: Stream[StreamMessagesRequest, StreamMessagesResponse],
        request: StreamMessagesRequest,
        events: list[Event],
        last: int,
    ) -> int:
        """Send the messages the hub handed over, as stored; return the last sequence sent.

        Sequences of a conversation have no holes, so a message that is not the next one
        means an earlier one has not been handed over yet (its sender has not published
        it): the store has it, and catching up from the store sends both, in order.
        """
        messages = [e for e in events if isinstance(e, StoredMessage) and e.sequence > last]
        if not messages:
            return last
        # Authors' profiles are not part of a stored message: one read for the whole batch.
        profiles = (
            await self.store.profiles([m.author_id for m in messages]) if request.include_user else None
        )
        for message in messages:
            if message.sequence <= last:
                continue  # sent by a catch-up from the store
            if message.sequence != last + 1:
                last = await self._replay(stream, request, last)
                continue
            if profiles is None:
                response = self._handed_response(message, request.include_files)
            else:
                wired = wire.message(message, profiles=profiles, include_files=request.include_files)
                response = StreamMessagesResponse(message=wired)
            await self._send(stream, response, last)
            last = message.sequence
        return last

    async def _replay(
        self,
        stream: Stream[StreamMessagesRequest, StreamMessagesResponse],
        request: StreamMessagesRequest,
        last: int,
    ) -> int:
        """Send every stored message after ``last``; return the last sequence sent."""
        while True:
            view = await self.store.view_after(
                request.conversation_id,
                last,
                REPLAY_BATCH,
                include_user=request.include_user,
                include_files=request.include_files,
            )
            for message in _wire(view, request.include_files):
                await self._send(stream, StreamMessagesResponse(message=message), last)
                last = message.sequence
            if len(view.messages) < REPLAY_BATCH:
                return last

    def _handed_response(self, message: StoredMessage, include_files: bool) -> StreamMessagesResponse:
        """The response for a handed-over message, built once for every follower that wants the same."""
        key = (message.id, include_files)
        response = self._responses.get(key)
        if response is None:
            response = StreamMessagesResponse(message=wire.message(message, include_files=include_files))
            self._responses[key] = response
            if len(self._responses) > HANDED_RESPONSES:
                self._responses.popitem(last=False)
        return response

    async def _send(
        self,
        stream: Stream[StreamMessagesRequest, StreamMessagesResponse],
        response: StreamMessagesResponse,
        last: int,
    ) -> None:
        """Send one message; a client that leaves it unread too long is ended, told where to resume."""
        if not await send_when_read(stream, response, self.follower_timeout):
            raise GRPCError(
                Status.RESOURCE_EXHAUSTED,
                f"this stream left messages unread for {self.follower_timeout:g} s;"
                f" resume with after_sequence={last}",
            )

    async def SendMessages(self, stream: Stream[SendMessagesRequest, SendMessagesResponse]) -> None:
        # The call's bytes stay held until its reply is sent: the reply echoes every message.
        with grpc_status(), self.budget.call("SendMessages") as held:
            drafts: list[Draft] = []
            async for request in stream:
                if len(drafts) == SEND_BATCH_LIMIT:
                    raise ResourceExhausted(
                        f"a SendMessages call stores at most {SEND_BATCH_LIMIT} messages; split the batch"
                    )
                held.take(request.ByteSize())
                draft = wire.draft(request.message)
                check_acting_as(draft.author_id, "message.author_id")
                await charge(Work.MESSAGES)  # rate limits count messages, not only calls
                drafts.append(draft)
            results = await self.store.store(drafts, self.access.writer_rule(field="message.conversation_id"))
            del drafts
            for stored, created in results:
                if created:
                    self.hub.publish(stored.conversation_id, stored)
            reply = SendMessagesResponse(
                messages=[wire.message(stored, include_files=True) for stored, _ in results],
                created_count=sum(created for _, created in results),
            )
            del results
            await stream.send_message(reply)

    async def EditMessage(self, stream: Stream[EditMessageRequest, EditMessageResponse]) -> None:
        request = await one_request(stream)
        with grpc_status():
            editor_id = _editor(request.editor_id)
            if self.access.acting_user() is not None:
                stored = await self.store.get(request.message_id)
                await self.access.require_member(
                    stored.conversation_id, hidden=missing_message(request.message_id), user=editor_id
                )
            edited = await self.store.edit(request.message_id, editor_id, request.content)
        await stream.send_message(EditMessageResponse(message=wire.message(edited, include_files=True)))

    async def ChatStream(self, stream: Stream[ChatStreamRequest, ChatStreamResponse]) -> None:
        session = ChatSession(self.store, self.hub, self.access)
        reader = asyncio.ensure_future(self._read_chat(stream, session))
        stopping = asyncio.ensure_future(self.lifecycle.stopping.wait())
        next_event = asyncio.ensure_future(session.listener.next())
        try:
            while True:
                await asyncio.wait({next_event, reader, stopping}, return_when=asyncio.FIRST_COMPLETED)
                if next_event.done():
                    event = next_event.result()
                    if event is None:
                        raise GRPCError(Status.RESOURCE_EXHAUSTED, _FELL_BEHIND)
                    await stream.send_message(wire.chat_event(event))
                    next_event = asyncio.ensure_future(session.listener.next())
                elif reader.done():
                    reader.result()  # a bad request ends the stream with its status
                    await self._flush(stream, session.listener)
                    return
                else:
                    raise GRPCError(Status.UNAVAILABLE, _SHUTTING_DOWN)
        finally:
            for task in (reader, stopping, next_event):
                task.cancel()
            session.close()

    async def _read_chat(
        self, stream: Stream[ChatStreamRequest, ChatStreamResponse], session: ChatSession
    ) -> None:
        with grpc_status():
            async for request in stream:
                await session.apply(request)

    async def _flush(self, stream: Stream[ChatStreamRequest, ChatStreamResponse], listener: Listener) -> None:
        """Send what is already queued (acknowledgements of the last sends) before ending."""
        for event in listener.pending():
            await stream.send_message(wire.chat_event(event))


def _wire(view: MessageView, include_files: bool) -> list[message_service_pb2.Message]:
    """The wire messages of a view read in one trip to the store."""
    return [wire.message(m, profiles=view.profiles, include_files=include_files) for m in view.messages]


def _editor(requested: str) -> str:
    """Who edits: the authenticated caller (``editor_id`` may be empty or must match), else ``editor_id``."""
    caller = current_identity()
    if caller is not None and not requested:
        return caller.subject
    if not requested:
        raise InvalidArgument("editor_id is required when the call is not authenticated", field="editor_id")
    check_acting_as(requested, "editor_id")
    return requested


def _resume_later(last: int) -> GRPCError:
    """UNAVAILABLE for a follower of a draining server, saying where to resume elsewhere."""
    return GRPCError(Status.UNAVAILABLE, f"the server is shutting down; resume with after_sequence={last}")
