"""Sending on a server stream only as fast as the client reads, and noticing when it stops.

HTTP/2 flow control tells whether a client reads: its window shrinks by what the
server sends and grows back only as the client consumes it. A client that stops
reading stalls ``send_message`` forever, and a status sent after half a message
would reach it as a broken frame. So the sender waits until the window can take the
whole message before writing any of it: when the client makes no room in time,
nothing of the message was sent and the stream can still end with a clean status.

grpclib has no public API for the window; this module is the one place that reads it.
"""

from __future__ import annotations

import asyncio
from typing import Any, Protocol

from google.protobuf.message import Message
from grpclib.server import Stream

_PREFIX_BYTES = 5  # gRPC's length prefix before each message


class _H2Stream(Protocol):
    """What this module reads of grpclib's protocol-level stream."""

    id: int | None
    window_updated: asyncio.Event
    connection: Any  # grpclib's Connection: ``write_ready`` is clear while the socket is full
    _h2_connection: Any


async def send_when_read(stream: Stream[Any, Any], message: Message, timeout: float) -> bool:
    """Send ``message`` once the client has room for it; False, having sent nothing, after ``timeout`` s.

    A message larger than the client's whole stream window is sent as room comes (it
    cannot fit at once); the timeout then bounds the whole send.
    """
    h2_stream: _H2Stream | None = getattr(stream, "_stream", None)
    if h2_stream is not None and _has_room(h2_stream, message.ByteSize() + _PREFIX_BYTES):
        # The usual case: the client keeps up, so the send completes without waiting (no timer).
        await stream.send_message(message)
        return True
    try:
        async with asyncio.timeout(timeout):
            if h2_stream is not None and h2_stream.id is not None:
                await _room_for(h2_stream, message.ByteSize() + _PREFIX_BYTES)
            await stream.send_message(message)
    except TimeoutError:
        return False
    return True


def _has_room(h2_stream: _H2Stream, size: int) -> bool:
    """Whether ``size`` bytes go out at once: the window takes them and the socket is writable."""
    if h2_stream.id is None or not h2_stream.connection.write_ready.is_set():
        return False
    connection = h2_stream._h2_connection
    return bool(connection.local_flow_control_window(h2_stream.id) >= size)


async def _room_for(h2_stream: _H2Stream, size: int) -> None:
    connection = h2_stream._h2_connection
    needed = min(size, connection.remote_settings.initial_window_size)
    while connection.local_flow_control_window(h2_stream.id) < needed:
        h2_stream.window_updated.clear()
        await h2_stream.window_updated.wait()
