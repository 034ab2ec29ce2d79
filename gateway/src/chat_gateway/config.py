"""The gateway's configuration: one typed object built from flags in one place (``cli.py``)."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_BODY_LIMIT = 1024 * 1024  # bytes of one request body or WebSocket frame
LOOPBACK_NAMES = ("localhost",)


@dataclass(frozen=True)
class UpstreamAddress:
    """Where the internal gRPC services listen."""

    host: str = "127.0.0.1"
    port: int = 50051

    @property
    def is_loopback(self) -> bool:
        """Whether the services are on this machine (plaintext is then allowed by default)."""
        if self.host in LOOPBACK_NAMES:
            return True
        try:
            return ipaddress.ip_address(self.host.strip("[]")).is_loopback
        except ValueError:
            return False


@dataclass(frozen=True)
class UpstreamTls:
    """TLS to the services, with the SDK's ``connect`` settings: CA bundle, client certificate (mTLS).

    ``ca`` None trusts the system's CAs; ``client_cert`` (and ``client_key`` unless the
    key is in the same PEM) presents a certificate; ``server_name`` is the name checked
    against the services' certificate when it differs from the upstream host.
    """

    ca: Path | None = None
    client_cert: Path | None = None
    client_key: Path | None = None
    server_name: str | None = None


@dataclass(frozen=True)
class UpstreamPool:
    """How calls share the HTTP/2 connections to the services.

    Each connection carries at most ``streams`` calls at once (keep it at or under the
    services' ``--max-concurrent-streams``, 100 by default, or grpclib waits silently);
    ``unary_reserve`` of them are kept for unary and client-streaming calls, so long-lived
    streams can never take the last room. One caller (a credential, else a client
    address) holds at most ``caller_streams`` long-lived streams.
    """

    connections: int = 4
    streams: int = 100
    unary_reserve: int = 20
    caller_streams: int = 8

    def __post_init__(self) -> None:
        if self.connections < 1 or self.streams < 2:
            raise ValueError("the upstream pool needs at least one connection of two streams")
        if not 1 <= self.unary_reserve < self.streams:
            raise ValueError("the unary reserve must be at least 1 and below the streams per connection")
        if self.caller_streams < 1:
            raise ValueError("a caller must be allowed at least one stream")


@dataclass(frozen=True)
class GatewayConfig:
    """How the gateway listens, where the services are, and what it accepts."""

    upstream: UpstreamAddress = field(default_factory=UpstreamAddress)
    # TLS to the services; None is plaintext, refused to a non-loopback host unless
    # ``upstream_insecure`` says the network is trusted.
    upstream_tls: UpstreamTls | None = None
    upstream_insecure: bool = False
    pool: UpstreamPool = field(default_factory=UpstreamPool)
    host: str = "127.0.0.1"
    port: int = 8080
    # Origins allowed by CORS; empty turns CORS off (no Access-Control-* headers at all).
    cors_origins: tuple[str, ...] = ()
    body_limit: int = DEFAULT_BODY_LIMIT
    # Seconds a unary or client-streaming call may take upstream; above the services'
    # largest plugin timeout (60 s), so a slow plugin fails there, not here.
    unary_timeout: float = 75.0
    # GraphQL: deepest selection, most aliases and most tokens one document may have.
    graphql_max_depth: int = 8
    graphql_max_aliases: int = 15
    graphql_max_tokens: int = 2000
    graphql_introspection: bool = True

    def __post_init__(self) -> None:
        if self.upstream_tls is None and not self.upstream_insecure and not self.upstream.is_loopback:
            raise ValueError(
                "plaintext to a non-loopback upstream would carry credentials in the clear:"
                " give --upstream-ca (TLS) or --upstream-insecure"
            )
        if self.body_limit <= 0:
            raise ValueError("--body-limit must be positive")
        if self.unary_timeout <= 0:
            raise ValueError("--call-timeout must be positive")
