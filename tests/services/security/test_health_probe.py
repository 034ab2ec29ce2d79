"""`chat-services health` against a mutual-TLS server: the exec probe where kubelet's grpc probe cannot go."""

from __future__ import annotations

from chat_services.server import App

from ..test_probe import run_probe
from .conftest import Certificates


async def test_the_probe_presents_the_client_certificate(mtls_app: App, certificates: Certificates) -> None:
    certificates.client.cert_chain_pems[0].write_to_path(str(certificates.directory / "probe.pem"))
    certificates.client.private_key_pem.write_to_path(str(certificates.directory / "probe.key"))
    tls = ["--tls-ca", str(certificates.directory / "ca.pem"), "--server-name", "localhost"]
    client = [
        "--tls-cert",
        str(certificates.directory / "probe.pem"),
        "--tls-key",
        str(certificates.directory / "probe.key"),
    ]
    code, output = await run_probe("--port", str(mtls_app.port), *tls, *client)
    assert code == 0, output
    assert "SERVING" in output


async def test_without_a_client_certificate_the_probe_fails(
    mtls_app: App, certificates: Certificates
) -> None:
    tls = ["--tls-ca", str(certificates.directory / "ca.pem"), "--server-name", "localhost"]
    code, output = await run_probe("--port", str(mtls_app.port), *tls)
    assert code == 1
    assert "Traceback" not in output


async def test_plaintext_to_a_tls_server_fails_the_probe(mtls_app: App) -> None:
    code, output = await run_probe("--port", str(mtls_app.port), "--timeout", "5")
    assert code == 1
    assert "Traceback" not in output
