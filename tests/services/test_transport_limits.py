"""Limits measured, not only their status: a compression bomb's memory stays near the message limit,
a connection's byte budget is given back call after call and admits exactly its limit, GOAWAY
reaches the client before the socket closes, and a page holds at most the maximum page size."""

from __future__ import annotations

import asyncio
import gzip
import logging
import struct
import tracemalloc
from collections.abc import AsyncIterator
from pathlib import Path

import h2.errors
import pytest
from grpclib.const import Status

from chat.v1 import common_pb2, message_service_pb2
from chat.v1.message_service_grpc import MessageServiceStub
from chat_services.config import ServiceConfig
from chat_services.framing import ConnectionBudget
from chat_services.hygiene import BudgetedHandler, TransportLimits
from chat_services.pagination import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, page_size
from chat_services.server import App

from .clients import channel, until
from .conftest import make_config
from .fuzz.rawh2 import RawConnection, Reply, frame
from .test_hygiene import CHAT_STREAM, CLOSED_WITHIN, GET_MESSAGE, GET_REQUEST, closed_by_server, started

MESSAGE_LIMIT = 64 * 1024  # the bomb server's max_message_bytes: small, so a bomb dwarfs it
BOMB_INFLATED = 64 * 1024 * 1024  # what the bomb would inflate to: a thousand times the limit
SMALL_MESSAGE_LIMIT = 1000  # the budget server's max_message_bytes
BUFFER_LIMIT = 1500  # and the request bytes one of its connections may have in flight


JOIN = message_service_pb2.ChatStreamRequest(
    join=message_service_pb2.ChatJoin(conversation_id="c-1", user_id="u-1")
).SerializeToString()
# What the server answers a GetMessageRequest it read whole: its id is too long for the rules.
READ_WHOLE = "message_id: value length must be at most 64 characters"


def get_request_of(size: int) -> bytes:
    """A GetMessageRequest of exactly ``size`` bytes (128 <= size - 3 < 16384), read whole or not at all."""
    body = message_service_pb2.GetMessageRequest(message_id="m" * (size - 3)).SerializeToString()
    assert len(body) == size
    return body


def budget_of(app: App) -> ConnectionBudget:
    """The byte budget of the server's one open connection."""
    [protocol] = list(app.server._protocols)
    handler = protocol.handler
    assert isinstance(handler, BudgetedHandler)
    return handler.budget


@pytest.fixture
async def small_app(tmp_path: Path) -> AsyncIterator[App]:
    """Messages of at most 1000 bytes, 1500 in flight per connection, idle connections closed at 0.5 s."""
    config = make_config(
        tmp_path,
        max_message_bytes=SMALL_MESSAGE_LIMIT,
        connection_buffer_bytes=BUFFER_LIMIT,
        handshake_timeout=0.5,
        idle_timeout=0.5,
    )
    async with started(config) as app:
        yield app


async def test_a_compression_bomb_never_inflates_past_the_message_limit_in_memory(tmp_path: Path) -> None:
    bomb = gzip.compress(b"\x0a" + b"\x00" * BOMB_INFLATED)
    assert len(bomb) < MESSAGE_LIMIT
    async with started(make_config(tmp_path, max_message_bytes=MESSAGE_LIMIT)) as app:
        reply, used = await traced_call(app.port, frame(bomb, compressed=True))
    assert reply.status == Status.RESOURCE_EXHAUSTED.value, reply
    # The body, the first limit's worth inflated, and the server's own work: a few limits, not 64 MiB.
    assert used < 16 * MESSAGE_LIMIT, f"peak {used} bytes for a {MESSAGE_LIMIT}-byte limit"


async def traced_call(port: int, body: bytes) -> tuple[Reply, int]:
    """One gzip-encoded GetMessage, and the most memory Python held meanwhile beyond what it held before."""
    raw = await RawConnection.open(port)
    try:
        tracemalloc.start()
        try:
            before, _ = tracemalloc.get_traced_memory()
            reply = await raw.call(GET_MESSAGE, body, extra_headers=(("grpc-encoding", "gzip"),))
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    finally:
        await raw.close()
    return reply, peak - before


