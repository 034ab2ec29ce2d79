"""gRPC compression between the SDK and the services, read off the wire: negotiated, bounded, lossless.

Every call goes through a recording proxy (:mod:`.wiretap`), so each test says what the
bytes were: which ``grpc-encoding`` and ``grpc-accept-encoding`` headers a call carried
and which messages had the compressed flag set.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from grpclib.client import Channel
from grpclib.const import Status

import chat_sdk.v1 as dc
from chat.v1 import message_service_grpc
from chat.v1 import message_service_pb2 as pb
from chat_sdk import connect
from chat_sdk.compression import ACCEPT_ENCODING, DEFAULT_MIN_BYTES
from chat_services.framing import OFF_LOOP_COMPRESS_BYTES
from chat_services.server import App

from .clients import status_of
from .conftest import make_config, running
from .wiretap import Call, Wiretap

# ~3 kB of text that compresses (a compressed message must come out shorter to be sent so).
BIG = " ".join(
    f"line {i}: the build of branch {i % 7} passed its tests on the {i % 3} runner." for i in range(48)
)
SMALL = "see you at ten"
GET = "/GetMessage"


@pytest.fixture
async def tap(app: App) -> AsyncIterator[Wiretap]:
    """A recording proxy in front of the app."""
    wiretap = Wiretap(app.port)
    await wiretap.start()
    try:
        yield wiretap
    finally:
        await wiretap.close()


def target(tap: Wiretap) -> str:
    assert tap._server is not None
    return f"127.0.0.1:{tap._server.sockets[0].getsockname()[1]}"


def new(key: str, content: str) -> pb.SendMessagesRequest:
    return pb.SendMessagesRequest(
        message=pb.NewMessage(conversation_id="c-zip", author_id="u-1", content=content, idempotency_key=key)
    )


async def send_pb2(stub: message_service_grpc.MessageServiceStub, *contents: str) -> list[str]:
    """SendMessages ``contents`` through a ``_pb2`` stub; the ids stored."""
    async with stub.SendMessages.open() as stream:
        for number, content in enumerate(contents):
            await stream.send_message(new(f"k-{number}-{len(content)}", content))
        await stream.end()
        reply = await stream.recv_message()
    assert reply is not None
    return [message.id for message in reply.messages]


async def get_pb2(stub: message_service_grpc.MessageServiceStub, message_id: str) -> pb.GetMessageResponse:
    return await stub.GetMessage(pb.GetMessageRequest(message_id=message_id))


def flags(call: Call, side: str = "reply") -> list[bool]:
    return [message.compressed for message in getattr(call, side).messages]


@pytest.mark.parametrize("encoding", ["zstd", "gzip", "deflate"])
async def test_a_compressing_pb2_client_compresses_large_messages_both_ways_and_reads_them_back(
    tap: Wiretap, encoding: str
) -> None:
    async with connect(target(tap), compression=encoding) as channel:
        stub = message_service_grpc.MessageServiceStub(channel)
        big_id, small_id = await send_pb2(stub, BIG, SMALL)
        big, small = await get_pb2(stub, big_id), await get_pb2(stub, small_id)
    assert (big.message.content, small.message.content) == (BIG, SMALL)

    send = tap.call("/SendMessages")
    assert send.request.header("grpc-encoding") == encoding
    assert send.request.header("grpc-accept-encoding") == ACCEPT_ENCODING
    assert flags(send, "request") == [True, False]  # only the message above the threshold
    big_call, small_call = [call for call in tap.calls() if call.path.endswith(GET)]
    # The server answers in the request's encoding, which the client accepts.
    assert big_call.reply.header("grpc-encoding") == encoding
    assert flags(big_call) == [True]
    assert flags(small_call) == [False]
    assert len(small_call.reply.messages[0].body) < DEFAULT_MIN_BYTES
    # What went compressed decodes to the very bytes a plain client receives.
    async with Channel("127.0.0.1", tap.target) as plain:
        plain_big = await get_pb2(message_service_grpc.MessageServiceStub(plain), big_id)
    assert big.SerializeToString() == plain_big.SerializeToString()


async def test_a_page_too_big_to_compress_on_the_event_loop_comes_back_whole(tap: Wiretap) -> None:
    async with connect(target(tap)) as channel:
        stub = message_service_grpc.MessageServiceStub(channel)
        await send_pb2(stub, *(f"{n} {BIG}" for n in range(30)))
        request = pb.ListMessagesRequest(conversation_id="c-zip")
        request.page.page_size = 30
        page = await stub.ListMessages(request)
    assert [message.content for message in page.messages] == [f"{n} {BIG}" for n in range(30)]
    call = tap.call("/ListMessages")
    [reply] = call.reply.messages
    assert reply.compressed
    assert call.reply.header("grpc-encoding") == "zstd"  # the server's first choice; the SDK lists it
    assert len(page.SerializeToString()) >= OFF_LOOP_COMPRESS_BYTES  # so it took the worker thread


async def test_the_dataclass_target_compresses_through_the_same_connect(tap: Wiretap) -> None:
    async with connect(target(tap), compression="gzip") as channel:
        stub = dc.MessageServiceStub(channel)
        sent = await stub.send_messages(
            [
                dc.SendMessagesRequest(
                    message=dc.NewMessage(
                        conversation_id="c-dc", author_id="u-1", content=text, idempotency_key=f"dc-{n}"
                    )
                )
                for n, text in enumerate((BIG, SMALL, BIG))
            ]
        )
        replayed = [
            reply.message.content
            async for reply in stub.stream_messages(dc.StreamMessagesRequest(conversation_id="c-dc"))
            if reply.message is not None
        ]
    assert [message.content for message in sent.messages] == [BIG, SMALL, BIG]
    assert replayed == [BIG, SMALL, BIG]
    assert flags(tap.call("/SendMessages"), "request") == [True, False, True]
    assert flags(tap.call("/StreamMessages")) == [True, False, True]  # per message, by its size


@pytest.mark.parametrize(
    "open_channel",
    [
        pytest.param(lambda address: Channel(*address), id="grpclib-channel"),
        pytest.param(
            lambda address: connect(f"{address[0]}:{address[1]}", accept_compression=False), id="sdk-off"
        ),
    ],
)
async def test_a_client_that_does_not_advertise_compression_never_receives_it(
    tap: Wiretap, open_channel: object
) -> None:
    host, port = target(tap).split(":")
    opened = open_channel((host, int(port)))  # type: ignore[operator]
    async with opened as channel:
        stub = message_service_grpc.MessageServiceStub(channel)
        (big_id,) = await send_pb2(stub, BIG)
        reply = await get_pb2(stub, big_id)
    assert reply.message.content == BIG
    for call in tap.calls():
        assert "grpc-encoding" not in call.request.headers[0]
        assert "grpc-accept-encoding" not in call.request.headers[0]
        assert call.reply.header("grpc-encoding") is None
        assert not any(flags(call, "request") + flags(call))


async def test_grpcio_reads_replies_the_server_compressed_for_it(tap: Wiretap) -> None:
    async with Channel("127.0.0.1", tap.target) as plain:
        (big_id,) = await send_pb2(message_service_grpc.MessageServiceStub(plain), BIG)
    async with grpc.aio.insecure_channel(target(tap)) as opened:
        get = opened.unary_unary(
            "/chat.v1.MessageService/GetMessage",
            request_serializer=pb.GetMessageRequest.SerializeToString,
            response_deserializer=pb.GetMessageResponse.FromString,
        )
        reply = await get(pb.GetMessageRequest(message_id=big_id), timeout=10)
    assert reply.message.content == BIG
    call = tap.call(GET)
    assert "gzip" in (call.request.header("grpc-accept-encoding") or "")  # grpcio lists what it reads
    assert flags(call) == [True]
    assert call.reply.header("grpc-encoding") == "gzip"  # not zstd, which grpcio does not list


async def test_a_reply_that_inflates_past_the_clients_limit_is_resource_exhausted(tap: Wiretap) -> None:
    async with Channel("127.0.0.1", tap.target) as plain:
        (big_id,) = await send_pb2(message_service_grpc.MessageServiceStub(plain), BIG)
    async with connect(target(tap), max_message_bytes=1000) as channel:
        error = await status_of(get_pb2(message_service_grpc.MessageServiceStub(channel), big_id))
    assert error.status is Status.RESOURCE_EXHAUSTED
    assert "past the 1000-byte message limit" in (error.message or "")


async def test_a_server_told_not_to_compress_replies_sends_them_plain(tmp_path: Path) -> None:
    async with running(make_config(tmp_path, reply_compression="none")) as app:
        wiretap = Wiretap(app.port)
        await wiretap.start()
        try:
            async with connect(target(wiretap), compression="gzip") as channel:
                stub = message_service_grpc.MessageServiceStub(channel)
                (big_id,) = await send_pb2(stub, BIG)
                reply = await get_pb2(stub, big_id)
        finally:
            await wiretap.close()
    assert reply.message.content == BIG
    assert flags(wiretap.call("/SendMessages"), "request") == [True]  # requests are still inflated
    assert wiretap.call(GET).reply.header("grpc-encoding") is None
    assert flags(wiretap.call(GET)) == [False]


def test_connect_refuses_an_encoding_it_cannot_write() -> None:
    with pytest.raises(ValueError, match="not one of zstd, gzip, deflate"):
        connect("127.0.0.1:1", compression="br")
