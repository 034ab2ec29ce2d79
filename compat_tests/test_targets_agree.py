"""The two SDK targets agree: random messages survive a trip through the dataclass target.

For every message type of every release (as the current SDK defines it), hypothesis
draws messages from strategies derived from the descriptors (``strategies.py``):
standard target → bytes → dataclass target → bytes → standard target must give an
equal message, and the same through ProtoJSON. Binary goes through upb
(``chat_sdk._wire``) and loses only what ``datetime`` and ``timedelta`` cannot hold
(sub-microsecond nanoseconds); ProtoJSON is betterproto2's own, and where it is known
to differ the comparison allows exactly that difference, and a test below asserts the
difference still exists, with its upstream issue, so a fix upstream shows up here.
"""

from __future__ import annotations

import datetime
from typing import cast

import pytest
from google.protobuf import (
    any_pb2,
    descriptor_pb2,
    duration_pb2,
    empty_pb2,
    field_mask_pb2,
    json_format,
    struct_pb2,
    timestamp_pb2,
    wrappers_pb2,
)
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import chat_sdk.schema
from chat.v1 import message_service_pb2, plugin_service_pb2, rag_service_pb2
from chat_sdk import v1
from compat_tests.current import (
    as_the_dataclass_carries,
    dataclass_class,
    dataclass_mangles_duration,
    has_negative_duration,
    standard_class,
    walk,
    well_known,
    without_durations,
)
from compat_tests.releases import RELEASES, release_pool, release_versions
from compat_tests.strategies import FLOAT32_MAX, messages
from registry.fixtures import chat_messages

