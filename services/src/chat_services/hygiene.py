"""Connection hygiene: what one TCP connection may hold, and for how long.

grpclib keeps a connection that never sends a byte open forever and accepts as many
connections as the kernel hands it. :class:`GuardedProtocol` adds a handshake timeout
(no HTTP/2 preface and SETTINGS within N seconds: closed), an idle timeout (no call
open or started for N seconds: GOAWAY, closed; PINGs and other frames do not count, so
a client cannot hold a connection by pinging), admission (see :mod:`.admission`: a cap
on connections with a reserve for health checks, a cap per address; refused ones are
closed at once), and a cap on concurrent streams per connection (announced in
SETTINGS; h2 ends a connection that opens more with GOAWAY).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any

from grpclib.config import Configuration
from grpclib.protocol import AbstractHandler, EventsProcessor
from grpclib.protocol import Stream as H2Stream
from grpclib.server import Handler
from h2.config import H2Configuration
from h2.events import Event as H2Event
from h2.events import RemoteSettingsChanged
from h2.settings import SettingCodes
from h2.utilities import SizeLimitDict

from chat_sdk.compression import IDENTITY
from chat_services.admission import ConnectionAdmission, Seat
from chat_services.coalescing import CoalescingH2Protocol
from chat_services.config import ServiceConfig
from chat_services.framing import CallFraming, ConnectionBudget

log = logging.getLogger("chat_services.connections")
CLOSED_STREAMS_KEPT = 1000  # per connection, for h2 to tell late frames of a closed stream apart


@dataclass(frozen=True)
class TransportLimits:
    """What a client may make the server hold: sizes, connections, streams and timeouts."""

    max_message_bytes: int
    request_timeout: float
    connection_buffer_bytes: int
    stream_window_bytes: int
    connection_window_bytes: int
    max_connections: int
    health_connections: int
    max_connections_per_address: int
    max_concurrent_streams: int
    handshake_timeout: float
    idle_timeout: float
    keepalive_time: float
    keepalive_timeout: float

    @classmethod
    def from_config(cls, config: ServiceConfig) -> TransportLimits:
        """The limits the service configuration sets (its flags and their defaults)."""
        return cls(**{name.name: getattr(config, name.name) for name in fields(cls)})

    def grpclib_config(self) -> Configuration:
        """grpclib's settings: keepalive pings on busy connections, flow-control windows."""
        return Configuration(
            _keepalive_time=self.keepalive_time,
            _keepalive_timeout=self.keepalive_timeout,
            _keepalive_permit_without_calls=False,
            http2_stream_window_size=self.stream_window_bytes,
            http2_connection_window_size=self.connection_window_bytes,
        )

    def admission(self) -> ConnectionAdmission:
        """A fresh count of connections under these limits."""
        return ConnectionAdmission(
            self.max_connections, self.health_connections, self.max_connections_per_address
        )


class BudgetedHandler(Handler):
    """grpclib's per-connection ``Handler``, owning the connection's :class:`ConnectionBudget`.

    For each call it records a :class:`CallFraming` in ``calls`` (shared with the server,
    keyed by HTTP/2 stream) until the stream is released: the budget, the call's
    ``grpc-encoding`` and ``grpc-accept-encoding`` headers, which grpclib drops from the
    metadata a handler sees, and
    whether the connection may carry health checks only. ``on_call`` is told when a call
    starts or ends: that is what the idle timeout counts.
    """

    def __init__(self, *args: Any, budget: ConnectionBudget, calls: dict[H2Stream, CallFraming]) -> None:
        super().__init__(*args)
        self.budget = budget
        self.calls = calls
        self.health_only = False
        self.on_call: Callable[[], None] = lambda: None

    def accept(
        self, stream: H2Stream, headers: list[tuple[str, str]], release_stream: Callable[[], Any]
    ) -> None:
        """Start the call, remembering how to read its requests until the stream is released."""
        encoding, accept = IDENTITY, None
        for key, value in headers:
            if key == "grpc-encoding":
                encoding = value
            elif key == "grpc-accept-encoding":
                accept = value
        self.calls[stream] = CallFraming(self.budget, encoding, self.health_only, accept)
        self.on_call()

        def release() -> None:
            self.calls.pop(stream, None)
            self.on_call()
            release_stream()

        super().accept(stream, headers, release)


