"""TLS for the server: certificate and key, and mutual TLS when a client CA is given."""

from __future__ import annotations

import ipaddress
import ssl
from pathlib import Path
from typing import Any


def server_context(cert: Path, key: Path, client_ca: Path | None = None) -> ssl.SSLContext:
    """A TLS 1.2+ context speaking HTTP/2; with ``client_ca`` every client must present a certificate."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert, key)
    context.set_alpn_protocols(["h2"])
    if client_ca is not None:
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(cafile=str(client_ca))
    return context


def certificate_subject(cert: dict[str, Any] | None) -> str | None:
    """The identity a verified client certificate names: a SAN URI, else a SAN DNS name, else its CN."""
    if not cert:
        return None
    names = cert.get("subjectAltName", ())
    for wanted in ("URI", "DNS"):
        for kind, value in names:
            if kind == wanted and value:
                return str(value)
    for rdn in cert.get("subject", ()):
        for key, value in rdn:
            if key == "commonName" and value:
                return str(value)
    return None


def is_loopback(host: str) -> bool:
    """Whether ``host`` only reaches this machine (127.0.0.0/8, ::1, localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
