"""The call observer: one grpclib ``RecvRequest`` listener that counts, times and traces every call.

It wraps each call's handler, so it must be registered after every other
``RecvRequest`` listener: it then sees the final status, refusals included.
Message counts come from the ``SendMessage``/``RecvMessage`` events of the same call.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from time import perf_counter
from typing import Any

from grpclib._typing import IServerMethodFunc
from grpclib.const import Cardinality, Status
from grpclib.events import RecvMessage, RecvRequest, SendMessage
from grpclib.exceptions import GRPCError, StreamTerminatedError
from opentelemetry import trace
from opentelemetry.context import Context
from prometheus_client.metrics import Counter, Gauge, Histogram

from chat_services.observability.metrics import MethodLabels, ServerMetrics
from chat_services.observability.tracing import ServerTracing, parent_context

Handler = IServerMethodFunc

_TYPES = {
    Cardinality.UNARY_UNARY: "unary",
    Cardinality.STREAM_UNARY: "client_stream",
    Cardinality.UNARY_STREAM: "server_stream",
    Cardinality.STREAM_STREAM: "bidi_stream",
}


def method_labels(mapping: Mapping[str, Any]) -> dict[str, MethodLabels]:
    """Labels for every path of a grpclib handler mapping (``/chat.v1.MessageService/GetMessage``)."""
    labels = {}
    for path, handler in mapping.items():
        service, _, method = path.lstrip("/").partition("/")
        labels[path] = MethodLabels(_TYPES[handler.cardinality], service, method)
    return labels


def streaming(labels: Mapping[str, MethodLabels]) -> set[str]:
    """The paths whose calls stream in either direction."""
    return {path for path, label in labels.items() if label.grpc_type != "unary"}


@dataclass
class _MethodMetrics:
    """One method's metric children, bound once (``labels()`` is a lookup under a lock)."""

    started: Counter
    handled_family: Counter
    values: tuple[str, str, str]
    handled: dict[Status, Counter]
    seconds: Histogram
    received: Counter
    sent: Counter
    active: Gauge

    def handled_child(self, code: Status) -> Counter:
        """The ``grpc_server_handled_total`` child of ``code``, created on first use (no zero series)."""
        child = self.handled.get(code)
        if child is None:
            child = self.handled[code] = self.handled_family.labels(*self.values, code.name)
        return child


_CURRENT: contextvars.ContextVar[_MethodMetrics | None] = contextvars.ContextVar(
    "chat_call_metrics", default=None
)


class CallObserver:
    """Metrics and a server span for every call of the given methods."""

    def __init__(
        self,
        methods: Mapping[str, MethodLabels],
        metrics: ServerMetrics | None,
        tracing: ServerTracing | None,
    ) -> None:
        self.methods = dict(methods)
        self.tracing = tracing
        self._metrics = (
            {path: _bind(metrics, labels) for path, labels in self.methods.items()} if metrics else {}
        )

    @property
    def observes(self) -> bool:
        """Whether metrics or traces are configured: with neither, the listeners have nothing to do."""
        return self.tracing is not None or bool(self._metrics)

    async def on_request(self, event: RecvRequest) -> None:
        """grpclib ``RecvRequest`` listener: wrap the handler."""
        labels = self.methods.get(event.method_name)
        if labels is None or not self.observes:
            return  # unknown method, or neither metrics nor traces configured
        parent = parent_context(event.metadata) if self.tracing else None
        event.method_func = self._observed(
            event.method_func, labels, self._metrics.get(event.method_name), parent
        )

    async def on_send_message(self, event: SendMessage) -> None:
        """grpclib ``SendMessage`` listener: count a message sent by the running call."""
        metrics = _CURRENT.get()
        if metrics is not None:
            metrics.sent.inc()

    async def on_recv_message(self, event: RecvMessage) -> None:
        """grpclib ``RecvMessage`` listener: count a message received by the running call."""
        metrics = _CURRENT.get()
        if metrics is not None:
            metrics.received.inc()

    def _observed(
        self, handler: Handler, labels: MethodLabels, metrics: _MethodMetrics | None, parent: Context | None
    ) -> Handler:
        tracer = self.tracing.tracer if self.tracing else None
        streams = labels.grpc_type != "unary"

        async def run(stream: Any) -> None:
            start = perf_counter()
            token = _CURRENT.set(metrics)
            if metrics is not None:
                metrics.started.inc()
                if streams:
                    metrics.active.inc()
            span = None
            if tracer is not None:
                span = tracer.start_span(
                    f"{labels.grpc_service}/{labels.grpc_method}",
                    context=parent,
                    kind=trace.SpanKind.SERVER,
                    attributes={
                        "rpc.system": "grpc",
                        "rpc.service": labels.grpc_service,
                        "rpc.method": labels.grpc_method,
                    },
                )
            code = Status.OK
            try:
                if span is None:
                    await handler(stream)
                else:
                    with trace.use_span(span, record_exception=False, set_status_on_exception=False):
                        await handler(stream)
            except GRPCError as error:
                code = error.status
                raise
            except (asyncio.CancelledError, StreamTerminatedError):
                code = Status.CANCELLED
                raise
            except TimeoutError:
                code = Status.DEADLINE_EXCEEDED
                raise
            except Exception:
                code = Status.UNKNOWN
                raise
            finally:
                _CURRENT.reset(token)
                if metrics is not None:
                    metrics.handled_child(code).inc()
                    metrics.seconds.observe(perf_counter() - start)
                    if streams:
                        metrics.active.dec()
                if span is not None:
                    span.set_attribute("rpc.grpc.status_code", code.value)
                    if code is not Status.OK:
                        span.set_status(trace.StatusCode.ERROR, code.name)
                    span.end()

        return run


def _bind(metrics: ServerMetrics, labels: MethodLabels) -> _MethodMetrics:
    values = (labels.grpc_type, labels.grpc_service, labels.grpc_method)
    return _MethodMetrics(
        started=metrics.started.labels(*values),
        handled_family=metrics.handled,
        values=values,
        handled={},
        seconds=metrics.handling_seconds.labels(*values),
        received=metrics.msg_received.labels(*values),
        sent=metrics.msg_sent.labels(*values),
        active=metrics.active_streams.labels(*values),
    )


def all_paths(handlers: Iterable[Any]) -> dict[str, Any]:
    """The combined method mapping of grpclib handlers."""
    mapping: dict[str, Any] = {}
    for handler in handlers:
        mapping.update(handler.__mapping__())
    return mapping
