"""Connection hygiene: silent, idle and surplus connections are closed; the stream cap is announced."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import h2.exceptions
import pytest
from grpclib.client import Channel
from grpclib.const import Status
from grpclib.encoding.proto import ProtoStatusDetailsCodec
from grpclib.health.v1.health_grpc import HealthStub
from grpclib.health.v1.health_pb2 import HealthCheckRequest, HealthCheckResponse

from chat.v1 import message_service_pb2
from chat_services.boundary import BoundedProtoCodec
from chat_services.config import ServiceConfig, parse_config
from chat_services.connections import GuardedServer
from chat_services.hygiene import CLOSED_STREAMS_KEPT, GuardedProtocol, TransportLimits
from chat_services.server import App, build_app

from .clients import until
from .conftest import make_config
from .fuzz.rawh2 import RawConnection, frame

GET_MESSAGE = "/chat.v1.MessageService/GetMessage"
CHAT_STREAM = "/chat.v1.MessageService/ChatStream"
GET_REQUEST = frame(message_service_pb2.GetMessageRequest(message_id="none").SerializeToString())
CLOSED_WITHIN = 10.0  # a bound on waiting for the server to close, not a speed target


@pytest.fixture
async def strict_app(tmp_path: Path) -> AsyncIterator[App]:
    """A server with short handshake and idle timeouts and a cap of two streams per connection."""
    async with started(
        make_config(tmp_path, handshake_timeout=1.0, idle_timeout=0.5, max_concurrent_streams=2)
    ) as app:
        yield app


@pytest.fixture
async def capped_app(tmp_path: Path) -> AsyncIterator[App]:
    """A server that holds at most three connections, none for health only (and no short timeouts)."""
    async with started(make_config(tmp_path, max_connections=3, health_connections=0)) as app:
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


def test_each_limit_is_a_flag_and_an_environment_variable() -> None:
    config = parse_config(
        [
            *("--idle-timeout", "5", "--max-connections", "7", "--stream-window-bytes", "65535"),
            *("--health-connections", "3", "--max-connections-per-address", "4"),
        ],
        {"CHAT_SERVICES_KEEPALIVE_TIME": "30", "CHAT_SERVICES_MAX_CONCURRENT_STREAMS": "9"},
    )
    limits = TransportLimits.from_config(config)
    assert (limits.idle_timeout, limits.max_connections, limits.max_concurrent_streams) == (5.0, 7, 9)
    assert (limits.health_connections, limits.max_connections_per_address) == (3, 4)
    grpclib_config = limits.grpclib_config()
    assert grpclib_config._keepalive_time == 30.0
    assert grpclib_config.http2_stream_window_size == 65535


@pytest.mark.parametrize(
    "overrides",
    [
        {"max_connections": 0},
        {"max_connections_per_address": 0},
        {"health_connections": -1},
        {"idle_timeout": 0.0},
        {"stream_window_bytes": 1024},
        {"handshake_timeout": -1.0},
    ],
)
def test_nonsensical_limits_are_refused(overrides: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="must"):
        ServiceConfig(**overrides)  # type: ignore[arg-type]


async def test_a_connection_with_an_open_call_is_not_idle(strict_app: App) -> None:
    idle = await RawConnection.open(strict_app.port)
    busy = await RawConnection.open(strict_app.port)
    try:
        await idle.call(GET_MESSAGE, GET_REQUEST)
        join = message_service_pb2.ChatStreamRequest(
            join=message_service_pb2.ChatJoin(conversation_id="c-1", user_id="u-1")
        ).SerializeToString()
        stream_id = busy.start_call(CHAT_STREAM)
        await busy.send_body(stream_id, frame(join), end=False)
        # Both connections went quiet at the same time; once the idle one is closed, the
        # busy one has been quiet as long, and its open call must have kept it.
        await idle.wait_closed(CLOSED_WITHIN)
        await busy.send_body(stream_id, b"", end=True)
        reply = await busy.wait(stream_id, CLOSED_WITHIN)
        assert reply.status == Status.OK.value, (reply.status, reply.message)
    finally:
        await idle.close()
        await busy.close()


async def test_a_unary_request_that_never_arrives_whole_ends_by_the_request_timeout(tmp_path: Path) -> None:
    async with started(make_config(tmp_path, request_timeout=0.3)) as app:
        raw = await RawConnection.open(app.port)
        try:
            stream_id = raw.start_call(GET_MESSAGE)
            await raw.send_body(stream_id, GET_REQUEST[:-2], end=False)  # and then nothing more
            reply = await raw.wait(stream_id, CLOSED_WITHIN)
            assert reply.status == Status.DEADLINE_EXCEEDED.value, (reply.status, reply.message)
            assert "did not arrive whole within 0.3 s" in reply.message
        finally:
            await raw.close()


async def test_request_bytes_in_flight_on_one_connection_are_bounded(tmp_path: Path) -> None:
    config = make_config(tmp_path, max_message_bytes=1000, connection_buffer_bytes=1500)
    async with started(config) as app:
        raw = await RawConnection.open(app.port)
        try:
            # One write: the server reads the first call's header (reserving 1000 bytes) and
            # waits for its body before it starts the second call, which would need 1000 more.
            first = raw.start_call(GET_MESSAGE)
            raw.h2.send_data(first, frame(b"\x0a", length=1000))
            second = raw.start_call(GET_MESSAGE)
            raw.h2.send_data(second, frame(b"\x0a", length=1000))
            await raw.flush()
            reply = await raw.wait(second, CLOSED_WITHIN)
            assert reply.status == Status.RESOURCE_EXHAUSTED.value, (reply.status, reply.message)
            assert "request bytes in flight (limit 1500)" in reply.message
        finally:
            await raw.close()


async def test_a_connection_with_an_open_call_is_pinged_and_kept_while_it_answers(tmp_path: Path) -> None:
    async with started(make_config(tmp_path, keepalive_time=0.2, keepalive_timeout=5.0)) as app:
        raw = await RawConnection.open(app.port)
        try:
            stream_id = raw.start_call(CHAT_STREAM)
            await raw.send_body(stream_id, b"", end=False)
            await raw.wait_ping(CLOSED_WITHIN)
            assert not raw.closed
            await raw.send_body(stream_id, b"", end=True)
            reply = await raw.wait(stream_id, CLOSED_WITHIN)
            assert reply.status == Status.OK.value, (reply.status, reply.message)
        finally:
            await raw.close()


async def test_asking_an_unstarted_server_for_its_port_is_a_clear_error() -> None:
    server = GuardedServer(
        [],
        codec=BoundedProtoCodec(1024),
        status_details_codec=ProtoStatusDetailsCodec(),
        limits=TransportLimits.from_config(ServiceConfig()),
    )
    with pytest.raises(RuntimeError, match="not started"):
        _ = server.port


HEALTH_CHECK = "/grpc.health.v1.Health/Check"
HEALTH_REQUEST = frame(HealthCheckRequest(service="").SerializeToString())


async def test_idle_connections_at_the_cap_leave_health_reachable_from_a_new_client(tmp_path: Path) -> None:
    # 1,000 idle connections in production; 20 here, with the cap scaled down to match.
    config = make_config(tmp_path, max_connections=20, health_connections=2)
    async with started(config) as app:
        idle = [await RawConnection.open(app.port) for _ in range(20)]
        extra: list[RawConnection] = []
        try:
            for raw in idle:  # each handshake done, so each connection holds its seat
                await raw.call(GET_MESSAGE, GET_REQUEST)
            async with Channel("127.0.0.1", app.port) as channel:
                reply = await HealthStub(channel).Check(HealthCheckRequest(service=""), timeout=CLOSED_WITHIN)
                assert reply.status == HealthCheckResponse.SERVING
            reserve = await RawConnection.open(app.port)
            extra.append(reserve)
            health = await reserve.call(HEALTH_CHECK, HEALTH_REQUEST)
            assert health.status == Status.OK.value, (health.status, health.message)
            refused = await reserve.call(GET_MESSAGE, GET_REQUEST)
            assert refused.status == Status.UNAVAILABLE.value, (refused.status, refused.message)
            assert "for health checks only" in refused.message
            extra.append(await RawConnection.open(app.port))  # the reserve's second seat
            await extra[-1].call(HEALTH_CHECK, HEALTH_REQUEST)
            beyond = await RawConnection.open(app.port)
            extra.append(beyond)
            await beyond.wait_closed(CLOSED_WITHIN)  # cap and reserve full: closed at once
            for raw in idle:  # the connections that hold seats keep working
                reply_raw = await raw.call(GET_MESSAGE, GET_REQUEST)
                assert reply_raw.status == Status.NOT_FOUND.value
        finally:
            for raw in [*idle, *extra]:
                await raw.close()


async def test_connections_beyond_the_per_address_cap_are_closed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with started(make_config(tmp_path, max_connections_per_address=2)) as app:
        kept = [await RawConnection.open(app.port) for _ in range(2)]
        for raw in kept:
            await raw.call(GET_MESSAGE, GET_REQUEST)
        surplus = await RawConnection.open(app.port)
        try:
            await surplus.wait_closed(CLOSED_WITHIN)
            assert surplus.closed
            # The operator is told why, and how many connections were open.
            refusals = [r for r in caplog.records if r.name == "chat_services.connections"]
            assert [
                (
                    r.levelname,
                    r.getMessage(),
                    getattr(r, "reason", None),
                    getattr(r, "open_connections", None),
                )
                for r in refusals
            ] == [("WARNING", "connection refused", "2 connections from this address already", 2)]
            await kept[0].close()
            await until(lambda: app.server.admission.by_address["127.0.0.1"] == 1)
            again = await RawConnection.open(app.port)  # a seat was given back
            kept.append(again)
            reply = await again.call(GET_MESSAGE, GET_REQUEST)
            assert reply.status == Status.NOT_FOUND.value
            # Ending the refused connection and the closed one went without an error.
            assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []
        finally:
            for raw in [*kept, surplus]:
                await raw.close()


async def test_a_client_that_only_sends_pings_is_closed_after_the_idle_timeout(strict_app: App) -> None:
    raw = await RawConnection.open(strict_app.port)
    sent = 0

    async def keep_pinging() -> None:
        nonlocal sent
        while not raw.closed:
            with contextlib.suppress(h2.exceptions.ProtocolError):
                raw.h2.ping(sent.to_bytes(8, "big"))
                sent += 1
            await raw.flush()
            await asyncio.sleep(0.05)  # ten PINGs per idle timeout (0.5 s)

    pinger = asyncio.ensure_future(keep_pinging())
    try:
        await raw.call(GET_MESSAGE, GET_REQUEST)
        await raw.wait_closed(CLOSED_WITHIN)
        assert raw.closed
        assert sent >= 2, "the client was pinging while it waited"
    finally:
        pinger.cancel()
        await raw.close()


async def test_a_long_lived_connection_does_not_grow_with_its_calls(app_for_calls: App) -> None:
    # h2 kept a record of each closed stream, up to 65,536 a connection: the soak's RSS slope.
    raw = await RawConnection.open(app_for_calls.port)
    try:
        for _ in range(CLOSED_STREAMS_KEPT + 200):
            reply = await raw.call(GET_MESSAGE, GET_REQUEST)
            assert reply.status == Status.NOT_FOUND.value
        [protocol] = list(app_for_calls.server._protocols)
        assert len(protocol.connection._connection._closed_streams) <= CLOSED_STREAMS_KEPT
    finally:
        await raw.close()


@pytest.fixture
async def app_for_calls(tmp_path: Path) -> AsyncIterator[App]:
    async with started(make_config(tmp_path)) as app:
        yield app


async def test_a_connection_that_never_calls_is_closed_once_idle(strict_app: App) -> None:
    # The handshake completes, then nothing: the idle time counts from the connection's start.
    raw = await RawConnection.open(strict_app.port)
    try:
        await raw.wait_closed(CLOSED_WITHIN)
        assert raw.goaway is not None, "the server said GOAWAY before closing"
    finally:
        await raw.close()


async def test_an_idle_check_just_after_a_call_keeps_the_connection_and_looks_again(tmp_path: Path) -> None:
    async with started(make_config(tmp_path, idle_timeout=60.0)) as app:
        raw = await RawConnection.open(app.port)
        try:
            await raw.call(GET_MESSAGE, GET_REQUEST)
            [protocol] = list(app.server._protocols)
            assert isinstance(protocol, GuardedProtocol)
            protocol._idle_check()  # as if the idle timer fired now, just after the call
            timer = protocol._timer
            assert timer is not None
            # The next check is due when the call has been over for the whole idle timeout.
            assert 0 < timer.when() - asyncio.get_running_loop().time() <= 60.0
            reply = await raw.call(GET_MESSAGE, GET_REQUEST)
            assert reply.status == Status.NOT_FOUND.value, "the connection was kept"
        finally:
            await raw.close()


async def test_peers_without_an_ip_address_share_one_per_address_cap(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A Unix socket's peer name is a path, not (host, port): such peers (and one whose name
    # could not be read) count as one address, whatever their paths. Relative paths, so the
    # two differ from their first character on.
    monkeypatch.chdir(tmp_path)
    config = make_config(tmp_path, max_connections_per_address=1, handshake_timeout=60.0)
    async with started(config) as app:
        listening = str(tmp_path / "server.sock")
        unix = await asyncio.get_running_loop().create_unix_server(app.server._protocol_factory, listening)
        clients = []
        try:
            for name in ("first.sock", "second.sock"):
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                sock.bind(name)
                sock.connect(listening)
                raw = RawConnection(*await asyncio.open_unix_connection(sock=sock))
                raw.h2.initiate_connection()
                await raw.flush()
                clients.append(raw)
            first, second = clients
            await second.wait_closed(CLOSED_WITHIN)
            assert [getattr(r, "reason", None) for r in caplog.records if r.msg == "connection refused"] == [
                "1 connections from this address already"
            ]
            reply = await first.call(GET_MESSAGE, GET_REQUEST)
            assert reply.status == Status.NOT_FOUND.value, "the first peer keeps its seat"
        finally:
            for raw in clients:
                await raw.close()
            unix.close()
            await unix.wait_closed()
