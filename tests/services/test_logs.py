"""Log lines written while a call's span is current carry its trace id."""

from __future__ import annotations

import logging

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider

from chat_services.logs import JsonFormatter, TextFormatter, TraceIdFilter


def test_a_line_logged_inside_a_span_names_its_trace() -> None:
    tracer = TracerProvider().get_tracer("test")
    record = logging.makeLogRecord({"name": "chat_services.calls", "msg": "inside", "levelname": "INFO"})
    with tracer.start_as_current_span("call") as span:
        assert TraceIdFilter().filter(record)
    trace_id = trace.format_trace_id(span.get_span_context().trace_id)
    assert f"trace_id={trace_id}" in TextFormatter().format(record)
    assert f'"trace_id": "{trace_id}"' in JsonFormatter().format(record)


def test_a_line_logged_outside_any_span_has_no_trace_id() -> None:
    record = logging.makeLogRecord({"name": "chat_services.server", "msg": "outside", "levelname": "INFO"})
    assert TraceIdFilter().filter(record)
    assert "trace_id" not in TextFormatter().format(record)
