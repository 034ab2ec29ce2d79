"""The C codec against the Python path over upb: outcomes that must be the same, compared exactly.

Used by ``test_native_codec`` (bounded, in the suite) and by the codec fuzzer
(``python -m compat_tests.fuzz_codec``, ``nox -s fuzz -- codec``). An outcome is what
a call returned, as a structure compared bit for bit (floats by their bits, enums
with their class, unknown fields included), or the exception it raised, by type and
text.
"""

from __future__ import annotations

import dataclasses
import datetime
import enum
import struct
from collections.abc import Callable
from typing import Any, cast

import betterproto2
from google.protobuf.message import Message

from chat_sdk import _native, _wire

Outcome = tuple[Any, ...]


def structure(value: Any) -> Any:
    """``value`` as nested tuples that compare equal only when every bit of it is the same."""
    if isinstance(value, betterproto2.Message):
        fields = tuple(
            (f.name, structure(getattr(value, f.name))) for f in dataclasses.fields(cast(Any, value))
        )
        return (type(value).__qualname__, fields, bytes(getattr(value, "_unknown_fields", b"")))
    if isinstance(value, enum.Enum):
        return (type(value).__qualname__, value.value)
    if isinstance(value, float):
        return ("float", struct.pack("<d", value))
    if isinstance(value, list):
        return ("list", tuple(structure(item) for item in value))
    if isinstance(value, dict):
        return ("dict", tuple(sorted((structure(k), structure(v)) for k, v in value.items())))
    if isinstance(value, datetime.datetime):
        return ("datetime", value.isoformat(), value.tzinfo is datetime.UTC)
    return (type(value).__qualname__, value)


def outcome(call: Callable[[], Any]) -> Outcome:
    """What ``call`` gives: ``("ok", structure)`` or ``("error", type name, message)``."""
    try:
        result = call()
    except Exception as error:  # every error is an outcome to compare
        return ("error", type(error).__qualname__, str(error))
    return ("ok", structure(result))


def parse_outcomes(cls: type[betterproto2.Message], data: bytes) -> tuple[Outcome, Outcome]:
    """The shipped parse of ``data`` (the C codec first) and the Python path's."""
    return outcome(lambda: _wire.PARSERS[cls](data)), outcome(lambda: _wire.UPB_PARSERS[cls](data))


def serialize_outcomes(message: betterproto2.Message) -> tuple[Outcome, Outcome]:
    """The shipped encoding of ``message`` (the C codec first) and the Python path's."""
    cls = type(message)
    return outcome(lambda: _wire.SERIALIZERS[cls](message)), outcome(
        lambda: _wire.UPB_SERIALIZERS[cls](message)
    )


def mutations(data: bytes, choices: Callable[[int], int]) -> list[bytes]:
    """A few corruptions of a valid encoding: a byte changed, cut short, a byte added or dropped.

    ``choices(n)`` picks a number below ``n`` (hypothesis's or ``random``'s).
    """
    if not data:
        return [b"\x00", b"\x08", b"\x0a\x01"]
    at = choices(len(data))
    byte = choices(256)
    return [
        data[:at] + bytes([byte]) + data[at + 1 :],
        data[:at],
        data[:at] + bytes([byte]) + data[at:],
        data[:at] + data[at + 1 :],
        data + data[at:],
    ]


def holds_map_entries(message: Message) -> bool:
    """Whether a map anywhere in ``message`` has entries (which upb, so the Python path, writes)."""
    for field, value in message.ListFields():
        if field.message_type is None:
            continue
        if field.message_type.GetOptions().map_entry:
            return True  # ListFields lists maps with entries only
        items = value if field.is_repeated else [value]
        if any(holds_map_entries(item) for item in items):
            return True
    return False


@dataclasses.dataclass
class HandOvers:
    """Plans whose fallbacks note every class the C codec handed to the Python path."""

    classes: list[type] = dataclasses.field(default_factory=list)

    def plans(self, kind: type[_native.Plans] = _native.Plans) -> _native.Plans:
        """Fresh plans (of ``kind``) falling back to the Python path over upb, noting each hand-over."""
        return kind(self._noting(_wire.UPB_PARSERS), self._noting(_wire.UPB_SERIALIZERS))

    def _noting(self, path: dict[type, Callable[[Any], Any]]) -> Callable[[type], Callable[[Any], Any]]:
        def fallback_of(cls: type) -> Callable[[Any], Any]:
            def fallback(value: Any) -> Any:
                self.classes.append(cls)
                return path[cls](value)

            return fallback

        return fallback_of
