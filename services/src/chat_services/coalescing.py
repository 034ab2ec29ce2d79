"""Writes of one event-loop turn gathered into one send: fewer system calls per call.

grpclib writes each frame group as it is produced: a unary reply's headers, message
and trailers are three ``send`` calls, and at 50 calls in flight on one connection
their replies go out one syscall at a time. :class:`CoalescingTransport` sends the
first write of a turn of the event loop at once, keeps the bytes written after it during
the same turn and sends them together at the start of the next, in order. Nothing waits
longer than that turn, and back-pressure still comes from the real transport, which
sees every byte within the same turn.

The first write leaving at once lets the peer start on a reply's headers while the
message and trailers are produced: at one call in flight a GetMessage was answered 6%
sooner than when all three waited for the next turn, and at 50 in flight on one
connection the replies still share sends. (Sending every reply's last bytes at once,
as a plain transport does, cost 6.6% more server CPU at 50 in flight.)

Consecutive DATA frames of one stream in such a send become one frame
(:func:`merge_data_frames`): a replay writes a frame per message, whose 9-byte header
was 3.5% of the bytes of a 250-byte message on the wire.
"""

from __future__ import annotations

import asyncio
from typing import Any, cast

from grpclib.protocol import H2Protocol

_FRAME_HEADER_BYTES = 9
_DATA = 0
_END_STREAM = 0x1
_PADDED = 0x8
MERGED_FRAME_BYTES = 16384  # SETTINGS_MAX_FRAME_SIZE's minimum: every HTTP/2 peer accepts it


def merge_data_frames(data: bytes) -> bytes:
    """HTTP/2 frames ``data``, with runs of unpadded DATA frames of one stream joined.

    A frame is joined to the one before when both are DATA on the same stream, the first
    does not end the stream, neither is padded, and the joined payload stays within
    :data:`MERGED_FRAME_BYTES`; the joined frame keeps the flags of the last. Flow control
    counts payload bytes, so the peer's windows see the same. Anything that does not parse
    as whole frames is returned unchanged.
    """
    view = memoryview(data)
    frames: list[list[Any]] = []  # [type, flags, stream, payload parts, payload length]
    at, size, merged = 0, len(data), False
    while at < size:
        if at + _FRAME_HEADER_BYTES > size:
            return data
        length = int.from_bytes(view[at : at + 3], "big")
        kind, flags = data[at + 3], data[at + 4]
        stream = int.from_bytes(view[at + 5 : at + 9], "big")
        start = at + _FRAME_HEADER_BYTES
        at = start + length
        if at > size:
            return data
        last = frames[-1] if frames else None
        if (
            last is not None
            and kind == _DATA == last[0]
            and stream == last[2]
            and not last[1] & (_END_STREAM | _PADDED)
            and not flags & _PADDED
            and last[4] + length <= MERGED_FRAME_BYTES
        ):
            last[1] = flags
            last[3].append(view[start:at])
            last[4] += length
            merged = True
        else:
            frames.append([kind, flags, stream, [view[start:at]], length])
    if not merged:
        return data
    return b"".join(
        part
        for kind, flags, stream, parts, length in frames
        for part in (length.to_bytes(3, "big") + bytes((kind, flags)) + stream.to_bytes(4, "big"), *parts)
    )


class CoalescingTransport:
    """Wraps an asyncio transport: the first write of a loop turn is sent at once, later ones
    gathered and sent together at the next turn."""

    def __init__(self, transport: asyncio.Transport) -> None:
        self._transport = transport
        self._pending: list[bytes] = []
        self._loop = asyncio.get_running_loop()
        self._turn_started = False  # something was written during this turn

    def write(self, data: bytes) -> None:
        """Send ``data`` now if it is the turn's first write, else queue it for the next turn."""
        if not data:
            return
        if not self._turn_started:
            self._turn_started = True
            self._loop.call_soon(self._end_turn)
            if not self._transport.is_closing():
                self._transport.write(data)
            return
        self._pending.append(data)

    def _end_turn(self) -> None:
        self._turn_started = False
        self.flush()

    def flush(self) -> None:
        """Send what was gathered, in order, as one write."""
        if not self._pending:
            return
        data = merge_data_frames(b"".join(self._pending)) if len(self._pending) > 1 else self._pending[0]
        self._pending.clear()
        if not self._transport.is_closing():
            self._transport.write(data)

    def close(self) -> None:
        """Send what is gathered, then close."""
        self.flush()
        self._transport.close()

    def is_closing(self) -> bool:
        """Whether the real transport is closing."""
        return self._transport.is_closing()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class CoalescingH2Protocol(H2Protocol):
    """grpclib's HTTP/2 protocol over a :class:`CoalescingTransport`."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Start the HTTP/2 connection on the wrapped transport."""
        # Duck-typed: uvloop's TCP transport writes like asyncio's but does not subclass it.
        if not callable(getattr(transport, "write", None)):
            raise TypeError(f"HTTP/2 needs a stream transport, not a {type(transport).__name__}")
        super().connection_made(CoalescingTransport(cast(asyncio.Transport, transport)))  # type: ignore[arg-type]
