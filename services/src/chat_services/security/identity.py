"""The verified caller of the running call, and the authorship rule it decides."""

from __future__ import annotations

import contextvars
from dataclasses import dataclass, field
from enum import Enum

from chat_services.errors import PermissionDenied

IMPERSONATE_SCOPE = "messages:impersonate"


class IdentityKind(Enum):
    """A person (from a JWT) or a service account (API token or client certificate)."""

    USER = "user"
    SERVICE = "service"


@dataclass(frozen=True)
class Identity:
    """A verified caller: ``subject`` (a user id or service name), its kind, and its scopes."""

    subject: str
    kind: IdentityKind
    scopes: frozenset[str] = field(default_factory=frozenset)

    @property
    def principal(self) -> str:
        """``user:alice`` or ``service:indexer``: the key of what this caller owns and is charged for.

        A user and a service account may share a subject; they never share a principal.
        """
        return f"{self.kind.value}:{self.subject}"

    def is_admin(self, scope: str) -> bool:
        """Whether an admin scope lifts the data rules: only for a service account that holds it."""
        return self.kind is IdentityKind.SERVICE and scope in self.scopes

    def may_act_for_others(self) -> bool:
        """Only a service holding ``messages:impersonate`` may write as another user."""
        return self.kind is IdentityKind.SERVICE and IMPERSONATE_SCOPE in self.scopes


_CURRENT: contextvars.ContextVar[Identity | None] = contextvars.ContextVar("chat_identity", default=None)


def current_identity() -> Identity | None:
    """The caller of the running call; None when the server runs without authentication."""
    return _CURRENT.get()


def bind_identity(identity: Identity | None) -> contextvars.Token[Identity | None]:
    """Make ``identity`` the caller for the rest of this task (the guard calls this)."""
    return _CURRENT.set(identity)


def unbind_identity(token: contextvars.Token[Identity | None]) -> None:
    """Undo :func:`bind_identity`."""
    _CURRENT.reset(token)


def check_acting_as(user_id: str, field_name: str) -> None:
    """PERMISSION_DENIED unless the caller is ``user_id`` (or may act for others, or auth is off)."""
    caller = current_identity()
    if caller is None or caller.subject == user_id or caller.may_act_for_others():
        return
    raise PermissionDenied(
        f"the caller {caller.subject[:128]!r} may not act as another user", field=field_name
    )
