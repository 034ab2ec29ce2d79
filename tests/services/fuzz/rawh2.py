"""A raw HTTP/2 gRPC client over a loopback socket, built on h2: it sends bytes no gRPC library would.

Used by the framing tests and the fuzz driver to send malformed length prefixes, compressed
flags, truncated bodies and broken HTTP/2 frames, and to read back the status the server answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
import urllib.parse
from dataclasses import dataclass, field

import h2.config
import h2.connection
import h2.events
import h2.exceptions

READ_CHUNK = 65536


def frame(payload: bytes, *, compressed: bool = False, length: int | None = None) -> bytes:
    """One gRPC length-prefixed message; ``length`` overrides the prefix (to lie about the size)."""
    return struct.pack(">BI", int(compressed), len(payload) if length is None else length) + payload


@dataclass
class Reply:
    """What the server answered on one stream: its status (None if none came), message, how it ended."""

    status: int | None = None
    message: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    reset: bool = False
    connection_closed: bool = False


class RawConnection:
    """One HTTP/2 connection to 127.0.0.1 that sends exactly the bytes asked for."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.h2 = h2.connection.H2Connection(
            h2.config.H2Configuration(
                client_side=True, header_encoding="utf-8", validate_outbound_headers=False
            )
        )
        self.replies: dict[int, Reply] = {}
        self.ended: set[int] = set()
        self.closed = False
        self.pings_received = 0
        self.goaway: h2.events.ConnectionTerminated | None = None  # the server's GOAWAY, if one came

    @classmethod
    async def open(cls, port: int) -> RawConnection:
        """Connect and exchange the HTTP/2 preface and SETTINGS."""
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        connection = cls(reader, writer)
        connection.h2.initiate_connection()
        await connection.flush()
        return connection

    async def flush(self) -> None:
        """Write whatever h2 has queued."""
        data = self.h2.data_to_send()
        if data and not self.writer.is_closing():
            self.writer.write(data)
            await self.writer.drain()

    async def write_raw(self, data: bytes) -> None:
        """Write bytes straight to the socket, bypassing h2 (for broken HTTP/2 framing)."""
        self.writer.write(data)
        await self.writer.drain()

    def start_call(self, method: str, *, extra_headers: tuple[tuple[str, str], ...] = ()) -> int:
        """Open a stream with a gRPC request's headers; returns its id (nothing is written yet)."""
        stream_id = self.h2.get_next_available_stream_id()
        headers = [
            (":method", "POST"),
            (":scheme", "http"),
            (":path", method),
            (":authority", "127.0.0.1"),
            ("content-type", "application/grpc+proto"),
            ("te", "trailers"),
            *extra_headers,
        ]
        self.h2.send_headers(stream_id, headers)
        self.replies[stream_id] = Reply()
        return stream_id

    async def send_body(self, stream_id: int, body: bytes, *, end: bool = True) -> None:
        """Send ``body`` as DATA frames within the flow-control window, then optionally END_STREAM."""
        view = memoryview(body)
        while view:
            window = min(self.h2.local_flow_control_window(stream_id), self.h2.max_outbound_frame_size)
            if window <= 0:
                await self.flush()
                if not await self._receive_once():
                    return
                if stream_id in self.ended:
                    return
                continue
            chunk, view = view[:window], view[window:]
            self.h2.send_data(stream_id, bytes(chunk))
        if end:
            self.h2.end_stream(stream_id)
        await self.flush()

    async def call(
        self,
        method: str,
        body: bytes,
        *,
        extra_headers: tuple[tuple[str, str], ...] = (),
        timeout: float = 10.0,
    ) -> Reply:
        """Send one request stream (headers, ``body``, END_STREAM) and wait for how it ends."""
        stream_id = self.start_call(method, extra_headers=extra_headers)
        # The server may answer (and reset the stream) before the whole body went out.
        with contextlib.suppress(h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError):
            await self.send_body(stream_id, body)
        return await self.wait(stream_id, timeout)

    async def wait(self, stream_id: int, timeout: float = 10.0) -> Reply:
        """Read until ``stream_id`` ends or the connection closes; at most ``timeout`` seconds."""

        async def until_ended() -> None:
            while stream_id not in self.ended and await self._receive_once():
                pass

        await asyncio.wait_for(until_ended(), timeout)
        return self.replies[stream_id]

    async def wait_closed(self, timeout: float = 10.0) -> None:
        """Read until the server closes the connection; at most ``timeout`` seconds."""

        async def until_closed() -> None:
            while await self._receive_once():
                pass

        await asyncio.wait_for(until_closed(), timeout)

    async def wait_ping(self, timeout: float = 10.0) -> None:
        """Read until the server sends a PING; at most ``timeout`` seconds."""

        async def until_pinged() -> None:
            while not self.pings_received and await self._receive_once():
                pass

        await asyncio.wait_for(until_pinged(), timeout)

    async def _receive_once(self) -> bool:
        """Read and process one chunk; False once the connection is closed."""
        if self.closed:
            return False
        try:
            data = await self.reader.read(READ_CHUNK)
        except ConnectionError:
            data = b""
        if not data:
            self._close()
            return False
        try:
            events = self.h2.receive_data(data)
        except h2.exceptions.ProtocolError:
            self._close()
            return False
        for event in events:
            self._handle(event)
        await self.flush()
        return True

    def _handle(self, event: h2.events.Event) -> None:
        stream_id = getattr(event, "stream_id", 0)
        reply = self.replies.get(stream_id)
        if isinstance(event, h2.events.DataReceived):
            self.h2.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
        elif isinstance(event, h2.events.ResponseReceived | h2.events.TrailersReceived) and reply is not None:
            for key, value in event.headers:
                reply.headers[str(key)] = str(value)
            if "grpc-status" in reply.headers:
                reply.status = int(reply.headers["grpc-status"])
                reply.message = urllib.parse.unquote(reply.headers.get("grpc-message", ""))
        elif isinstance(event, h2.events.StreamEnded):
            self.ended.add(stream_id)
        elif isinstance(event, h2.events.StreamReset) and reply is not None:
            reply.reset = True
            self.ended.add(stream_id)
        elif isinstance(event, h2.events.PingReceived):
            self.pings_received += 1  # h2 queues the acknowledgement itself
        elif isinstance(event, h2.events.ConnectionTerminated):
            self.goaway = event
            self._close()

    def _close(self) -> None:
        self.closed = True
        for stream_id, reply in self.replies.items():
            if stream_id not in self.ended:
                reply.connection_closed = True
                self.ended.add(stream_id)

    async def close(self) -> None:
        """Close the socket."""
        self.writer.close()
        with contextlib.suppress(ConnectionError):
            await self.writer.wait_closed()
