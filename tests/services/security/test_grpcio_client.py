"""grpcio, in its own process, calls the secured server over TLS or mTLS with a token: same results."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest

from chat_services.server import build_app

from ..conftest import make_config
from .conftest import AUDIENCE, ISSUER, Certificates, Issuer, service_accounts_file

CLIENT = Path(__file__).parent.parent / "interop" / "secure_client.py"
EXPECTED = {
    "send": "OK",
    "get": "OK",
    "get_without_token": "UNAUTHENTICATED",
    "edit_by_another_user": "NOT_FOUND",  # not a member of the conversation: as if missing
    "edit_by_author": "OK",
}


@pytest.mark.parametrize("mutual", [False, True], ids=["tls", "mtls"])
async def test_grpcio_over_tls_with_a_token(
    tmp_path: Path, certificates: Certificates, issuer: Issuer, mutual: bool
) -> None:
    config = make_config(
        tmp_path,
        tls_cert=certificates.directory / "server.pem",
        tls_key=certificates.directory / "server.key",
        tls_client_ca=certificates.directory / "ca.pem" if mutual else None,
        jwt_issuer=ISSUER,
        jwt_audience=AUDIENCE,
        jwt_public_key=issuer.public_key_file,
        service_accounts=service_accounts_file(tmp_path),
    )
    client: dict[str, object] = {
        "ca": str(certificates.directory / "ca.pem"),
        "token": issuer.token("alice"),
        "other_token": issuer.token("bob"),
    }
    if mutual:
        client["client_cert"] = str(tmp_path / "client.pem")
        client["client_key"] = str(tmp_path / "client.key")
        certificates.client.cert_chain_pems[0].write_to_path(str(client["client_cert"]))
        certificates.client.private_key_pem.write_to_path(str(client["client_key"]))
    app = await build_app(config)
    await app.start()
    try:
        client["port"] = app.port
        result = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-I", str(CLIENT), json.dumps(client)],
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
    finally:
        await app.shutdown()
    assert result.returncode == 0, result.stderr
    # Under mTLS a call without a token is the certificate's service (svc-reader): it holds
    # messages:read but is neither a member of alice's conversation nor an admin.
    expected = {**EXPECTED, "get_without_token": "NOT_FOUND"} if mutual else EXPECTED
    assert json.loads(result.stdout) == expected
