"""Credentials on their own, written from the README's rules: which header is read and how, which
source answers which token, what a service account's file may hold, who an identity is, and
which algorithms a JWT may be signed with. No server: each rule is one call."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from chat_services.errors import PermissionDenied
from chat_services.security.authn import Authenticator
from chat_services.security.identity import (
    Identity,
    IdentityKind,
    bind_identity,
    check_acting_as,
    unbind_identity,
)
from chat_services.security.scopes import missing_scopes
from chat_services.security.tokens import (
    JwtVerifier,
    ServiceAccounts,
    TokenRejected,
    hash_token,
    new_api_token,
)

from .conftest import AUDIENCE, ISSUER, Issuer

BRIDGE = "chs_bridge-0000000000000000000000000000000000000000"
INDEXER = "chs_indexer-111111111111111111111111111111111111111"
ACCOUNTS_FILE = {
    "service": {
        "bridge": {"scopes": ["messages:read", "messages:write"], "token_sha256": hash_token(BRIDGE)},
        "indexer": {"scopes": ["documents:write"], "token_sha256": [hash_token(INDEXER)]},
        "svc-reader": {"scopes": ["messages:read"]},
    }
}


def accounts() -> ServiceAccounts:
    """The accounts of ACCOUNTS_FILE, read anew by each test."""
    return ServiceAccounts.from_mapping(ACCOUNTS_FILE)


CLIENT_CERT = {"subject": ((("commonName", "svc-reader"),),), "subjectAltName": ()}


def verifier(issuer: Issuer, **options: Any) -> JwtVerifier:
    return JwtVerifier(
        issuer=ISSUER, audience=AUDIENCE, public_key=issuer.public_key_file.read_text(), **options
    )


def refusal(authenticator: Authenticator, metadata: dict[str, str], cert: Any = None) -> str:
    """The ``ErrorInfo`` reason ``authenticator`` refuses these credentials with."""
    with pytest.raises(TokenRejected) as rejected:
        authenticator.authenticate(metadata, cert)
    return rejected.value.reason


def bearer(token: str, scheme: str = "Bearer") -> dict[str, str]:
    return {"authorization": f"{scheme} {token}"}


def test_authentication_is_enforced_as_soon_as_any_source_is_configured(issuer: Issuer) -> None:
    assert not Authenticator().enforced
    assert Authenticator(jwt=verifier(issuer)).enforced
    assert Authenticator(accounts=ServiceAccounts(())).enforced
    assert Authenticator(mutual_tls=True).enforced


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        ("Basic dXNlcjpwYXNz", "CREDENTIALS_INVALID"),
        ("Bearer", "CREDENTIALS_INVALID"),
        ("Bearer    ", "CREDENTIALS_INVALID"),
        ("Token " + BRIDGE, "CREDENTIALS_INVALID"),
        ("Bearer chs_unknown", "TOKEN_INVALID"),
        ("Bearer " + "chs_" + "x" * 8189, "CREDENTIALS_INVALID"),  # 8,193 characters: too long
        ("Bearer " + "chs_" + "x" * 8188, "TOKEN_INVALID"),  # 8,192: judged, and unknown
    ],
)
def test_the_authorization_header_is_bearer_and_a_bounded_token(
    issuer: Issuer, header: str, reason: str
) -> None:
    authenticator = Authenticator(jwt=verifier(issuer), accounts=accounts())
    assert refusal(authenticator, {"authorization": header}) == reason


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER"])
def test_the_scheme_is_case_insensitive(scheme: str) -> None:
    identity = Authenticator(accounts=accounts()).authenticate(bearer(BRIDGE, scheme), None)
    assert identity == Identity(
        "bridge", IdentityKind.SERVICE, frozenset({"messages:read", "messages:write"})
    )


def test_no_credentials_at_all_is_credentials_missing(issuer: Issuer) -> None:
    assert refusal(Authenticator(jwt=verifier(issuer), accounts=accounts()), {}) == "CREDENTIALS_MISSING"
    # A certificate counts only where mutual TLS is on.
    assert refusal(Authenticator(accounts=accounts()), {}, CLIENT_CERT) == "CREDENTIALS_MISSING"


def test_api_tokens_name_their_account_and_jwts_their_user(issuer: Issuer) -> None:
    authenticator = Authenticator(jwt=verifier(issuer), accounts=accounts())
    indexer = authenticator.authenticate(bearer(INDEXER), None)
    assert (indexer.principal, indexer.scopes) == ("service:indexer", frozenset({"documents:write"}))
    user = authenticator.authenticate(bearer(issuer.token("alice", ["messages:read"])), None)
    assert (user.principal, user.scopes) == ("user:alice", frozenset({"messages:read"}))


def test_an_api_token_is_never_read_as_a_jwt_nor_a_jwt_as_an_api_token(issuer: Issuer) -> None:
    # A chs_ token with JWTs on and no accounts file: unknown, not "malformed JWT".
    assert refusal(Authenticator(jwt=verifier(issuer)), bearer(BRIDGE)) == "TOKEN_INVALID"
    # A JWT on a server without JWTs is looked up as an API token: unknown.
    assert refusal(Authenticator(accounts=accounts()), bearer(issuer.token())) == "TOKEN_INVALID"


def test_a_verified_client_certificate_is_its_service_account(issuer: Issuer) -> None:
    authenticator = Authenticator(accounts=accounts(), mutual_tls=True)
    reader = authenticator.authenticate({}, CLIENT_CERT)
    assert reader == Identity("svc-reader", IdentityKind.SERVICE, frozenset({"messages:read"}))
    stranger = {"subject": ((("commonName", "svc-unlisted"),),)}
    assert authenticator.authenticate({}, stranger) == Identity("svc-unlisted", IdentityKind.SERVICE)
    # Without an accounts file a certificate still names a service, one without scopes.
    assert Authenticator(mutual_tls=True).authenticate({}, CLIENT_CERT).scopes == frozenset()
    # A bearer token, when sent, is what counts.
    assert authenticator.authenticate(bearer(INDEXER), CLIENT_CERT).subject == "indexer"


def test_token_digests_are_sha256_hex_and_new_tokens_are_random() -> None:
    assert hash_token("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    first, second = new_api_token(), new_api_token()
    assert first.startswith("chs_") and len(first) == 4 + 43 and first != second


@pytest.mark.parametrize(
    "entry",
    [
        {"scopes": ["messages:read"], "token_sha256": "ab" * 31},  # 62 hex digits
        {"scopes": ["messages:read"], "token_sha256": ["zz" * 32]},  # not hex
        {"scopes": ["messages:read"], "token_sha256": [7]},
        {"scopes": ["messages:read", 3], "token_sha256": []},
    ],
)
def test_a_malformed_account_is_refused_naming_it(entry: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="'broken'"):
        ServiceAccounts.from_mapping({"service": {"broken": entry}})


def test_every_digest_of_every_account_is_compared() -> None:
    second = "chs_bridge-second-token-22222222222222222222222222222"
    accounts = ServiceAccounts.from_mapping(
        {
            "service": {
                "indexer": {"scopes": [], "token_sha256": [hash_token(INDEXER)]},
                "bridge": {"scopes": [], "token_sha256": [hash_token(BRIDGE), hash_token(second)]},
            }
        }
    )
    found = [accounts.by_token(token) for token in (INDEXER, BRIDGE, second, "chs_none")]
    assert [identity.subject if identity else None for identity in found] == [
        "indexer",
        "bridge",
        "bridge",
        None,
    ]


def test_principals_keep_users_and_services_apart() -> None:
    user = Identity("bridge", IdentityKind.USER, frozenset({"messages:admin", "messages:impersonate"}))
    service = Identity("bridge", IdentityKind.SERVICE, frozenset({"messages:admin", "messages:impersonate"}))
    assert (user.principal, service.principal) == ("user:bridge", "service:bridge")
    # Admin and impersonation are for service accounts only, whatever scopes a user's JWT claims.
    assert not user.is_admin("messages:admin") and not user.may_act_for_others()
    assert service.is_admin("messages:admin") and service.may_act_for_others()
    assert not service.is_admin("documents:admin")
    assert not Identity("s", IdentityKind.SERVICE).may_act_for_others()


@pytest.mark.parametrize(
    ("caller", "acts_as", "allowed"),
    [
        (None, "anyone", True),
        (Identity("alice", IdentityKind.USER), "alice", True),
        (Identity("alice", IdentityKind.USER), "bob", False),
        (Identity("alice", IdentityKind.USER, frozenset({"messages:impersonate"})), "bob", False),
        (Identity("bridge", IdentityKind.SERVICE, frozenset({"messages:impersonate"})), "bob", True),
        (Identity("bridge", IdentityKind.SERVICE, frozenset({"messages:write"})), "bob", False),
    ],
)
def test_only_the_user_or_an_impersonating_service_acts_as_a_user(
    caller: Identity | None, acts_as: str, allowed: bool
) -> None:
    token = bind_identity(caller)
    try:
        if allowed:
            check_acting_as(acts_as, "author_id")
        else:
            with pytest.raises(PermissionDenied) as denied:
                check_acting_as(acts_as, "author_id")
            assert denied.value.field == "author_id"
    finally:
        unbind_identity(token)


def test_missing_scopes_are_exactly_those_not_granted() -> None:
    chat = "/chat.v1.MessageService/ChatStream"
    assert missing_scopes(chat, frozenset({"messages:read", "messages:write"})) == frozenset()
    assert missing_scopes(chat, frozenset({"messages:read", "plugins:read"})) == frozenset({"messages:write"})
    assert missing_scopes(chat, frozenset()) == frozenset({"messages:read", "messages:write"})
    assert missing_scopes("/chat.v1.MessageService/Unlisted", frozenset({"messages:read"})) is None


def _segment(value: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


def valid_claims() -> dict[str, Any]:
    now = int(time.time())
    return {"iss": ISSUER, "aud": AUDIENCE, "sub": "mallory", "iat": now, "exp": now + 60}


def test_an_unsigned_token_is_refused(issuer: Issuer) -> None:
    """``alg: none``: the oldest JWT forgery."""
    header = _segment({"alg": "none", "typ": "JWT"})
    token = f"{header}.{_segment(valid_claims())}."
    with pytest.raises(TokenRejected) as rejected:
        Authenticator(jwt=verifier(issuer)).authenticate(bearer(token), None)
    assert rejected.value.reason == "TOKEN_INVALID"


def test_an_hmac_token_keyed_with_the_public_key_is_refused(issuer: Issuer) -> None:
    """Algorithm confusion: HS256 "signed" with the RSA public key's PEM as the shared secret."""
    header = _segment({"alg": "HS256", "typ": "JWT"})
    payload = _segment(valid_claims())
    secret = issuer.public_key_file.read_bytes()
    signature = hmac.new(secret, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    token = f"{header}.{payload}.{base64.urlsafe_b64encode(signature).decode().rstrip('=')}"
    with pytest.raises(TokenRejected) as rejected:
        verifier(issuer).verify(token)
    assert rejected.value.reason == "TOKEN_INVALID"


def test_only_the_configured_algorithms_are_accepted(issuer: Issuer) -> None:
    token = issuer.token()
    assert verifier(issuer).verify(token).subject == "alice"
    with pytest.raises(TokenRejected) as rejected:
        verifier(issuer, algorithms=("ES256",)).verify(token)
    assert rejected.value.reason == "TOKEN_INVALID"


def test_clock_skew_of_a_few_seconds_is_tolerated_and_no_more(issuer: Issuer) -> None:
    now = int(time.time())
    just_expired = jwt.encode({**valid_claims(), "exp": now - 2}, issuer.private_key, algorithm="RS256")
    assert verifier(issuer).verify(just_expired).subject == "mallory"
    long_expired = jwt.encode({**valid_claims(), "exp": now - 30}, issuer.private_key, algorithm="RS256")
    with pytest.raises(TokenRejected) as rejected:
        verifier(issuer).verify(long_expired)
    assert rejected.value.reason == "TOKEN_EXPIRED"


def test_an_iat_that_is_not_a_number_counts_from_now(issuer: Issuer) -> None:
    """``iat: true`` is no issue time (bool is an int in Python): the lifetime counts from now."""
    claims = {**valid_claims(), "iat": True}
    token = jwt.encode(claims, issuer.private_key, algorithm="RS256")
    assert verifier(issuer).verify(token).subject == "mallory"


@pytest.mark.parametrize(
    ("claims", "scopes"),
    [
        ({"scope": "messages:read  plugins:read"}, {"messages:read", "plugins:read"}),
        ({"scp": ["messages:read", 5, "plugins:read"]}, {"messages:read", "plugins:read"}),
        ({"scope": ["messages:read"], "scp": ["plugins:read"]}, {"plugins:read"}),
        ({"scp": "messages:read"}, set()),
        ({}, set()),
    ],
)
def test_scopes_come_from_scope_or_scp(issuer: Issuer, claims: dict[str, Any], scopes: set[str]) -> None:
    token = jwt.encode({**valid_claims(), **claims}, issuer.private_key, algorithm="RS256")
    assert verifier(issuer).verify(token).scopes == frozenset(scopes)


def test_a_verifier_needs_exactly_one_key_source_and_a_positive_lifetime(issuer: Issuer) -> None:
    pem = issuer.public_key_file.read_text()
    with pytest.raises(ValueError, match="exactly one"):
        JwtVerifier(issuer=ISSUER, audience=AUDIENCE)
    with pytest.raises(ValueError, match="exactly one"):
        JwtVerifier(issuer=ISSUER, audience=AUDIENCE, public_key=pem, jwks={"keys": []})
    with pytest.raises(ValueError, match="positive"):
        JwtVerifier(issuer=ISSUER, audience=AUDIENCE, public_key=pem, max_lifetime=0)


def test_a_jwks_token_without_kid_uses_the_sets_key_and_garbage_is_refused(issuer: Issuer) -> None:
    key = jwt.algorithms.RSAAlgorithm.to_jwk(issuer.private_key.public_key(), as_dict=True)
    jwks_verifier = JwtVerifier(issuer=ISSUER, audience=AUDIENCE, jwks={"keys": [{**key, "alg": "RS256"}]})
    assert jwks_verifier.verify(issuer.token("dana")).subject == "dana"
    with pytest.raises(TokenRejected) as rejected:
        jwks_verifier.verify("not.a-jwt")
    assert rejected.value.reason == "TOKEN_INVALID"


def test_spaces_between_the_scheme_and_the_token_are_tolerated() -> None:
    """RFC 7235: one or more spaces separate the scheme from the credentials."""
    assert Authenticator(accounts=accounts()).authenticate(bearer(" " + BRIDGE), None).subject == "bridge"


# What each refusal tells the caller, word for word: these are the status messages clients see.
REFUSAL_MESSAGES = {
    "no header": "this call needs an authorization: Bearer <token> header",
    "Basic": "the authorization header is not Bearer <token>",
    "too long": "the bearer token is too long",
    "unknown API token": "the API token is not one this server knows",
    "expired": "the bearer token has expired",
    "audience": "the bearer token is for another audience",
    "issuer": "the bearer token is from another issuer",
    "bad signature": "the bearer token is not valid",
    "no subject": "the bearer token names no subject of 1-64 characters",
    "lifetime": "the bearer token lives longer than this server accepts (86400 s)",
}


def test_each_refusal_says_why_in_its_own_words(issuer: Issuer) -> None:
    authenticator = Authenticator(jwt=verifier(issuer), accounts=accounts())
    now = int(time.time())

    def jwt_with(**changes: Any) -> dict[str, str]:
        return bearer(jwt.encode({**valid_claims(), **changes}, issuer.private_key, algorithm="RS256"))

    presented = {
        "no header": {},
        "Basic": {"authorization": "Basic abc"},
        "too long": bearer("chs_" + "x" * 9000),
        "unknown API token": bearer("chs_unknown"),
        "expired": jwt_with(exp=now - 3600),
        "audience": jwt_with(aud="elsewhere"),
        "issuer": jwt_with(iss="https://elsewhere.test"),
        "bad signature": bearer(issuer.token()[:-4] + "AAAA"),
        "no subject": jwt_with(sub=""),
        "lifetime": jwt_with(exp=now + 10 * 24 * 3600),
    }
    said = {}
    for case, metadata in presented.items():
        with pytest.raises(TokenRejected) as rejected:
            authenticator.authenticate(metadata, None)
        assert str(rejected.value) == rejected.value.message
        said[case] = rejected.value.message
    assert said == REFUSAL_MESSAGES


def test_a_jwks_refusal_says_whether_the_token_or_its_key_is_wrong(issuer: Issuer) -> None:
    key = jwt.algorithms.RSAAlgorithm.to_jwk(issuer.private_key.public_key(), as_dict=True)
    jwks_verifier = JwtVerifier(issuer=ISSUER, audience=AUDIENCE, jwks={"keys": [{**key, "kid": "k1"}]})
    with pytest.raises(TokenRejected) as malformed:
        jwks_verifier.verify("not.a-jwt")
    assert malformed.value.message == "the bearer token is not a well-formed JWT"
    other_kid = jwt.encode(valid_claims(), issuer.private_key, algorithm="RS256", headers={"kid": "k2"})
    with pytest.raises(TokenRejected) as unknown_key:
        jwks_verifier.verify(other_kid)
    assert unknown_key.value.message == "the JWT is signed with a key this server does not know"


def test_a_misconfigured_verifier_says_what_is_wrong(issuer: Issuer) -> None:
    pem = issuer.public_key_file.read_text()
    with pytest.raises(
        ValueError, match=r"^a JWT verifier needs exactly one of a public key file or a JWKS file$"
    ):
        JwtVerifier(issuer=ISSUER, audience=AUDIENCE)
    with pytest.raises(ValueError, match=r"^the maximum JWT lifetime must be positive$"):
        JwtVerifier(issuer=ISSUER, audience=AUDIENCE, public_key=pem, max_lifetime=0)
    assert JwtVerifier(issuer=ISSUER, audience=AUDIENCE, public_key=pem, max_lifetime=0.5).max_lifetime == 0.5


def test_the_longest_subject_and_lifetime_are_accepted(issuer: Issuer) -> None:
    now = int(time.time())
    longest = jwt.encode({**valid_claims(), "sub": "s" * 64}, issuer.private_key, algorithm="RS256")
    assert verifier(issuer).verify(longest).subject == "s" * 64
    # exp - iat of exactly the maximum plus the 5 s of tolerated skew.
    edge = {**valid_claims(), "iat": now, "exp": now + 24 * 3600 + 5}
    assert (
        verifier(issuer).verify(jwt.encode(edge, issuer.private_key, algorithm="RS256")).subject == "mallory"
    )


def test_a_verified_token_is_answered_from_memory(issuer: Issuer) -> None:
    remembering = verifier(issuer)
    token = issuer.token("erin")
    assert remembering.verify(token).subject == "erin"
    # Another key from now on: only a token verified before still passes.
    remembering._key = ec.generate_private_key(ec.SECP256R1()).public_key()
    assert remembering.verify(token) == Identity("erin", IdentityKind.USER, remembering.verify(token).scopes)
    with pytest.raises(TokenRejected):
        remembering.verify(issuer.token("frank"))


def test_the_memory_of_verified_tokens_is_bounded(issuer: Issuer, monkeypatch: pytest.MonkeyPatch) -> None:
    from chat_services.security import tokens

    monkeypatch.setattr(tokens, "_CACHED_TOKENS", 2)
    remembering = verifier(issuer)
    for subject in ("a", "b", "c", "d"):
        assert remembering.verify(issuer.token(subject)).subject == subject
        assert len(remembering._verified) <= 2


def test_keys_and_accounts_are_read_from_their_files(issuer: Issuer, tmp_path: Path) -> None:
    from_pem = JwtVerifier.from_files(
        issuer=ISSUER, audience=AUDIENCE, public_key=issuer.public_key_file, jwks=None, max_lifetime=600
    )
    assert (from_pem.issuer, from_pem.audience, from_pem.max_lifetime) == (ISSUER, AUDIENCE, 600)
    assert from_pem.verify(issuer.token("gina")).subject == "gina"
    jwks = tmp_path / "jwks.json"
    key = jwt.algorithms.RSAAlgorithm.to_jwk(issuer.private_key.public_key(), as_dict=True)
    jwks.write_text(json.dumps({"keys": [key]}))
    from_jwks = JwtVerifier.from_files(issuer=ISSUER, audience=AUDIENCE, public_key=None, jwks=jwks)
    assert from_jwks.verify(issuer.token("hana")).subject == "hana"
    assert from_jwks.max_lifetime == 24 * 3600
    listed = tmp_path / "accounts.toml"
    listed.write_text(
        f'[service.bridge]\nscopes = ["messages:read"]\ntoken_sha256 = ["{hash_token(BRIDGE)}"]\n'
    )
    identity = ServiceAccounts.load(listed).by_token(BRIDGE)
    assert identity == Identity("bridge", IdentityKind.SERVICE, frozenset({"messages:read"}))


def test_an_account_file_may_leave_out_services_scopes_and_tokens() -> None:
    assert ServiceAccounts.from_mapping({}).accounts == ()
    [bare] = ServiceAccounts.from_mapping({"service": {"bare": {}}}).accounts
    assert (bare.scopes, bare.token_digests) == (frozenset(), ())


def test_a_refused_impersonation_names_at_most_128_characters_of_the_caller() -> None:
    subject = "u" * 200
    token = bind_identity(Identity(subject, IdentityKind.USER))
    try:
        with pytest.raises(PermissionDenied) as denied:
            check_acting_as("someone-else", "author_id")
    finally:
        unbind_identity(token)
    assert denied.value.message == f"the caller {subject[:128]!r} may not act as another user"
