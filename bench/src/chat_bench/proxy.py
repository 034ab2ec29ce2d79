"""A loopback TCP proxy that counts the bytes each way: what a transport puts on the wire."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

CHUNK = 64 * 1024


@dataclass
class WireCount:
    """Bytes carried so far, client to server (``up``) and back (``down``)."""

    up: int = 0
    down: int = 0

    @property
    def total(self) -> int:
        """Both directions together."""
        return self.up + self.down


async def pipe(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, seen: Callable[[bytes], object]
) -> None:
    """Forward ``reader`` to ``writer`` until either side ends, showing ``seen`` every chunk."""
    try:
        while chunk := await reader.read(CHUNK):
            seen(chunk)
            writer.write(chunk)
            await writer.drain()
    except ConnectionError:
        pass  # the other side went away: the connection is over either way
    finally:
        writer.close()


class CountingProxy:
    """Listens on 127.0.0.1 and forwards every connection to ``port``, counting every byte."""

    def __init__(self, port: int) -> None:
        self.target = port
        self.count = WireCount()
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> int:
        """Start listening; return the proxy's own port."""
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        return int(self._server.sockets[0].getsockname()[1])

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", self.target)
        up = asyncio.ensure_future(self._pipe(reader, upstream_writer, "up"))
        down = asyncio.ensure_future(self._pipe(upstream_reader, writer, "down"))
        self._tasks |= {up, down}
        try:
            # Exceptions stay inside: a cancelled pipe (at close) is the normal end of a connection.
            await asyncio.gather(up, down, return_exceptions=True)
        finally:
            self._tasks -= {up, down}

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, direction: str) -> None:
        def count(chunk: bytes) -> None:
            if direction == "up":
                self.count.up += len(chunk)
            else:
                self.count.down += len(chunk)

        await pipe(reader, writer, count)

    async def close(self) -> None:
        """Stop listening and end every forwarded connection."""
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        if self._server is not None:
            await self._server.wait_closed()
