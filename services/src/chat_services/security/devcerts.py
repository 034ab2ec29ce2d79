"""Throwaway certificates for local TLS and mTLS (trustme): a CA, a server and a client certificate.

Never for production: the CA's key is not even written, so nothing else can be signed with it.
"""

from __future__ import annotations

from pathlib import Path

import trustme

SERVER_NAMES = ("localhost", "127.0.0.1", "::1")


def write_dev_certs(directory: Path, client_name: str = "dev-client") -> dict[str, Path]:
    """Write ``ca.pem``, ``server.pem``/``.key`` and ``client.pem``/``.key``; return their paths."""
    directory.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA(organization_name="chat-services dev CA")
    server = ca.issue_cert(*SERVER_NAMES, common_name="localhost")
    client = ca.issue_cert(client_name, common_name=client_name)
    paths = {
        "ca": directory / "ca.pem",
        "server_cert": directory / "server.pem",
        "server_key": directory / "server.key",
        "client_cert": directory / "client.pem",
        "client_key": directory / "client.key",
    }
    ca.cert_pem.write_to_path(str(paths["ca"]))
    server.cert_chain_pems[0].write_to_path(str(paths["server_cert"]))
    server.private_key_pem.write_to_path(str(paths["server_key"]))
    client.cert_chain_pems[0].write_to_path(str(paths["client_cert"]))
    client.private_key_pem.write_to_path(str(paths["client_key"]))
    for key in ("server_key", "client_key"):
        paths[key].chmod(0o600)
    return paths
