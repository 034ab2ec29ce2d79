"""Wires security and observability into a server: TLS, the guard, metrics and traces.

Listener order matters: each ``RecvRequest`` listener wraps the handler the previous
one left, so the call observer goes last and sees every status, refusals included.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Sequence
from dataclasses import dataclass

from grpclib._typing import IServable
from grpclib.events import RecvMessage, RecvRequest, SendMessage, listen
from grpclib.server import Server
from opentelemetry.sdk.trace.export import SpanExporter

from chat_services.config import ServiceConfig
from chat_services.observability.calls import CallObserver, all_paths, method_labels, streaming
from chat_services.observability.endpoint import MetricsEndpoint
from chat_services.observability.metrics import ServerMetrics
from chat_services.observability.tracing import ServerTracing, make_exporter
from chat_services.plugin.service import PluginService
from chat_services.security.authn import Authenticator
from chat_services.security.guard import Guard
from chat_services.security.ratelimit import RateLimitConfig, RateLimiter
from chat_services.security.shared_limits import SharedRateLimiter
from chat_services.security.tls import is_loopback, server_context
from chat_services.security.tokens import JwtVerifier, ServiceAccounts
from chat_services.storage import Storage

log = logging.getLogger("chat_services.security")


@dataclass
class Interceptors:
    """What the wiring made: the TLS context, metrics and tracing the app starts and stops."""

    ssl: ssl.SSLContext | None
    guard: Guard
    metrics: ServerMetrics | None
    tracing: ServerTracing | None
    metrics_endpoint: MetricsEndpoint | None = None

    def start(self, config: ServiceConfig) -> None:
        """Serve ``/metrics`` (when a metrics port is set) and say how the server is secured."""
        if self.metrics is not None and config.metrics_port is not None:
            token = config.metrics_token_file.read_text().strip() if config.metrics_token_file else None
            self.metrics_endpoint = self.metrics.serve(config.metrics_host, config.metrics_port, token)
            log.info(
                "metrics",
                extra={"address": f"http://{config.metrics_host}:{self.metrics_endpoint.port}/metrics"},
            )
        if not self.guard.authenticator.enforced:
            log.warning(
                "authentication is off: no token source or client CA configured; every caller is trusted"
            )
        if self.ssl is None and not is_loopback(config.host):
            log.warning(
                "serving PLAINTEXT on a non-loopback address: set --tls-cert and --tls-key",
                extra={"host": config.host},
            )

    def stop(self) -> None:
        """Stop serving metrics and flush the spans still buffered."""
        if self.metrics_endpoint is not None:
            self.metrics_endpoint.close()
            self.metrics_endpoint = None
        if self.tracing is not None:
            self.tracing.shutdown()


def authenticator(config: ServiceConfig) -> Authenticator:
    """The credential sources the configuration names."""
    verifier = None
    if config.jwt_issuer is not None and config.jwt_audience is not None:
        verifier = JwtVerifier.from_files(
            issuer=config.jwt_issuer,
            audience=config.jwt_audience,
            public_key=config.jwt_public_key,
            jwks=config.jwt_jwks,
            max_lifetime=config.jwt_max_lifetime,
        )
    accounts = ServiceAccounts.load(config.service_accounts) if config.service_accounts else None
    return Authenticator(jwt=verifier, accounts=accounts, mutual_tls=config.tls_client_ca is not None)


def install(
    server: Server,
    handlers: Sequence[IServable],
    config: ServiceConfig,
    *,
    database: Storage | None = None,
    span_exporter: SpanExporter | None = None,
) -> Interceptors:
    """Attach the guard and the call observer to ``server``; ``span_exporter`` overrides the config."""
    labels = method_labels(all_paths(handlers))
    auth = authenticator(config)
    limits = None
    if config.rate_limits is not None:
        limits = RateLimitConfig.load(config.rate_limits)
    elif auth.enforced:
        limits = RateLimitConfig()
    metrics = ServerMetrics() if config.metrics_port is not None else None
    limiter: RateLimiter | None = None
    if limits is not None:
        if config.rate_limit_scope == "shared" and database is not None and database.dsn is not None:
            limiter = SharedRateLimiter(limits, database)  # on PostgreSQL: every instance's buckets
        else:
            limiter = RateLimiter(limits)
    if metrics is not None and isinstance(limiter, SharedRateLimiter):
        metrics.watch_shared_limits(limiter)
    guard = Guard(
        auth,
        limiter,
        streaming_methods=streaming(labels),
        open_prefixes=tuple(p for p in config.open_methods.split(",") if p),
        counter=metrics,
    )
    exporter = span_exporter or make_exporter(config.trace_exporter, config.otlp_endpoint)
    tracing = ServerTracing(exporter, batch=span_exporter is None) if exporter else None
    observer = CallObserver(labels, metrics, tracing)
    if metrics is not None:
        _observe_timings(metrics, database, handlers)
    # Only listeners with work to do: grpclib builds an event object and awaits every listener
    # for each call and each message (for SendMessage/RecvMessage, only once one listens).
    # An open server without metrics or traces pays for none of them (services/README.md,
    # "Server CPU per call").
    if guard.decides:
        listen(server, RecvRequest, guard.on_request)
    if observer.observes:
        listen(server, RecvRequest, observer.on_request)
        listen(server, SendMessage, observer.on_send_message)
        listen(server, RecvMessage, observer.on_recv_message)
    context = None
    if config.tls_cert is not None and config.tls_key is not None:
        context = server_context(config.tls_cert, config.tls_key, config.tls_client_ca)
    return Interceptors(context, guard, metrics, tracing)


def _observe_timings(metrics: ServerMetrics, database: Storage | None, handlers: Sequence[IServable]) -> None:
    """Time database operations and plugin runs into ``metrics``."""
    if database is not None:
        database.observer = metrics.observe_db
    for handler in handlers:
        if isinstance(handler, PluginService):
            handler.runner.observer = metrics.observe_plugin
