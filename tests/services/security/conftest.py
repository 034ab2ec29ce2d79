"""Secured servers for the security tests: keys, tokens, certificates and apps that enforce them."""

from __future__ import annotations

import json
import ssl
import time
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from pathlib import Path

import jwt
import pytest
import trustme
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from chat_services.config import ServiceConfig
from chat_services.security.tokens import hash_token
from chat_services.server import App

from ..conftest import make_config, running

ISSUER = "https://auth.chat.test"
AUDIENCE = "chat-services"
SERVICE_TOKEN = "chs_test-indexer-token-0123456789abcdefghijklmnopqrstuvwxyz"
IMPERSONATOR_TOKEN = "chs_test-bridge-token-0123456789abcdefghijklmnopqrstuvwxyz0"
ADMIN_TOKEN = "chs_test-auditor-token-0123456789abcdefghijklmnopqrstuvwxyz01"
ADMIN_SCOPES = ("messages:admin", "messages:impersonate", "documents:admin", "plugins:admin")
ALL_SCOPES = (
    "messages:read",
    "messages:write",
    "ai:complete",
    "documents:read",
    "documents:write",
    "plugins:read",
    "plugins:invoke",
)


@dataclass(frozen=True)
class Issuer:
    """Signs JWTs the way the identity provider would."""

    private_key: rsa.RSAPrivateKey
    public_key_file: Path

    def token(
        self,
        subject: str = "alice",
        scopes: Iterable[str] = ALL_SCOPES,
        *,
        audience: str = AUDIENCE,
        expires_in: float = 300.0,
        issuer: str = ISSUER,
    ) -> str:
        """A signed RS256 JWT."""
        now = int(time.time())
        claims = {
            "iss": issuer,
            "aud": audience,
            "sub": subject,
            "iat": now,
            "exp": now + int(expires_in),
            "scope": " ".join(scopes),
        }
        return jwt.encode(claims, self.private_key, algorithm="RS256")


@pytest.fixture(scope="session")
def issuer(tmp_path_factory: pytest.TempPathFactory) -> Issuer:
    """A fresh RSA key pair; the server reads the public half from a PEM file."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path = tmp_path_factory.mktemp("jwt") / "public.pem"
    path.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return Issuer(key, path)


def service_accounts_file(directory: Path) -> Path:
    """An indexer (documents only), a bridge allowed to write for users, a reader for mTLS clients,
    and an auditor holding every scope and the admin scopes."""
    path = directory / "service-accounts.toml"
    path.write_text(
        f"""
[service.indexer]
scopes = ["documents:read", "documents:write"]
token_sha256 = ["{hash_token(SERVICE_TOKEN)}"]

[service.bridge]
scopes = ["messages:read", "messages:write", "messages:impersonate"]
token_sha256 = ["{hash_token(IMPERSONATOR_TOKEN)}"]

[service.svc-reader]
scopes = ["messages:read"]

[service.auditor]
scopes = {json.dumps([*ALL_SCOPES, *ADMIN_SCOPES])}
token_sha256 = ["{hash_token(ADMIN_TOKEN)}"]
"""
    )
    return path


def secured_config(tmp_path: Path, issuer: Issuer, **overrides: object) -> ServiceConfig:
    """A config enforcing the test issuer's JWTs and the test service accounts, plus ``overrides``."""
    return make_config(
        tmp_path,
        jwt_issuer=ISSUER,
        jwt_audience=AUDIENCE,
        jwt_public_key=issuer.public_key_file,
        service_accounts=service_accounts_file(tmp_path),
        **overrides,
    )


@pytest.fixture
async def secure_app(tmp_path: Path, issuer: Issuer) -> AsyncIterator[App]:
    """The full server, plaintext on loopback, enforcing JWTs and service-account tokens."""
    async with running(secured_config(tmp_path, issuer)) as app:
        yield app


@dataclass(frozen=True)
class Certificates:
    """A CA with server and client certificates, plus a client certificate from a foreign CA."""

    ca: trustme.CA
    server: trustme.LeafCert
    client: trustme.LeafCert
    foreign_client: trustme.LeafCert
    directory: Path

    def client_context(self, leaf: trustme.LeafCert | None) -> ssl.SSLContext:
        """A client context trusting the CA, presenting ``leaf`` (none if None), speaking h2."""
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
        self.ca.configure_trust(context)
        if leaf is not None:
            leaf.configure_cert(context)
        context.set_alpn_protocols(["h2"])
        return context


@pytest.fixture(scope="session")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    """trustme certificates; the server's is for localhost and 127.0.0.1."""
    ca = trustme.CA()
    foreign = trustme.CA()
    directory = tmp_path_factory.mktemp("tls")
    server = ca.issue_cert("localhost", "127.0.0.1")
    server.cert_chain_pems[0].write_to_path(str(directory / "server.pem"))
    server.private_key_pem.write_to_path(str(directory / "server.key"))
    ca.cert_pem.write_to_path(str(directory / "ca.pem"))
    return Certificates(ca, server, ca.issue_cert("svc-reader"), foreign.issue_cert("svc-reader"), directory)


@pytest.fixture
async def mtls_app(tmp_path: Path, certificates: Certificates) -> AsyncIterator[App]:
    """The full server requiring client certificates signed by the test CA."""
    config = make_config(
        tmp_path,
        tls_cert=certificates.directory / "server.pem",
        tls_key=certificates.directory / "server.key",
        tls_client_ca=certificates.directory / "ca.pem",
        service_accounts=service_accounts_file(tmp_path),
    )
    async with running(config) as app:
        yield app
