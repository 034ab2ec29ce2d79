"""The C codec against the Python path over upb, and both against upb itself, compared exactly.

Used by ``test_native_codec`` (bounded, in the suite) and by the codec fuzzer
(``python -m compat_tests.fuzz_codec``, ``nox -s fuzz_codec``). An outcome is what
a call returned, as a structure compared bit for bit (floats by their bits, enums
with their class, unknown fields included), or the exception it raised, by type and
text.

The two paths could agree and both be wrong: :func:`upb_disagreement` judges a parse
against upb's raw outcome instead, computed here without the SDK's converters.
"""

from __future__ import annotations

import dataclasses
import datetime
import enum
import fractions
import struct
from collections.abc import Callable
from typing import Any, cast

import betterproto2
from google.protobuf import duration_pb2, timestamp_pb2
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import DecodeError, Message

from chat_sdk import _native, _wire
from chat_sdk._generated.message_pool import default_message_pool
from compat_tests.current import standard_class

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


_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)
_WELL_KNOWN = (timestamp_pb2.Timestamp.DESCRIPTOR.full_name, duration_pb2.Duration.DESCRIPTOR.full_name)


def _as_the_dataclass_holds(value: Message) -> None:
    """Timestamps to whole microseconds (truncated), Durations to the nearest one (ties to even), in place.

    And 32-bit floats through a Python float, as upb's own accessors pass them.
    What betterproto2 defines the dataclass to hold, in exact arithmetic and the protobuf
    runtime's own conversions; OverflowError for a value ``datetime`` cannot hold.
    """
    name = value.DESCRIPTOR.full_name
    seconds, nanos = getattr(value, "seconds", 0), getattr(value, "nanos", 0)
    if name == _WELL_KNOWN[0]:
        exact = _EPOCH + datetime.timedelta(seconds=seconds, microseconds=nanos // 1000)
        cast(Any, value).FromDatetime(exact)
    elif name == _WELL_KNOWN[1]:
        micros = round(fractions.Fraction(nanos, 1000))  # half to even
        cast(Any, value).FromTimedelta(datetime.timedelta(seconds=seconds, microseconds=micros))
    else:
        for field, held in value.ListFields():
            # Held as a Python float: a signalling NaN turns quiet.
            if field.cpp_type == FieldDescriptor.CPPTYPE_FLOAT:
                if field.is_repeated:
                    held[:] = list(held)
                else:
                    setattr(value, field.name, held)
            if field.message_type is None:
                continue
            if field.message_type.GetOptions().map_entry:
                if field.message_type.fields_by_name["value"].message_type is not None:
                    for item in held.values():
                        _as_the_dataclass_holds(item)
            elif field.is_repeated:
                for item in held:
                    _as_the_dataclass_holds(item)
            else:
                _as_the_dataclass_holds(held)
                held.SetInParent()  # set, though it may now be all zeros
    if name in _WELL_KNOWN:
        value.DiscardUnknownFields()  # a datetime or timedelta keeps none


def upb_verdict(cls: type[betterproto2.Message], data: bytes) -> bytes | None:
    """upb's reading of ``data``, as the dataclass holds it, in canonical bytes; None when it is refused.

    Refused: what upb refuses, and a Timestamp or Duration that ``datetime`` cannot hold.
    """
    standard = standard_class(_full_name(cls))
    try:
        message = standard.FromString(data)
        _as_the_dataclass_holds(message)
    except (DecodeError, OverflowError):
        return None
    return message.SerializeToString(deterministic=True)


def upb_disagreement(
    cls: type[betterproto2.Message], data: bytes, parse: Callable[[bytes], Any]
) -> str | None:
    """How ``parse`` (a path of the codec) differs from upb on ``data``, or None when it does not.

    upb refuses: ``parse`` raises MessageDecodeError (a ValueError), nothing else. upb
    reads a message: ``parse`` returns the dataclass of it, known and unknown fields alike
    (compared through upb's canonical encoding of what the dataclass writes).
    """
    expected = upb_verdict(cls, data)
    try:
        parsed = parse(data)
    except _wire.MessageDecodeError as error:
        return None if expected is None else f"refused what upb reads: {error}"
    except Exception as error:  # every other error is a finding
        return f"raised {type(error).__qualname__} ({error}), not MessageDecodeError"
    if expected is None:
        return f"read what upb refuses: {parsed!r}"
    standard = standard_class(_full_name(cls))
    try:
        written = standard.FromString(bytes(parsed)).SerializeToString(deterministic=True)
    except Exception as error:  # what was read cannot even be written
        return f"read {parsed!r}, which cannot be written: {type(error).__qualname__} ({error})"
    return None if written == expected else f"read {parsed!r}, upb reads {expected.hex()}"


def _full_name(cls: type) -> str:
    """The protobuf name of the dataclass ``cls`` (chat.v1.Message)."""
    return default_message_pool.type_to_url[cls].rsplit("/", 1)[1]
