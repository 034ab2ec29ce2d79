"""Prometheus metrics with the standard gRPC server names, one registry per app.

Each app owns its ``CollectorRegistry`` (tests run many apps in one process) and
serves it on its own HTTP port.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from chat_services.observability.endpoint import MetricsEndpoint, serve_metrics
from chat_services.security.shared_limits import LEASE_OUTCOMES

if TYPE_CHECKING:
    from chat_services.security.shared_limits import SharedRateLimiter

_CALL_LABELS = ("grpc_type", "grpc_service", "grpc_method")
# Seconds; from sub-millisecond unary calls to minute-long streams.
_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


@dataclass(frozen=True)
class MethodLabels:
    """One method's labels: its kind (``unary``, ``server_stream``...), service and method."""

    grpc_type: str
    grpc_service: str
    grpc_method: str


class ServerMetrics:
    """Every metric the server exports, registered in its own registry."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.started = Counter("grpc_server_started", "RPCs started on the server.", _CALL_LABELS, registry=r)
        self.handled = Counter(
            "grpc_server_handled",
            "RPCs completed on the server, by status.",
            (*_CALL_LABELS, "grpc_code"),
            registry=r,
        )
        self.handling_seconds = Histogram(
            "grpc_server_handling_seconds",
            "Time from receiving an RPC to its status, in seconds.",
            _CALL_LABELS,
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.msg_received = Counter(
            "grpc_server_msg_received", "Stream messages received from clients.", _CALL_LABELS, registry=r
        )
        self.msg_sent = Counter(
            "grpc_server_msg_sent", "Stream messages sent to clients.", _CALL_LABELS, registry=r
        )
        self.active_streams = Gauge(
            "grpc_server_active_streams", "Streaming RPCs open now.", _CALL_LABELS, registry=r
        )
        self.refusals = Counter(
            "chat_server_refused",
            "Calls refused by authentication, authorization or rate limits, by reason.",
            ("grpc_method", "reason"),
            registry=r,
        )
        self.rate_limited = Counter(
            "chat_server_rate_limited",
            "Calls refused for exceeding a rate or stream limit.",
            ("grpc_method",),
            registry=r,
        )
        self.unauthenticated = Counter(
            "chat_server_unauthenticated",
            "Calls refused for missing or invalid credentials.",
            ("grpc_method",),
            registry=r,
        )
        self.db_seconds = Histogram(
            "chat_db_operation_seconds",
            "Time SQLite operations take on the database thread, queue wait included, in seconds.",
            ("operation",),
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.plugin_seconds = Histogram(
            "chat_plugin_invocation_seconds",
            "Time a plugin invocation takes, by plugin and outcome, in seconds.",
            ("plugin", "outcome"),
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )

        self.rate_leases = Counter(
            "chat_rate_limit_leases",
            "Token leases asked of the shared rate-limit buckets (PostgreSQL), by outcome:"
            " granted, refused, or unavailable (the database could not be reached).",
            ("outcome",),
            registry=r,
        )
        self.rate_limits_shared = Gauge(
            "chat_rate_limits_shared",
            "1 while rate limits are shared through the database; 0 while each process limits on its own.",
            registry=r,
        )

        self._db_children: dict[str, Histogram] = {}

    def refused(self, method: str, reason: str) -> None:
        """Count a refusal (the guard calls this)."""
        self.refusals.labels(method, reason).inc()
        if reason in ("RATE_LIMITED", "TOO_MANY_STREAMS"):
            self.rate_limited.labels(method).inc()
        elif reason != "PERMISSION_DENIED":
            self.unauthenticated.labels(method).inc()

    def observe_db(self, operation: str, seconds: float) -> None:
        """Record one database operation (``call`` or ``transaction``)."""
        child = self._db_children.get(operation)
        if child is None:
            child = self._db_children[operation] = self.db_seconds.labels(operation)
        child.observe(seconds)

    def watch_shared_limits(self, limiter: SharedRateLimiter) -> None:
        """Count ``limiter``'s leases and show whether its limits are shared right now."""
        children = {outcome: self.rate_leases.labels(outcome) for outcome in LEASE_OUTCOMES}
        limiter.on_lease = lambda outcome: children[outcome].inc()
        self.rate_limits_shared.set_function(lambda: 1.0 if limiter.shared else 0.0)

    def observe_plugin(self, plugin: str, outcome: str, seconds: float) -> None:
        """Record one plugin invocation."""
        self.plugin_seconds.labels(plugin, outcome).observe(seconds)

    def serve(self, host: str, port: int, token: str | None = None) -> MetricsEndpoint:
        """Serve ``/metrics`` over HTTP on ``host:port`` (0 picks a free port) in a daemon thread.

        With ``token``, a scrape must send ``Authorization: Bearer <token>``.
        """
        return serve_metrics(self.registry, host, port, token)
