"""A stand-in for chat-services speaking raw HTTP/2 (h2): it ends calls as grpclib's server never does."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import h2.config
import h2.connection
import h2.events

# What the stand-in does with each request: given the connection and the request's stream
# id, queue frames on the connection (they leave in one write).
Answer = Callable[[h2.connection.H2Connection, int], None]


def reset_at_once(connection: h2.connection.H2Connection, stream_id: int) -> None:
    """RST_STREAM before any response headers."""
    connection.reset_stream(stream_id)


def headers_then_reset(connection: h2.connection.H2Connection, stream_id: int) -> None:
    """Response headers without grpc-status, then RST_STREAM, in one write."""
    connection.send_headers(stream_id, [(":status", "200"), ("content-type", "application/grpc")])
    connection.reset_stream(stream_id)


class _RawUpstream(asyncio.Protocol):
    def __init__(self, answer: Answer) -> None:
        self.answer = answer
        self.h2 = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False))
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.h2.initiate_connection()
        transport.write(self.h2.data_to_send())

    def data_received(self, data: bytes) -> None:
        assert self.transport is not None
        for event in self.h2.receive_data(data):
            if isinstance(event, h2.events.RequestReceived):
                self.answer(self.h2, event.stream_id)
        self.transport.write(self.h2.data_to_send())


@asynccontextmanager
async def raw_upstream(answer: Answer) -> AsyncIterator[int]:
    """Serve the stand-in on a free port of 127.0.0.1; yield the port. Its connections close on exit."""
    protocols: list[_RawUpstream] = []

    def factory() -> _RawUpstream:
        protocols.append(_RawUpstream(answer))
        return protocols[-1]

    server = await asyncio.get_running_loop().create_server(factory, "127.0.0.1", 0)
    try:
        yield int(server.sockets[0].getsockname()[1])
    finally:
        server.close()
        for protocol in protocols:
            if protocol.transport is not None:
                protocol.transport.close()
        await server.wait_closed()
