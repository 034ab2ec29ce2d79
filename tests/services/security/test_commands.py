"""``chat-services dev-certs`` and ``new-token``, and the security settings' own checks."""

from __future__ import annotations

import os
import ssl
import tomllib
from pathlib import Path

import pytest
from grpclib.client import Channel
from grpclib.exceptions import GRPCError, StreamTerminatedError
from grpclib.health.v1.health_grpc import HealthStub
from grpclib.health.v1.health_pb2 import HealthCheckRequest, HealthCheckResponse

from chat_services.cli import main
from chat_services.config import parse_config
from chat_services.security.devcerts import write_dev_certs
from chat_services.security.tls import server_context
from chat_services.security.tokens import ServiceAccounts
from chat_services.server import build_app

from ..conftest import make_config


def test_dev_certs_writes_a_usable_ca_server_and_client(tmp_path: Path) -> None:
    assert main(["dev-certs", str(tmp_path / "certs")]) == 0
    certs = tmp_path / "certs"
    assert {p.name for p in certs.iterdir()} == {
        "ca.pem",
        "client-ca.pem",
        "server.pem",
        "server.key",
        "client.pem",
        "client.key",
    }
    for key in ("server.key", "client.key"):
        assert (certs / key).stat().st_mode & 0o077 == 0
    context = server_context(certs / "server.pem", certs / "server.key", certs / "client-ca.pem")
    assert context.verify_mode.name == "CERT_REQUIRED"


def test_dev_certs_keys_are_private_from_creation_even_under_a_lax_umask(tmp_path: Path) -> None:
    """A key never exists with group or world permissions, not even before a chmod (umask 000)."""
    old = os.umask(0)
    try:
        write_dev_certs(tmp_path)
        write_dev_certs(tmp_path)  # rewriting over existing keys keeps them private too
    finally:
        os.umask(old)
    for key in ("server.key", "client.key"):
        assert (tmp_path / key).stat().st_mode & 0o777 == 0o600


async def test_dev_certs_server_certificate_is_refused_as_a_client_identity(tmp_path: Path) -> None:
    """Two CAs: the client certificate passes mutual TLS, the server's own certificate does not."""
    paths = write_dev_certs(tmp_path / "certs")
    config = make_config(
        tmp_path,
        tls_cert=paths["server_cert"],
        tls_key=paths["server_key"],
        tls_client_ca=paths["client_ca"],
    )
    app = await build_app(config)
    await app.start()

    async def health_as(cert: Path, key: Path) -> object:
        context = ssl.create_default_context(cafile=str(paths["ca"]))
        context.set_alpn_protocols(["h2"])
        context.load_cert_chain(str(cert), str(key))
        channel = Channel("127.0.0.1", app.port, ssl=context)
        try:
            reply = await HealthStub(channel).Check(HealthCheckRequest(), timeout=10)
            return reply.status
        except (OSError, GRPCError, StreamTerminatedError) as error:
            return type(error)
        finally:
            channel.close()

    try:
        assert await health_as(paths["client_cert"], paths["client_key"]) == HealthCheckResponse.SERVING
        refused = await health_as(paths["server_cert"], paths["server_key"])
        assert refused != HealthCheckResponse.SERVING and isinstance(refused, type)
    finally:
        await app.shutdown()


def test_new_token_prints_a_token_its_entry_recognises(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["new-token", "indexer", "--scope", "documents:read"]) == 0
    printed = capsys.readouterr().out
    token = printed.split("): ", 1)[1].split()[0]
    entry = tomllib.loads(printed.split("\n\n", 1)[1])
    identity = ServiceAccounts.from_mapping(entry).by_token(token)
    assert identity is not None and identity.subject == "indexer"
    assert identity.scopes == frozenset({"documents:read"})
    assert ServiceAccounts.from_mapping(entry).by_token(token + "x") is None


@pytest.mark.parametrize(
    "flags",
    [
        ["--tls-cert", "a.pem"],
        ["--tls-client-ca", "ca.pem"],
        ["--jwt-issuer", "https://issuer"],
        ["--jwt-issuer", "i", "--jwt-audience", "a", "--jwt-public-key", "k.pem", "--jwt-jwks", "j.json"],
        ["--trace-exporter", "zipkin"],
        ["--metrics-port", "70000"],
    ],
)
def test_incomplete_or_contradictory_security_settings_are_refused(flags: list[str]) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - each case has its own message
        parse_config(flags, environ={})
