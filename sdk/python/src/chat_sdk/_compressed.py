"""grpclib's client stream with gRPC compression: ``grpc-encoding`` out, compressed messages both ways.

grpclib writes every message uncompressed, refuses a compressed one with
``NotImplementedError``, and refuses ``grpc-*`` keys in the metadata it sends.
:class:`CompressedStream` takes over a stream grpclib built (``adopt``) and sends the
request headers itself, adding ``grpc-accept-encoding`` (what it reads) and, when the
channel compresses, ``grpc-encoding``. Messages from ``min_bytes`` on go compressed
when that makes them shorter; a compressed reply is inflated, never past
``max_message_bytes``.
"""

from __future__ import annotations

import struct
import time
from dataclasses import dataclass
from typing import Any, Generic

from grpclib.client import Stream
from grpclib.const import Status
from grpclib.encoding.base import GRPC_CONTENT_TYPE
from grpclib.exceptions import GRPCError, ProtocolError
from grpclib.metadata import USER_AGENT, encode_metadata, encode_timeout
from grpclib.stream import _RecvType, _SendType

from chat_sdk.compression import (
    ACCEPT_ENCODING,
    DEFAULT_MIN_BYTES,
    ENCODINGS,
    IDENTITY,
    DecompressionError,
    InflatedTooLarge,
    frame,
    inflate,
)

DEFAULT_MAX_MESSAGE_BYTES = 4 * 1024 * 1024  # grpcio's default receive limit, the services' too
_PREFIX = struct.Struct(">BI")


@dataclass(frozen=True)
class ClientCompression:
    """How a channel compresses: ``encoding`` for requests (None: none), from ``min_bytes`` on.

    ``accept``: advertise ``grpc-accept-encoding`` so the server may compress replies;
    ``max_message_bytes`` bounds a reply once inflated.
    """

    encoding: str | None = None
    min_bytes: int = DEFAULT_MIN_BYTES
    accept: bool = True
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES


class CompressedStream(Stream[_SendType, _RecvType], Generic[_SendType, _RecvType]):
    """A grpclib client ``Stream`` that speaks gRPC compression (see the module's docstring)."""

    _compression: ClientCompression
    _reply_encoding = IDENTITY

    @classmethod
    def adopt(cls, stream: Stream[Any, Any], compression: ClientCompression) -> CompressedStream[Any, Any]:
        """Make ``stream``, not yet started, send and receive through this class."""
        stream.__class__ = cls
        adopted: CompressedStream[Any, Any] = stream  # type: ignore[assignment]
        adopted._compression = compression
        return adopted

    @property
    def _request_encoding(self) -> str:
        return self._compression.encoding or IDENTITY

    async def send_request(self, *, end: bool = False) -> None:
        """grpclib 0.4.9's ``send_request``, with the compression headers among the request headers."""
        if self._send_request_done:
            raise ProtocolError("Request is already sent")
        if end and not self._cardinality.client_streaming:
            raise ProtocolError("Unary request requires a message to be sent before ending outgoing stream")
        with self._wrapper:
            protocol = await self._channel.__connect__()
            stream = protocol.processor.connection.create_stream(wrapper=self._wrapper)
            headers = [
                (":method", "POST"),
                (":scheme", self._channel._scheme),
                (":path", self._method_name),
                (":authority", self._channel._authority),
            ]
            if self._deadline is not None:
                headers.append(("grpc-timeout", encode_timeout(self._deadline.time_remaining())))
            subtype = self._codec.__content_subtype__
            content_type = GRPC_CONTENT_TYPE if subtype == "proto" else f"{GRPC_CONTENT_TYPE}+{subtype}"
            headers.extend((("te", "trailers"), ("content-type", content_type), ("user-agent", USER_AGENT)))
            if self._compression.encoding is not None:
                headers.append(("grpc-encoding", self._compression.encoding))
            if self._compression.accept:
                headers.append(("grpc-accept-encoding", ACCEPT_ENCODING))
            (metadata,) = await self._dispatch.send_request(
                self._metadata,
                method_name=self._method_name,
                deadline=self._deadline,
                content_type=content_type,
            )
            headers.extend(encode_metadata(metadata))
            release_stream = await stream.send_request(headers, end_stream=end, _processor=protocol.processor)
            self._stream = stream
            self._release_stream = release_stream
            self.peer = self._stream.connection.get_peer()
            self._send_request_done = True
            if end:
                self._end_done = True

    async def send_message(self, message: _SendType, *, end: bool = False) -> None:
        """grpclib's ``send_message``, the message compressed when the channel says so (see :func:`frame`)."""
        if not self._send_request_done:
            await self.send_request()
        end_stream = end
        if not self._cardinality.client_streaming:
            if self._send_message_done:
                raise ProtocolError("Message was already sent")
            end_stream = True
        if self._end_done:
            raise ProtocolError("Stream is ended")
        with self._wrapper:
            (message,) = await self._dispatch.send_message(message)
            data = self._codec.encode(message, self._send_type)
            framed = frame(data, self._request_encoding, self._compression.min_bytes)
            await self._stream.send_data(framed, end_stream=end_stream)
            self._send_message_done = True
            self._messages_sent += 1
            self._stream.connection.messages_sent += 1
            self._stream.connection.last_message_sent = time.monotonic()
            if end:
                self._end_done = True

    async def recv_initial_metadata(self) -> None:
        """grpclib's, then the reply's ``grpc-encoding`` (grpclib drops ``grpc-*`` headers)."""
        await super().recv_initial_metadata()
        headers = self._stream.headers or []
        self._reply_encoding = next((value for key, value in headers if key == "grpc-encoding"), IDENTITY)

    async def recv_message(self) -> _RecvType | None:
        """The next reply message (inflated if it came compressed), or None at the end of the replies."""
        if not self._recv_initial_metadata_done:
            await self.recv_initial_metadata()
        with self._wrapper:
            header = await self._stream.recv_data(_PREFIX.size)
            if not header:
                return None
            flag, length = _PREFIX.unpack(header)
            body = await self._stream.recv_data(length) if length else b""
            if len(body) != length:
                raise GRPCError(Status.INTERNAL, f"a reply ended inside its message of {length} bytes")
            if flag:
                body = self._inflate(body)
            message = self._codec.decode(body, self._recv_type)
            (message,) = await self._dispatch.recv_message(message)
            self._messages_received += 1
            self._stream.connection.messages_received += 1
            self._stream.connection.last_message_received = time.monotonic()
            return message  # type: ignore[no-any-return]

    def _inflate(self, body: bytes) -> bytes:
        encoding = self._reply_encoding
        if encoding not in ENCODINGS:
            raise GRPCError(
                Status.INTERNAL, f"a reply is marked compressed but its grpc-encoding is {encoding[:40]!r}"
            )
        try:
            return inflate(body, encoding, self._compression.max_message_bytes)
        except InflatedTooLarge as error:
            raise GRPCError(Status.RESOURCE_EXHAUSTED, f"a reply {error}") from None
        except DecompressionError as error:
            raise GRPCError(Status.INTERNAL, str(error)) from None
