"""``chat-services dev-certs`` and ``new-token``, and the security settings' own checks."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from chat_services.cli import main
from chat_services.config import parse_config
from chat_services.security.tls import server_context
from chat_services.security.tokens import ServiceAccounts


def test_dev_certs_writes_a_usable_ca_server_and_client(tmp_path: Path) -> None:
    assert main(["dev-certs", str(tmp_path / "certs")]) == 0
    certs = tmp_path / "certs"
    assert {p.name for p in certs.iterdir()} == {
        "ca.pem",
        "server.pem",
        "server.key",
        "client.pem",
        "client.key",
    }
    assert (certs / "server.key").stat().st_mode & 0o077 == 0
    context = server_context(certs / "server.pem", certs / "server.key", certs / "ca.pem")
    assert context.verify_mode.name == "CERT_REQUIRED"


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
