"""Reading gRPC request messages off a stream: every framing fault is the client's, and says so.

grpclib's own reader (``grpclib.stream.recv_message``) raises ``AssertionError`` or
``NotImplementedError`` on a short header, a body shorter than its length prefix or a
compressed message, before any codec runs, and reads (and acknowledges) a body of any
claimed length before the size limit is checked. :class:`FramedStream` replaces that
reader for every call:

- the length prefix is checked against the limit as soon as the 5-byte header arrives
  (RESOURCE_EXHAUSTED; the body is never read and the stream is reset);
- the bytes a connection may have in flight for bodies being read are bounded
  (:class:`ConnectionBudget`, RESOURCE_EXHAUSTED beyond);
- a call that takes one request message must send it whole within a timeout
  (DEADLINE_EXCEEDED), so a silent client cannot hold a call open;
- a truncated header or body, trailing bytes, and zero or several messages on a call
  that takes one are INVALID_ARGUMENT;
- gzip and deflate messages are inflated, their inflated size bounded by the same limit;
  another ``grpc-encoding`` is UNIMPLEMENTED;
- replies are compressed (:class:`ReplyCompression`) in an encoding the client listed in
  ``grpc-accept-encoding``, from a size on, and never for a client that listed none;
- every status message sent is bounded in length (:func:`chat_services.errors.bounded_message`).
"""

from __future__ import annotations

import asyncio
import struct
import time
from dataclasses import dataclass
from typing import Any, Generic

from grpclib.const import Status
from grpclib.exceptions import GRPCError, ProtocolError
from grpclib.metadata import encode_metadata
from grpclib.server import Stream
from grpclib.stream import _RecvType, _SendType
from multidict import MultiDict

from chat_sdk.compression import (
    ACCEPT_ENCODING,
    DEFAULT_MIN_BYTES,
    ENCODINGS,
    IDENTITY,
    DecompressionError,
    InflatedTooLarge,
    frame,
    inflate,
    response_encoding,
)
from chat_services.boundary import too_large
from chat_services.errors import bounded_message, echo

HEADER_BYTES = 5  # one flag byte, then a big-endian 32-bit length
# From this size a reply is compressed off the event loop: 64 kB of chat text take ~1 ms to
# compress (services/README.md, "Compression"), a hop to a worker thread 50-100 µs.
OFF_LOOP_COMPRESS_BYTES = 64 * 1024
ACCEPTED_ENCODINGS = ", ".join((IDENTITY, *ENCODINGS))


@dataclass(frozen=True)
class ReadLimits:
    """How big a request message may be, and how long a one-message request may take to arrive."""

    max_message_bytes: int
    request_timeout: float


@dataclass(frozen=True)
class ReplyCompression:
    """Which encodings replies may be compressed in (in order of preference), and from what size.

    No encodings: replies always go plain (requests are still inflated).
    """

    encodings: tuple[str, ...] = ENCODINGS
    min_bytes: int = DEFAULT_MIN_BYTES


DEFAULT_REPLY_COMPRESSION = ReplyCompression()


@dataclass(frozen=True)
class CallFraming:
    """What framing one call needs: its connection's budget and the call's compression headers.

    ``encoding`` is the request's ``grpc-encoding``, ``accept_encoding`` its
    ``grpc-accept-encoding`` (None when absent). ``health_only``: the call came on a
    connection of the health reserve (see admission.py).
    """

    budget: ConnectionBudget
    encoding: str = IDENTITY
    health_only: bool = False
    accept_encoding: str | None = None


@dataclass
class ConnectionBudget:
    """The request bytes one connection may have buffered for messages being read at once."""

    limit: int
    in_flight: int = 0

    def reserve(self, size: int) -> bool:
        """Take ``size`` bytes from the budget; False (taking nothing) if they do not fit."""
        if self.in_flight + size > self.limit:
            return False
        self.in_flight += size
        return True

    def release(self, size: int) -> None:
        """Give back bytes taken by :meth:`reserve`."""
        self.in_flight -= size


