"""Durations the way ghz (and Go's ``time.ParseDuration``) write them: ``30s``, ``2m``, ``1m30s``, ``500ms``.

The standard library reads no such text (``datetime.timedelta`` has no parser, and the
protobuf runtime's ``Duration.FromJsonString`` takes seconds only), so the grammar is
here: one or more ``<number><unit>`` parts, units ``ns``, ``us`` (or ``µs``), ``ms``,
``s``, ``m``, ``h``. A bare number is seconds, as chat-load took before.
"""

from __future__ import annotations

import re

UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_BARE = re.compile(r"\d+(?:\.\d*)?|\.\d+")
_MAX_TEXT = 64


def parse_duration(text: str) -> float:
    """Seconds in ``text`` (``30s``, ``2m``, ``1h30m``, ``500ms``, or a bare number of seconds).

    Raises ``ValueError`` naming the accepted forms; the text is quoted cut to 64 characters.
    """
    cleaned = text.strip()
    if len(cleaned) <= _MAX_TEXT:
        if _BARE.fullmatch(cleaned):
            return float(cleaned)
        parts = list(_PART.finditer(cleaned))
        if parts and "".join(part.group(0) for part in parts) == cleaned:
            return sum(float(part.group(1)) * UNITS[part.group(2)] for part in parts)
    shown = cleaned if len(cleaned) <= _MAX_TEXT else cleaned[:_MAX_TEXT] + "..."
    raise ValueError(f"{shown!r} is not a duration: write 30s, 2m, 1m30s, 500ms or a number of seconds")
