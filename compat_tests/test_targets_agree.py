"""The two SDK targets agree: random messages survive a trip through the dataclass target.

For every message type of every release (as the current SDK defines it), hypothesis
draws messages from strategies derived from the descriptors (``strategies.py``):
standard target → bytes → dataclass target → bytes → standard target must give an
equal message, and the same through ProtoJSON. Where betterproto2 0.10 is known to
differ, the comparison allows exactly that difference, and a test below asserts the
difference still exists, with its upstream issue, so a fix upstream shows up here.
"""

from __future__ import annotations

import datetime
from typing import cast

import pytest
from google.protobuf import duration_pb2, json_format
from google.protobuf.descriptor import Descriptor
from google.protobuf.message import DecodeError, Message
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import chat_sdk.schema
from chat.v1 import ai_service_pb2, message_service_pb2, plugin_service_pb2
from chat_sdk import v1
from compat_tests.current import (
    _well_known,
    dataclass_class,
    dataclass_mangles_duration,
    has_negative_duration,
    standard_class,
    truncate_to_microseconds,
    without_durations,
)
from compat_tests.releases import release_pool, release_versions
from compat_tests.strategies import messages
from registry.fixtures import chat_messages

DURATION = "google.protobuf.Duration"
EXAMPLES = settings(
    max_examples=15,
    deadline=None,
    derandomize=True,  # the same examples on every run: CI stays reproducible
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def _cells() -> list[tuple[str, str]]:
    from google.protobuf import descriptor_pb2

    from compat_tests.releases import RELEASES

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


def _expected(message: Message) -> Message:
    """What the dataclass target can carry: whole microseconds (see sdk/python/README.md).

    Timestamps lose their sub-microsecond nanoseconds; Durations are rounded to the
    nearest microsecond, ties to even, as ``datetime.timedelta`` rounds.
    """
    expected = truncate_to_microseconds(message)
    for original, duration in zip(
        _well_known(message, DURATION), _well_known(expected, DURATION), strict=True
    ):
        seconds: int = original.seconds  # type: ignore[attr-defined]
        nanos: int = original.nanos  # type: ignore[attr-defined]
        duration.FromMicroseconds(seconds * 1_000_000 + round(nanos / 1000))  # type: ignore[attr-defined]
    return expected


def _comparable(message: Message, original: Message) -> Message:
    # Known difference: negative and huge Durations go through float arithmetic in
    # betterproto2 0.10 (no upstream issue found); they are compared without durations.
    compared = without_durations(message) if dataclass_mangles_duration(original) else message
    # Known difference: the dataclass target treats -0.0 as the default and drops it.
    return _positive_zeros(compared)


def _positive_zeros(message: Message) -> Message:
    """A copy of ``message`` whose float and double fields hold +0.0 wherever they held -0.0."""
    copy = type(message)()
    copy.CopyFrom(message)
    _fix_zeros(copy)
    return copy


def _fix_zeros(message: Message) -> None:
    for field, value in message.ListFields():
        if field.message_type is not None:
            if field.message_type.GetOptions().map_entry:
                if field.message_type.fields_by_name["value"].message_type is not None:
                    for item in value.values():
                        _fix_zeros(item)
                else:
                    for key, item in list(value.items()):
                        if isinstance(item, float) and item == 0.0:
                            value[key] = 0.0
            else:
                for item in value if field.is_repeated else [value]:
                    _fix_zeros(item)
        elif field.cpp_type in (field.CPPTYPE_FLOAT, field.CPPTYPE_DOUBLE):
            if field.is_repeated:
                value[:] = [0.0 if v == 0.0 else v for v in value]
            elif value == 0.0:
                message.ClearField(field.name)


@pytest.mark.compat("targets agree")
@pytest.mark.parametrize(("release", "name"), CELLS, ids=[f"{r}:{n}" for r, n in CELLS])
def test_binary_survives_the_dataclass_target(release: str, name: str) -> None:
    standard, dataclass = standard_class(name), dataclass_class(name)

    @EXAMPLES
    @given(messages(cast(Descriptor, standard.DESCRIPTOR)))
    def agree(message: Message) -> None:
        through = standard.FromString(bytes(dataclass.parse(message.SerializeToString())))
        assert _comparable(through, message) == _comparable(_expected(message), message)

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
        assert _comparable(through, message) == _comparable(_expected(message), message)

    agree()


# The known differences, each asserted so that an upstream fix is noticed.


def test_known_difference_negative_zero_is_dropped() -> None:
    """-0.0 is not proto3's default (its bits differ), but the dataclass target drops it."""
    written = ai_service_pb2.Citation(score=-0.0).SerializeToString()
    assert written  # the canonical encoder writes it
    assert bytes(v1.Citation.parse(written)) == b""


def test_known_difference_timestamp_nanoseconds_are_truncated_to_microseconds() -> None:
    """betterproto2 maps Timestamp to ``datetime``, which has microseconds only."""
    message = message_service_pb2.Message(id="m")
    message.created_at.FromNanoseconds(1_700_000_000_123_456_789)
    through = message_service_pb2.Message.FromString(bytes(v1.Message.parse(message.SerializeToString())))
    assert through.created_at.nanos == 123_456_000


def test_known_difference_a_second_oneof_member_does_not_clear_the_first() -> None:
    """https://github.com/betterproto/python-betterproto2/issues/172 (carried over from betterproto)."""
    request = v1.ChatStreamRequest(join=v1.ChatJoin(conversation_id="c", user_id="u"))
    request.leave = v1.ChatLeave(conversation_id="c")
    assert request.join is not None  # still set beside leave
    on_the_wire = message_service_pb2.ChatStreamRequest.FromString(bytes(request))
    assert on_the_wire.WhichOneof("event") == "leave"  # the standard runtime keeps the last one written
    written = bytes(request)
    assert written[0] == (1 << 3 | 2) and (4 << 3 | 2) in written  # join (field 1) and leave (4) both sent


def test_known_difference_truncated_bytes_parse_without_an_error() -> None:
    """The dataclass parser accepts what the protobuf runtime rejects: validate input with `_pb2`."""
    whole = message_service_pb2.GetMessageRequest(message_id="m" * 40, include_user=True).SerializeToString()
    with pytest.raises(DecodeError):
        message_service_pb2.GetMessageRequest.FromString(whole[:10])
    v1.GetMessageRequest.parse(whole[:10])  # no error


def test_known_difference_fieldmask_json_cannot_reach_this_schema() -> None:
    """https://github.com/betterproto/python-betterproto2/issues/181: FieldMask ProtoJSON is not canonical.

    The schema uses no FieldMask, so the difference cannot reach SDK users; this
    fails the day one is added, as a reminder to test its JSON across both targets.
    """
    used = {
        field.type_name
        for file in chat_sdk.schema.file_descriptor_set().file
        if not file.package.startswith("google.")
        for message in file.message_type
        for field in message.field
    }
    assert ".google.protobuf.FieldMask" not in used


def test_known_difference_negative_durations_are_re_encoded_wrongly() -> None:
    """Decoding is right, but re-encoding a negative timedelta gives nanos the wrong sign.

    No upstream issue found. The schema's durations (plugin timeouts, elapsed times)
    are positive, so SDK users never meet it; sdk/python/README.md says so.
    """
    timeout = duration_pb2.Duration(seconds=-2, nanos=-500_000_000)
    request = plugin_service_pb2.InvokePluginRequest(plugin_name="p", timeout=timeout)
    decoded = v1.InvokePluginRequest.parse(request.SerializeToString())
    assert decoded.timeout == datetime.timedelta(seconds=-2.5)
    through = plugin_service_pb2.InvokePluginRequest.FromString(bytes(decoded))
    assert (through.timeout.seconds, through.timeout.nanos) == (-2, 500_000_000)
    with pytest.raises(ValueError, match="Invalid duration string"):
        v1.InvokePluginRequest.from_json(json_format.MessageToJson(request))


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
