"""The services' configuration: one typed object, built from flags and environment in one place."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from chat_sdk.compression import DEFAULT_MIN_BYTES, ENCODINGS, IDENTITY
from chat_services.budget import DEFAULT_CALL_BYTES, DEFAULT_INFLIGHT_BYTES

ENV_PREFIX = "CHAT_SERVICES_"
DEFAULT_MAX_MESSAGE_BYTES = 4 * 1024 * 1024  # grpcio's default receive limit


@dataclass(frozen=True)
class ServiceConfig:
    """Everything the server needs to know; passed down, never read from the environment again."""

    host: str = "127.0.0.1"
    port: int = 50051
    # An SQLite file, or a PostgreSQL URL (``postgresql://user@host:5432/chat``).
    database: Path | str = field(default_factory=lambda: Path("chat-services.db"))
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
    grace_period: float = 10.0  # seconds running calls get to finish on SIGTERM
    plugin_timeout: float = 10.0  # seconds, when the request sets none
    plugin_max_timeout: float = 60.0
    completion_chunk_delay: float = 0.02  # seconds between streamed answer chunks
    log_level: str = "INFO"
    log_format: str = "text"  # or "json"
    storage_probe_interval: float = 5.0  # seconds between probe writes while storage is faulted
    # Hostile input: what one client may make the server hold (services/README.md, "Hostile input").
    connection_buffer_bytes: int = 4 * DEFAULT_MAX_MESSAGE_BYTES  # request bytes being read, per connection
    # Memory: request bytes a SendMessages call may accept, and all running calls together (budget.py).
    max_call_bytes: int = DEFAULT_CALL_BYTES
    max_inflight_bytes: int = DEFAULT_INFLIGHT_BYTES
    # HTTP/2 flow-control windows: how much a client may send before the server reads it.
    # Small windows keep a client from pushing megabytes the server will refuse unread.
    stream_window_bytes: int = 256 * 1024
    connection_window_bytes: int = 1024 * 1024
    max_connections: int = 1000
    health_connections: int = 16  # beyond max_connections, for health checks only
    max_connections_per_address: int = 100
    max_concurrent_streams: int = 100  # per connection, announced in HTTP/2 SETTINGS
    request_timeout: float = 30.0  # seconds a one-message request may take to arrive whole
    handshake_timeout: float = 10.0  # seconds from TCP accept to the client's HTTP/2 SETTINGS
    idle_timeout: float = 300.0  # seconds without a call or data before GOAWAY
    keepalive_time: float = 300.0  # seconds between server pings on a connection with calls
    keepalive_timeout: float = 20.0  # seconds a ping may go unanswered before the connection closes
    # Work kept off the event loop (services/README.md, "Heavy work and slow readers").
    rag_workers: int = 1  # processes that split and embed documents
    # Processes serving the port together (SO_REUSEPORT), on PostgreSQL only (supervisor.py).
    workers: int = 1
    reuse_port: bool = False  # set by the supervisor for its workers, not a flag
    follower_timeout: float = 60.0  # seconds a StreamMessages client may leave a message unread
    # Security and observability (services/README.md, "Running it securely").
    tls_cert: Path | None = None
    tls_key: Path | None = None
    tls_client_ca: Path | None = None  # set: mutual TLS, every client presents a certificate
    jwt_issuer: str | None = None
    jwt_audience: str | None = None
    jwt_public_key: Path | None = None
    jwt_jwks: Path | None = None
    jwt_max_lifetime: float = 24 * 3600.0  # seconds; a user JWT that lives longer is refused
    service_accounts: Path | None = None
    open_methods: str = "/grpc.health.v1.,/grpc.reflection."
    rate_limits: Path | None = None
    # "shared": on PostgreSQL, every instance takes from the same buckets (security/shared_limits.py);
    # "process": each process keeps its own (N processes let a caller through N times the rate).
    rate_limit_scope: str = "shared"
    metrics_port: int | None = None
    metrics_host: str = "127.0.0.1"  # /metrics stays on loopback unless asked
    metrics_token_file: Path | None = None  # set: a scrape must send this bearer token
    # Reflection lists the whole schema: "auto" serves it only while authentication is off.
    reflection: str = "auto"
    trace_exporter: str = "none"
    otlp_endpoint: str | None = None
    # Reply compression (services/README.md, "Compression"): encodings in order of preference
    # ("none": replies always plain), used only when the client lists one in grpc-accept-encoding.
    reply_compression: str = "zstd,gzip,deflate"
    compress_min_bytes: int = DEFAULT_MIN_BYTES  # replies shorter than this go plain

    @property
    def reply_encodings(self) -> tuple[str, ...]:
        """``reply_compression`` as a tuple of encodings (empty for "none")."""
        if self.reply_compression.strip().lower() in ("", "none", IDENTITY):
            return ()
        return tuple(name.strip().lower() for name in self.reply_compression.split(","))

    def __post_init__(self) -> None:
        unknown = [name for name in self.reply_encodings if name not in ENCODINGS]
        if unknown or self.compress_min_bytes < 0:
            raise ValueError(
                f"reply_compression lists {', '.join(ENCODINGS)} or none"
                f" (got {self.reply_compression[:60]!r}); compress_min_bytes must be >= 0"
            )
        if not 0 <= self.port < 65536:
            raise ValueError(f"port {self.port} is outside 0-65535")
        if self.max_message_bytes < 1:
            raise ValueError("max message size must be at least 1 byte")
        if self.grace_period < 0 or self.plugin_timeout <= 0 or self.plugin_max_timeout < self.plugin_timeout:
            raise ValueError("need grace_period >= 0 and 0 < plugin_timeout <= plugin_max_timeout")
        if (
            min(
                self.connection_buffer_bytes,
                self.max_connections,
                self.max_concurrent_streams,
                self.max_connections_per_address,
            )
            < 1
        ):
            raise ValueError(
                "connection_buffer_bytes, max_connections, max_connections_per_address and"
                " max_concurrent_streams must be >= 1"
            )
        if not 1 <= self.max_call_bytes <= self.max_inflight_bytes:
            raise ValueError("need 1 <= max_call_bytes <= max_inflight_bytes")
        if self.health_connections < 0:
            raise ValueError("health_connections must be >= 0")
        if self.connection_buffer_bytes < self.max_message_bytes:
            raise ValueError("connection_buffer_bytes must be at least max_message_bytes")
        if not all(65535 <= w <= 2**31 - 1 for w in (self.stream_window_bytes, self.connection_window_bytes)):
            raise ValueError("HTTP/2 windows must be between 65535 and 2147483647 bytes")
        timeouts = (
            self.request_timeout,
            self.handshake_timeout,
            self.idle_timeout,
            self.keepalive_time,
            self.keepalive_timeout,
            self.storage_probe_interval,
        )
        if any(timeout <= 0 for timeout in timeouts):
            raise ValueError(
                "request, handshake, idle and keepalive timeouts and the storage probe interval"
                " must be positive"
            )
        if self.workers < 1:
            raise ValueError("workers must be at least 1")
        if self.rag_workers < 1 or self.follower_timeout <= 0:
            raise ValueError("rag_workers must be at least 1 and follower_timeout positive")
        if self.log_format not in ("text", "json"):
            raise ValueError(f"log format {self.log_format!r} is not text or json")
        self._check_security()

    @property
    def authentication_configured(self) -> bool:
        """Whether any credential source is set: then every call must authenticate."""
        return (
            self.jwt_issuer is not None or self.service_accounts is not None or self.tls_client_ca is not None
        )

    @property
    def serves_reflection(self) -> bool:
        """Reflection is served when asked, or by default while authentication is off."""
        return self.reflection == "on" or (self.reflection == "auto" and not self.authentication_configured)

    def _check_security(self) -> None:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("TLS needs both --tls-cert and --tls-key")
        if self.tls_client_ca is not None and self.tls_cert is None:
            raise ValueError("--tls-client-ca (mutual TLS) needs --tls-cert and --tls-key")
        jwt_fields = (self.jwt_issuer, self.jwt_audience, self.jwt_public_key or self.jwt_jwks)
        if any(value is not None for value in jwt_fields) and not all(
            value is not None for value in jwt_fields
        ):
            raise ValueError("JWT needs --jwt-issuer, --jwt-audience and --jwt-public-key or --jwt-jwks")
        if self.jwt_public_key is not None and self.jwt_jwks is not None:
            raise ValueError("give one of --jwt-public-key and --jwt-jwks, not both")
        if self.metrics_port is not None and not 0 <= self.metrics_port < 65536:
            raise ValueError(f"metrics port {self.metrics_port} is outside 0-65535")
        if self.jwt_max_lifetime <= 0:
            raise ValueError("--jwt-max-lifetime must be positive")
        if self.reflection not in ("auto", "on", "off"):
            raise ValueError(f"reflection {self.reflection!r} is not auto, on or off")
        if self.rate_limit_scope not in ("shared", "process"):
            raise ValueError(f"rate_limit_scope {self.rate_limit_scope[:40]!r} is not shared or process")
        if self.trace_exporter not in ("none", "console", "otlp"):
            raise ValueError(f"trace exporter {self.trace_exporter!r} is not none, console or otlp")


def database_target(raw: str) -> Path | str:
    """``--database``: a ``postgresql://`` or ``postgres://`` URL as given, else an SQLite file path."""
    return raw if raw.startswith(("postgresql://", "postgres://")) else Path(raw)


