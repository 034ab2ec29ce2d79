"""Throwaway credentials for local development: TLS/mTLS certificates (trustme) and user JWTs.

Never for production: the CAs' keys are not even written, so nothing else can be signed
with them. Servers and clients have CAs of their own (``ca.pem`` signs the server,
``client-ca.pem`` the clients), so the server's certificate and key are no client identity.
Keys are created readable by their owner only, from the first byte.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import jwt
import trustme
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

SERVER_NAMES = ("localhost", "127.0.0.1", "::1")


def _write_private(path: Path, data: bytes) -> None:
    """Write a key file that is 0600 from its creation: there is no moment others could read it."""
    path.unlink(missing_ok=True)  # O_CREAT keeps an existing file's mode: start from none
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as file:
        file.write(data)


def dev_jwt(
    directory: Path,
    subject: str,
    scopes: list[str],
    *,
    issuer: str = "chat-services-dev",
    audience: str = "chat-services",
    lifetime: float = 3600.0,
) -> str:
    """A user JWT signed by a throwaway RS256 key kept in ``directory`` (made on first use).

    Serve with ``--jwt-public-key DIR/jwt-public.pem --jwt-issuer chat-services-dev
    --jwt-audience chat-services``. Never for production: the key is not protected.
    """
    private_path, public_path = directory / "jwt-private.pem", directory / "jwt-public.pem"
    if not private_path.exists():
        directory.mkdir(parents=True, exist_ok=True)
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        _write_private(
            private_path,
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            ),
        )
        public_path.write_bytes(
            key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
    private_key = serialization.load_pem_private_key(private_path.read_bytes(), password=None)
    now = int(time.time())
    claims = {
        "iss": issuer,
        "aud": audience,
        "sub": subject,
        "iat": now,
        "exp": now + int(lifetime),
        "scope": " ".join(scopes),
    }
    return jwt.encode(claims, private_key, algorithm="RS256")  # type: ignore[arg-type]


def write_dev_certs(directory: Path, client_name: str = "dev-client") -> dict[str, Path]:
    """Write ``ca.pem``, ``client-ca.pem``, ``server.pem``/``.key`` and ``client.pem``/``.key``."""
    directory.mkdir(parents=True, exist_ok=True)
    server_ca = trustme.CA(organization_name="chat-services dev server CA")
    client_ca = trustme.CA(organization_name="chat-services dev client CA")
    server = server_ca.issue_cert(*SERVER_NAMES, common_name="localhost")
    client = client_ca.issue_cert(client_name, common_name=client_name)
    paths = {
        "ca": directory / "ca.pem",
        "client_ca": directory / "client-ca.pem",
        "server_cert": directory / "server.pem",
        "server_key": directory / "server.key",
        "client_cert": directory / "client.pem",
        "client_key": directory / "client.key",
    }
    server_ca.cert_pem.write_to_path(str(paths["ca"]))
    client_ca.cert_pem.write_to_path(str(paths["client_ca"]))
    server.cert_chain_pems[0].write_to_path(str(paths["server_cert"]))
    client.cert_chain_pems[0].write_to_path(str(paths["client_cert"]))
    _write_private(paths["server_key"], server.private_key_pem.bytes())
    _write_private(paths["client_key"], client.private_key_pem.bytes())
    return paths