DURATION = "google.protobuf.Duration"
JSON_DURATION_LIMIT_SECONDS = 2**32  # about 136 years: the dataclass JSON parser is within 1 µs below it
EXAMPLES = settings(
    max_examples=25,
    deadline=None,
    derandomize=True,  # the same examples on every run: CI stays reproducible
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def _cells() -> list[tuple[str, str]]:
    """(release, message) for every chat message of every release, checked with the current SDK."""
    cells = []
    for release in release_versions():
        image = descriptor_pb2.FileDescriptorSet.FromString(
            (RELEASES / release / "schema.binpb").read_bytes()
        )
        cells += [
            (release, descriptor.full_name) for descriptor in chat_messages(image, release_pool(release))
        ]
    return cells


CELLS = _cells()


def _comparable(message: Message, original: Message) -> Message:
    # Known differences of betterproto2's ProtoJSON: negative and huge Durations go through
    # float arithmetic (no upstream issue found), so they are compared without durations,
    # and a singular -0.0 is dropped as if it were the default.
    compared = without_durations(message) if dataclass_mangles_duration(original) else message
    return _positive_zeros(compared)


def _positive_zeros(message: Message) -> Message:
    """A copy of ``message`` whose singular float and double fields hold +0.0 wherever they held -0.0."""
    copy = type(message)()
    copy.CopyFrom(message)
    _fix_zeros(copy)
    return copy


_FLOATS = (FieldDescriptor.CPPTYPE_FLOAT, FieldDescriptor.CPPTYPE_DOUBLE)


def _fix_zeros(message: Message) -> None:
    # Singular fields only: in repeated fields the dataclass target keeps -0.0, and must.
    for found in walk(message):
        for field, value in found.ListFields():
            if field.cpp_type in _FLOATS and not field.is_repeated and value == 0.0:
                found.ClearField(field.name)


def _json_durations_close(through: Message, original: Message) -> bool:
    """Every Duration within a microsecond of the original, as the dataclass ProtoJSON parser reads them.

    Known difference: it parses ``"1.000001500s"`` through a float, so it can land on
    the microsecond next to the nearest one (no upstream issue found); beyond
    ``JSON_DURATION_LIMIT_SECONDS`` the float is coarser still and no bound is checked.
    """
    got = sorted(_nanoseconds(duration) for duration in well_known(through, DURATION))
    want = sorted(_nanoseconds(duration) for duration in well_known(original, DURATION))
    if any(abs(nanos) >= JSON_DURATION_LIMIT_SECONDS * 10**9 for nanos in want):
        return len(got) == len(want)
    return len(got) == len(want) and all(abs(g - w) < 1000 for g, w in zip(got, want, strict=True))


def _nanoseconds(duration: Message) -> int:
    nanos: int = duration.ToNanoseconds()  # type: ignore[attr-defined]
    return nanos


@pytest.mark.compat("targets agree")
@pytest.mark.parametrize(("release", "name"), CELLS, ids=[f"{r}:{n}" for r, n in CELLS])
def test_binary_survives_the_dataclass_target(release: str, name: str) -> None:
    standard, dataclass = standard_class(name), dataclass_class(name)

    @EXAMPLES
    @given(messages(cast(Descriptor, standard.DESCRIPTOR)))
    def agree(message: Message) -> None:
        through = standard.FromString(bytes(dataclass.parse(message.SerializeToString())))
        assert through == as_the_dataclass_carries(message)

    agree()


@pytest.mark.compat("targets agree")
@pytest.mark.parametrize(("release", "name"), CELLS, ids=[f"{r}:{n}" for r, n in CELLS])
def test_protojson_survives_the_dataclass_target(release: str, name: str) -> None:
    standard, dataclass = standard_class(name), dataclass_class(name)

    @EXAMPLES
    @given(messages(cast(Descriptor, standard.DESCRIPTOR)))
    def agree(message: Message) -> None:
        if has_negative_duration(message):
            message = without_durations(message)  # the dataclass JSON parser refuses "-1.5s"
        text = json_format.MessageToJson(message)
        through = json_format.Parse(dataclass.from_json(text).to_json(), standard())
        expected = without_durations(as_the_dataclass_carries(message))
        assert _comparable(without_durations(through), message) == _comparable(expected, message)
        if not dataclass_mangles_duration(message):
            assert _json_durations_close(through, message)

    agree()


# The known differences, each asserted so that an upstream fix is noticed.


def test_known_difference_timestamp_nanoseconds_are_truncated_to_microseconds() -> None:
    """betterproto2 maps Timestamp to ``datetime``, which has microseconds only."""
    message = message_service_pb2.Message(id="m")
    message.created_at.FromNanoseconds(1_700_000_000_123_456_789)
    through = message_service_pb2.Message.FromString(bytes(v1.Message.parse(message.SerializeToString())))
    assert through.created_at.nanos == 123_456_000


def test_known_difference_fieldmask_json_is_not_canonical() -> None:
    """https://github.com/betterproto/python-betterproto2/issues/181: FieldMask ProtoJSON is not canonical.

    The SDK ships no FieldMask (the schema uses none), so this asserts the difference
    on the FieldMask that betterproto2's compiler generates for itself, from the same
    templates the SDK's classes come from.
    """
    compiled = pytest.importorskip("betterproto2_compiler.lib.google.protobuf")
    paths = ["user.display_name", "photo"]
    canonical = json_format.MessageToJson(field_mask_pb2.FieldMask(paths=paths))
    assert canonical == '"user.displayName,photo"'
    assert compiled.FieldMask(paths=paths).to_dict() == {"paths": paths}  # a plain message instead


def test_the_schema_uses_no_fieldmask() -> None:
    """Fails the day a FieldMask field is added: its JSON then differs between the targets (above)."""
    pending = chat_messages(chat_sdk.schema.file_descriptor_set(), chat_sdk.schema.descriptor_pool())
    seen: set[str] = set()
    while pending:
        descriptor = pending.pop()
        if descriptor.full_name in seen:
            continue
        seen.add(descriptor.full_name)
        assert descriptor.full_name != "google.protobuf.FieldMask", "see issue 181 above"
        pending += [field.message_type for field in descriptor.fields if field.message_type is not None]


def test_known_difference_negative_durations_are_refused_in_protojson() -> None:
    """The dataclass ProtoJSON parser accepts unsigned durations only; binary carries them exactly.

    No upstream issue found. The schema's durations (plugin timeouts, elapsed times)
    are positive, so SDK users never meet it; sdk/python/README.md says so.
    """
    timeout = duration_pb2.Duration(seconds=-2, nanos=-500_000_000)
    request = plugin_service_pb2.InvokePluginRequest(plugin_name="p", timeout=timeout)
    decoded = v1.InvokePluginRequest.parse(request.SerializeToString())
    assert decoded.timeout == datetime.timedelta(seconds=-2.5)
    assert bytes(decoded) == request.SerializeToString()
    with pytest.raises(ValueError, match="Invalid duration string"):
        v1.InvokePluginRequest.from_json(json_format.MessageToJson(request))


def test_known_difference_protojson_durations_are_read_through_a_float() -> None:
    """The dataclass target parses a ProtoJSON Duration as a float; binary rounds to the nearest µs.

    No upstream issue found; recorded in sdk/python/README.md.
    """
    standard = plugin_service_pb2.InvokePluginResponse
    # (the Duration, binary: nearest microsecond with ties to even, ProtoJSON: where the float lands)
    for nanos, nearest, via_float in [
        (1_000_001_500, 1_000_002_000, 1_000_001_000),  # "1.000001500s": a tie
        (67_108_864_000_297_495, 67_108_864_000_297_000, 67_108_864_000_298_000),  # below the tie
    ]:
        response = standard()
        response.elapsed.FromNanoseconds(nanos)
        via_binary = standard.FromString(bytes(v1.InvokePluginResponse.parse(response.SerializeToString())))
        text = v1.InvokePluginResponse.from_json(json_format.MessageToJson(response)).to_json()
        via_json = json_format.Parse(text, standard())
        assert (via_binary.elapsed.ToNanoseconds(), via_json.elapsed.ToNanoseconds()) == (nearest, via_float)


@settings(max_examples=30, deadline=None, derandomize=True)
@given(st.integers(0, 2**53 - 1))
def test_positive_durations_below_the_limit_are_exact(micros: int) -> None:
    """The range the schema uses is carried exactly (in whole microseconds)."""
    request = plugin_service_pb2.InvokePluginRequest(plugin_name="p")
    request.timeout.FromMicroseconds(micros)
    through = plugin_service_pb2.InvokePluginRequest.FromString(
        bytes(v1.InvokePluginRequest.parse(request.SerializeToString()))
    )
    assert through.timeout.ToMicroseconds() == micros


def test_known_difference_durations_are_rounded_to_microseconds_ties_to_even() -> None:
    """As ``datetime.timedelta`` rounds; Timestamps, by contrast, are truncated."""
    for nanos, micros in [(1_500, 2), (2_500, 2), (500, 0), (999_999_999, 1_000_000)]:
        request = plugin_service_pb2.InvokePluginRequest(plugin_name="p")
        request.timeout.nanos = nanos
        through = plugin_service_pb2.InvokePluginRequest.FromString(
            bytes(v1.InvokePluginRequest.parse(request.SerializeToString()))
        )
        assert through.timeout.ToMicroseconds() == micros, nanos


def test_unknown_fields_and_enum_values_survive_the_dataclass_target() -> None:
    """What a newer schema adds passes through an SDK that does not know it (README: kept)."""
    presence = message_service_pb2.ChatPresence(conversation_id="c", state=77)  # type: ignore[arg-type]
    written = presence.SerializeToString() + b"\xf8\x07\x05"  # + unknown field 127, varint 5
    assert bytes(v1.ChatPresence.parse(written)) == written
    text = json_format.MessageToJson(presence)
    assert json_format.Parse(v1.ChatPresence.from_json(text).to_json(), type(presence)()) == presence


def test_float32_max_is_left_out_because_protobuf_json_refuses_it() -> None:
    """https://github.com/protocolbuffers/protobuf/issues/8336: why the strategies skip ±FLT_MAX.

    Not a difference between the targets: in binary both carry it exactly.
    """
    vector = rag_service_pb2.Vector(values=[FLOAT32_MAX, -FLOAT32_MAX])
    with pytest.raises(json_format.ParseError, match="Float value too large"):
        json_format.Parse(json_format.MessageToJson(vector), rag_service_pb2.Vector())
    written = vector.SerializeToString()
    assert bytes(v1.Vector.parse(written)) == written


# The strategies of well-known types the schema does not use yet: valid for the standard target.
WELL_KNOWN: list[type[Message]] = [
    timestamp_pb2.Timestamp,
    duration_pb2.Duration,
    field_mask_pb2.FieldMask,
    struct_pb2.Struct,
    struct_pb2.Value,
    struct_pb2.ListValue,
    empty_pb2.Empty,
    wrappers_pb2.DoubleValue,
    wrappers_pb2.FloatValue,
    wrappers_pb2.Int64Value,
    wrappers_pb2.UInt64Value,
    wrappers_pb2.Int32Value,
    wrappers_pb2.UInt32Value,
    wrappers_pb2.BoolValue,
    wrappers_pb2.StringValue,
    wrappers_pb2.BytesValue,
]


@pytest.mark.parametrize("cls", WELL_KNOWN, ids=[cls.DESCRIPTOR.full_name for cls in WELL_KNOWN])
def test_well_known_strategies_draw_valid_messages(cls: type[Message]) -> None:
    @EXAMPLES
    @given(messages(cast(Descriptor, cls.DESCRIPTOR)))
    def valid(message: Message) -> None:
        assert cls.FromString(message.SerializeToString()) == message
        assert json_format.Parse(json_format.MessageToJson(message), cls()) == message

    valid()


def test_any_has_no_strategy_until_someone_decides_what_it_carries() -> None:
    with pytest.raises(NotImplementedError, match=r"google\.protobuf\.Any"):
        messages(any_pb2.Any.DESCRIPTOR)
