"""The wire checks of the suite as plain functions, so they can be aimed at any schema.

The tests aim them at the installed SDK; ``test_sensitivity`` aims them at a
deliberately broken schema to prove they fail when they should.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from google.protobuf import json_format, unknown_fields
from google.protobuf.message import DecodeError, Message

from compat_tests.releases import Fixture, release_class

ClassFor = Callable[[str], type[Message]]


def fixture_decode_problems(fixture: Fixture, current: ClassFor) -> list[str]:
    """Why ``current`` classes do not read a fixture as its release wrote it (empty: they do)."""
    try:
        cls = current(fixture.message)
        from_binary = cls.FromString(fixture.binary)
        from_json = json_format.Parse(json.dumps(fixture.json), cls())
    except (DecodeError, json_format.ParseError, KeyError) as error:
        return [f"{fixture.id}: cannot decode: {error}"]
    problems = []
    if from_binary != from_json:
        problems.append(f"{fixture.id}: binary and JSON decode to different values")
    as_released = release_class(fixture.release, fixture.message).FromString(fixture.binary)
    if json_format.MessageToDict(from_binary) != json_format.MessageToDict(as_released):
        problems.append(f"{fixture.id}: values differ from the release's own reading")
    return problems


def fixture_reencode_problems(fixture: Fixture, current: ClassFor) -> list[str]:
    """Why re-encoding a fixture does not give back its bytes and JSON (empty: it does)."""
    try:
        decoded = current(fixture.message).FromString(fixture.binary)
    except (DecodeError, KeyError) as error:
        return [f"{fixture.id}: cannot decode: {error}"]
    problems = []
    if decoded.SerializeToString(deterministic=True) != fixture.binary:
        problems.append(f"{fixture.id}: re-encoded bytes differ")
    if json.loads(json_format.MessageToJson(decoded)) != fixture.json:
        problems.append(f"{fixture.id}: re-encoded JSON differs")
    return problems


def forward_problems(release: str, message_name: str, sample: Message, current: ClassFor) -> list[str]:
    """Why bytes of ``sample`` (today's schema) do not survive ``release``'s classes unchanged.

    Two things must hold: the old reader writes back exactly what it read (unknown
    fields and enum values included), and it can read every field it knows: a known
    field number it had to keep as unknown means the field's wire type changed.
    """
    original = sample.SerializeToString(deterministic=True)
    try:
        old = release_class(release, message_name).FromString(original)
        back = current(message_name).FromString(old.SerializeToString())
    except DecodeError as error:
        return [f"{release}:{message_name}: {error}"]
    problems = [f"{release}:{message_name}: {problem}" for problem in _unreadable_known_fields(old)]
    if back.SerializeToString(deterministic=True) != original:
        problems.append(f"{release}:{message_name}: changed on the way through {release}")
    return problems


def _unreadable_known_fields(message: Message) -> list[str]:
    """Known field numbers that ``message`` had to keep as unknown, at any depth."""
    known = {field.number: field.name for field in message.DESCRIPTOR.fields}
    name = message.DESCRIPTOR.full_name
    unknown = unknown_fields.UnknownFieldSet(message)
    found = [
        f"{name}.{known[item.field_number]} ({item.field_number}) arrived with another wire type"
        for item in (unknown[i] for i in range(len(unknown)))
        if item.field_number in known
    ]
    for field, value in message.ListFields():
        if field.message_type is None or field.message_type.GetOptions().map_entry:
            continue
        for item in value if field.is_repeated else [value]:
            found += _unreadable_known_fields(item)
    return found
