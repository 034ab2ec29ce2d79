"""A loopback proxy that records both directions of every connection, and a reader of what it saw.

It reads the recorded bytes as HTTP/2 (hyperframe, hpack: the libraries h2 is made of)
and then as gRPC messages, so a test can say which headers a call carried and whether
each message went compressed, whatever client or server produced them.
"""

from __future__ import annotations

import asyncio
import struct
from dataclasses import dataclass, field

from chat_bench.proxy import pipe
from hpack import Decoder
from hyperframe.frame import ContinuationFrame, DataFrame, Frame, HeadersFrame

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


@dataclass
class Message:
    """One gRPC length-prefixed message as it went on the wire."""

    compressed: bool
    body: bytes


@dataclass
class Side:
    """One direction of one call: its header blocks (headers, then trailers) and its messages."""

    headers: list[dict[str, str]] = field(default_factory=list)
    data: bytearray = field(default_factory=bytearray)
    data_frames: int = 0

    @property
    def messages(self) -> list[Message]:
        """The gRPC messages of the DATA frames, in order."""
        found, at = [], 0
        while at + 5 <= len(self.data):
            flag, length = struct.unpack_from(">BI", self.data, at)
            found.append(Message(bool(flag), bytes(self.data[at + 5 : at + 5 + length])))
            at += 5 + length
        return found

    def header(self, name: str) -> str | None:
        """The value of ``name`` in the first header block (None when absent)."""
        return self.headers[0].get(name) if self.headers else None


@dataclass
class Call:
    """One HTTP/2 stream: the request (client to server) and the reply."""

    request: Side = field(default_factory=Side)
    reply: Side = field(default_factory=Side)

    @property
    def path(self) -> str:
        """The call's ``:path``."""
        return self.request.header(":path") or ""


def _read(data: bytes, calls: dict[int, Call], outbound: bool) -> None:
    """Add one direction of a connection's bytes to ``calls`` (by stream id)."""
    decoder = Decoder()
    decoder.max_allowed_table_size = 1 << 16
    at = len(PREFACE) if outbound and data.startswith(PREFACE) else 0
    block = b""
    while at + 9 <= len(data):
        frame, length = Frame.parse_frame_header(memoryview(data[at : at + 9]))
        if at + 9 + length > len(data):
            break
        frame.parse_body(memoryview(data[at + 9 : at + 9 + length]))
        at += 9 + length
        if not frame.stream_id:
            continue
        side = calls.setdefault(frame.stream_id, Call())
        side_of = side.request if outbound else side.reply
        if isinstance(frame, HeadersFrame | ContinuationFrame):
            block += frame.data
            if "END_HEADERS" in frame.flags:
                side_of.headers.append({str(name): str(value) for name, value in decoder.decode(block)})
                block = b""
        elif isinstance(frame, DataFrame):
            side_of.data += frame.data
            side_of.data_frames += 1


class Wiretap:
    """Listens on 127.0.0.1 and forwards to ``port``, keeping every byte of every connection."""

    def __init__(self, port: int) -> None:
        self.target = port
        self.connections: list[tuple[bytearray, bytearray]] = []  # (client to server, back)
        self._server: asyncio.Server | None = None

    async def start(self) -> int:
        """Start listening; return the tap's port."""
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        return int(self._server.sockets[0].getsockname()[1])

    async def close(self) -> None:
        """Stop listening (connections end when their peers close them)."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def calls(self) -> list[Call]:
        """Every call seen so far, connection by connection, in stream order."""
        found: list[Call] = []
        for up, down in self.connections:
            calls: dict[int, Call] = {}
            _read(bytes(up), calls, outbound=True)
            _read(bytes(down), calls, outbound=False)
            found.extend(calls[stream_id] for stream_id in sorted(calls))
        return found

    def call(self, path_suffix: str) -> Call:
        """The one call whose ``:path`` ends with ``path_suffix``."""
        [call] = [call for call in self.calls() if call.path.endswith(path_suffix)]
        return call

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", self.target)
        up, down = bytearray(), bytearray()
        self.connections.append((up, down))
        await asyncio.gather(
            pipe(reader, upstream_writer, up.extend),
            pipe(upstream_reader, writer, down.extend),
            return_exceptions=True,
        )
