"""The gateway's configuration: one typed object built from flags in one place (``cli.py``)."""

from __future__ import annotations

from dataclasses import dataclass, field

from chat_gateway.upstream import UpstreamAddress

DEFAULT_BODY_LIMIT = 1024 * 1024  # bytes of one request body or WebSocket frame


@dataclass(frozen=True)
class GatewayConfig:
    """How the gateway listens, where the services are, and what it accepts."""

    upstream: UpstreamAddress = field(default_factory=UpstreamAddress)
    host: str = "127.0.0.1"
    port: int = 8080
    # Origins allowed by CORS; empty turns CORS off (no Access-Control-* headers at all).
    cors_origins: tuple[str, ...] = ()
    body_limit: int = DEFAULT_BODY_LIMIT
    # Seconds a unary or client-streaming call may take upstream; above the services'
    # largest plugin timeout (60 s), so a slow plugin fails there, not here.
    unary_timeout: float = 75.0
