"""A MessageService written on whatever chat-sdk version is installed: an "old server" peer.

Run in a release's own virtual environment (``python server.py``): it serves on an
ephemeral port of 127.0.0.1, prints ``PORT <n>``, and stops when its stdin closes.
It keeps messages in memory and implements every call kind the way the contract
says, so today's clients can be checked against a server built on an older SDK.
"""

from __future__ import annotations

import asyncio
import datetime
import sys
from collections.abc import AsyncIterator

import grpclib.server
from grpclib.const import Status
from grpclib.exceptions import GRPCError

from chat_sdk import v1


class MemoryMessages(v1.MessageServiceBase):
    """Messages in a dict, idempotent by key, with live fan-out for ChatStream."""

    def __init__(self) -> None:
        self.messages: dict[str, v1.Message] = {}
        self.by_key: dict[str, v1.Message] = {}
        self.listeners: list[asyncio.Queue[v1.Message]] = []

    def _store(self, new: v1.NewMessage) -> tuple[v1.Message, bool]:
        if new.idempotency_key in self.by_key:
            return self.by_key[new.idempotency_key], False
        sequence = 1 + sum(1 for m in self.messages.values() if m.conversation_id == new.conversation_id)
        message = v1.Message(
            id=f"m-{len(self.messages) + 1}",
            conversation_id=new.conversation_id,
            content=new.content,
            author_id=new.author_id,
            sequence=sequence,
            idempotency_key=new.idempotency_key,
            created_at=datetime.datetime.now(datetime.UTC),
        )
        self.messages[message.id] = self.by_key[new.idempotency_key] = message
        for queue in self.listeners:
            queue.put_nowait(message)
        return message, True

    async def get_message(self, message: v1.GetMessageRequest) -> v1.GetMessageResponse:
        if message.message_id not in self.messages:
            raise GRPCError(Status.NOT_FOUND, f"no message {message.message_id}")
        return v1.GetMessageResponse(message=self.messages[message.message_id])

    async def list_messages(self, message: v1.ListMessagesRequest) -> v1.ListMessagesResponse:
        found = [m for m in self.messages.values() if m.conversation_id == message.conversation_id]
        return v1.ListMessagesResponse(messages=found)

    async def stream_messages(
        self, message: v1.StreamMessagesRequest
    ) -> AsyncIterator[v1.StreamMessagesResponse]:
        for stored in self.messages.values():
            if stored.conversation_id == message.conversation_id and stored.sequence > message.after_sequence:
                yield v1.StreamMessagesResponse(message=stored)

    async def send_messages(self, messages: AsyncIterator[v1.SendMessagesRequest]) -> v1.SendMessagesResponse:
        stored, created = [], 0
        async for request in messages:
            assert request.message is not None
            message, new = self._store(request.message)
            stored.append(message)
            created += new
        return v1.SendMessagesResponse(messages=stored, created_count=created)

    if hasattr(v1, "EditMessageRequest"):  # EditMessage arrived in 1.1.0

        async def edit_message(self, message: v1.EditMessageRequest) -> v1.EditMessageResponse:
            stored = self.messages.get(message.message_id)
            if stored is None:
                raise GRPCError(Status.NOT_FOUND, f"no message {message.message_id}")
            if stored.author_id != message.editor_id:
                raise GRPCError(Status.PERMISSION_DENIED, "only the author may edit a message")
            stored.content = message.content
            stored.edited_at = datetime.datetime.now(datetime.UTC)
            return v1.EditMessageResponse(message=stored)

    async def chat_stream(
        self, messages: AsyncIterator[v1.ChatStreamRequest]
    ) -> AsyncIterator[v1.ChatStreamResponse]:
        queue: asyncio.Queue[v1.Message] = asyncio.Queue()
        self.listeners.append(queue)
        try:
            async for request in messages:
                if request.send is not None:
                    self._store(request.send)
                    yield v1.ChatStreamResponse(message=await queue.get())
        finally:
            self.listeners.remove(queue)


async def main() -> None:
    server = grpclib.server.Server([MemoryMessages()])
    await server.start("127.0.0.1", 0)
    assert isinstance(server._server, asyncio.Server)
    print(f"PORT {server._server.sockets[0].getsockname()[1]}", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    server.close()
    await server.wait_closed()


if __name__ == "__main__":
    asyncio.run(main())
