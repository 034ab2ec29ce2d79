"""Page sizes and opaque page tokens, shared by every list RPC.

A token is URL-safe base64 of a small JSON object that says where the next page
starts and what it belongs to, so a token from one list cannot be replayed
against another. Clients never parse it.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping

from chat_services.errors import InvalidArgument

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000
# Tokens this server issues are well under 200 characters; a longer one is not ours, and
# refusing it unread keeps a hostile token from costing more than a length check.
MAX_TOKEN_CHARS = 1024


def page_size(requested: int) -> int:
    """0 means the default, values above the maximum are capped (the schema refuses negative ones)."""
    if requested == 0:
        return DEFAULT_PAGE_SIZE
    return min(requested, MAX_PAGE_SIZE)


def encode_token(position: Mapping[str, str | int]) -> str:
    """An opaque token for ``position``."""
    raw = json.dumps(dict(position), sort_keys=True, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def position_after(value: object) -> int:
    """A token's ``after`` position (a sequence, a row); INVALID_ARGUMENT unless this server wrote it."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 2**63:
        raise InvalidArgument("page token is not one this server issued", field="page.page_token")
    return value


def decode_token(
    token: str, *, scope: Mapping[str, str], field: str = "page.page_token"
) -> dict[str, str | int]:
    """The position in ``token``; refused unless it was made for the same ``scope``."""
    if len(token) > MAX_TOKEN_CHARS:
        raise InvalidArgument("page token is not one this server issued (too long)", field=field)
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        position = json.loads(raw)
    # Deeply nested JSON exhausts the parser's recursion limit: a malformed token, not a bug.
    except (binascii.Error, ValueError, RecursionError) as error:
        raise InvalidArgument("page token is not one this server issued", field=field) from error
    if not isinstance(position, dict) or any(position.get(key) != value for key, value in scope.items()):
        raise InvalidArgument("page token belongs to a different list; start again without one", field=field)
    return position
