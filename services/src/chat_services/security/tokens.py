"""Bearer tokens: JWTs for users (PyJWT) and static API tokens for service accounts.

JWTs are verified against a public key or a JWKS file (never fetched at run time),
with issuer, audience and expiry required. Service accounts live in one TOML file
that stores only SHA-256 digests of their tokens; a presented token is hashed and
compared with every digest in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from chat_services.security.identity import Identity, IdentityKind

API_TOKEN_PREFIX = "chs_"
DEFAULT_JWT_ALGORITHMS = ("RS256", "ES256", "EdDSA")
_LEEWAY_SECONDS = 5.0  # clock skew tolerated on exp/nbf/iat
DEFAULT_MAX_LIFETIME = 24 * 3600.0  # seconds a JWT may live (exp - iat, or exp - now without iat)
# What PyJWT raises besides InvalidTokenError on a token it cannot judge: a header naming an
# algorithm of another key family (ES256 or EdDSA against an RSA key) gives TypeError or
# InvalidKeyError, odd claim types ValueError. Every one is a refusal, never a crash.
_UNJUDGEABLE = (jwt.PyJWTError, TypeError, ValueError, KeyError, AttributeError)
_CACHED_TOKENS = 10_000  # verified JWTs remembered until they expire (a signature check costs ~0.1 ms)


class TokenRejected(Exception):
    """A presented credential is not valid; ``reason`` is a stable ``ErrorInfo`` reason."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


def hash_token(token: str) -> str:
    """The hex SHA-256 digest stored for an API token."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_api_token() -> str:
    """A fresh random API token (``chs_`` and 43 URL-safe characters)."""
    return API_TOKEN_PREFIX + secrets.token_urlsafe(32)


@dataclass(frozen=True)
class ServiceAccount:
    """A named service: its scopes and the digests of the API tokens it may present."""

    name: str
    scopes: frozenset[str]
    token_digests: tuple[bytes, ...]

    def identity(self) -> Identity:
        """The identity this account authenticates as."""
        return Identity(self.name, IdentityKind.SERVICE, self.scopes)


@dataclass(frozen=True)
class ServiceAccounts:
    """Every service account, from ``[service.<name>]`` tables of a TOML file."""

    accounts: tuple[ServiceAccount, ...]

    @classmethod
    def load(cls, path: Path) -> ServiceAccounts:
        """Read the file; a malformed entry fails with the entry's name."""
        with path.open("rb") as file:
            data = tomllib.load(file)
        return cls.from_mapping(data)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> ServiceAccounts:
        """Build from parsed TOML: ``{"service": {name: {"scopes": [...], "token_sha256": [...]}}}``."""
        accounts = []
        for name, entry in dict(data.get("service", {})).items():
            scopes = entry.get("scopes", [])
            digests = entry.get("token_sha256", [])
            if isinstance(digests, str):
                digests = [digests]
            if not all(isinstance(s, str) for s in scopes) or not all(_is_digest(d) for d in digests):
                raise ValueError(f"service account {name!r}: scopes are strings, token_sha256 hex SHA-256")
            accounts.append(ServiceAccount(name, frozenset(scopes), tuple(bytes.fromhex(d) for d in digests)))
        return cls(tuple(accounts))

    def by_token(self, token: str) -> Identity | None:
        """The account whose token this is, comparing against every digest in constant time."""
        presented = hashlib.sha256(token.encode()).digest()
        found: ServiceAccount | None = None
        for account in self.accounts:
            for digest in account.token_digests:
                if hmac.compare_digest(presented, digest):
                    found = account
        return None if found is None else found.identity()

    def by_name(self, name: str) -> Identity:
        """The identity of a service known by name (a client certificate's); no scopes if unlisted."""
        for account in self.accounts:
            if account.name == name:
                return account.identity()
        return Identity(name, IdentityKind.SERVICE, frozenset())


def _is_digest(value: object) -> bool:
    if not isinstance(value, str) or len(value) != 64:
        return False
    try:
        bytes.fromhex(value)
    except ValueError:
        return False
    return True


