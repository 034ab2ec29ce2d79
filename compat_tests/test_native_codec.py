"""The C codec (``chat_sdk._fastwire``) reads and writes what the Python path over upb does, bit for bit.

The C code takes the common case and declines the rest to the Python path. That
canonical messages of every type are handled in C without declining is checked in
``test_dataclass_codec`` (otherwise everything here could pass by never running the C
code). Here: on any input, valid or not, the shipped codec's outcome is the Python
path's (the same dataclass, the same bytes, or the same error); every protobuf type,
on a probe message built here, is read and written as upb does; nothing leaks.
"""

from __future__ import annotations

import datetime
import enum
import gc
import os
import re
import shutil
import subprocess
import sys
import tracemalloc
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import betterproto2
import pytest
from google.protobuf import descriptor_pb2, descriptor_pool, duration_pb2, timestamp_pb2
from google.protobuf.descriptor import Descriptor
from google.protobuf.message import DecodeError, Message
from google.protobuf.message_factory import GetMessageClass
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import chat_sdk.schema
from chat.v1 import common_pb2, message_service_pb2
from chat_sdk import _convert, _fastwire, _native, _wire, v1
from compat_tests import fuzz_codec
from compat_tests.codec_differential import (
    HandOvers,
    holds_map_entries,
    mutations,
    outcome,
    parse_outcomes,
    serialize_outcomes,
    structure,
    upb_disagreement,
)
from compat_tests.current import dataclass_class, standard_class
from compat_tests.strategies import messages
from registry.fixtures import chat_messages

NAMES = [
    descriptor.full_name
    for descriptor in chat_messages(chat_sdk.schema.file_descriptor_set(), chat_sdk.schema.descriptor_pool())
]


def test_the_extension_is_built_and_shipped_classes_use_it() -> None:
    assert _native.AVAILABLE, "chat_sdk._fastwire is missing: the wheel was built without its C codec"
    assert _wire.PARSERS[v1.Message] == _wire.PLANS[v1.Message].parse
    assert _wire.SERIALIZERS[v1.Message] == _wire.PLANS[v1.Message].serialize


@settings(max_examples=400, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), name=st.sampled_from(NAMES))
def test_any_bytes_read_as_the_python_path_reads_them(data: st.DataObject, name: str) -> None:
    """Valid encodings corrupted (a byte changed, cut, added, dropped, a tail repeated) and raw bytes.

    The two paths agree, and with upb's own reading (so they cannot agree on a wrong answer)."""
    standard, dataclass = standard_class(name), dataclass_class(name)
    valid = data.draw(messages(cast(Descriptor, standard.DESCRIPTOR), depth=2)).SerializeToString()
    choose = lambda n: data.draw(st.integers(0, n - 1))  # noqa: E731
    for candidate in [valid, *mutations(valid, choose), data.draw(st.binary(max_size=64))]:
        shipped, python_path = parse_outcomes(dataclass, candidate)
        assert shipped == python_path, candidate
        assert upb_disagreement(dataclass, candidate, _wire.PARSERS[dataclass]) is None, candidate


def _odd_values() -> list[Any]:
    class Other(enum.IntEnum):
        ONE = 1

    class Text(str):
        pass

    return [
        None, True, False, 0, 1, -1, 2**31 - 1, 2**31, -(2**31) - 1, 2**32, 2**63, 2**64, -(2**63) - 1,
        0.0, -0.0, 1.5, float("inf"), 1e39, "x", "", "\ud800", Text("x"), b"x", b"", bytearray(b"x"),
        [], [1], [-1, 2**40], ["a", ""], [b"x"], [1.5], [None], (1,),
        datetime.datetime(2026, 1, 1), datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC),
        datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone(datetime.timedelta(hours=2))),
        datetime.datetime(1, 1, 1, tzinfo=datetime.UTC), datetime.datetime.max.replace(tzinfo=datetime.UTC),
        datetime.timedelta(0), datetime.timedelta(days=-1, microseconds=1), datetime.timedelta.max,
        Other.ONE, v1.FinishReason.STOP, v1.User(user_id="u"), v1.File(file_id="f"), [v1.File(file_id="f")],
        [v1.User()], v1.Message(id="m"), [datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)],
    ]  # fmt: skip


