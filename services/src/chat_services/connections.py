"""The grpclib server, guarded: hostile framing, sizes and connections cannot stall or bloat it.

On top of grpclib's ``Server`` it reads every request through
:class:`chat_services.framing.FramedStream`, runs each connection through
:class:`chat_services.hygiene.GuardedProtocol` (handshake and idle timeouts, connection
and stream caps, a per-connection buffer budget), and closes the clients' connections
when it closes (and serves only health checks on connections of the health reserve,
see admission.py): grpclib's ``Server.close`` stops listening and cancels running calls but
leaves idle client connections open, so their sockets would outlive the server.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Collection, Iterable
from typing import Any, cast

from grpclib._typing import IServable
from grpclib.const import Status
from grpclib.encoding.base import CodecBase, StatusDetailsCodecBase
from grpclib.events import RecvRequest, listen
from grpclib.exceptions import GRPCError
from grpclib.protocol import H2Protocol
from grpclib.protocol import Stream as H2Stream
from grpclib.server import Server, Stream

from chat_services.admission import HEALTH_PREFIX
from chat_services.framing import (
    DEFAULT_REPLY_COMPRESSION,
    CallFraming,
    ConnectionBudget,
    FramedStream,
    ReadLimits,
    ReplyCompression,
)
from chat_services.hygiene import BudgetedHandler, GuardedProtocol, TransportLimits


class GuardedServer(Server):
    """``Server`` with framing checks, connection hygiene, and connections closed on close."""

    def __init__(
        self,
        handlers: Collection[IServable],
        *,
        codec: CodecBase,
        status_details_codec: StatusDetailsCodecBase,
        limits: TransportLimits,
        replies: ReplyCompression = DEFAULT_REPLY_COMPRESSION,
    ) -> None:
        super().__init__(
            handlers, codec=codec, status_details_codec=status_details_codec, config=limits.grpclib_config()
        )
        self.limits = limits
        self.replies = replies
        self.admission = limits.admission()
        self._protocols: weakref.WeakSet[H2Protocol] = weakref.WeakSet()
        self._calls: dict[H2Stream, CallFraming] = {}
        listen(self, RecvRequest, self._frame_requests)

    @property
    def port(self) -> int:
        """The port the started server listens on (the one picked, when started on port 0)."""
        if self._server is None:
            raise RuntimeError("the server is not started: no port yet")
        # Not ``isinstance(asyncio.Server)``: uvloop's server is not one, but has ``sockets`` too.
        server = cast(asyncio.Server, self._server)
        port: int = server.sockets[0].getsockname()[1]
        return port

    def _protocol_factory(self) -> H2Protocol:
        self.__gc_step__()
        budget = ConnectionBudget(self.limits.connection_buffer_bytes)
        handler = BudgetedHandler(
            self._mapping,
            self._codec,
            self._status_details_codec,
            self.__dispatch__,
            budget=budget,
            calls=self._calls,
        )
        self._handlers.add(handler)
        protocol = GuardedProtocol(
            handler, self._config, self._h2_config, limits=self.limits, admission=self.admission
        )
        self._protocols.add(protocol)
        return protocol

    async def _frame_requests(self, event: RecvRequest) -> None:
        """``RecvRequest`` listener: the call reads its requests through :class:`FramedStream`."""
        handler = event.method_func
        read_limits = ReadLimits(self.limits.max_message_bytes, self.limits.request_timeout)

        health = event.method_name.startswith(HEALTH_PREFIX)

        async def framed(stream: Stream[Any, Any]) -> None:
            # grpclib's server Stream keeps its HTTP/2 stream private; it keys the call's framing.
            call = self._calls[stream._stream]
            if call.health_only and not health:
                raise GRPCError(Status.UNAVAILABLE, self._reserve_message)
            await handler(FramedStream.adopt(stream, call, read_limits, self.replies))

        event.method_func = framed

    @property
    def _reserve_message(self) -> str:
        return (
            f"the server holds its limit of {self.limits.max_connections} connections; this one is"
            " for health checks only: retry later or on another instance"
        )

    async def wait_closed(self) -> None:
        """grpclib's ``wait_closed``, then close every client connection still open."""
        await super().wait_closed()
        close_connections(self._protocols)


def close_connections(protocols: Iterable[H2Protocol]) -> None:
    """Close the client connections of ``protocols`` still open: grpclib's ``Server`` leaves them
    open when it closes."""
    for protocol in list(protocols):
        connection = getattr(protocol, "connection", None)
        if connection is not None and not connection.is_closing():
            connection.close()
