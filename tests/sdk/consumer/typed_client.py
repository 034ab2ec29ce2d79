"""A service author's typed code using both targets of the installed chat-sdk wheel.

Run inside a fresh virtual environment holding only the wheel: it must pass
``mypy --strict`` and, executed, serve and call MessageService on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import datetime

import grpclib.client
import grpclib.server

import chat_sdk
from chat.v1 import common_pb2, message_service_grpc, message_service_pb2
from chat_sdk.schema import descriptor_pool
from chat_sdk.v1 import (
    File,
    GetMessageRequest,
    GetMessageResponse,
    Message,
    MessageServiceBase,
    MessageServiceStub,
    User,
)

CREATED = datetime.datetime(2026, 11, 25, 9, 30, 15, 250_000, tzinfo=datetime.UTC)


class Messages(MessageServiceBase):
    """A one-message MessageService written on the dataclass target."""

    async def get_message(self, message: GetMessageRequest) -> GetMessageResponse:
        found = Message(
            id=message.message_id,
            conversation_id="conv-1",
            content="héllo",
            created_at=CREATED,
            author_id="u-1",
            sequence=1,
        )
        if message.include_user:
            found.author = User(user_id="u-1", display_name="Ada")
        if message.include_files:
            found.files = [File(file_id="f-1", name="a.txt", size_bytes=3)]
        return GetMessageResponse(message=found)


def cross_decode() -> None:
    """Bytes written by one target read back the same in the other."""
    standard = message_service_pb2.Message(id="m-1", content="hi", files=[common_pb2.File(name="x")])
    dataclass = Message.parse(standard.SerializeToString())
    assert dataclass.id == "m-1" and dataclass.files[0].name == "x"
    assert message_service_pb2.Message.FromString(bytes(dataclass)) == standard


async def call_both_ways(port: int) -> None:
    """The dataclass stub and the _pb2 grpclib stub call the same server."""
    async with grpclib.client.Channel("127.0.0.1", port) as channel:
        typed = MessageServiceStub(channel, timeout=5.0)
        reply: GetMessageResponse = await typed.get_message(
            GetMessageRequest(message_id="m-1", include_user=True, include_files=True)
        )
        assert reply.message is not None and reply.message.author is not None
        assert reply.message.author.display_name == "Ada"
        assert reply.message.created_at == CREATED

        standard = message_service_grpc.MessageServiceStub(channel)
        raw: message_service_pb2.GetMessageResponse = await standard.GetMessage(
            message_service_pb2.GetMessageRequest(message_id="m-2"), timeout=5.0
        )
        assert raw.message.id == "m-2" and not raw.message.HasField("author")
        assert raw.message.created_at.ToDatetime(datetime.UTC) == CREATED


async def main() -> None:
    """Serve on an ephemeral port of 127.0.0.1, call it, stop."""
    server = grpclib.server.Server([Messages()])
    await server.start("127.0.0.1", 0)
    assert isinstance(server._server, asyncio.Server)
    port: int = server._server.sockets[0].getsockname()[1]
    try:
        await call_both_ways(port)
    finally:
        server.close()
        await server.wait_closed()


if __name__ == "__main__":
    cross_decode()
    assert descriptor_pool().FindServiceByName("chat.v1.MessageService").methods_by_name["ChatStream"]
    asyncio.run(main())
    print(f"chat-sdk {chat_sdk.__version__}: both targets OK")
