"""Authentication: a bearer token or a verified client certificate becomes an ``Identity``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from chat_services.security.identity import Identity
from chat_services.security.tls import certificate_subject
from chat_services.security.tokens import API_TOKEN_PREFIX, JwtVerifier, ServiceAccounts, TokenRejected

_MAX_TOKEN_CHARS = 8192  # longer than any real JWT; refused before any parsing


@dataclass(frozen=True)
class Authenticator:
    """The configured credential sources; with none, the server runs open (local development)."""

    jwt: JwtVerifier | None = None
    accounts: ServiceAccounts | None = None
    mutual_tls: bool = False

    @property
    def enforced(self) -> bool:
        """True when any credential source is configured: then every call must authenticate."""
        return self.jwt is not None or self.accounts is not None or self.mutual_tls

    def authenticate(self, metadata: Mapping[str, Any], peer_cert: dict[str, Any] | None) -> Identity:
        """The caller's identity: its bearer token if it sends one, else its client certificate."""
        header = metadata.get("authorization")
        if header is not None:
            return self._from_token(str(header))
        subject = certificate_subject(peer_cert) if self.mutual_tls else None
        if subject is not None:
            accounts = self.accounts or ServiceAccounts(())
            return accounts.by_name(subject)
        raise TokenRejected("CREDENTIALS_MISSING", "this call needs an authorization: Bearer <token> header")

    def _from_token(self, header: str) -> Identity:
        scheme, _, token = header.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise TokenRejected("CREDENTIALS_INVALID", "the authorization header is not Bearer <token>")
        if len(token) > _MAX_TOKEN_CHARS:
            raise TokenRejected("CREDENTIALS_INVALID", "the bearer token is too long")
        if token.startswith(API_TOKEN_PREFIX) or self.jwt is None:
            identity = self.accounts.by_token(token) if self.accounts else None
            if identity is None:
                raise TokenRejected("TOKEN_INVALID", "the API token is not one this server knows")
            return identity
        return self.jwt.verify(token)
