"""Metrics scraped over HTTP and server spans exported in memory show the calls as they happened."""

from __future__ import annotations

import asyncio
import threading
import urllib.request
from collections.abc import AsyncIterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest
from grpclib.const import Status
from opentelemetry import trace
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client.parser import text_string_to_metric_families

from chat.v1 import message_service_pb2, plugin_service_pb2
from chat.v1.message_service_grpc import MessageServiceStub
from chat.v1.plugin_service_grpc import PluginServiceStub
from chat_services.server import App, build_app

from ..clients import channel, expect_status
from ..conftest import make_config
from .conftest import AUDIENCE, ISSUER, Issuer

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_SPAN_ID = "00f067aa0ba902b7"


@pytest.fixture
async def observed_app(tmp_path: Path, issuer: Issuer) -> AsyncIterator[tuple[App, InMemorySpanExporter]]:
    """A secured server with /metrics on an ephemeral port and spans kept in memory."""
    exporter = InMemorySpanExporter()
    config = make_config(
        tmp_path,
        jwt_issuer=ISSUER,
        jwt_audience=AUDIENCE,
        jwt_public_key=issuer.public_key_file,
        metrics_port=0,
    )
    app = await build_app(config, span_exporter=exporter)
    await app.start()
    try:
        yield app, exporter
    finally:
        await app.shutdown()


def scrape(port: int) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of ``/metrics``: (name, labels) -> value."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def labels(method: str, **extra: str) -> frozenset[tuple[str, str]]:
    """The label set of a unary MessageService method, plus ``extra``."""
    base = {"grpc_type": "unary", "grpc_service": "chat.v1.MessageService", "grpc_method": method}
    return frozenset({**base, **extra}.items())


async def test_metrics_show_each_call_with_its_code(
    observed_app: tuple[App, InMemorySpanExporter], issuer: Issuer
) -> None:
    app, _ = observed_app
    request = message_service_pb2.GetMessageRequest(message_id="m-none")
    async with channel(app.port) as opened:
        stub = MessageServiceStub(opened)
        for _ in range(2):
            await expect_status(
                stub.GetMessage(request, metadata={"authorization": f"Bearer {issuer.token()}"}),
                Status.NOT_FOUND,
            )
        await expect_status(stub.GetMessage(request), Status.UNAUTHENTICATED)
        plugins = PluginServiceStub(opened)
        invoke = plugin_service_pb2.InvokePluginRequest(plugin_name="word_count", arguments={"text": "a b"})
        await plugins.InvokePlugin(invoke, metadata={"authorization": f"Bearer {issuer.token()}"}, timeout=30)
    assert app.interceptors is not None and app.interceptors.metrics_endpoint is not None
    samples = await asyncio.to_thread(scrape, app.interceptors.metrics_endpoint.port)
    assert samples[("grpc_server_started_total", labels("GetMessage"))] == 3
    assert samples[("grpc_server_handled_total", labels("GetMessage", grpc_code="NOT_FOUND"))] == 2
    assert samples[("grpc_server_handled_total", labels("GetMessage", grpc_code="UNAUTHENTICATED"))] == 1
    assert samples[("grpc_server_handling_seconds_count", labels("GetMessage"))] == 3
    assert samples[("grpc_server_msg_received_total", labels("GetMessage"))] == 2  # the refused one sent none
    path = "/chat.v1.MessageService/GetMessage"
    assert samples[("chat_server_unauthenticated_total", frozenset({("grpc_method", path)}))] == 1
    assert samples[("chat_db_operation_seconds_count", frozenset({("operation", "call")}))] >= 2
    plugin_run = frozenset({("plugin", "word_count"), ("outcome", "ok")})
    assert samples[("chat_plugin_invocation_seconds_count", plugin_run)] == 1


async def test_a_server_span_continues_the_callers_trace(
    observed_app: tuple[App, InMemorySpanExporter], issuer: Issuer
) -> None:
    app, exporter = observed_app
    metadata = {
        "authorization": f"Bearer {issuer.token()}",
        "traceparent": f"00-{TRACE_ID}-{PARENT_SPAN_ID}-01",
    }
    async with channel(app.port) as opened:
        request = message_service_pb2.GetMessageRequest(message_id="m-none")
        await expect_status(
            MessageServiceStub(opened).GetMessage(request, metadata=metadata), Status.NOT_FOUND
        )
    [span] = exporter.get_finished_spans()
    assert span.name == "chat.v1.MessageService/GetMessage"
    assert span.kind is trace.SpanKind.SERVER
    assert trace.format_trace_id(span.context.trace_id) == TRACE_ID
    assert span.parent is not None and trace.format_span_id(span.parent.span_id) == PARENT_SPAN_ID
    assert dict(span.attributes or {}) == {
        "rpc.system": "grpc",
        "rpc.service": "chat.v1.MessageService",
        "rpc.method": "GetMessage",
        "rpc.grpc.status_code": Status.NOT_FOUND.value,
    }


class _Collector(BaseHTTPRequestHandler):
    """An OTLP/HTTP collector on 127.0.0.1 that keeps every export it receives."""

    received: ClassVar[list[bytes]] = []

    def do_POST(self) -> None:
        self.received.append(self.rfile.read(int(self.headers.get("content-length", 0))))
        self.send_response(200)
        self.send_header("content-type", "application/x-protobuf")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        return


async def test_spans_reach_an_otlp_collector(tmp_path: Path, issuer: Issuer) -> None:
    collector = ThreadingHTTPServer(("127.0.0.1", 0), _Collector)
    thread = threading.Thread(target=collector.serve_forever, daemon=True)
    thread.start()
    try:
        endpoint = f"http://127.0.0.1:{collector.server_port}/v1/traces"
        app = await build_app(make_config(tmp_path, trace_exporter="otlp", otlp_endpoint=endpoint))
        await app.start()
        try:
            async with channel(app.port) as opened:
                request = message_service_pb2.GetMessageRequest(message_id="m-none")
                await expect_status(MessageServiceStub(opened).GetMessage(request), Status.NOT_FOUND)
        finally:
            await app.shutdown()  # flushes the batch of spans to the collector
    finally:
        collector.shutdown()
        collector.server_close()
        thread.join(timeout=5)
    exported = [ExportTraceServiceRequest.FromString(body) for body in _Collector.received]
    names = [
        span.name
        for batch in exported
        for rs in batch.resource_spans
        for ss in rs.scope_spans
        for span in ss.spans
    ]
    assert names == ["chat.v1.MessageService/GetMessage"]