class _HandshakeWatchingProcessor(EventsProcessor):
    """grpclib's event processor, telling its protocol when the client's SETTINGS arrive.

    It also ignores HTTP/2 events grpclib has no handler for (an unknown frame type, which
    RFC 9113 says to ignore): grpclib raises ``NotImplementedError`` and kills the connection.
    """

    def __init__(self, handler: AbstractHandler, protocol: GuardedProtocol) -> None:
        super().__init__(handler, protocol.connection)
        self._protocol = protocol

    def process(self, event: H2Event) -> None:
        if hasattr(self, "processors") and event.__class__ not in self.processors:
            log.debug("ignored HTTP/2 event", extra={"event": type(event).__name__})
            return
        super().process(event)

    def process_remote_settings_changed(self, event: RemoteSettingsChanged) -> None:
        self._protocol.handshake_done = True
        super().process_remote_settings_changed(event)


class GuardedProtocol(CoalescingH2Protocol):
    """grpclib's HTTP/2 protocol with a handshake timeout, an idle timeout and admission.

    Replies written in one loop turn leave in one send (see coalescing.py).
    """

    handshake_done = False
    seat: Seat | None = None

    def __init__(
        self,
        handler: AbstractHandler,
        config: Configuration,
        h2_config: H2Configuration,
        *,
        limits: TransportLimits,
        admission: ConnectionAdmission,
    ) -> None:
        super().__init__(handler, config, h2_config)
        self.limits = limits
        self.admission = admission
        self.address = "unknown"
        self.last_activity = time.monotonic()
        self._timer: asyncio.TimerHandle | None = None
        if isinstance(handler, BudgetedHandler):
            handler.on_call = self._touch

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Start HTTP/2, announce the stream cap, and refuse the connection if admission says so."""
        super().connection_made(transport)
        self.processor = _HandshakeWatchingProcessor(self.handler, self)
        peer = transport.get_extra_info("peername")
        self.address = str(peer[0]) if isinstance(peer, tuple) and peer else "unknown"
        seat = self.admission.admit(self.address)
        if not isinstance(seat, Seat):
            log.warning(
                "connection refused",
                extra={"reason": seat, "open_connections": self.admission.open_connections},
            )
            self.goaway_and_close()
            return
        self.seat = seat
        if seat is Seat.HEALTH and isinstance(self.handler, BudgetedHandler):
            self.handler.health_only = True
        # grpclib keeps its h2 connection private and has no setting for this one.
        h2_connection = self.connection._connection
        # h2 remembers how each closed stream ended, up to 65,536 per connection (~10 MB):
        # on a long-lived connection the server grew ~150 bytes a call (the soak's RSS
        # slope). Late frames of a closed stream come within a few streams of it.
        h2_connection._closed_streams = SizeLimitDict(size_limit=CLOSED_STREAMS_KEPT)
        h2_connection.update_settings(
            {SettingCodes.MAX_CONCURRENT_STREAMS: self.limits.max_concurrent_streams}
        )
        self.connection.flush()
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(self.limits.handshake_timeout, self._handshake_expired)

    def connection_lost(self, exc: BaseException | None) -> None:
        """Give back the connection's seat, forget its timer, then let grpclib end its calls."""
        if self.seat is not None:
            self.admission.release(self.seat, self.address)
            self.seat = None
        if self._timer is not None:
            self._timer.cancel()
        super().connection_lost(exc)

    @property
    def idle_timeout(self) -> float:
        """Seconds without a call before the connection is closed: short on a health-only one."""
        if self.seat is Seat.HEALTH:
            return min(self.limits.idle_timeout, self.limits.handshake_timeout)
        return self.limits.idle_timeout

    def _touch(self) -> None:
        """A call started or ended: the idle time counts from now."""
        self.last_activity = time.monotonic()

    def goaway_and_close(self) -> None:
        """Tell the client (GOAWAY) and close the socket."""
        if self.connection.is_closing():
            return
        self.connection._connection.close_connection()
        self.connection.flush()
        self.connection.close()

    def _handshake_expired(self) -> None:
        if not self.handshake_done:
            log.info("handshake timeout", extra={"peer": self.connection.get_peer().addr()})
            self.goaway_and_close()
            return
        self._schedule_idle_check(self.idle_timeout)

    def _schedule_idle_check(self, delay: float) -> None:
        self._timer = asyncio.get_running_loop().call_later(delay, self._idle_check)

    def _idle_check(self) -> None:
        idle_for = time.monotonic() - self.last_activity
        if self.processor.streams:
            self._schedule_idle_check(self.idle_timeout)
            return
        if idle_for < self.idle_timeout:
            self._schedule_idle_check(self.idle_timeout - idle_for)
            return
        log.info("idle timeout", extra={"peer": self.connection.get_peer().addr()})
        self.goaway_and_close()