_FIELDS: dict[str, tuple[Callable[[str], object], str]] = {
    "host": (str, "address to listen on (loopback by default)"),
    "port": (int, "port to listen on; 0 picks a free one"),
    "database": (
        database_target,
        "SQLite file, created and migrated on start, or a postgresql:// URL (migrated on start)",
    ),
    "max_message_bytes": (int, "largest request message accepted, in bytes"),
    "grace_period": (float, "seconds running calls get to finish on SIGTERM/SIGINT"),
    "plugin_timeout": (float, "default plugin invocation timeout, seconds"),
    "plugin_max_timeout": (float, "largest plugin timeout a request may ask for, seconds"),
    "completion_chunk_delay": (float, "pause between streamed completion chunks, seconds"),
    "log_level": (str, "DEBUG, INFO, WARNING or ERROR"),
    "log_format": (str, "text or json"),
    "storage_probe_interval": (float, "seconds between probe writes while the disk is full or failing"),
    "connection_buffer_bytes": (int, "request bytes one connection may have buffered while being read"),
    "max_call_bytes": (int, "request bytes one SendMessages call may accept (summed encoded messages)"),
    "max_inflight_bytes": (int, "request bytes all running SendMessages calls may hold together"),
    "stream_window_bytes": (int, "HTTP/2 window per stream: bytes a client may send ahead of the server"),
    "connection_window_bytes": (int, "HTTP/2 window per connection, across its streams"),
    "max_connections": (int, "open client connections for calls; past them, the health reserve"),
    "health_connections": (int, "connections past --max-connections admitted for health checks only"),
    "max_connections_per_address": (int, "open connections one client address may hold"),
    "max_concurrent_streams": (int, "concurrent calls per connection (HTTP/2 SETTINGS)"),
    "request_timeout": (float, "seconds a call taking one request message has to send it whole"),
    "handshake_timeout": (float, "seconds a new connection gets to send the HTTP/2 preface and SETTINGS"),
    "idle_timeout": (float, "seconds a connection without calls or data stays open"),
    "keepalive_time": (float, "seconds between pings on a connection with calls"),
    "keepalive_timeout": (float, "seconds an unanswered ping waits before the connection closes"),
    "rag_workers": (int, "processes that split and embed documents, off the event loop"),
    "workers": (int, "server processes sharing the port (SO_REUSEPORT); more than 1 needs PostgreSQL"),
    "follower_timeout": (float, "seconds a StreamMessages client may leave a sent message unread"),
    "tls_cert": (Path, "PEM certificate chain of the server; with --tls-key turns on TLS"),
    "tls_key": (Path, "PEM private key of --tls-cert"),
    "tls_client_ca": (Path, "PEM CA bundle; clients must present a certificate it signed (mutual TLS)"),
    "jwt_issuer": (str, "required iss claim of user JWTs"),
    "jwt_audience": (str, "required aud claim of user JWTs"),
    "jwt_public_key": (Path, "PEM public key that signs user JWTs"),
    "jwt_jwks": (Path, "JWKS file with the keys that sign user JWTs (read once, never fetched)"),
    "jwt_max_lifetime": (float, "seconds a user JWT may live (exp - iat); longer ones are refused"),
    "service_accounts": (Path, "TOML file of service accounts: scopes and SHA-256 digests of API tokens"),
    "open_methods": (str, "comma-separated method prefixes callable without credentials"),
    "rate_limits": (Path, "TOML file of rate limits (defaults apply whenever authentication is on)"),
    "rate_limit_scope": (
        str,
        "shared (on PostgreSQL, every instance takes from the same buckets) or process",
    ),
    "metrics_port": (int, "serve Prometheus /metrics over HTTP on this port (0 picks one)"),
    "metrics_host": (str, "address /metrics listens on (loopback by default)"),
    "metrics_token_file": (Path, "file holding a bearer token every /metrics scrape must send"),
    "reflection": (str, "auto (on only while authentication is off), on or off"),
    "trace_exporter": (str, "none, console or otlp"),
    "otlp_endpoint": (str, "OTLP/HTTP traces endpoint (default http://localhost:4318/v1/traces)"),
    "reply_compression": (
        str,
        "encodings replies may be compressed in, preferred first (zstd,gzip,deflate), or none",
    ),
    "compress_min_bytes": (
        int,
        "replies of at least this many bytes are compressed, for clients that accept it",
    ),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add one ``--flag`` per setting; each also reads ``CHAT_SERVICES_<NAME>``."""
    for name, (_, help_text) in _FIELDS.items():
        flag = "--" + name.replace("_", "-")
        parser.add_argument(
            flag, dest=name, default=None, help=f"{help_text} (env {ENV_PREFIX}{name.upper()})"
        )


def from_sources(args: argparse.Namespace, environ: Mapping[str, str]) -> ServiceConfig:
    """Flags win over environment variables, which win over defaults."""
    values: dict[str, object] = {}
    for name, (kind, _) in _FIELDS.items():
        raw = getattr(args, name, None)
        if raw is None:
            raw = environ.get(ENV_PREFIX + name.upper())
        if raw is None:
            continue
        try:
            values[name] = kind(raw)
        except ValueError as error:
            raise ValueError(
                f"{name}: {raw!r} is not a valid {getattr(kind, '__name__', 'value')}"
            ) from error
    return ServiceConfig(**values)  # type: ignore[arg-type]


def parse_config(argv: Sequence[str], environ: Mapping[str, str] | None = None) -> ServiceConfig:
    """Build the configuration from command-line flags and the environment."""
    parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    add_arguments(parser)
    args, _ = parser.parse_known_args(argv)
    return from_sources(args, os.environ if environ is None else environ)
