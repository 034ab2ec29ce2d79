"""OpenTelemetry tracing for the server: a provider per app, exporting to OTLP or the console.

The provider is the app's own (never the global one), so several apps in one
process keep their spans apart.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any

from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SimpleSpanProcessor,
    SpanExporter,
)
from opentelemetry.trace import Tracer
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

EXPORTERS = ("none", "console", "otlp")
_PROPAGATOR = TraceContextTextMapPropagator()


def make_exporter(kind: str, endpoint: str | None) -> SpanExporter | None:
    """The exporter a ``--trace-exporter`` value names; None for ``none``."""
    if kind == "none":
        return None
    if kind == "console":
        return ConsoleSpanExporter(out=sys.stderr)
    if kind == "otlp":
        # Imported only when chosen: the exporter pulls in requests and the OTLP protos.
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        # With no endpoint, OTEL_EXPORTER_OTLP_TRACES_ENDPOINT or http://localhost:4318/v1/traces.
        return OTLPSpanExporter(endpoint=endpoint) if endpoint else OTLPSpanExporter()
    raise ValueError(f"trace exporter {kind!r} is not one of {', '.join(EXPORTERS)}")


class ServerTracing:
    """The app's tracer provider and tracer; ``shutdown`` flushes what is buffered.

    ``batch=False`` exports each span as it ends (tests); the sampler is OpenTelemetry's
    default, so ``OTEL_TRACES_SAMPLER`` and ``OTEL_TRACES_SAMPLER_ARG`` apply.
    """

    def __init__(
        self, exporter: SpanExporter, *, service_name: str = "chat-services", batch: bool = True
    ) -> None:
        self.provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
        processor = BatchSpanProcessor(exporter) if batch else SimpleSpanProcessor(exporter)
        self.provider.add_span_processor(processor)
        self.tracer: Tracer = self.provider.get_tracer("chat_services")

    def shutdown(self) -> None:
        """Export what is buffered and stop."""
        self.provider.shutdown()


def parent_context(metadata: Mapping[str, Any]) -> Context:
    """The caller's trace context from W3C ``traceparent``/``tracestate`` metadata (empty if absent)."""
    carrier = {key: str(metadata[key]) for key in ("traceparent", "tracestate") if key in metadata}
    return _PROPAGATOR.extract(carrier)
