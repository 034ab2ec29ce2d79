"""Writes of one loop turn are delivered: the first at once, the rest in one send, in order, before close."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest

from chat_services.coalescing import CoalescingH2Protocol, CoalescingTransport

BOUND = 10.0  # seconds to wait for bytes before failing instead of hanging


@dataclass
class Peer:
    """The far end of a loopback connection: what it has received, and whether it saw the close."""

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter

    async def read(self, size: int) -> bytes:
        return await asyncio.wait_for(self.reader.readexactly(size), BOUND)


@dataclass
class Counting:
    """A transport's ``write``, counted (the real transport does the sending)."""

    transport: asyncio.Transport
    writes: list[bytes] = field(default_factory=list)

    def write(self, data: bytes) -> None:
        self.writes.append(data)
        self.transport.write(data)

    def is_closing(self) -> bool:
        return self.transport.is_closing()

    def close(self) -> None:
        self.transport.close()

    def get_extra_info(self, name: str) -> object:
        return self.transport.get_extra_info(name)


@pytest.fixture
async def connected() -> AsyncIterator[tuple[CoalescingTransport, Counting, Peer]]:
    accepted: asyncio.Queue[Peer] = asyncio.Queue()

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await accepted.put(Peer(reader, writer))

    server = await asyncio.start_server(on_connect, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    _, writer = await asyncio.open_connection("127.0.0.1", port)
    peer = await asyncio.wait_for(accepted.get(), BOUND)
    counting = Counting(writer.transport)  # type: ignore[arg-type]
    try:
        yield CoalescingTransport(counting), counting, peer  # type: ignore[arg-type]
    finally:
        writer.close()
        peer.writer.close()
        server.close()
        await server.wait_closed()


async def test_the_first_write_of_a_turn_leaves_at_once_the_rest_as_one_send_in_order(
    connected: tuple[CoalescingTransport, Counting, Peer],
) -> None:
    coalescing, counting, peer = connected
    for part in (b"headers", b"", b"message", b"trailers"):
        coalescing.write(part)
    assert counting.writes == [b"headers"]  # the peer starts on it; the rest waits for the turn's end
    assert await peer.read(len(b"headersmessagetrailers")) == b"headersmessagetrailers"
    assert counting.writes == [b"headers", b"messagetrailers"]
    coalescing.write(b"next")  # a later turn: its first write leaves at once
    coalescing.write(b" one")
    assert counting.writes == [b"headers", b"messagetrailers", b"next"]
    assert await peer.read(8) == b"next one"
    assert counting.writes == [b"headers", b"messagetrailers", b"next", b" one"]


async def test_empty_writes_schedule_nothing(connected: tuple[CoalescingTransport, Counting, Peer]) -> None:
    coalescing, counting, _ = connected
    coalescing.write(b"")
    coalescing.flush()
    await asyncio.sleep(0)
    assert counting.writes == []


async def test_closing_sends_what_was_gathered_first(
    connected: tuple[CoalescingTransport, Counting, Peer],
) -> None:
    coalescing, counting, peer = connected
    coalescing.write(b"last ")
    coalescing.write(b"words")  # gathered for the turn's end
    coalescing.close()
    assert coalescing.is_closing()
    assert await peer.read(10) == b"last words"
    assert await asyncio.wait_for(peer.reader.read(), BOUND) == b""  # then the close
    assert counting.writes == [b"last ", b"words"]


async def test_nothing_is_written_to_a_closing_transport(
    connected: tuple[CoalescingTransport, Counting, Peer],
) -> None:
    coalescing, counting, _ = connected
    coalescing.write(b"in time")
    coalescing.write(b"too late")  # gathered for the turn's end
    counting.transport.close()
    coalescing.write(b"later still")
    await asyncio.sleep(0)
    coalescing.write(b"next turn")  # a turn's first write, on a closing transport
    await asyncio.sleep(0)
    assert counting.writes == [b"in time"]


async def test_other_attributes_are_the_real_transports(
    connected: tuple[CoalescingTransport, Counting, Peer],
) -> None:
    coalescing, counting, _ = connected
    assert coalescing.get_extra_info("peername") == counting.transport.get_extra_info("peername")


def test_http2_needs_a_stream_transport() -> None:
    protocol = CoalescingH2Protocol.__new__(CoalescingH2Protocol)
    with pytest.raises(TypeError, match="HTTP/2 needs a stream transport, not a DatagramTransport"):
        protocol.connection_made(asyncio.DatagramTransport())
