"""Malformed gRPC framing is the client's fault: a clear status, no traceback, the server unharmed."""

from __future__ import annotations

import gzip
import zlib
from collections.abc import AsyncIterator
from typing import Any

import grpc
import grpclib.server
import pytest
import zstandard
from grpclib.client import Channel
from grpclib.const import Cardinality, Handler, Status
from grpclib.encoding.proto import ProtoStatusDetailsCodec
from grpclib.exceptions import ProtocolError

from chat.v1 import message_service_grpc, message_service_pb2
from chat_sdk import connect
from chat_services.boundary import BoundedProtoCodec
from chat_services.config import ServiceConfig
from chat_services.connections import GuardedServer
from chat_services.framing import FramedStream, ReplyCompression
from chat_services.hygiene import TransportLimits
from chat_services.server import App

from .fuzz.rawh2 import RawConnection, Reply, frame
from .harness import serve
from .wiretap import Wiretap

GET_MESSAGE = "/chat.v1.MessageService/GetMessage"
HEALTH_CHECK = "/grpc.health.v1.Health/Check"
CHAT_STREAM = "/chat.v1.MessageService/ChatStream"
GET_REQUEST = message_service_pb2.GetMessageRequest(message_id="no-such-message").SerializeToString()


def chat_methods(app: App) -> dict[str, Cardinality]:
    """Every chat.v1 method the app serves, with its cardinality."""
    return {
        path: handler.cardinality
        for service in app.services
        for path, handler in service.__mapping__().items()
    }


@pytest.fixture
async def raw(app: App) -> AsyncIterator[RawConnection]:
    """A raw HTTP/2 connection to the app."""
    connection = await RawConnection.open(app.port)
    try:
        yield connection
    finally:
        await connection.close()


def assert_refused(reply: Reply, status: Status, words: str) -> None:
    """The stream ended with ``status`` and a message containing ``words``."""
    assert reply.status == status.value, (reply.status, reply.message)
    assert words in reply.message, reply.message


def assert_no_traceback(caplog: pytest.LogCaptureFixture) -> None:
    """Nothing was logged with a traceback: a client fault is not a server error."""
    tracebacks = [record.getMessage() for record in caplog.records if record.exc_info]
    assert not tracebacks, tracebacks


def test_the_server_serves_eighteen_chat_methods(app: App) -> None:
    assert len(chat_methods(app)) == 18


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        pytest.param(
            frame(GET_REQUEST)[:3],
            Status.INVALID_ARGUMENT,
            "inside a 5-byte message header",
            id="partial-header",
        ),
        pytest.param(
            frame(GET_REQUEST, length=len(GET_REQUEST) + 10),
            Status.INVALID_ARGUMENT,
            "inside a message",
            id="short-body",
        ),
        pytest.param(b"", Status.INVALID_ARGUMENT, "ended without one", id="zero-messages"),
        pytest.param(frame(GET_REQUEST) * 2, Status.INVALID_ARGUMENT, "carried more", id="two-messages"),
        pytest.param(
            frame(GET_REQUEST) + b"\x00\x00",
            Status.INVALID_ARGUMENT,
            "5-byte message header",
            id="trailing-bytes",
        ),
        pytest.param(
            frame(GET_REQUEST, compressed=True),
            Status.INVALID_ARGUMENT,
            "no grpc-encoding",
            id="compressed-flag",
        ),
        pytest.param(b"\x07" + frame(GET_REQUEST)[1:], Status.INVALID_ARGUMENT, "flag 7", id="bad-flag"),
    ],
)
async def test_malformed_framing_on_a_unary_call_is_invalid_argument(
    raw: RawConnection, caplog: pytest.LogCaptureFixture, body: bytes, status: Status, words: str
) -> None:
    reply = await raw.call(GET_MESSAGE, body)
    assert_refused(reply, status, words)
    assert_no_traceback(caplog)


async def test_every_method_refuses_a_partial_header_as_invalid_argument(
    app: App, raw: RawConnection, caplog: pytest.LogCaptureFixture
) -> None:
    for method in chat_methods(app):
        reply = await raw.call(method, b"\x00\x00\x01")
        assert_refused(reply, Status.INVALID_ARGUMENT, "5-byte message header")
    assert_no_traceback(caplog)


async def test_every_unary_request_method_refuses_zero_messages(
    app: App, raw: RawConnection, caplog: pytest.LogCaptureFixture
) -> None:
    unary = [method for method, kind in chat_methods(app).items() if not kind.client_streaming]
    assert len(unary) == 15
    for method in unary:
        reply = await raw.call(method, b"")
        assert_refused(reply, Status.INVALID_ARGUMENT, "ended without one")
    assert_no_traceback(caplog)


async def test_trailing_garbage_on_a_client_stream_is_invalid_argument(
    raw: RawConnection, caplog: pytest.LogCaptureFixture
) -> None:
    join = message_service_pb2.ChatStreamRequest(
        join=message_service_pb2.ChatJoin(conversation_id="c", user_id="u")
    ).SerializeToString()
    reply = await raw.call(CHAT_STREAM, frame(join) + b"\x00\x00\x00")
    assert_refused(reply, Status.INVALID_ARGUMENT, "5-byte message header")
    assert_no_traceback(caplog)


