"""A stream's consecutive DATA frames in one send are joined: the same data to the peer, fewer frames."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import h2.config
import h2.connection
import h2.events
import pytest
from hyperframe.frame import DataFrame, Frame, HeadersFrame

from chat.v1 import message_service_grpc
from chat.v1 import message_service_pb2 as pb
from chat_sdk import connect
from chat_services.coalescing import MERGED_FRAME_BYTES, CoalescingTransport, merge_data_frames
from chat_services.server import App

from .wiretap import Wiretap


def frames(data: bytes) -> list[Frame]:
    found, at = [], 0
    while at < len(data):
        frame, length = Frame.parse_frame_header(memoryview(data[at : at + 9]))
        frame.parse_body(memoryview(data[at + 9 : at + 9 + length]))
        found.append(frame)
        at += 9 + length
    return found


def data(stream: int, payload: bytes, *flags: str) -> bytes:
    return DataFrame(stream, payload, flags=set(flags)).serialize()


def test_consecutive_data_frames_of_a_stream_join_keeping_the_last_ones_flags() -> None:
    written = data(1, b"a" * 10) + data(1, b"b" * 20) + data(1, b"c", "END_STREAM") + data(3, b"d")
    merged = frames(merge_data_frames(written))
    assert all(isinstance(f, DataFrame) for f in merged)
    assert [(f.stream_id, getattr(f, "data", None), set(f.flags)) for f in merged] == [
        (1, b"a" * 10 + b"b" * 20 + b"c", {"END_STREAM"}),
        (3, b"d", set()),
    ]


@pytest.mark.parametrize(
    "written",
    [
        pytest.param(data(1, b"a", "END_STREAM") + data(1, b"b"), id="after-end-stream"),
        pytest.param(data(1, b"a") + HeadersFrame(1, b"").serialize() + data(1, b"b"), id="headers-between"),
        pytest.param(data(1, b"a") + data(3, b"b"), id="other-stream"),
        pytest.param(data(1, b"a" * MERGED_FRAME_BYTES) + data(1, b"b"), id="past-16-kib"),
        pytest.param(
            DataFrame(1, b"a", pad_length=4, flags={"PADDED"}).serialize() + data(1, b"b"), id="padded"
        ),
        pytest.param(data(1, b"a") + data(1 + 2**24, b"b"), id="stream-ids-differing-past-24-bits"),
        pytest.param(data(1, b"a") + data(1, b"b")[:5], id="cut-short"),
        pytest.param(data(1, b"a") + data(1, b"b")[:2], id="cut-inside-a-header"),
    ],
)
def test_frames_that_may_not_join_are_left_as_written(written: bytes) -> None:
    assert merge_data_frames(written) is written  # returned as it is, not copied


@pytest.mark.parametrize(
    ("written", "joined"),
    [
        pytest.param(data(1, b"a") + data(1, b"", "END_STREAM"), b"a", id="an-empty-last-frame"),
        pytest.param(
            data(1, b"a" * (MERGED_FRAME_BYTES - 1)) + data(1, b"b", "END_STREAM"),
            b"a" * (MERGED_FRAME_BYTES - 1) + b"b",
            id="exactly-16-kib",
        ),
    ],
)
def test_frames_join_up_to_the_last_byte_they_may(written: bytes, joined: bytes) -> None:
    [merged] = frames(merge_data_frames(written))
    assert (merged.stream_id, getattr(merged, "data", None), set(merged.flags)) == (1, joined, {"END_STREAM"})


async def test_a_lone_write_goes_out_as_it_was_written() -> None:
    """Only writes gathered in one loop turn are joined; a write on its own is sent untouched."""
    ours, theirs = socket.socketpair()
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_connection(asyncio.Protocol, sock=ours)
    written = data(1, b"a") + data(1, b"b")
    try:
        coalescing = CoalescingTransport(transport)
        coalescing.write(written)
        coalescing.flush()
        theirs.setblocking(False)
        received = await loop.sock_recv(theirs, 1000)
    finally:
        transport.close()
        theirs.close()
    assert received == written


def test_a_peer_reads_the_joined_frames_as_the_same_data_and_windows() -> None:
    server = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False))
    client = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    client.initiate_connection()
    client.send_headers(1, [(":method", "POST"), (":path", "/x"), (":scheme", "http"), (":authority", "a")])
    server.receive_data(client.data_to_send())
    server.send_headers(1, [(":status", "200")])
    written = server.data_to_send()
    for number in range(40):
        server.send_data(1, b"message %d " % number * 20)
        written += server.data_to_send()
    server.send_data(1, b"last", end_stream=True)
    written += server.data_to_send()
    events = client.receive_data(merge_data_frames(written))
    received = b"".join(e.data for e in events if isinstance(e, h2.events.DataReceived))
    assert received == b"".join(b"message %d " % n * 20 for n in range(40)) + b"last"
    assert any(isinstance(e, h2.events.StreamEnded) for e in events)
    assert len([e for e in events if isinstance(e, h2.events.DataReceived)]) < 10


async def test_a_replay_goes_out_in_fewer_data_frames_than_messages(app: App) -> None:
    tap = Wiretap(app.port)
    try:
        async with connect(f"127.0.0.1:{await tap.start()}") as channel:
            stub = message_service_grpc.MessageServiceStub(channel)
            async with stub.SendMessages.open() as stream:
                for n in range(100):
                    new = pb.NewMessage(
                        conversation_id="c-frames", author_id="u", content=f"m{n}", idempotency_key=f"f{n}"
                    )
                    await stream.send_message(pb.SendMessagesRequest(message=new))
                await stream.end()
                await stream.recv_message()
            replayed = [r async for r in _replay(stub)]
    finally:
        await tap.close()
    assert [r.message.content for r in replayed] == [f"m{n}" for n in range(100)]
    reply = tap.call("/StreamMessages").reply
    assert len(reply.messages) == 100
    assert reply.data_frames < 10  # one per message before


async def _replay(stub: message_service_grpc.MessageServiceStub) -> AsyncIterator[pb.StreamMessagesResponse]:
    async with stub.StreamMessages.open() as stream:
        await stream.send_message(pb.StreamMessagesRequest(conversation_id="c-frames"), end=True)
        async for reply in stream:
            yield reply