class JwtVerifier:
    """Verifies user JWTs: signature, ``iss``, ``aud``, ``exp`` and ``sub`` are all required."""

    def __init__(
        self,
        *,
        issuer: str,
        audience: str,
        public_key: str | None = None,
        jwks: Mapping[str, Any] | None = None,
        algorithms: tuple[str, ...] = DEFAULT_JWT_ALGORITHMS,
        max_lifetime: float = DEFAULT_MAX_LIFETIME,
    ) -> None:
        if (public_key is None) == (jwks is None):
            raise ValueError("a JWT verifier needs exactly one of a public key file or a JWKS file")
        self.issuer = issuer
        self.audience = audience
        self.algorithms = list(algorithms)
        if max_lifetime <= 0:
            raise ValueError("the maximum JWT lifetime must be positive")
        self.max_lifetime = max_lifetime
        # Parsed once here (a bad file fails at start), not by PyJWT on every decode.
        self._key = None if public_key is None else load_pem_public_key(public_key.encode())
        self._jwks = None if jwks is None else jwt.PyJWKSet.from_dict(dict(jwks))
        self._verified: dict[str, tuple[Identity, float]] = {}  # token -> (identity, exp)

    @classmethod
    def from_files(
        cls,
        *,
        issuer: str,
        audience: str,
        public_key: Path | None,
        jwks: Path | None,
        max_lifetime: float = DEFAULT_MAX_LIFETIME,
    ) -> JwtVerifier:
        """Read the PEM public key or the JWKS document from disk."""
        return cls(
            issuer=issuer,
            audience=audience,
            public_key=public_key.read_text() if public_key else None,
            jwks=json.loads(jwks.read_text()) if jwks else None,
            max_lifetime=max_lifetime,
        )

    def _key_for(self, token: str) -> Any:
        if self._jwks is None:
            return self._key
        try:
            kid = jwt.get_unverified_header(token).get("kid")
        except _UNJUDGEABLE as error:
            raise TokenRejected("TOKEN_INVALID", "the bearer token is not a well-formed JWT") from error
        for key in self._jwks.keys:
            if kid is None or key.key_id == kid:
                return key.key
        raise TokenRejected("TOKEN_INVALID", "the JWT is signed with a key this server does not know")

    def verify(self, token: str) -> Identity:
        """The user the token names, with its ``scope`` claim; ``TokenRejected`` otherwise.

        A token verified before is answered from memory until its ``exp`` passes.
        """
        known = self._verified.get(token)
        if known is not None:
            if time.time() < known[1]:
                return known[0]
            del self._verified[token]
        identity, expires = self._decode(token)
        if len(self._verified) >= _CACHED_TOKENS:
            del self._verified[next(iter(self._verified))]
        self._verified[token] = (identity, expires)
        return identity

    def _decode(self, token: str) -> tuple[Identity, float]:
        key = self._key_for(token)
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=self.algorithms,
                audience=self.audience,
                issuer=self.issuer,
                leeway=_LEEWAY_SECONDS,
                options={"require": ["exp", "iss", "aud", "sub"]},
            )
        except jwt.ExpiredSignatureError as error:
            raise TokenRejected("TOKEN_EXPIRED", "the bearer token has expired") from error
        except jwt.InvalidAudienceError as error:
            raise TokenRejected("WRONG_AUDIENCE", "the bearer token is for another audience") from error
        except jwt.InvalidIssuerError as error:
            raise TokenRejected("WRONG_ISSUER", "the bearer token is from another issuer") from error
        except _UNJUDGEABLE as error:
            raise TokenRejected("TOKEN_INVALID", "the bearer token is not valid") from error
        subject = claims["sub"]
        if not isinstance(subject, str) or not subject or len(subject) > 64:
            raise TokenRejected("TOKEN_INVALID", "the bearer token names no subject of 1-64 characters")
        expires = float(claims["exp"])
        issued = claims.get("iat")
        start = (
            float(issued) if isinstance(issued, int | float) and not isinstance(issued, bool) else time.time()
        )
        if expires - start > self.max_lifetime + _LEEWAY_SECONDS:
            raise TokenRejected(
                "TOKEN_LIFETIME",
                f"the bearer token lives longer than this server accepts ({self.max_lifetime:g} s)",
            )
        return Identity(subject, IdentityKind.USER, _scopes(claims)), expires


def _scopes(claims: Mapping[str, Any]) -> frozenset[str]:
    """OAuth 2.0's space-separated ``scope`` claim, or a ``scp`` list."""
    scope = claims.get("scope")
    if isinstance(scope, str):
        return frozenset(scope.split())
    listed = claims.get("scp")
    if isinstance(listed, list):
        return frozenset(s for s in listed if isinstance(s, str))
    return frozenset()