async def test_the_byte_budget_is_given_back_after_every_kind_of_call(small_app: App) -> None:
    """Hundreds of calls on one connection, served, refused and malformed, each nearly the budget."""
    whole = frame(get_request_of(1000))
    oversized = frame(get_request_of(1000), length=SMALL_MESSAGE_LIMIT + 1)
    bomb = frame(gzip.compress(b"\x0a" + b"\x00" * (2 * SMALL_MESSAGE_LIMIT)), compressed=True)
    raw = await RawConnection.open(small_app.port)
    try:
        for _ in range(50):
            served = await raw.call(GET_MESSAGE, whole)
            assert served.status == Status.INVALID_ARGUMENT.value and READ_WHOLE in served.message, served
            cut = await raw.call(GET_MESSAGE, whole[:600])  # ends inside the message
            assert cut.status == Status.INVALID_ARGUMENT.value and READ_WHOLE not in cut.message, cut
            too_big = await raw.call(GET_MESSAGE, oversized)
            assert too_big.status == Status.RESOURCE_EXHAUSTED.value, too_big
            inflated = await raw.call(GET_MESSAGE, bomb, extra_headers=(("grpc-encoding", "gzip"),))
            assert inflated.status == Status.RESOURCE_EXHAUSTED.value, inflated
        assert budget_of(small_app).in_flight == 0
    finally:
        await raw.close()


async def test_two_calls_that_fill_the_budget_exactly_are_both_read(small_app: App) -> None:
    half = BUFFER_LIMIT // 2
    raw = await RawConnection.open(small_app.port)
    try:
        first = raw.start_call(GET_MESSAGE)
        body = frame(get_request_of(half))
        await raw.send_body(first, body[:100], end=False)  # reserved, still arriving
        second = await raw.call(GET_MESSAGE, frame(get_request_of(half)))
        assert READ_WHOLE in second.message, second
        over = await raw.call(GET_MESSAGE, frame(get_request_of(half + 1)))
        assert over.status == Status.RESOURCE_EXHAUSTED.value, over
        assert f"limit {BUFFER_LIMIT}" in over.message
        await raw.send_body(first, body[100:])
        finished = await raw.wait(first)
        assert READ_WHOLE in finished.message, finished
        assert budget_of(small_app).in_flight == 0
    finally:
        await raw.close()


async def test_an_idle_connection_is_told_goaway_before_it_is_closed(small_app: App) -> None:
    raw = await RawConnection.open(small_app.port)
    try:
        reply = await raw.call(GET_MESSAGE, GET_REQUEST)
        assert reply.status == Status.NOT_FOUND.value
        await raw.wait_closed(CLOSED_WITHIN)
        assert raw.goaway is not None, "the socket closed without a GOAWAY"
        assert raw.goaway.error_code == h2.errors.ErrorCodes.NO_ERROR
    finally:
        await raw.close()


async def test_a_connection_past_the_cap_is_told_goaway(tmp_path: Path) -> None:
    async with started(make_config(tmp_path, max_connections=1, health_connections=0)) as app:
        kept = await RawConnection.open(app.port)
        try:
            assert (await kept.call(GET_MESSAGE, GET_REQUEST)).status == Status.NOT_FOUND.value
            surplus = await RawConnection.open(app.port)
            try:
                await surplus.wait_closed(CLOSED_WITHIN)
                assert surplus.goaway is not None, "the surplus socket closed without a GOAWAY"
            finally:
                await surplus.close()
        finally:
            await kept.close()


@pytest.mark.parametrize(
    ("requested", "size"),
    [(0, DEFAULT_PAGE_SIZE), (1, 1), (999, 999), (1000, 1000), (1001, 1000), (2**31 - 1, 1000)],
)
def test_page_sizes_are_the_default_the_request_or_the_cap(requested: int, size: int) -> None:
    """The schema's words: 0 means 50, values above 1000 are treated as 1000."""
    assert (DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE) == (50, 1000)
    assert page_size(requested) == size


async def test_a_page_never_holds_more_than_the_cap(app: App) -> None:
    def new(index: int) -> message_service_pb2.SendMessagesRequest:
        return message_service_pb2.SendMessagesRequest(
            message=message_service_pb2.NewMessage(
                idempotency_key=f"k-{index}", conversation_id="c-cap", author_id="ada", content="x"
            )
        )

    async with channel(app.port) as opened:
        stub = MessageServiceStub(opened)
        await stub.SendMessages([new(index) for index in range(1000)])
        await stub.SendMessages([new(1000)])
        page = await stub.ListMessages(
            message_service_pb2.ListMessagesRequest(
                conversation_id="c-cap", page=common_pb2.PageRequest(page_size=5000)
            )
        )
        assert len(page.messages) == MAX_PAGE_SIZE
        assert page.page.next_page_token
        rest = await stub.ListMessages(
            message_service_pb2.ListMessagesRequest(
                conversation_id="c-cap",
                page=common_pb2.PageRequest(page_size=5000, page_token=page.page.next_page_token),
            )
        )
        assert len(rest.messages) == 1 and not rest.page.next_page_token


