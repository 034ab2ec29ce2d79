"""Writes of one event-loop turn gathered into one send: fewer system calls per call.

grpclib writes each frame group as it is produced: a unary reply's headers, message
and trailers are three ``send`` calls, and at 50 calls in flight on one connection
their replies go out one syscall at a time. :class:`CoalescingTransport` keeps the
bytes written during one turn of the event loop and sends them together at the start
of the next, in order. Nothing waits longer than that turn, and back-pressure still
comes from the real transport, which sees every byte within the same turn.
"""

from __future__ import annotations

import asyncio
from typing import Any, cast

from grpclib.protocol import H2Protocol


class CoalescingTransport:
    """Wraps an asyncio transport; ``write`` gathers, the next loop turn sends."""

    def __init__(self, transport: asyncio.Transport) -> None:
        self._transport = transport
        self._pending: list[bytes] = []
        self._loop = asyncio.get_running_loop()

    def write(self, data: bytes) -> None:
        """Queue ``data`` for the send at the next loop turn."""
        if not data:
            return
        if not self._pending:
            self._loop.call_soon(self.flush)
        self._pending.append(data)

    def flush(self) -> None:
        """Send what was gathered, in order, as one write."""
        if not self._pending:
            return
        data = b"".join(self._pending) if len(self._pending) > 1 else self._pending[0]
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
