"""Token verification on its own: JWKS key selection, the verified-token memory, the plaintext warning."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from grpclib.server import Server

from chat_services.interceptors import install
from chat_services.security.identity import IdentityKind
from chat_services.security.tls import is_loopback
from chat_services.security.tokens import JwtVerifier, TokenRejected

from ..conftest import make_config
from .conftest import AUDIENCE, ISSUER, Issuer


def jwks_verifier(issuer: Issuer, kid: str) -> JwtVerifier:
    """A verifier reading the issuer's public key from a JWKS document under ``kid``."""
    key = jwt.algorithms.RSAAlgorithm.to_jwk(issuer.private_key.public_key(), as_dict=True)
    return JwtVerifier(issuer=ISSUER, audience=AUDIENCE, jwks={"keys": [{**key, "kid": kid, "alg": "RS256"}]})


def signed(issuer: Issuer, kid: str, expires_in: float = 300) -> str:
    """A JWT naming its signing key ``kid``."""
    now = int(time.time())
    claims = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "dana",
        "exp": now + int(expires_in),
        "scope": "messages:read",
    }
    return jwt.encode(claims, issuer.private_key, algorithm="RS256", headers={"kid": kid})


def test_a_jwks_key_is_chosen_by_kid(issuer: Issuer) -> None:
    verifier = jwks_verifier(issuer, "key-1")
    identity = verifier.verify(signed(issuer, "key-1"))
    assert (identity.subject, identity.kind) == ("dana", IdentityKind.USER)
    assert identity.scopes == frozenset({"messages:read"})
    with pytest.raises(TokenRejected) as rejected:
        verifier.verify(signed(issuer, "key-2"))
    assert rejected.value.reason == "TOKEN_INVALID"


def test_a_remembered_token_is_refused_once_it_expires(issuer: Issuer) -> None:
    verifier = JwtVerifier(issuer=ISSUER, audience=AUDIENCE, public_key=issuer.public_key_file.read_text())
    token = issuer.token("erin")
    assert verifier.verify(token).subject == "erin"
    # Age the remembered entry past its exp, as the clock would.
    identity, _ = verifier._verified[token]
    verifier._verified[token] = (identity, time.time() - 1)
    assert verifier.verify(token).subject == "erin"  # re-verified: the token itself is still valid
    expired = issuer.token("erin", expires_in=-60)
    with pytest.raises(TokenRejected):
        verifier.verify(expired)


@pytest.mark.parametrize(
    ("host", "loopback"), [("127.0.0.1", True), ("::1", True), ("localhost", True), ("0.0.0.0", False)]
)
def test_loopback_addresses(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


async def test_plaintext_on_a_non_loopback_address_is_warned_about(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = make_config(tmp_path, host="192.0.2.10")  # never started: only the start-up checks run
    interceptors = install(Server([]), [], config)
    with caplog.at_level(logging.WARNING, logger="chat_services.security"):
        interceptors.start(config)
    messages = [record.getMessage() for record in caplog.records]
    assert any("PLAINTEXT" in message for message in messages)
    assert any("authentication is off" in message for message in messages)


def test_a_malformed_public_key_fails_at_start_not_per_call() -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - cryptography's message varies by version
        JwtVerifier(issuer=ISSUER, audience=AUDIENCE, public_key="-----BEGIN PUBLIC KEY-----\nnot a key\n")


def foreign_family_token(algorithm: str) -> str:
    """A JWT signed with an EC or Ed25519 key, its header naming that family, for an RSA verifier."""
    key = (
        ec.generate_private_key(ec.SECP256R1())
        if algorithm == "ES256"
        else ed25519.Ed25519PrivateKey.generate()
    )
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": "mallory", "iat": now, "exp": now + 60}
    return jwt.encode(claims, key, algorithm=algorithm)


@pytest.mark.parametrize("algorithm", ["ES256", "EdDSA"])
def test_a_header_naming_another_key_family_is_a_refusal_not_a_crash(issuer: Issuer, algorithm: str) -> None:
    """PyJWT raises TypeError or InvalidKeyError here; the verifier must turn it into TOKEN_INVALID."""
    verifier = JwtVerifier(issuer=ISSUER, audience=AUDIENCE, public_key=issuer.public_key_file.read_text())
    with pytest.raises(TokenRejected) as rejected:
        verifier.verify(foreign_family_token(algorithm))
    assert rejected.value.reason == "TOKEN_INVALID"
    assert len(rejected.value.message) < 200


def claims_token(issuer: Issuer, **changes: object) -> str:
    """A JWT from the test issuer with ``changes`` applied to valid claims (None drops a claim)."""
    now = int(time.time())
    claims: dict[str, object] = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "frank",
        "iat": now,
        "exp": now + 300,
        "scope": "messages:read",
    }
    for name, value in changes.items():
        if value is None:
            claims.pop(name, None)
        else:
            claims[name] = value
    return jwt.encode(claims, issuer.private_key, algorithm="RS256")


NOW = int(time.time())
# An independent claim matrix: what each claim set must give, written from RFC 7519 and
# the README, not from the verifier's code.
CLAIM_MATRIX = [
    ({}, None),
    ({"iss": "https://evil.example"}, "WRONG_ISSUER"),
    ({"iss": None}, "TOKEN_INVALID"),
    ({"aud": "another-service"}, "WRONG_AUDIENCE"),
    ({"aud": None}, "TOKEN_INVALID"),
    ({"exp": NOW - 3600}, "TOKEN_EXPIRED"),
    ({"exp": None}, "TOKEN_INVALID"),
    ({"nbf": NOW + 3600}, "TOKEN_INVALID"),
    ({"sub": None}, "TOKEN_INVALID"),
    ({"sub": ""}, "TOKEN_INVALID"),
    ({"sub": "x" * 65}, "TOKEN_INVALID"),
    ({"exp": NOW + 10 * 365 * 24 * 3600}, "TOKEN_LIFETIME"),  # a ten-year token
    ({"iat": None, "exp": NOW + 10 * 365 * 24 * 3600}, "TOKEN_LIFETIME"),
    ({"iat": NOW - 23 * 3600, "exp": NOW + 3600}, None),  # 24 h in all: the maximum
    ({"iat": NOW - 24 * 3600, "exp": NOW + 3600}, "TOKEN_LIFETIME"),  # 25 h in all
]


@pytest.mark.parametrize(("changes", "reason"), CLAIM_MATRIX)
def test_the_claim_matrix(issuer: Issuer, changes: dict[str, object], reason: str | None) -> None:
    verifier = JwtVerifier(issuer=ISSUER, audience=AUDIENCE, public_key=issuer.public_key_file.read_text())
    token = claims_token(issuer, **changes)
    if reason is None:
        assert verifier.verify(token).subject == "frank"
        return
    with pytest.raises(TokenRejected) as rejected:
        verifier.verify(token)
    assert rejected.value.reason == reason


def test_the_maximum_lifetime_is_configurable(issuer: Issuer) -> None:
    verifier = JwtVerifier(
        issuer=ISSUER, audience=AUDIENCE, public_key=issuer.public_key_file.read_text(), max_lifetime=60
    )
    with pytest.raises(TokenRejected) as rejected:
        verifier.verify(claims_token(issuer))  # 300 s
    assert rejected.value.reason == "TOKEN_LIFETIME"
    now = int(time.time())
    assert verifier.verify(claims_token(issuer, exp=now + 30, iat=now)).subject == "frank"