def _planned_fields() -> Iterator[tuple[type[betterproto2.Message], str]]:
    for name in NAMES:
        dataclass = dataclass_class(name)
        if _wire.PLANS[dataclass] is not None:
            for field in getattr(dataclass, "_betterproto").meta_by_field_name:  # noqa: B009
                yield dataclass, field


@pytest.mark.parametrize(("dataclass", "field"), list(_planned_fields()))
def test_any_value_is_written_as_the_python_path_writes_it(
    dataclass: type[betterproto2.Message], field: str
) -> None:
    """Every field of every planned class set to values of every type, in range or not."""
    for value in _odd_values():
        message = dataclass()
        setattr(message, field, value)
        shipped, python_path = serialize_outcomes(message)
        assert shipped == python_path, (field, value)


@pytest.mark.parametrize("size", [0, 1, 127, 128, 16_383, 16_384, 2_097_152])
def test_lengths_of_every_varint_width_are_written_in_place(size: int) -> None:
    """A nested record longer than 127 bytes moves to make room for its length: check every width."""
    content = "é" * (size // 2) + "x" * (size % 2)
    page = v1.ListMessagesResponse(
        messages=[
            v1.Message(id="a", content=content, author=v1.User(display_name=content)),
            v1.Message(id="b"),
        ]
    )
    written = bytes(page)
    assert written == _wire.UPB_SERIALIZERS[v1.ListMessagesResponse](page)
    assert v1.ListMessagesResponse.parse(written) == page
    assert message_service_pb2.ListMessagesResponse.FromString(written).messages[0].content == content


def test_oneof_members_unknown_fields_and_subclasses_go_to_the_python_path() -> None:
    declines = HandOvers()
    plan = declines.plans()[v1.ChatStreamRequest]
    both = v1.ChatStreamRequest(join=v1.ChatJoin(conversation_id="c"))
    both.leave = v1.ChatLeave(conversation_id="c")
    with pytest.raises(ValueError, match="more than one member of oneof"):
        plan.serialize(both)
    unknown = message_service_pb2.ChatStreamRequest(
        leave=message_service_pb2.ChatLeave(conversation_id="c")
    ).SerializeToString()
    parsed = plan.parse(unknown + b"\xf8\x06\x07")
    assert parsed.leave == v1.ChatLeave(conversation_id="c")
    assert plan.serialize(parsed) == unknown + b"\xf8\x06\x07"
    assert declines.classes == [v1.ChatStreamRequest] * 3
    assert plan.parse(unknown) == v1.ChatStreamRequest(leave=v1.ChatLeave(conversation_id="c"))
    assert len(declines.classes) == 3  # a canonical one stays in C


def test_an_uninitialised_or_invalid_plan_is_a_clear_error() -> None:
    blank = _fastwire.Plan.__new__(_fastwire.Plan)
    with pytest.raises(RuntimeError, match="never initialised"):
        blank.parse(b"")
    plan = _fastwire.Plan(v1.User, _wire.UPB_PARSERS[v1.User], _wire.UPB_SERIALIZERS[v1.User])
    for fields in [
        ((0, 9, "user_id", 0, -1, None, None, ""),),  # field number 0
        ((1, 11, "user_id", 0, -1, None, None, None),),  # a message with neither plan nor fallback
        ((1, 14, "user_id", 0, -1, None, None, None),),  # an enum without its members
        ((1, 9, "user_id", 0, 3, None, None, ""),),  # a oneof the message lacks
        ((1, 9, "a", 0, -1, None, None, ""), (1, 9, "b", 0, -1, None, None, "")),  # a number twice
    ]:
        with pytest.raises(ValueError, match=r"field 1 of|field 0 of|planned twice"):
            plan.fill(fields, 0)
    assert plan.parse(common_pb2.User(user_id="u").SerializeToString()) == v1.User(user_id="u")  # declined


def test_nothing_is_kept_after_millions_of_bytes_go_through_every_path() -> None:
    """No reference or buffer leaks: parse and write (in C, declined, failing) often, memory stays put."""
    page = bytes(
        v1.ListMessagesResponse(messages=[v1.Message(id=str(n), content="x" * 300) for n in range(20)])
    )
    unknown = page + b"\xf8\x06\x07"
    both = v1.ChatStreamRequest(
        join=v1.ChatJoin(conversation_id="c"), leave=v1.ChatLeave(conversation_id="c")
    )
    parsed = v1.ListMessagesResponse.parse(page)

    def every_path() -> None:
        v1.ListMessagesResponse.parse(page)
        v1.ListMessagesResponse.parse(unknown)
        outcome(lambda: v1.ListMessagesResponse.parse(page[:-5]))
        bytes(parsed)
        outcome(lambda: bytes(both))

    for _ in range(50):
        every_path()
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for _ in range(500):
            every_path()
        gc.collect()
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert grown < 64 * 1024, f"{grown} bytes kept after 500 rounds"


# The C code's handling of every protobuf type, on a probe message built here: the chat
# schema uses only some of them (no sint, fixed or optional fields, no Duration in a
# planned class), and a later schema may use any. The probe's dataclass stand-in is a
# plain class; its values are the ones betterproto2 would hold.

_TYPES = {
    name: getattr(descriptor_pb2.FieldDescriptorProto, f"TYPE_{name.upper()}")
    for name in (
        "double", "float", "int64", "uint64", "int32", "fixed64", "fixed32", "bool", "string",
        "bytes", "uint32", "sfixed32", "sfixed64", "sint32", "sint64", "enum",
    )
}  # fmt: skip


def _probe_descriptor() -> Descriptor:
    file = descriptor_pb2.FileDescriptorProto(
        name="probe.proto",
        package="probe",
        syntax="proto3",
        dependency=["google/protobuf/timestamp.proto", "google/protobuf/duration.proto"],
    )
    file.enum_type.add(name="Kind").value.extend(
        [
            descriptor_pb2.EnumValueDescriptorProto(name=n, number=i)
            for i, n in enumerate(["ZERO", "ONE", "TWO"])
        ]
    )
    probe = file.message_type.add(name="Probe")
    field = descriptor_pb2.FieldDescriptorProto
    number = 0

    def add(name: str, kind: int, label: int = field.LABEL_OPTIONAL, **extra: Any) -> None:
        nonlocal number
        number += 1
        probe.field.add(name=name, number=number, type=kind, label=label, **extra)

    probe.oneof_decl.add(name="choice")  # a real oneof, declared before the synthetic ones
    choice = 0
    for name, kind in _TYPES.items():
        extra: dict[str, Any] = {"type_name": ".probe.Kind"} if name == "enum" else {}
        add(f"one_{name}", kind, **extra)
        add(f"many_{name}", kind, field.LABEL_REPEATED, **extra)
        probe.oneof_decl.add(name=f"_maybe_{name}")
        add(f"maybe_{name}", kind, proto3_optional=True, oneof_index=len(probe.oneof_decl) - 1, **extra)
    add("choice_text", field.TYPE_STRING, oneof_index=choice)
    add("choice_number", field.TYPE_SINT64, oneof_index=choice)
    add("choice_probe", field.TYPE_MESSAGE, type_name=".probe.Probe", oneof_index=choice)
    add("at", field.TYPE_MESSAGE, type_name=".google.protobuf.Timestamp")
    add("times", field.TYPE_MESSAGE, field.LABEL_REPEATED, type_name=".google.protobuf.Timestamp")
    add("took", field.TYPE_MESSAGE, type_name=".google.protobuf.Duration")
    add("durations", field.TYPE_MESSAGE, field.LABEL_REPEATED, type_name=".google.protobuf.Duration")
    for name, key, value, value_type in [
        ("labels", field.TYPE_STRING, field.TYPE_INT64, None),
        ("by_id", field.TYPE_INT32, field.TYPE_MESSAGE, ".probe.Probe"),
        ("flags", field.TYPE_BOOL, field.TYPE_ENUM, ".probe.Kind"),
        ("times", field.TYPE_SINT64, field.TYPE_MESSAGE, ".google.protobuf.Timestamp"),
        ("spans", field.TYPE_UINT64, field.TYPE_MESSAGE, ".google.protobuf.Duration"),
        ("blobs", field.TYPE_FIXED32, field.TYPE_BYTES, None),
    ]:
        entry = probe.nested_type.add(name=f"{name.title().replace('_', '')}Entry")
        entry.options.map_entry = True
        entry.field.add(name="key", number=1, type=key, label=field.LABEL_OPTIONAL)
        entry.field.add(name="value", number=2, type=value, label=field.LABEL_OPTIONAL, type_name=value_type)
        add(f"map_{name}", field.TYPE_MESSAGE, field.LABEL_REPEATED, type_name=f".probe.Probe.{entry.name}")
    add("child", field.TYPE_MESSAGE, type_name=".probe.Probe")
    add("children", field.TYPE_MESSAGE, field.LABEL_REPEATED, type_name=".probe.Probe")
    pool = descriptor_pool.DescriptorPool()
    for dependency in (timestamp_pb2, duration_pb2):
        pool.Add(descriptor_pb2.FileDescriptorProto.FromString(dependency.DESCRIPTOR.serialized_pb))
    pool.Add(file)
    return pool.FindMessageTypeByName("probe.Probe")


PROBE = _probe_descriptor()
Kind = enum.IntEnum("Kind", [("ZERO", 0), ("ONE", 1), ("TWO", 2)])
KIND_NAMES = {member.value: member for member in Kind}  # what the plan maps numbers to


class Probe:
    """The dataclass stand-in: attributes only."""

    _unknown_fields = b""


class _ProbeDeclined(Exception):
    pass


def _refuse(value: object) -> Any:
    raise _ProbeDeclined


def _is_map(field: Any) -> bool:
    return field.message_type is not None and field.message_type.GetOptions().map_entry


def _entry_value(field: Any) -> Any:
    """The value field of a map field's entry."""
    return field.message_type.fields_by_name["value"]


def _probe_spec(plan: Any, field: Any, oneof: int) -> tuple[Any, ...]:
    """A field of the probe as a plan takes it (chat_sdk._native builds the same for the schema)."""
    if _is_map(field):
        key, value = (_probe_spec(plan, field.message_type.fields_by_name[p], -1) for p in ("key", "value"))
        return (field.number, _fastwire.MAP, field.name, _fastwire.REPEATED, oneof, (key, value), None, None)
    kind: int = field.type
    sub: Any = None
    if field.message_type is not None:
        wrapped = {"Timestamp": _fastwire.TIMESTAMP, "Duration": _fastwire.DURATION}
        kind = wrapped.get(field.message_type.name, kind)
        sub = plan if field.message_type is PROBE else None
    elif field.enum_type is not None:
        sub = KIND_NAMES
    flags = (_fastwire.REPEATED if field.is_repeated else 0) | (
        _fastwire.PRESENCE if field.has_presence else 0
    )
    empty = None
    if not field.is_repeated and not field.has_presence:
        empty = getattr(GetMessageClass(field.containing_type)(), field.name)
        empty = KIND_NAMES[empty] if field.enum_type is not None else empty
    return (field.number, kind, field.name, flags, oneof, sub, None, empty)


def _probe_plan() -> Any:
    plan = _fastwire.Plan(Probe, _refuse, _refuse)
    real_oneofs = [oneof for oneof in PROBE.oneofs if len(oneof.fields) > 1]
    fields = [
        _probe_spec(
            plan,
            field,
            real_oneofs.index(field.containing_oneof) if field.containing_oneof in real_oneofs else -1,
        )
        for field in PROBE.fields
    ]
    plan.fill(tuple(fields), len(real_oneofs))
    return plan


def _read_value(field: Any, raw: Any) -> Any:
    """One upb value as the dataclass holds it."""
    if field.message_type is PROBE:
        return _expected(raw)
    if field.message_type is not None and field.message_type.name == "Timestamp":
        return _convert.read_timestamp(raw)
    if field.message_type is not None:
        return _convert.read_duration(raw)
    return KIND_NAMES[raw] if field.enum_type is not None else raw


def _expected(message: Message) -> dict[str, Any]:
    """The values a dataclass holds for ``message``: betterproto2's reading of each field."""
    values: dict[str, Any] = {}
    for field in PROBE.fields:
        raw = getattr(message, field.name)
        if _is_map(field):
            entry_value = _entry_value(field)
            values[field.name] = {key: _read_value(entry_value, item) for key, item in raw.items()}
        elif field.is_repeated:
            values[field.name] = [_read_value(field, item) for item in raw]
        elif field.has_presence and not message.HasField(field.name):
            values[field.name] = None
        else:
            values[field.name] = _read_value(field, raw)
    return values


def _read_back(probe: Probe) -> dict[str, Any]:
    """The values of a probe the C code built, nested probes as dicts of values."""
    values = {}
    for field in PROBE.fields:
        value = getattr(probe, field.name)
        nested = field.message_type is PROBE or (_is_map(field) and _entry_value(field).message_type is PROBE)
        if nested and isinstance(value, dict):
            value = {key: _read_back(item) for key, item in value.items()}
        elif nested and isinstance(value, list):
            value = [_read_back(item) for item in value]
        elif nested and value is not None:
            value = _read_back(value)
        values[field.name] = value
    return values


def _standard_value(field: Any, value: Any) -> Any:
    """A dataclass value as upb takes it (the reference encoder)."""
    if field.message_type is PROBE:
        return _standard(value)
    if field.message_type is not None:
        timestamp = field.message_type.name == "Timestamp"
        converted = _convert.timestamp_fields(value) if timestamp else _convert.duration_fields(value)
        return GetMessageClass(field.message_type)(**converted)
    return {v: k for k, v in KIND_NAMES.items()}[value] if field.enum_type is not None else value


def _standard(values: dict[str, Any]) -> Message:
    """The upb message a dataclass holding ``values`` stands for."""
    message = GetMessageClass(PROBE)()
    for field in PROBE.fields:
        value, target = values[field.name], getattr(message, field.name)
        if _is_map(field):
            entry_value = _entry_value(field)
            for key, item in value.items():
                if entry_value.message_type is None:
                    target[key] = _standard_value(entry_value, item)
                else:
                    target[key].CopyFrom(_standard_value(entry_value, item))
        elif field.is_repeated:
            for item in value:
                if field.message_type is None:
                    target.append(_standard_value(field, item))
                else:
                    target.add().CopyFrom(_standard_value(field, item))
        elif value is not None and field.message_type is not None:
            target.CopyFrom(_standard_value(field, value))
        elif value is not None:
            setattr(message, field.name, _standard_value(field, value))
    return message


@settings(max_examples=120, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(messages(PROBE))
def test_every_protobuf_type_is_read_and_written_in_c_as_upb_does(message: Message) -> None:
    plan = _probe_plan()
    data = message.SerializeToString()
    probe = plan.parse(data)  # never declined: _refuse would raise
    read = _read_back(probe)
    assert structure(read) == structure(_expected(message))
    if holds_map_entries(message):  # written by the Python path (upb's entry order)
        with pytest.raises(_ProbeDeclined):
            plan.serialize(probe)
        return
    written = plan.serialize(probe)
    assert written == _standard(read).SerializeToString()


@pytest.mark.parametrize(
    ("nanos", "micros"),
    [
        (500, 0),
        (1500, 2),
        (2500, 2),
        (2501, 3),
        (-500, 0),
        (-1500, -2),
        (-2500, -2),
        (-2501, -3),
        (999_999_500, 1_000_000),
    ],
)
def test_durations_round_to_the_nearest_microsecond_ties_to_even(nanos: int, micros: int) -> None:
    message: Any = GetMessageClass(PROBE)()
    message.took.seconds, message.took.nanos = 7, nanos
    took = _probe_plan().parse(message.SerializeToString()).took
    assert took == datetime.timedelta(seconds=7, microseconds=micros) == _convert.read_duration(message.took)


def test_fields_with_presence_are_written_even_when_zero_and_read_as_none_when_absent() -> None:
    plan = _probe_plan()
    empty = plan.parse(b"")
    assert all(getattr(empty, f"maybe_{name}") is None for name in _TYPES)
    for name in _TYPES:
        standard = GetMessageClass(PROBE)()
        setattr(standard, f"maybe_{name}", GetMessageClass(PROBE)().__getattribute__(f"one_{name}"))
        data = standard.SerializeToString()
        assert data, name  # set, though zero: on the wire
        probe = plan.parse(data)
        assert getattr(probe, f"maybe_{name}") is not None
        assert plan.serialize(probe) == data


def test_two_members_of_a_oneof_on_the_wire_are_declined_for_the_last_one_to_win() -> None:
    first, second = GetMessageClass(PROBE)(choice_text="a"), GetMessageClass(PROBE)(choice_number=-3)
    with pytest.raises(_ProbeDeclined):
        _probe_plan().parse(first.SerializeToString() + second.SerializeToString())
    both = Probe()
    for key, value in _expected(GetMessageClass(PROBE)()).items():
        setattr(both, key, value)
    both.choice_text, both.choice_number = "a", -3  # type: ignore[attr-defined]
    with pytest.raises(_ProbeDeclined):
        _probe_plan().serialize(both)


def test_out_of_range_values_are_declined_to_the_python_path() -> None:
    plan = _probe_plan()
    out_of_range = [
        ("one_int32", 2**31), ("one_uint32", -1), ("one_uint64", 2**64), ("one_int64", -(2**63) - 1),
        ("one_float", 1e39), ("one_bool", 1), ("one_enum", True), ("one_string", "\ud800"),
        ("one_double", 1), ("many_sint32", [2**31]),
    ]  # fmt: skip
    for name, value in out_of_range:
        probe = plan.parse(b"")
        setattr(probe, name, value)
        with pytest.raises(_ProbeDeclined):
            plan.serialize(probe)
    probe = plan.parse(b"")
    probe.one_float = float("inf")
    assert plan.serialize(probe) == GetMessageClass(PROBE)(one_float=float("inf")).SerializeToString()


@pytest.mark.parametrize(
    "took",
    [
        datetime.timedelta(microseconds=-1),
        datetime.timedelta(days=-1, microseconds=1),
        datetime.timedelta(seconds=-1, microseconds=999_999),
        datetime.timedelta(days=-3),
        datetime.timedelta(days=999_999_999),
        datetime.timedelta.min,
    ],
)
def test_durations_are_written_with_seconds_and_nanos_of_one_sign(took: datetime.timedelta) -> None:
    plan = _probe_plan()
    probe = plan.parse(b"")
    probe.took = took
    standard: Any = GetMessageClass(PROBE)()
    standard.took.FromTimedelta(took)  # the protobuf runtime's own conversion
    assert plan.serialize(probe) == standard.SerializeToString()


def test_a_slice_of_the_codec_fuzzer_finds_the_two_paths_agreeing(capsys: pytest.CaptureFixture[str]) -> None:
    """`nox -s fuzz_codec` runs the same loop for minutes; here, 300 seeds of it."""
    assert fuzz_codec.run(budget=float("inf"), seed=1, rounds=300) == 0
    tried, parsed = re.match(r"(\d+) inputs .*, (\d+) parsed", capsys.readouterr().out).groups()  # type: ignore[union-attr]
    assert int(tried) >= 300 * 5 and int(parsed) > 0


def _varint(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    return bytes([*out, value])


@pytest.mark.parametrize(
    ("field", "entry"),
    [
        ("map_labels", b"\x10\x05"),  # no key: the empty string
        ("map_labels", b"\x0a\x01k"),  # no value: zero
        ("map_labels", b"\x0a\x01a\x10\x01\x0a\x01b\x10\x02"),  # key and value twice: the last of each
        ("map_by_id", b"\x08\x07"),  # no value: an empty message, not None
        ("map_times", b"\x08\x02"),  # no value: the epoch
        ("map_flags", b""),  # neither: False, and the enum's zero
    ],
)
def test_map_entries_with_parts_missing_or_repeated_are_read_in_c_as_upb_reads_them(
    field: str, entry: bytes
) -> None:
    """Writers may leave out a default key or value, or repeat one: upb reads them, and so does the C code."""
    data = _varint(PROBE.fields_by_name[field].number << 3 | 2) + _varint(len(entry)) + entry
    probe = _probe_plan().parse(data)  # never declined: _refuse would raise
    assert structure(_read_back(probe)) == structure(_expected(GetMessageClass(PROBE).FromString(data)))


def test_a_map_value_message_sent_in_two_parts_is_declined_for_upb_to_merge() -> None:
    entry = b"\x08\x02" + b"\x12\x02\x08\x05" + b"\x12\x02\x10\x07"  # key 1; value seconds=5, then nanos=7
    data = _varint(PROBE.fields_by_name["map_times"].number << 3 | 2) + _varint(len(entry)) + entry
    merged: Any = GetMessageClass(PROBE).FromString(data)
    assert (merged.map_times[1].seconds, merged.map_times[1].nanos) == (5, 7)  # what the fallback reads
    with pytest.raises(_ProbeDeclined):
        _probe_plan().parse(data)


# Issue 24: the C codec's contract is upb's, and the Python path reads unknown fields as upb does.


def _overlong(value: int, size: int) -> bytes:
    """``value`` as a varint of exactly ``size`` bytes (padded with continuation bytes)."""
    out = bytearray()
    for _ in range(size - 1):
        out.append(value & 0x7F | 0x80)
        value >>= 7
    return bytes([*out, value])


def _tag(name: str, wire_type: int) -> bytes:
    return _varint(PROBE.fields_by_name[name].number << 3 | wire_type)


@pytest.mark.parametrize(
    "data",
    [
        _overlong(PROBE.fields_by_name["one_int32"].number << 3, 6) + b"\x01",  # a 6-byte tag
        _tag("one_string", 2) + _overlong(1, 6) + b"a",  # a 6-byte length
        _tag("child", 2) + _overlong(0, 6),
        _tag("many_int32", 2) + _overlong(1, 6) + b"\x01",  # packed
        _tag("map_labels", 2) + b"\x07" + _overlong(1 << 3 | 2, 6) + b"\x00",  # a tag inside a map entry
        _tag("at", 2) + b"\x07" + _overlong(1 << 3, 6) + b"\x01",  # a tag inside a Timestamp
    ],
)
def test_tags_and_lengths_longer_than_five_bytes_are_declined_for_upb_to_refuse(data: bytes) -> None:
    with pytest.raises(DecodeError):
        GetMessageClass(PROBE).FromString(data)
    with pytest.raises(_ProbeDeclined):
        _probe_plan().parse(data)


def test_tags_and_lengths_of_five_bytes_are_read_in_c_as_upb_reads_them() -> None:
    data = _overlong(PROBE.fields_by_name["one_int32"].number << 3, 5) + b"\x07"
    data += _tag("one_string", 2) + _overlong(2, 5) + b"ab"
    probe = _probe_plan().parse(data)  # never declined: _refuse would raise
    assert structure(_read_back(probe)) == structure(_expected(GetMessageClass(PROBE).FromString(data)))


def test_a_write_past_two_gib_is_declined_for_upb_to_refuse() -> None:
    """upb's encoder refuses lengths past 2 GiB; the C code leaves that to it (the bytes are never copied)."""
    probe = _probe_plan().parse(b"")
    probe.one_bytes = bytes(2**31)  # calloc'd: the pages are never touched
    with pytest.raises(_ProbeDeclined):
        _probe_plan().serialize(probe)


@pytest.mark.parametrize("seconds", [999_999_999 * 86_400 - 1, -999_999_999 * 86_400 + 1])
def test_a_duration_at_the_edge_with_nanos_out_of_range_is_declined_not_an_overflow(seconds: int) -> None:
    message: Any = GetMessageClass(PROBE)()
    message.took.seconds, message.took.nanos = seconds, 2**31 - 1 if seconds > 0 else -(2**31)
    with pytest.raises(_ProbeDeclined):
        _probe_plan().parse(message.SerializeToString())


def test_a_repeated_message_is_held_while_python_code_runs_on_it() -> None:
    """Writing an item runs Python code (its _unknown_fields' __bool__), which may drop it from its list."""
    plan = _probe_plan()
    parent = plan.parse(b"")
    alive_while_written: list[bool] = []

    class Dropping:
        def __bool__(self) -> bool:
            parent.children.clear()  # the list held the only reference to the child
            gc.collect()
            alive_while_written.append(child() is not None)
            return True  # unknown fields: declined, so nothing reads the child afterwards

    item = plan.parse(b"")
    item._unknown_fields = Dropping()
    parent.children = [item]
    child = weakref.ref(item)
    del item
    with pytest.raises(_ProbeDeclined):
        plan.serialize(parent)
    assert alive_while_written == [True]
    assert child() is None  # and released once written


_ALLOCATION_FAILURE = """
import sys, _testcapi
from chat_sdk import _fastwire

class Many:
    _unknown_fields = b""

def refuse(value):
    raise AssertionError("declined")

def varint(value):
    out = bytearray()
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    return bytes([*out, value])

plan = _fastwire.Plan(Many, refuse, refuse)
plan.fill(tuple((n, 9, f"f{n}", 0, (n - 1) // 2, None, None, "") for n in range(1, 19)), 9)
data = b"".join(varint(n << 3 | 2) + b"\\x03abc" for n in range(1, 19, 2))

def parse_twice():
    first = plan.parse(data)  # leaves pointers to its values on the C stack
    held = [first.f1] * 3
    before = sys.getrefcount(first.f1)
    _testcapi.set_nomemory(0, 1)  # the next allocation fails: the 9 oneofs' table
    try:
        plan.parse(data)
    except MemoryError:
        pass
    finally:
        _testcapi.remove_mem_hooks()
    print(before, sys.getrefcount(first.f1), len(held))

parse_twice()
"""


def test_a_failed_allocation_in_parse_releases_nothing_it_did_not_take() -> None:
    """Past 8 oneofs their table is allocated; if that fails, the value slots are still empty."""
    pytest.importorskip("_testcapi")
    run = subprocess.run(
        [sys.executable, "-c", _ALLOCATION_FAILURE],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
        check=False,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    before, after, _ = run.stdout.split()
    assert before == after


def test_a_plan_is_built_once() -> None:
    """Parses and writes read a plan without holding its parts: refilling one in use would free them."""
    plan = _probe_plan()
    with pytest.raises(RuntimeError, match="already filled"):
        plan.fill((), 0)
    with pytest.raises(RuntimeError, match="initialised once"):
        plan.__init__(Probe, _refuse, _refuse)
    message: Any = GetMessageClass(PROBE)(one_string="still planned")
    assert plan.parse(message.SerializeToString()).one_string == "still planned"


def test_a_sanitized_slice_of_the_codec_fuzzer_finds_no_memory_error_and_no_disagreement() -> None:
    """`nox -s fuzz_codec -- --sanitize` for minutes; here, 6 s of it (AddressSanitizer and UBSan)."""
    if shutil.which("gcc") is None:
        pytest.skip("no gcc to build the sanitized C codec")
    run = subprocess.run(
        [sys.executable, "-m", "compat_tests.fuzz_codec", "--sanitize", "--budget", "6", "--seed", "24"],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
        cwd=Path(__file__).parent.parent,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-4000:]
    assert "sanitized C codec and the Python path agree" in run.stdout
