"""The gateway reaches the services over TLS and mutual TLS, with the SDK's settings, and never
sends credentials in plaintext to another machine unless told the network is trusted."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
import trustme

from chat_gateway import GatewayConfig, UpstreamAddress, UpstreamTls
from chat_gateway.cli import config_from, parser
from chat_services.server import App
from tests.gateway.harness import running_gateway
from tests.services.security.conftest import Certificates, certificates, mtls_app

__all__ = ["certificates", "mtls_app"]


def client_files(certificates: Certificates, directory: Path) -> tuple[Path, Path]:
    """The test CA's client certificate and key as PEM files."""
    cert, key = directory / "client.pem", directory / "client.key"
    certificates.client.cert_chain_pems[0].write_to_path(str(cert))
    certificates.client.private_key_pem.write_to_path(str(key))
    return cert, key


async def list_status(app: App, tls: UpstreamTls | None) -> httpx.Response:
    async with running_gateway(app.port, upstream_tls=tls) as url, httpx.AsyncClient(base_url=url) as http:
        return await http.get("/v1/conversations/c-tls/messages")


def assert_answered_by_the_service(reply: httpx.Response) -> None:
    """The call crossed mutual TLS and the service judged it: the certificate's service
    (svc-reader) is authenticated but no member of the conversation, so NOT_FOUND (not a 503)."""
    assert reply.status_code == 404, reply.text
    assert "conversation 'c-tls' not found" in reply.text


async def test_the_gateway_calls_over_mutual_tls(
    mtls_app: App,
    certificates: Certificates,
    tmp_path: Path,
) -> None:
    cert, key = client_files(certificates, tmp_path)
    reply = await list_status(mtls_app, UpstreamTls(certificates.directory / "ca.pem", cert, key))
    assert_answered_by_the_service(reply)


@pytest.mark.parametrize("case", ["plaintext", "no-client-cert", "foreign-ca", "wrong-server-name"])
async def test_a_tls_setting_that_does_not_fit_is_a_503_not_a_plaintext_call(
    mtls_app: App,
    certificates: Certificates,
    tmp_path: Path,
    case: str,
) -> None:
    cert, key = client_files(certificates, tmp_path)
    ca = certificates.directory / "ca.pem"
    foreign = tmp_path / "foreign.pem"
    trustme.CA().cert_pem.write_to_path(str(foreign))
    tls = {
        "plaintext": None,
        "no-client-cert": UpstreamTls(ca),
        "foreign-ca": UpstreamTls(foreign, cert, key),
        "wrong-server-name": UpstreamTls(ca, cert, key, server_name="elsewhere.test"),
    }[case]
    reply = await list_status(mtls_app, tls)
    assert reply.status_code == 503, reply.text
    assert reply.json()["code"] == 14 and "Traceback" not in reply.text


async def test_the_server_name_is_checked_instead_of_the_host(
    mtls_app: App,
    certificates: Certificates,
    tmp_path: Path,
) -> None:
    cert, key = client_files(certificates, tmp_path)
    tls = UpstreamTls(certificates.directory / "ca.pem", cert, key, server_name="localhost")
    reply = await list_status(mtls_app, tls)
    assert_answered_by_the_service(reply)


def test_plaintext_to_another_machine_needs_to_be_asked_for() -> None:
    with pytest.raises(ValueError, match="--upstream-insecure"):
        GatewayConfig(upstream=UpstreamAddress("10.1.2.3", 50051))
    with pytest.raises(ValueError, match="--upstream-insecure"):
        config_from(parser().parse_args(["serve", "--upstream-host", "chat.internal"]))
    assert config_from(
        parser().parse_args(["serve", "--upstream-host", "chat.internal", "--upstream-insecure"])
    )
    for loopback in ("127.0.0.1", "localhost", "::1"):
        assert GatewayConfig(upstream=UpstreamAddress(loopback, 50051)).upstream_tls is None


def test_tls_flags_become_the_sdks_settings(tmp_path: Path) -> None:
    args = parser().parse_args(
        [
            "serve",
            "--upstream-host",
            "chat.internal",
            "--upstream-ca",
            "ca.pem",
            "--upstream-cert",
            "c.pem",
            "--upstream-key",
            "c.key",
            "--upstream-server-name",
            "chat-services",
        ]
    )
    config = config_from(args)
    assert config.upstream_tls == UpstreamTls(Path("ca.pem"), Path("c.pem"), Path("c.key"), "chat-services")
    for wrong, flag in (
        (["--upstream-key", "k"], "--upstream-cert"),
        (["--upstream-server-name", "x"], "needs TLS"),
        (["--upstream-tls", "--upstream-insecure"], "cannot go with"),
    ):
        with pytest.raises(ValueError, match=flag):
            config_from(parser().parse_args(["serve", *wrong]))


async def test_an_upload_crosses_mutual_tls_too(
    mtls_app: App, certificates: Certificates, tmp_path: Path
) -> None:
    """Client streams go over the gateway's streaming connections, which carry the same TLS settings."""
    cert, key = client_files(certificates, tmp_path)
    tls = UpstreamTls(certificates.directory / "ca.pem", cert, key)
    body = [
        {
            "message": {
                "idempotencyKey": "k",
                "conversationId": "c-tls",
                "authorId": "svc-reader",
                "content": "x",
            }
        }
    ]
    async with (
        running_gateway(mtls_app.port, upstream_tls=tls) as url,
        httpx.AsyncClient(base_url=url) as http,
    ):
        reply = await http.post("/v1/messages:send", json=body)
    # The service judged it: it knows the certificate's service (svc-reader), which may only read.
    assert reply.status_code == 403, reply.text
    assert reply.json()["message"] == "/chat.v1.MessageService/SendMessages needs the scope(s) messages:write"