async def test_idle_and_handshake_timeouts_are_logged_with_the_peer(
    small_app: App, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="chat_services"):
        raw = await RawConnection.open(small_app.port)
        silent_reader, silent = await asyncio.open_connection("127.0.0.1", small_app.port)
        try:
            await raw.call(GET_MESSAGE, GET_REQUEST)
            await raw.wait_closed(CLOSED_WITHIN)
            assert await closed_by_server(silent_reader)
        finally:
            await raw.close()
            silent.close()
    logged = {record.getMessage(): record for record in caplog.records}
    for message in ("idle timeout", "handshake timeout"):
        assert message in logged, sorted(logged)
        assert getattr(logged[message], "peer", None) is not None


async def test_a_connection_idle_after_its_last_call_ended_is_closed(small_app: App) -> None:
    """An open call holds the connection past the idle timeout; once it ends, the idle time runs."""
    idle = await RawConnection.open(small_app.port)
    busy = await RawConnection.open(small_app.port)
    try:
        await idle.call(GET_MESSAGE, GET_REQUEST)
        stream_id = busy.start_call(CHAT_STREAM)
        await busy.send_body(stream_id, frame(JOIN), end=False)
        await idle.wait_closed(CLOSED_WITHIN)  # the busy one has been quiet as long
        assert not busy.closed
        await busy.send_body(stream_id, b"", end=True)
        assert (await busy.wait(stream_id, CLOSED_WITHIN)).status == Status.OK.value
        await busy.wait_closed(CLOSED_WITHIN)
        assert busy.goaway is not None
    finally:
        await idle.close()
        await busy.close()


async def test_a_closed_connection_gives_back_its_seat_and_its_calls_table(tmp_path: Path) -> None:
    async with started(make_config(tmp_path, max_connections=1, health_connections=0)) as app:
        for _ in range(3):  # one seat: each connection gets it only if the last one gave it back
            raw = await RawConnection.open(app.port)
            try:
                assert (await raw.call(GET_MESSAGE, GET_REQUEST)).status == Status.NOT_FOUND.value
                for protocol in list(app.server._protocols):  # the closed ones may linger, unreferenced
                    handler = protocol.handler
                    assert isinstance(handler, BudgetedHandler)
                    assert handler.calls == {}  # each call's framing is forgotten when it ends
            finally:
                await raw.close()
            await until(lambda: app.server.admission.open_connections == 0, timeout=CLOSED_WITHIN)


async def test_an_unknown_frame_type_is_ignored_and_logged(
    small_app: App, caplog: pytest.LogCaptureFixture
) -> None:
    """RFC 9113 §4.1: implementations must ignore frames of unknown types."""
    raw = await RawConnection.open(small_app.port)
    try:
        with caplog.at_level(logging.DEBUG, logger="chat_services"):
            # A 3-byte frame of type 0xFA on stream 0: length (24 bits), type, flags, stream id, payload.
            await raw.write_raw(struct.pack(">I", 3)[1:] + bytes([0xFA, 0]) + struct.pack(">I", 0) + b"abc")
            reply = await raw.call(GET_MESSAGE, GET_REQUEST)
        assert reply.status == Status.NOT_FOUND.value, reply
        assert not raw.closed
    finally:
        await raw.close()
    ignored = [r for r in caplog.records if r.getMessage() == "ignored HTTP/2 event"]
    assert [getattr(r, "event", None) for r in ignored] == ["UnknownFrameReceived"]


def test_grpclib_pings_only_busy_connections_with_the_configured_timeout_and_windows() -> None:
    """Keepalive pings go out only while calls run (an idle connection is the idle timeout's to
    close, not kept up by pings), with the configured timeout; the windows are the flags'."""
    config = ServiceConfig(
        keepalive_time=7.0, keepalive_timeout=3.0, stream_window_bytes=70_000, connection_window_bytes=140_000
    )
    settings = TransportLimits.from_config(config).grpclib_config()
    assert settings._keepalive_time == 7.0
    assert settings._keepalive_timeout == 3.0
    assert settings._keepalive_permit_without_calls is False
    assert settings.http2_stream_window_size == 70_000
    assert settings.http2_connection_window_size == 140_000