@pytest.mark.parametrize(
    ("encoding", "compress"),
    [
        ("gzip", gzip.compress),
        ("deflate", zlib.compress),
        ("zstd", zstandard.ZstdCompressor(level=19).compress),
    ],
)
async def test_a_compressed_request_is_inflated_and_served(
    raw: RawConnection, encoding: str, compress: object
) -> None:
    assert callable(compress)
    body = frame(compress(GET_REQUEST), compressed=True)
    reply = await raw.call(GET_MESSAGE, body, extra_headers=(("grpc-encoding", encoding),))
    assert_refused(reply, Status.NOT_FOUND, "no-such-message")


async def test_a_compression_bomb_is_refused_by_its_inflated_size(app: App, raw: RawConnection) -> None:
    bomb = gzip.compress(b"\x0a" + b"\x00" * (app.config.max_message_bytes + 100))
    assert len(bomb) < app.config.max_message_bytes // 100
    reply = await raw.call(
        GET_MESSAGE, frame(bomb, compressed=True), extra_headers=(("grpc-encoding", "gzip"),)
    )
    assert_refused(reply, Status.RESOURCE_EXHAUSTED, "inflates from gzip past")


@pytest.mark.parametrize("declared", [True, False], ids=["size-in-frame", "size-left-out"])
async def test_a_zstd_bomb_is_refused_by_its_inflated_size(
    app: App, raw: RawConnection, declared: bool
) -> None:
    inflated = b"\x0a" + b"\x00" * (app.config.max_message_bytes + 100)
    bomb = zstandard.ZstdCompressor(level=19, write_content_size=declared).compress(inflated)
    assert len(bomb) < app.config.max_message_bytes // 100
    reply = await raw.call(
        GET_MESSAGE, frame(bomb, compressed=True), extra_headers=(("grpc-encoding", "zstd"),)
    )
    assert_refused(reply, Status.RESOURCE_EXHAUSTED, "inflates from zstd past")


async def test_an_unknown_encoding_is_unimplemented_naming_the_accepted_ones(raw: RawConnection) -> None:
    body = frame(GET_REQUEST, compressed=True)
    reply = await raw.call(GET_MESSAGE, body, extra_headers=(("grpc-encoding", "snappy"),))
    assert_refused(reply, Status.UNIMPLEMENTED, "accepts identity, zstd, gzip, deflate")
    assert reply.headers.get("grpc-accept-encoding") == "identity,zstd,gzip,deflate"


@pytest.mark.parametrize(
    ("headers", "answered_in"),
    [
        ((("grpc-accept-encoding", "deflate"),), "deflate"),
        ((("grpc-accept-encoding", "gzip,deflate"),), "gzip"),
        ((("grpc-encoding", "deflate"), ("grpc-accept-encoding", "gzip,deflate")), "deflate"),
        ((("grpc-encoding", "deflate"),), None),
        ((("grpc-accept-encoding", "identity,deflate,gzip,zstd"),), "zstd"),
        ((("grpc-encoding", "gzip"), ("grpc-accept-encoding", "zstd,gzip")), "gzip"),
    ],
    ids=[
        "accepts-deflate",
        "accepts-both",
        "asks-in-deflate",
        "accepts-nothing",
        "accepts-zstd",
        "asks-in-gzip",
    ],
)
async def test_replies_are_compressed_only_in_an_encoding_the_client_accepts(
    raw: RawConnection, headers: tuple[tuple[str, str], ...], answered_in: str | None
) -> None:
    """The server's first choice (zstd, gzip) among those the client lists, or the request's own if listed."""
    reply = await raw.call(HEALTH_CHECK, frame(b""), extra_headers=headers)
    assert reply.status == Status.OK.value, (reply.status, reply.message)
    assert reply.headers.get("grpc-encoding") == answered_in


async def test_a_frame_claiming_4_gib_is_refused_by_its_header_without_reading_the_body(
    raw: RawConnection, caplog: pytest.LogCaptureFixture
) -> None:
    # Only the 5-byte header and a little body are sent and the stream stays open: a server
    # that buffered up to the claimed length would wait for the rest and never answer.
    stream_id = raw.start_call(GET_MESSAGE)
    await raw.send_body(stream_id, frame(b"x" * 1000, length=2**32 - 1), end=False)
    reply = await raw.wait(stream_id, timeout=10)
    assert_refused(reply, Status.RESOURCE_EXHAUSTED, "exceeds the 4194304-byte message limit")
    assert_no_traceback(caplog)


async def test_framing_faults_leave_the_connection_usable(raw: RawConnection) -> None:
    await raw.call(GET_MESSAGE, b"\x00\x00")
    reply = await raw.call(GET_MESSAGE, frame(GET_REQUEST))
    assert_refused(reply, Status.NOT_FOUND, "no-such-message")


