"""A grpclib server that closes its clients' connections when it closes.

grpclib's ``Server.close`` stops listening and cancels running calls but leaves
idle client connections open; their sockets then outlive the server. This
server remembers each connection and closes what is left once handlers are done.
"""

from __future__ import annotations

import asyncio
import weakref

from grpclib.protocol import H2Protocol
from grpclib.server import Server

from chat_services.coalescing import CoalescingH2Protocol


class ConnectionClosingServer(Server):
    """``Server`` whose ``wait_closed`` also closes every client connection still open."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._protocols: weakref.WeakSet[H2Protocol] = weakref.WeakSet()

    @property
    def port(self) -> int:
        """The port the started server listens on (the one picked, when started on port 0)."""
        assert isinstance(self._server, asyncio.Server), "the server is not started"
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    def _protocol_factory(self) -> H2Protocol:
        made = super()._protocol_factory()  # registers the connection's handler with the server
        # Same handler and settings; replies leave in one send per loop turn (see coalescing.py).
        protocol = CoalescingH2Protocol(made.handler, made.config, made.h2_config)
        self._protocols.add(protocol)
        return protocol

    async def wait_closed(self) -> None:
        await super().wait_closed()
        for protocol in list(self._protocols):
            connection = getattr(protocol, "connection", None)
            if connection is not None and not connection.is_closing():
                connection.close()
