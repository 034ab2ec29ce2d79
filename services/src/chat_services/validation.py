"""Request field checks shared by the services: each failure names the field at fault."""

from __future__ import annotations

from chat_services.errors import InvalidArgument

ID_MAX_CHARS = 64


def required_id(value: str, field: str, *, max_chars: int = ID_MAX_CHARS) -> str:
    """A non-empty identifier of at most ``max_chars`` characters."""
    if not value:
        raise InvalidArgument(f"{field} is required", field=field)
    return optional_id(value, field, max_chars=max_chars)


def optional_id(value: str, field: str, *, max_chars: int = ID_MAX_CHARS) -> str:
    """An identifier that may be empty, at most ``max_chars`` characters."""
    if len(value) > max_chars:
        raise InvalidArgument(f"{field} is {len(value)} characters; the limit is {max_chars}", field=field)
    return value
