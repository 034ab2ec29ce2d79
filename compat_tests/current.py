"""The current SDK's two targets, looked up by message name: what every release is checked against."""

from __future__ import annotations

from collections.abc import Iterator

import betterproto2
from google.protobuf import descriptor_pool
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass

from chat_sdk._convert import import_standard_target
from chat_sdk._generated.message_pool import default_message_pool


def standard_class(message: str) -> type[Message]:
    """The `_pb2` class of ``message`` in the installed SDK."""
    import_standard_target()
    return GetMessageClass(descriptor_pool.Default().FindMessageTypeByName(message))


def dataclass_class(message: str) -> type[betterproto2.Message]:
    """The betterproto2 dataclass of ``message`` in the installed SDK."""
    return default_message_pool.url_to_type[f"type.googleapis.com/{message}"]


# betterproto2's own codec turns a Duration into a timedelta and back through float
# arithmetic: negative durations come back with the wrong sign or are refused in
# ProtoJSON (its parser only accepts unsigned strings), and durations of 2**53 µs
# (about 285 years) or more lose precision. Known difference of betterproto2 0.10,
# no upstream issue found (https://github.com/betterproto/python-betterproto2/issues);
# recorded in sdk/python/README.md and asserted in test_fixtures. The SDK's binary
# codec (upb, chat_sdk._wire) carries them exactly; its ProtoJSON is still betterproto2's.
DATACLASS_DURATION_LIMIT_MICROS = 2**53


def dataclass_mangles_duration(message: Message) -> bool:
    """Whether ``message`` holds a Duration betterproto2's own codec cannot carry exactly."""
    return any(
        d.seconds < 0 or d.nanos < 0 or abs(d.seconds) * 1_000_000 >= DATACLASS_DURATION_LIMIT_MICROS  # type: ignore[attr-defined]
        for d in well_known(message, "google.protobuf.Duration")
    )


def has_negative_duration(message: Message) -> bool:
    """Whether ``message`` holds a negative Duration (which the dataclass ProtoJSON parser refuses)."""
    return any(d.seconds < 0 or d.nanos < 0 for d in well_known(message, "google.protobuf.Duration"))  # type: ignore[attr-defined]


def without_durations(message: Message) -> Message:
    """A copy of ``message`` with every Duration cleared, to compare the remaining fields."""
    copy = type(message)()
    copy.CopyFrom(message)
    for duration in well_known(copy, "google.protobuf.Duration"):
        duration.Clear()
    return copy


def walk(message: Message) -> Iterator[Message]:
    """``message`` and every message nested in it (singular, repeated and map values), depth first."""
    yield message
    for field, value in message.ListFields():
        if field.message_type is None:
            continue
        if field.message_type.GetOptions().map_entry:
            if field.message_type.fields_by_name["value"].message_type is not None:
                for item in value.values():
                    yield from walk(item)
        else:
            for item in value if field.is_repeated else [value]:
                yield from walk(item)


def well_known(message: Message, name: str) -> list[Message]:
    """Every message of type ``name`` (a well-known type such as a Duration) inside ``message``."""
    return [found for found in walk(message) if found.DESCRIPTOR.full_name == name]


def truncate_to_microseconds(message: Message) -> Message:
    """A copy of ``message`` whose Timestamps and Durations keep whole microseconds only.

    The dataclass target stores them as ``datetime``/``timedelta``, which hold
    microseconds: nanoseconds below 1 µs are dropped on decode. This is a known
    difference of betterproto2 (see sdk/python/README.md), recorded, not hidden:
    ``test_fixtures`` asserts it explicitly wherever a fixture has such nanoseconds.
    """
    copy = type(message)()
    copy.CopyFrom(message)
    _truncate(copy)
    return copy


def as_the_dataclass_carries(message: Message) -> Message:
    """What the dataclass target's binary codec gives back of ``message``: whole microseconds.

    Timestamps lose their sub-microsecond nanoseconds (truncated, as betterproto2's
    ``to_datetime``); Durations are rounded to the nearest microsecond, ties to even, as
    ``datetime.timedelta`` rounds. Everything else comes back exactly.
    """
    expected = type(message)()
    expected.CopyFrom(message)
    for found in walk(expected):
        name = found.DESCRIPTOR.full_name
        seconds: int = getattr(found, "seconds", 0)
        nanos: int = getattr(found, "nanos", 0)
        if name == "google.protobuf.Timestamp":
            found.nanos = nanos // 1000 * 1000  # type: ignore[attr-defined]
        elif name == "google.protobuf.Duration":
            found.FromMicroseconds(seconds * 1_000_000 + round(nanos / 1000))  # type: ignore[attr-defined]
    return expected


def _truncate(message: Message) -> None:
    for found in walk(message):
        if found.DESCRIPTOR.full_name in ("google.protobuf.Timestamp", "google.protobuf.Duration"):
            nanos: int = found.nanos  # type: ignore[attr-defined]
            found.nanos = int(nanos / 1000) * 1000  # type: ignore[attr-defined]  # towards zero, like timedelta