async def test_a_grpcio_client_with_gzip_compression_is_served(app: App) -> None:
    async with grpc.aio.insecure_channel(
        f"127.0.0.1:{app.port}", compression=grpc.Compression.Gzip
    ) as opened:
        call = opened.unary_unary(GET_MESSAGE)
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await call(GET_REQUEST, timeout=10)
    assert raised.value.code() == grpc.StatusCode.NOT_FOUND, raised.value.details()


async def test_a_reply_past_the_off_loop_size_is_compressed_for_a_gzip_client_and_reads_back(
    app: App,
) -> None:
    """Replies of 64 KiB and more are compressed on a worker thread: the client still reads them whole."""
    content = "a" * 65536  # the schema's largest content: its GetMessage reply is past 64 KiB
    new = message_service_pb2.NewMessage(
        idempotency_key="k", conversation_id="c-big", author_id="ada", content=content
    )
    async with grpc.aio.insecure_channel(
        f"127.0.0.1:{app.port}", compression=grpc.Compression.Gzip
    ) as opened:
        send = opened.stream_unary(
            "/chat.v1.MessageService/SendMessages",
            request_serializer=message_service_pb2.SendMessagesRequest.SerializeToString,
            response_deserializer=message_service_pb2.SendMessagesResponse.FromString,
        )
        sent = await send(iter([message_service_pb2.SendMessagesRequest(message=new)]), timeout=10)
        get = opened.unary_unary(
            GET_MESSAGE,
            request_serializer=message_service_pb2.GetMessageRequest.SerializeToString,
            response_deserializer=message_service_pb2.GetMessageResponse.FromString,
        )
        reply = await get(message_service_pb2.GetMessageRequest(message_id=sent.messages[0].id), timeout=10)
    assert reply.ByteSize() >= 64 * 1024
    assert reply.message.content == content


def get_message_only(get_message: Any) -> dict[str, Handler]:
    """A servable's mapping with GetMessage only, served by ``get_message``."""
    request, response = message_service_pb2.GetMessageRequest, message_service_pb2.GetMessageResponse
    return {GET_MESSAGE: Handler(get_message, Cardinality.UNARY_UNARY, request, response)}


class AnswersTwice:
    """A GetMessage that answers, then sends its headers and its one reply again, as grpclib forbids."""

    def __init__(self) -> None:
        self.refusals: list[str] = []
        self.framed = False

    async def get_message(self, stream: grpclib.server.Stream[object, object]) -> None:
        self.framed = isinstance(stream, FramedStream)
        await stream.recv_message()
        reply = message_service_pb2.GetMessageResponse()
        await stream.send_message(reply)
        for again in (stream.send_initial_metadata(), stream.send_message(reply)):
            try:
                await again
            except ProtocolError as error:
                self.refusals.append(str(error))

    def __mapping__(self) -> dict[str, Handler]:
        return get_message_only(self.get_message)


async def test_a_handler_that_answers_twice_is_refused_in_grpclibs_words() -> None:
    handler = AnswersTwice()
    async with serve([handler]) as port:
        channel = Channel("127.0.0.1", port)
        try:
            stub = message_service_grpc.MessageServiceStub(channel)
            reply = await stub.GetMessage(message_service_pb2.GetMessageRequest(message_id="m-1"), timeout=10)
        finally:
            channel.close()
    assert reply == message_service_pb2.GetMessageResponse()
    assert handler.framed
    assert handler.refusals == ["Initial metadata was already sent", "Message was already sent"]


class Answers:
    """A GetMessage that answers ``reply`` to every request."""

    def __init__(self, reply: message_service_pb2.GetMessageResponse) -> None:
        self.reply = reply

    async def get_message(self, stream: grpclib.server.Stream[object, object]) -> None:
        await stream.recv_message()
        await stream.send_message(self.reply)

    def __mapping__(self) -> dict[str, Handler]:
        return get_message_only(self.get_message)


@pytest.mark.parametrize(
    ("size", "min_bytes", "compressed"),
    [(200, 64, True), (70_000, 1024 * 1024, False)],
    ids=["below-the-default-512-above-64", "past-64-kib-below-1-mib"],
)
async def test_replies_are_compressed_from_the_configured_size_on(
    size: int, min_bytes: int, compressed: bool
) -> None:
    reply = message_service_pb2.GetMessageResponse()
    reply.message.content = "a" * size
    server = GuardedServer(
        [Answers(reply)],
        codec=BoundedProtoCodec(4 * 1024 * 1024),
        status_details_codec=ProtoStatusDetailsCodec(),
        limits=TransportLimits.from_config(ServiceConfig()),
        replies=ReplyCompression(("deflate",), min_bytes=min_bytes),
    )
    await server.start("127.0.0.1", 0)
    tap = Wiretap(server.port)
    request = message_service_pb2.GetMessageRequest(message_id="m-1")
    try:
        async with connect(f"127.0.0.1:{await tap.start()}") as channel:
            answer = await message_service_grpc.MessageServiceStub(channel).GetMessage(request, timeout=10)
    finally:
        await tap.close()
        server.close()
        await server.wait_closed()
    assert answer.message.content == "a" * size
    [sent] = tap.call("GetMessage").reply.messages
    assert sent.compressed is compressed
