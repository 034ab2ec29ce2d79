"""A small real MessageService on 127.0.0.1 for client-layer tests."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import grpclib.server
from grpclib.const import Cardinality, Handler, Status
from grpclib.encoding.proto import ProtoStatusDetailsCodec
from grpclib.events import RecvRequest, listen
from grpclib.exceptions import GRPCError

from chat.v1 import message_service_pb2
from chat_sdk.v1 import GetMessageRequest, GetMessageResponse, Message, MessageServiceBase


class FlakyMessages(MessageServiceBase):
    """Answers GetMessage after failing the first ``failures`` calls (with UNAVAILABLE unless ``error``)."""

    def __init__(self, failures: int = 0, error: GRPCError | None = None) -> None:
        self.failures = failures
        self.error = error
        self.calls = 0

    async def get_message(self, message: GetMessageRequest) -> GetMessageResponse:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error or GRPCError(Status.UNAVAILABLE, f"call {self.calls} fails on purpose")
        return GetMessageResponse(message=Message(id=message.message_id, content="ok"))


class Hanging:
    """A GetMessage that reads the request and never answers (a servable with only that method)."""

    def __init__(self) -> None:
        self.received = asyncio.Event()

    async def get_message(self, stream: grpclib.server.Stream[object, object]) -> None:
        await stream.recv_message()
        self.received.set()
        await asyncio.Event().wait()

    def __mapping__(self) -> dict[str, Handler]:
        return {
            "/chat.v1.MessageService/GetMessage": Handler(
                self.get_message,
                Cardinality.UNARY_UNARY,
                message_service_pb2.GetMessageRequest,
                message_service_pb2.GetMessageResponse,
            )
        }


def closed_port() -> int:
    """A port of 127.0.0.1 that was just free and has nothing listening on it."""
    with socket.create_server(("127.0.0.1", 0)) as sock:
        port: int = sock.getsockname()[1]
    return port


@asynccontextmanager
async def serving(
    service: MessageServiceBase,
    seen: list[dict[str, str | bytes]],
    events: list[RecvRequest] | None = None,
    *,
    port: int = 0,
) -> AsyncIterator[int]:
    """Serve ``service`` on ``port`` of 127.0.0.1 (0: an ephemeral one); record each call's metadata."""
    server = grpclib.server.Server([service], status_details_codec=ProtoStatusDetailsCodec())

    async def record(event: RecvRequest) -> None:
        seen.append(dict(event.metadata))
        if events is not None:
            events.append(event)

    listen(server, RecvRequest, record)
    # Bind the socket here, so the port picked is known without grpclib's internals.
    sock = socket.create_server(("127.0.0.1", port))
    port = sock.getsockname()[1]
    await server.start(sock=sock)
    try:
        yield port
    finally:
        server.close()
        await server.wait_closed()
