"""The SDK's client layer against the secured server: mTLS plus a token, and one trace across both."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from grpclib.const import Status
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from chat_sdk import connect
from chat_sdk.v1 import GetMessageRequest, MessageServiceStub
from chat_services.server import App, build_app

from ..clients import expect_status
from ..conftest import make_config
from .conftest import AUDIENCE, ISSUER, Certificates, Issuer, service_accounts_file
from .test_tls import CONNECTION_FAILURES


@pytest.fixture
async def traced_mtls_app(
    tmp_path: Path, certificates: Certificates, issuer: Issuer
) -> AsyncIterator[tuple[App, InMemorySpanExporter]]:
    """mTLS and JWTs enforced; server spans kept in memory."""
    exporter = InMemorySpanExporter()
    config = make_config(
        tmp_path,
        tls_cert=certificates.directory / "server.pem",
        tls_key=certificates.directory / "server.key",
        tls_client_ca=certificates.directory / "ca.pem",
        jwt_issuer=ISSUER,
        jwt_audience=AUDIENCE,
        jwt_public_key=issuer.public_key_file,
        service_accounts=service_accounts_file(tmp_path),
    )
    app = await build_app(config, span_exporter=exporter)
    await app.start()
    try:
        yield app, exporter
    finally:
        await app.shutdown()


def client_files(certificates: Certificates, directory: Path) -> tuple[Path, Path]:
    """The client certificate and key as PEM files."""
    cert, key = directory / "client.pem", directory / "client.key"
    certificates.client.cert_chain_pems[0].write_to_path(str(cert))
    certificates.client.private_key_pem.write_to_path(str(key))
    return cert, key


async def test_the_sdk_calls_over_mtls_with_a_token_and_links_its_span_to_the_servers(
    traced_mtls_app: tuple[App, InMemorySpanExporter],
    certificates: Certificates,
    issuer: Issuer,
    tmp_path: Path,
) -> None:
    app, server_spans = traced_mtls_app
    client_spans = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(client_spans))
    cert, key = client_files(certificates, tmp_path)
    async with connect(
        f"localhost:{app.port}",
        root_certificates=certificates.directory / "ca.pem",
        client_cert=cert,
        client_key=key,
        token=lambda: issuer.token("alice", ["messages:read"]),
        tracer_provider=provider,
        pool_size=2,
    ) as channel:
        await expect_status(
            MessageServiceStub(channel).get_message(GetMessageRequest(message_id="m-none")), Status.NOT_FOUND
        )
    [client] = client_spans.get_finished_spans()
    [server] = server_spans.get_finished_spans()
    assert client.kind is trace.SpanKind.CLIENT and server.kind is trace.SpanKind.SERVER
    assert client.context is not None and server.context is not None
    assert server.context.trace_id == client.context.trace_id
    assert server.parent is not None and server.parent.span_id == client.context.span_id
    assert (
        client.attributes is not None and client.attributes["rpc.grpc.status_code"] == Status.NOT_FOUND.value
    )
    provider.shutdown()


async def test_without_the_client_certificate_the_sdk_cannot_call(
    traced_mtls_app: tuple[App, InMemorySpanExporter], certificates: Certificates, issuer: Issuer
) -> None:
    app, _ = traced_mtls_app
    async with connect(
        f"localhost:{app.port}", root_certificates=certificates.directory / "ca.pem", token=issuer.token()
    ) as channel:
        with pytest.raises(CONNECTION_FAILURES) as raised:
            await MessageServiceStub(channel).get_message(GetMessageRequest(message_id="m-none"))
    assert "NOT_FOUND" not in str(raised.value)
