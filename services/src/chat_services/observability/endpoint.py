"""The ``/metrics`` HTTP endpoint: prometheus-client's WSGI app behind a bounded, timed server.

prometheus-client's own ``start_http_server`` runs one thread per connection with no
timeout, so idle or half-open connections each hold a thread forever. Here a connection
gets ``timeout`` seconds to send its request, at most ``max_connections`` are served at
once (others are closed at once), and an optional bearer token guards the page.
"""

from __future__ import annotations

import hmac
import socket
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, make_wsgi_app

REQUEST_TIMEOUT = 10.0  # seconds a connection has to send its request
MAX_CONNECTIONS = 16  # scrapes served at once
# How often the serving thread looks for a stop request: ``close`` waits up to this long
# (socketserver's default, 0.5 s, added half a second to every server's shutdown).
STOP_POLL_INTERVAL = 0.05  # seconds


class _QuietHandler(WSGIRequestHandler):
    """No access log on stderr; a socket timeout so a silent client cannot hold its thread."""

    timeout = REQUEST_TIMEOUT

    def log_message(self, format: str, *args: Any) -> None:
        """Requests are not logged: a scrape every few seconds would drown the service's log."""


class _BoundedServer(ThreadingMixIn, WSGIServer):
    """A threading WSGI server serving at most ``MAX_CONNECTIONS`` connections at once."""

    daemon_threads = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.slots = threading.BoundedSemaphore(MAX_CONNECTIONS)

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self.slots.acquire(blocking=False):
            self.shutdown_request(request)  # full: close at once rather than queue a thread
            return
        super().process_request(request, client_address)

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.slots.release()


def _guarded(app: Callable[..., Iterable[bytes]], token: str | None) -> Callable[..., Iterable[bytes]]:
    """``app`` answering 401 unless the request carries ``Authorization: Bearer <token>``."""
    if token is None:
        return app
    expected = f"Bearer {token}".encode()

    def guarded(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        presented = str(environ.get("HTTP_AUTHORIZATION", "")).encode()
        if not hmac.compare_digest(presented, expected):
            start_response(
                "401 Unauthorized", [("WWW-Authenticate", "Bearer"), ("Content-Type", "text/plain")]
            )
            return [b"this /metrics needs Authorization: Bearer <token>\n"]
        return app(environ, start_response)

    return guarded


@dataclass
class MetricsEndpoint:
    """The running ``/metrics`` HTTP server."""

    server: WSGIServer
    thread: threading.Thread

    @property
    def port(self) -> int:
        """The bound port."""
        return int(self.server.server_port)

    def close(self) -> None:
        """Stop serving and release the port."""
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def serve_metrics(registry: CollectorRegistry, host: str, port: int, token: str | None) -> MetricsEndpoint:
    """Serve ``registry`` on ``host:port`` (0 picks a port) in a daemon thread."""
    family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0][0]
    server_class: type[_BoundedServer] = type("MetricsServer", (_BoundedServer,), {"address_family": family})
    server: WSGIServer = make_server(
        host, port, _guarded(make_wsgi_app(registry), token), server_class, handler_class=_QuietHandler
    )
    thread = threading.Thread(
        target=server.serve_forever, args=(STOP_POLL_INTERVAL,), name="metrics-http", daemon=True
    )
    thread.start()
    return MetricsEndpoint(server, thread)