class FramedStream(Stream[_RecvType, _SendType], Generic[_RecvType, _SendType]):
    """A grpclib server ``Stream`` whose request reading refuses malformed framing cleanly.

    grpclib builds each call's ``Stream`` inside its request handler with no factory hook,
    so :meth:`adopt` turns the one it built into this class before the handler runs.
    """

    _budget: ConnectionBudget
    _encoding: str
    _reply_encoding: str
    _reply_min_bytes: int
    _max_message_bytes: int
    _request_timeout: float
    _framed_messages = 0

    @classmethod
    def adopt(
        cls,
        stream: Stream[Any, Any],
        call: CallFraming,
        limits: ReadLimits,
        replies: ReplyCompression = DEFAULT_REPLY_COMPRESSION,
    ) -> FramedStream[Any, Any]:
        """Make ``stream`` read and write through this class, with the call's framing and the limits."""
        stream.__class__ = cls
        framed: FramedStream[Any, Any] = stream  # type: ignore[assignment]
        framed._budget = call.budget
        framed._encoding = call.encoding
        framed._reply_encoding = response_encoding(call.encoding, call.accept_encoding, replies.encodings)
        framed._reply_min_bytes = replies.min_bytes
        framed._max_message_bytes = limits.max_message_bytes
        framed._request_timeout = limits.request_timeout
        return framed

    async def recv_message(self) -> _RecvType | None:
        """The next request message, or None at the end of a streaming request.

        A call that takes one request message gets exactly one: none, or more than one,
        is INVALID_ARGUMENT (the stream's end is awaited before the handler sees it).
        """
        if self._cardinality.client_streaming:
            return await self._next_message()
        if self._framed_messages:
            return None
        try:
            async with asyncio.timeout(self._request_timeout):
                return await self._only_message()
        except TimeoutError:
            raise GRPCError(
                Status.DEADLINE_EXCEEDED,
                f"{self._method_name}: the request did not arrive whole within {self._request_timeout:g} s",
            ) from None

    async def _only_message(self) -> _RecvType:
        """The one request message of a call that takes one, after the request stream ended."""
        message = await self._next_message()
        if message is None:
            raise GRPCError(
                Status.INVALID_ARGUMENT,
                f"{self._method_name} takes one request message; the request stream ended without one",
            )
        if await self._read_header() is not None:
            raise GRPCError(
                Status.INVALID_ARGUMENT,
                f"{self._method_name} takes one request message; the request stream carried more",
            )
        return message

    async def send_initial_metadata(self, *, metadata: Any = None) -> None:
        """grpclib's response headers, plus ``grpc-encoding`` (when replies are compressed) and
        ``grpc-accept-encoding`` (grpclib refuses ``grpc-*`` keys in metadata)."""
        if self._send_initial_metadata_done:
            raise ProtocolError("Initial metadata was already sent")
        headers = [(":status", "200"), ("content-type", self._content_type)]
        if self._reply_encoding != IDENTITY:
            headers.append(("grpc-encoding", self._reply_encoding))
        headers.append(("grpc-accept-encoding", ACCEPT_ENCODING))
        (sent,) = await self._dispatch.send_initial_metadata(MultiDict(metadata or ()))
        headers.extend(encode_metadata(sent))
        await self._stream.send_headers(headers)
        self._send_initial_metadata_done = True

    async def send_message(self, message: _SendType) -> None:
        """grpclib's ``send_message``, the reply compressed per the call's encoding (see ``frame``)."""
        if not self._send_initial_metadata_done:
            await self.send_initial_metadata()
        if not self._cardinality.server_streaming and self._send_message_done:
            raise ProtocolError("Message was already sent")
        (message,) = await self._dispatch.send_message(message)
        data = self._codec.encode(message, self._send_type)
        if self._reply_encoding != IDENTITY and len(data) >= OFF_LOOP_COMPRESS_BYTES:
            # zlib and zstd release the GIL: a big reply compresses on a worker thread, not on the loop.
            framed = await asyncio.to_thread(frame, data, self._reply_encoding, self._reply_min_bytes)
        else:
            framed = frame(data, self._reply_encoding, self._reply_min_bytes)
        await self._stream.send_data(framed)
        self._send_message_done = True
        self._messages_sent += 1
        self._stream.connection.messages_sent += 1
        self._stream.connection.last_message_sent = time.monotonic()

    async def send_trailing_metadata(self, *, status_message: str | None = None, **kwargs: Any) -> None:
        """grpclib's trailers, with the status message bounded (a long one stalls the event loop)."""
        if status_message is not None:
            status_message = bounded_message(status_message)
        await super().send_trailing_metadata(status_message=status_message, **kwargs)

    async def _next_message(self) -> _RecvType | None:
        header = await self._read_header()
        if header is None:
            return None
        compressed, length = header
        if length > self._max_message_bytes:
            raise too_large(self._request_name, length, self._max_message_bytes)
        if not self._budget.reserve(length):
            raise GRPCError(
                Status.RESOURCE_EXHAUSTED,
                f"this connection already has {self._budget.in_flight} request bytes in flight"
                f" (limit {self._budget.limit}); retry, or spread calls over connections",
            )
        try:
            body = await self._read_body(length)
        finally:
            self._budget.release(length)
        if compressed:
            encoding = await self._decompressor()
            # Inflating megabytes takes tens of milliseconds; zlib and zstd release the GIL, so a
            # worker thread keeps the event loop answering other calls meanwhile.
            body = await asyncio.to_thread(self._inflate, body, encoding)
        message = self._codec.decode(body, self._recv_type)
        # What grpclib's Stream.recv_message does with a decoded message.
        (message,) = await self._dispatch.recv_message(message)
        self._framed_messages += 1
        self._messages_received += 1
        self._stream.connection.messages_received += 1
        self._stream.connection.last_message_received = time.monotonic()
        return message  # type: ignore[no-any-return]

    @property
    def _request_name(self) -> str:
        descriptor = getattr(self._recv_type, "DESCRIPTOR", None)
        return str(getattr(descriptor, "full_name", "a request message"))

    async def _read_header(self) -> tuple[bool, int] | None:
        """The next message's (compressed, length), or None at a clean end of the stream."""
        header = await self._read(HEADER_BYTES, "a 5-byte message header (trailing bytes after a message?)")
        if header is None:
            return None
        flag, length = struct.unpack(">BI", header)
        if flag not in (0, 1):
            raise GRPCError(Status.INVALID_ARGUMENT, f"message header flag {flag} is neither 0 nor 1")
        return bool(flag), length

    async def _read_body(self, length: int) -> bytes:
        inside = f"a message: its length prefix says {length} bytes"
        body = await self._read(length, inside)
        if body is None and length:
            raise _ended_inside(inside)
        return body or b""

    async def _read(self, size: int, inside: str) -> bytes | None:
        """Exactly ``size`` bytes; None if the stream ended before any; INVALID_ARGUMENT if in between."""
        try:
            data = await self._stream.recv_data(size)
        except AssertionError:  # grpclib's buffer says the stream ended part-way through the read
            raise _ended_inside(inside) from None
        if not data:
            return None
        if len(data) != size:
            raise _ended_inside(inside)
        return data

    async def _decompressor(self) -> str:
        """The call's ``grpc-encoding``, if we have it; a status if not.

        As the gRPC spec asks, an unsupported encoding is UNIMPLEMENTED and the response
        headers carry ``grpc-accept-encoding`` (so they are sent here, before grpclib would
        send a trailers-only response without it).
        """
        encoding = self._encoding
        if encoding == IDENTITY:
            raise GRPCError(
                Status.INVALID_ARGUMENT, "a message is marked compressed but the call has no grpc-encoding"
            )
        if encoding not in ENCODINGS:
            if not self._send_initial_metadata_done:
                await self.send_initial_metadata()  # it carries grpc-accept-encoding
            raise GRPCError(
                Status.UNIMPLEMENTED,
                f"grpc-encoding {echo(encoding)} is not supported; this server accepts {ACCEPTED_ENCODINGS}",
            )
        return encoding

    def _inflate(self, body: bytes, encoding: str) -> bytes:
        try:
            return inflate(body, encoding, self._max_message_bytes)
        except InflatedTooLarge as error:
            raise GRPCError(Status.RESOURCE_EXHAUSTED, f"{self._request_name} {error}") from None
        except DecompressionError as error:
            raise GRPCError(Status.INVALID_ARGUMENT, str(error)) from None


async def one_request(stream: Stream[_RecvType, Any]) -> _RecvType:
    """The request message of a call that takes one (unary and server-streaming handlers).

    The served stream (:class:`FramedStream`) has already refused a call with none or more
    than one; a stream that was not framed still gets a clear status, never an assertion.
    """
    request = await stream.recv_message()
    if request is None:
        raise GRPCError(Status.INVALID_ARGUMENT, "the call takes one request message and carried none")
    return request


def _ended_inside(what: str) -> GRPCError:
    return GRPCError(Status.INVALID_ARGUMENT, f"the request stream ended inside {what}")
