"""Connection hygiene: silent, idle and surplus connections are closed; the stream cap is announced."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from grpclib.const import Status

from chat.v1 import message_service_pb2
from chat_services.config import ServiceConfig
from chat_services.server import App, build_app

from .conftest import make_config
from .fuzz.rawh2 import RawConnection, frame

GET_MESSAGE = "/chat.v1.MessageService/GetMessage"
GET_REQUEST = frame(message_service_pb2.GetMessageRequest(message_id="none").SerializeToString())
CLOSED_WITHIN = 10.0  # a bound on waiting for the server to close, not a speed target


@pytest.fixture
async def strict_app(tmp_path: Path) -> AsyncIterator[App]:
    """A server with short handshake and idle timeouts and a cap of two streams per connection."""
    async with started(
        make_config(tmp_path, handshake_timeout=0.2, idle_timeout=0.3, max_concurrent_streams=2)
    ) as app:
        yield app


@pytest.fixture
async def capped_app(tmp_path: Path) -> AsyncIterator[App]:
    """A server that holds at most three connections (and no short timeouts)."""
    async with started(make_config(tmp_path, max_connections=3)) as app:
        yield app


@asynccontextmanager
async def started(config: ServiceConfig) -> AsyncIterator[App]:
    built = await build_app(config)
    await built.start()
    try:
        yield built
    finally:
        await built.shutdown()


async def closed_by_server(reader: asyncio.StreamReader) -> bool:
    """True once the server closes the connection (EOF), reading and dropping anything it sends."""

    async def until_eof() -> None:
        while await reader.read(65536):
            pass

    await asyncio.wait_for(until_eof(), CLOSED_WITHIN)
    return True


async def test_a_connection_that_never_sends_a_byte_is_closed(strict_app: App) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", strict_app.port)
    try:
        assert await closed_by_server(reader)
    finally:
        writer.close()


async def test_a_connection_with_a_partial_preface_is_closed(strict_app: App) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", strict_app.port)
    writer.write(b"PRI * HTTP/2.0\r\n")
    try:
        assert await closed_by_server(reader)
    finally:
        writer.close()


async def test_an_idle_connection_gets_goaway_and_is_closed(strict_app: App) -> None:
    raw = await RawConnection.open(strict_app.port)
    try:
        reply = await raw.call(GET_MESSAGE, GET_REQUEST)
        assert reply.status == Status.NOT_FOUND.value
        await raw.wait_closed(CLOSED_WITHIN)
        assert raw.closed
    finally:
        await raw.close()


async def test_connections_beyond_the_cap_are_closed_and_the_others_keep_working(capped_app: App) -> None:
    kept = [await RawConnection.open(capped_app.port) for _ in range(3)]
    for raw in kept:  # each handshake is done, so each connection is counted before the next
        await raw.call(GET_MESSAGE, GET_REQUEST)
    surplus = await RawConnection.open(capped_app.port)
    try:
        await surplus.wait_closed(CLOSED_WITHIN)
        for raw in kept:
            reply = await raw.call(GET_MESSAGE, GET_REQUEST)
            assert reply.status == Status.NOT_FOUND.value
    finally:
        for raw in [*kept, surplus]:
            await raw.close()


async def test_the_stream_cap_is_announced_in_settings(strict_app: App) -> None:
    raw = await RawConnection.open(strict_app.port)
    try:
        await raw.call(GET_MESSAGE, GET_REQUEST)
        assert raw.h2.remote_settings.max_concurrent_streams == 2
    finally:
        await raw.close()
