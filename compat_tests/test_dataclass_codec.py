"""The dataclass target's codec (C, then upb underneath, ``chat_sdk._wire``) agrees with betterproto2's own.

For random messages of every type of the current schema: ``Message.parse`` gives a
dataclass equal to betterproto2's pure-Python parse of the same bytes, and ``bytes()``
gives exactly the bytes of the standard target (betterproto2's own encoder differs in
the places the tests below name). Unknown fields and enum values survive both ways.
"""

from __future__ import annotations

import dataclasses
import datetime
import gc
import pickle
import tracemalloc
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any, cast

import betterproto2
import pytest
from google.protobuf import descriptor_pb2, descriptor_pool, duration_pb2, timestamp_pb2
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import DecodeError, Message
from google.protobuf.unknown_fields import UnknownFieldSet
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import chat_sdk.schema
from chat.v1 import ai_service_pb2, common_pb2, message_service_pb2, plugin_service_pb2
from chat_sdk import FastCodec, _convert, _native, _wire, v1
from chat_sdk._generated.chat import v1 as generated_v1
from compat_tests.codec_differential import HandOvers, holds_map_entries, upb_disagreement
from compat_tests.current import (
    as_the_dataclass_carries,
    dataclass_class,
    dataclass_mangles_duration,
    standard_class,
)
from compat_tests.strategies import messages
from compat_tests.test_targets_agree import _positive_zeros
from registry.fixtures import chat_messages

EXAMPLES = settings(
    max_examples=15,  # 50 message types: about a minute on 2 cores
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
NAMES = [
    descriptor.full_name
    for descriptor in chat_messages(chat_sdk.schema.file_descriptor_set(), chat_sdk.schema.descriptor_pool())
]


@dataclasses.dataclass
class Codec(HandOvers):
    """Which codec a test runs on (``mode``: "c" or "python"), and what the C codec handed over."""

    mode: str = "c"


@pytest.fixture(autouse=True, params=["c", "python"])
def fresh_codec(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Codec]:
    """Each test installs the codec and builds its converters and plans anew, as a fresh process would.

    The codec caches what it builds per class for the life of the process; without this,
    whatever ran first would be what every later test exercises. Every test runs twice:
    with the C codec in front (as shipped), and with the Python path over upb alone (a
    pure-Python wheel, and whatever the C code declines).
    """
    codec = Codec(mode=request.param)
    caches = (_wire.PARSERS, _wire.SERIALIZERS, _wire.UPB_PARSERS, _wire.UPB_SERIALIZERS)
    for built in (
        *caches,
        _convert.READERS,
        _convert.READERS_KEEPING_UNKNOWN,
        _convert.WRITERS,
        _convert.FIELDS,
    ):
        built.clear()
    if codec.mode == "python":
        monkeypatch.setattr(_native, "_fastwire", None)  # as in a wheel built without it
    elif not _native.AVAILABLE:
        pytest.skip("no C codec in this build (CHAT_SDK_PURE_PYTHON=1)")
    monkeypatch.setattr(_wire, "PLANS", codec.plans())
    for cls in vars(generated_v1).values():
        for method in ("parse", "FromString", "__bytes__", "SerializeToString"):
            if isinstance(cls, type) and method in vars(cls):
                delattr(cls, method)
    _wire.install(vars(generated_v1).values())
    yield codec
    for built in (_wire.PARSERS, _wire.SERIALIZERS):  # later tests start from the shipped codec
        built.clear()


@pytest.mark.parametrize("name", NAMES)
def test_the_codec_parses_like_betterproto2_and_encodes_like_upb(name: str, fresh_codec: Codec) -> None:
    standard, dataclass = standard_class(name), dataclass_class(name)

    @EXAMPLES
    @given(messages(cast(Descriptor, standard.DESCRIPTOR)))
    def agree(message: Message) -> None:
        data = message.SerializeToString()
        reference = _wire.betterproto2_parse(dataclass, data)
        fresh_codec.classes.clear()
        parsed = dataclass.parse(data)
        assert fresh_codec.classes == []  # canonical bytes: all in C (or all in Python)
        assert type(parsed) is dataclass
        assert parsed == reference
        assert dataclass.FromString(data) == reference
        written = bytes(parsed)
        # Only a map with entries goes to the Python path: upb alone knows its order.
        with_map = fresh_codec.mode == "c" and holds_map_entries(message)
        assert fresh_codec.classes == ([dataclass] if with_map else [])
        assert written == parsed.SerializeToString()
        # The writer kept for messages with nested unknown fields writes the same message.
        by_fields = standard()
        _convert.WRITERS[dataclass](parsed, by_fields)
        assert standard.FromString(written) == by_fields
        assert standard.FromString(written) == as_the_dataclass_carries(
            message
        )  # whole microseconds, nothing else lost
        if dataclass_mangles_duration(message):
            return  # betterproto2's encoder gets negative and huge Durations wrong (tests below)
        # betterproto2's own encoder drops a singular -0.0; otherwise it means the same.
        assert _positive_zeros(standard.FromString(written)) == _positive_zeros(
            standard.FromString(_wire.betterproto2_bytes(reference))
        )

    agree()


def test_every_schema_dataclass_has_the_upb_codec() -> None:
    for name in NAMES:
        dataclass = dataclass_class(name)
        assert dataclass.__dict__["parse"].__func__ is _wire._parse, name
        assert dataclass.__dict__["__bytes__"] is _wire._bytes, name


def test_each_class_is_served_by_the_c_codec_when_built_else_by_the_python_path(fresh_codec: Codec) -> None:
    for name in NAMES:
        dataclass = dataclass_class(name)
        if fresh_codec.mode == "c":
            plan = _wire.PLANS[dataclass]
            assert (_wire.PARSERS[dataclass], _wire.SERIALIZERS[dataclass]) == (plan.parse, plan.serialize)
        else:
            assert _wire.PARSERS[dataclass] is _wire.UPB_PARSERS[dataclass], name
            assert _wire.SERIALIZERS[dataclass] is _wire.UPB_SERIALIZERS[dataclass], name


def test_unknown_fields_survive_at_the_top_and_nested() -> None:
    unknown_field = b"\xf8\x06\x07"  # field 111, varint 7: from a newer schema
    request = message_service_pb2.GetMessageRequest(message_id="m-1", include_user=True)
    data = request.SerializeToString() + unknown_field
    parsed = v1.GetMessageRequest.parse(data)
    assert parsed == v1.GetMessageRequest(message_id="m-1", include_user=True)
    assert bytes(parsed) == data

    # GetMessageResponse{message: Message{id, author: User{display_name, <unknown>}}}, by hand.
    inner = common_pb2.User(display_name="Ada").SerializeToString() + unknown_field
    message = (
        message_service_pb2.Message(id="m-1").SerializeToString() + b"\x2a" + bytes([len(inner)]) + inner
    )
    response = b"\x0a" + bytes([len(message)]) + message
    parsed_response = v1.GetMessageResponse.parse(response)
    assert parsed_response.message is not None and parsed_response.message.author is not None
    assert parsed_response.message.author.display_name == "Ada"
    assert bytes(parsed_response) == response


def test_unknown_enum_values_are_kept() -> None:
    presence = message_service_pb2.ChatPresence(conversation_id="c", state=77)  # type: ignore[arg-type]
    parsed = v1.ChatPresence.parse(presence.SerializeToString())
    assert parsed.state == 77
    assert bytes(parsed) == presence.SerializeToString()


def test_invalid_bytes_raise_a_decode_error_betterproto2_would_swallow() -> None:
    whole = message_service_pb2.GetMessageRequest(message_id="m" * 40, include_user=True).SerializeToString()
    _wire.betterproto2_parse(v1.GetMessageRequest, whole[:10])  # betterproto2: no error
    for error in (ValueError, DecodeError):
        with pytest.raises(error, match="not a valid GetMessageRequest"):
            v1.GetMessageRequest.parse(whole[:10])


def test_a_singular_negative_zero_is_kept() -> None:
    written = ai_service_pb2.Citation(score=-0.0).SerializeToString()
    assert written
    assert bytes(v1.Citation.parse(written)) == written
    assert _wire.betterproto2_bytes(v1.Citation(score=-0.0)) == b""  # betterproto2 dropped it


@pytest.mark.parametrize(
    ("seconds", "nanos"),
    [
        (-2, -500_000_000),
        (0, -1000),
        (-1, 0),
        (315_576_000_000, 999_999_000),
        (-315_576_000_000, -999_999_000),
    ],
)
def test_durations_are_written_exactly_whatever_their_sign_and_size(seconds: int, nanos: int) -> None:
    timeout = duration_pb2.Duration(seconds=seconds, nanos=nanos)
    request = plugin_service_pb2.InvokePluginRequest(plugin_name="p", timeout=timeout)
    decoded = v1.InvokePluginRequest.parse(request.SerializeToString())
    assert decoded.timeout == datetime.timedelta(seconds=seconds, microseconds=nanos // 1000)
    assert bytes(decoded) == request.SerializeToString()
    # Repeated and map Durations (none in the schema yet) go through the same arithmetic.
    assert _convert.read_duration(timeout) == decoded.timeout


@settings(max_examples=300, deadline=None, derandomize=True)
@given(
    seconds=st.one_of(
        st.integers(0, 2**31 - 1),  # the float fast path
        st.sampled_from([0, 1, 2**31 - 2, 2**31 - 1, 2**31, 2**31 + 1, -1]),  # its edges
        st.integers(-62_135_596_800, 253_402_300_799),  # every Timestamp datetime can hold
    ),
    nanos=st.integers(0, 999_999_999),
)
def test_timestamps_read_exactly_as_betterproto2_truncates_them(seconds: int, nanos: int) -> None:
    message = message_service_pb2.Message(id="m")
    message.created_at.seconds, message.created_at.nanos = seconds, nanos
    read = v1.Message.parse(message.SerializeToString()).created_at
    exact = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC) + datetime.timedelta(
        seconds=seconds, microseconds=nanos // 1000
    )
    assert read == exact
    assert read is not None and read.utcoffset() == datetime.timedelta(0)
    page = v1.ListMessagesResponse.parse(
        message_service_pb2.ListMessagesResponse(messages=[message]).SerializeToString()
    )
    assert page.messages[0].created_at == exact
    # Repeated and map Timestamps (none in the schema yet) go through the same arithmetic.
    assert _convert.read_timestamp(timestamp_pb2.Timestamp(seconds=seconds, nanos=nanos)) == exact


def test_zero_timestamps_and_durations_are_still_sent() -> None:
    epoch = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)
    message = message_service_pb2.Message.FromString(bytes(v1.Message(id="m", created_at=epoch)))
    assert message.HasField("created_at")
    request = plugin_service_pb2.InvokePluginRequest.FromString(
        bytes(v1.InvokePluginRequest(plugin_name="p", timeout=datetime.timedelta(0)))
    )
    assert request.HasField("timeout")


def test_a_naive_datetime_is_refused_as_betterproto2_refuses_it() -> None:
    naive = v1.Message(id="m", created_at=datetime.datetime(2026, 1, 1))
    with pytest.raises(ValueError, match=r"^datetime must be timezone aware$"):
        bytes(naive)
    with pytest.raises(ValueError, match=r"^datetime must be timezone aware$"):  # the field-by-field writer
        _convert.WRITERS[v1.Message](naive, message_service_pb2.Message())


def test_a_message_field_sent_in_two_parts_is_merged_as_protobuf_merges_it() -> None:
    """A non-canonical input (concatenated encodings) reads as the protobuf runtime reads it."""
    first = message_service_pb2.Message(id="m", author=common_pb2.User(display_name="Ada"))
    second = message_service_pb2.Message(author=common_pb2.User(user_id="u-1"))
    data = first.SerializeToString() + second.SerializeToString()
    merged = v1.Message.parse(data)
    assert merged.author == v1.User(user_id="u-1", display_name="Ada")
    assert bytes(merged) == message_service_pb2.Message.FromString(data).SerializeToString()


def test_subclasses_and_classes_outside_the_schema_keep_betterproto2s_codec() -> None:
    class Request(v1.GetMessageRequest):
        """A subclass: not a message of the schema, so neither installed nor built for."""

    _wire.install([Request])
    assert "parse" not in vars(Request)
    request = Request(message_id="m-1", include_user=True)
    data = bytes(request)  # the inherited method, which hands over to betterproto2
    assert (
        data == message_service_pb2.GetMessageRequest(message_id="m-1", include_user=True).SerializeToString()
    )
    parsed = Request.parse(data)
    assert type(parsed) is Request
    assert (parsed.message_id, parsed.include_user) == ("m-1", True)


def test_two_members_of_one_oneof_are_refused_not_both_sent() -> None:
    """betterproto2 does not clear the first member (its issue 172) and sent both; the codec says so."""
    request = v1.ChatStreamRequest(join=v1.ChatJoin(conversation_id="c", user_id="u"))
    request.leave = v1.ChatLeave(conversation_id="c")
    with pytest.raises(ValueError, match="more than one member of oneof"):
        bytes(request)
    with pytest.raises(ValueError, match="more than one member of oneof"):  # the field-by-field writer
        _convert.WRITERS[v1.ChatStreamRequest](request, message_service_pb2.ChatStreamRequest())
    request.join = None
    assert message_service_pb2.ChatStreamRequest.FromString(bytes(request)).WhichOneof("event") == "leave"


def test_pickling_and_grpclib_codecs_take_the_same_path() -> None:
    message = v1.GetMessageRequest(message_id="m-1", include_user=True)
    assert pickle.loads(pickle.dumps(message)) == message
    codec = FastCodec()
    data = codec.encode(message, v1.GetMessageRequest)
    assert (
        data == message_service_pb2.GetMessageRequest(message_id="m-1", include_user=True).SerializeToString()
    )
    assert codec.decode(data, v1.GetMessageRequest) == message
    standard = message_service_pb2.GetMessageRequest(message_id="m-1")
    assert codec.decode(codec.encode(standard, type(standard)), type(standard)) == standard
    with pytest.raises(TypeError):
        codec.encode(message, v1.ListMessagesRequest)


def test_every_oneof_of_two_or_more_members_is_checked_and_named() -> None:
    """On a message the schema lacks: a one-member oneof, then two oneofs of two members each."""
    file = descriptor_pb2.FileDescriptorProto(name="oneofs.proto", package="probe", syntax="proto3")
    message = file.message_type.add(name="Probe")
    for name in ("solo", "first", "second"):
        message.oneof_decl.add(name=name)
    string = descriptor_pb2.FieldDescriptorProto.TYPE_STRING
    message.field.add(name="maybe", number=1, type=string, oneof_index=0)
    for number, (name, oneof) in enumerate([("a", 1), ("b", 1), ("c", 2), ("d", 2)], start=2):
        message.field.add(name=name, number=number, type=string, oneof_index=oneof)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    names = {1: "maybe", 2: "a", 3: "b", 4: "c", 5: "d"}
    probe = SimpleNamespace(__qualname__="Probe", _betterproto=SimpleNamespace(field_name_by_number=names))
    lines = _convert._oneof_checks(cast(Any, probe), pool.FindMessageTypeByName("probe.Probe"))
    assert lines == [
        "    if (o.a is not None) + (o.b is not None) > 1:",
        "        raise ValueError('Probe: more than one member of oneof first is set (a, b)')",
        "    if (o.c is not None) + (o.d is not None) > 1:",
        "        raise ValueError('Probe: more than one member of oneof second is set (c, d)')",
    ]


def test_two_members_of_any_oneof_are_refused(fresh_codec: Codec) -> None:
    """Every oneof of two or more members in the schema, whatever its members' types."""
    checked = 0
    for name in NAMES:
        standard, dataclass = standard_class(name), dataclass_class(name)
        for oneof in cast(Descriptor, standard.DESCRIPTOR).oneofs:
            if len(oneof.fields) < 2:
                continue
            first, second = (_member_value(standard, dataclass, field) for field in oneof.fields[:2])
            both = dataclass()
            setattr(both, *first)
            setattr(both, *second)
            with pytest.raises(ValueError, match=f"more than one member of oneof {oneof.name}"):
                bytes(both)
            checked += 1
    assert checked >= 4


def _member_value(standard: type[Message], dataclass: type[Any], field: Any) -> tuple[str, Any]:
    """(attribute, value) of a dataclass with only oneof member ``field`` set, to a non-default value."""
    message: Any = standard()
    if field.message_type is not None:
        getattr(message, field.name).SetInParent()
    else:
        value = {FieldDescriptor.CPPTYPE_STRING: "x", FieldDescriptor.CPPTYPE_BOOL: True}.get(
            field.cpp_type, 1
        )
        setattr(message, field.name, b"x" if field.type == FieldDescriptor.TYPE_BYTES else value)
    name = getattr(dataclass, "_betterproto").field_name_by_number[field.number]  # noqa: B009
    return name, getattr(dataclass.parse(message.SerializeToString()), name)


class _WithoutUser(_native.Plans):
    """Plans as for a class the C codec cannot take (a wrapped type, say): User."""

    def _fields(self, cls: type[Any]) -> tuple[tuple[tuple[Any, ...], ...], int]:
        if cls is v1.User:
            raise _native.Unplannable("a field of User")
        return super()._fields(cls)


def test_a_class_without_a_plan_is_served_by_the_python_path_inside_a_planned_one(fresh_codec: Codec) -> None:
    if fresh_codec.mode != "c":
        pytest.skip("plans exist only with the C codec")
    plans = fresh_codec.plans(_WithoutUser)
    assert plans[v1.User] is None
    message = v1.Message(
        id="m", author=v1.User(user_id="u", display_name="Ada"), files=[v1.File(file_id="f")]
    )
    written = plans[v1.Message].serialize(message)
    assert written == _wire.UPB_SERIALIZERS[v1.Message](message)
    assert plans[v1.Message].parse(written) == message
    assert fresh_codec.classes == [v1.User, v1.User]  # the author, written then read by the Python path


def test_a_wrapped_well_known_type_is_left_to_the_python_path() -> None:
    """google.protobuf wrappers (StringValue, ...) unwrap into Optional scalars: no plan, by name."""
    plans = _native.Plans(_wire.UPB_PARSERS.__getitem__, _wire.UPB_SERIALIZERS.__getitem__)
    field = message_service_pb2.Message.DESCRIPTOR.fields_by_name["author"]
    wrapped = SimpleNamespace(unwrap=lambda: str, proto_type=betterproto2.TYPE_MESSAGE)
    with pytest.raises(_native.Unplannable, match=r"^author$"):
        plans._spec(field, "author", wrapped, None, -1)


# Issue 24: unknown fields, wrong wire types and groups read as upb reads them, on both paths;
# only MessageDecodeError escapes parse.


def test_an_overlong_tag_is_a_decode_error() -> None:
    """A tag of 6 bytes (upb reads at most 5): the C codec declines it, upb refuses it."""
    with pytest.raises(_wire.MessageDecodeError, match="not a valid Usage"):
        v1.Usage.parse(bytes.fromhex("88808080800001"))


@pytest.mark.parametrize(
    ("dataclass", "data"),
    [
        (v1.ChatLeave, "087f"),  # field 1, a string, sent as a varint
        (v1.Citation, "3b0a01413c"),  # field 7 sent as a group holding field 1
        (v1.DeleteDocumentRequest, "0d0759f059"),  # field 1, a string, sent as fixed32
        (v1.CompletionChunk, "0d0597a3e6"),
        (v1.ChatLeave, "0b0a01410c"),  # a group of field 1, then its end
    ],
)
def test_wrong_wire_types_and_groups_are_unknown_fields_as_upb_reads_them(
    dataclass: type[betterproto2.Message], data: str
) -> None:
    raw = bytes.fromhex(data)
    assert len(UnknownFieldSet(_convert.standard_class(dataclass).FromString(raw))) == 1  # upb's reading
    parsed = dataclass.parse(raw)
    assert parsed == dataclass()
    assert parsed._unknown_fields == raw
    assert bytes(parsed) == raw
    assert upb_disagreement(dataclass, raw, dataclass.parse) is None


def test_a_nested_message_keeps_its_own_unknown_fields() -> None:
    # Field 2, a string, sent as a varint.
    message = message_service_pb2.Message(id="m").SerializeToString() + b"\x10\x05"
    data = b"\x0a" + bytes([len(message)]) + message
    parsed = v1.GetMessageResponse.parse(data)
    assert parsed.message is not None and parsed.message.id == "m"
    assert (parsed._unknown_fields, parsed.message._unknown_fields) == (b"", b"\x10\x05")
    assert bytes(parsed) == data


def test_unknown_fields_are_kept_when_a_short_varint_makes_up_for_their_length() -> None:
    """An enum of -3792456 in 8 bytes (upb writes 10), then field 2, a string, as a varint (2 bytes)."""
    raw = bytes.fromhex("18b8c398feffffff011001")
    known = plugin_service_pb2.PluginEvent.FromString(raw)
    known.DiscardUnknownFields()
    assert known.ByteSize() == len(raw)  # without its unknown field, upb writes as many bytes
    parsed = v1.PluginEvent.parse(raw)
    assert (parsed.type, parsed._unknown_fields) == (-3792456, b"\x10\x01")
    assert upb_disagreement(v1.PluginEvent, raw, v1.PluginEvent.parse) is None


@pytest.mark.parametrize(
    ("dataclass", "standard"),
    [
        (v1.Message, message_service_pb2.Message(created_at=timestamp_pb2.Timestamp(seconds=10**12))),
        (v1.Message, message_service_pb2.Message(created_at=timestamp_pb2.Timestamp(seconds=-(10**12)))),
        (
            v1.InvokePluginRequest,
            plugin_service_pb2.InvokePluginRequest(timeout=duration_pb2.Duration(seconds=10**15)),
        ),
        (  # seconds in range, nanos past theirs: overflows once added
            v1.InvokePluginRequest,
            plugin_service_pb2.InvokePluginRequest(
                timeout=duration_pb2.Duration(seconds=-999_999_999 * 86_400 + 1, nanos=-(2**31))
            ),
        ),
    ],
)
def test_times_datetime_cannot_hold_are_a_decode_error_not_an_overflow(
    dataclass: type[betterproto2.Message], standard: Message
) -> None:
    with pytest.raises(_wire.MessageDecodeError, match="not a valid"):
        dataclass.parse(standard.SerializeToString())


def test_a_packed_enum_of_unknown_values_holds_one_object_per_value_not_per_element() -> None:
    """upb keeps 100,000 -1s in 400 kB; the dataclass's list must not add an enum object for each (27 MB)."""
    data = plugin_service_pb2.StreamPluginEventsRequest(types=[-1] * 100_000).SerializeToString()  # type: ignore[list-item]
    parse = v1.StreamPluginEventsRequest.parse
    parse(data)  # the enum's table and the converters, built once
    gc.collect()
    tracemalloc.start()
    try:
        parsed = parse(data)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(parsed.types) == 100_000 and all(value == -1 for value in parsed.types)
    assert peak < 4 * 1024 * 1024, f"{peak} bytes to parse 100,000 unknown enum values"
    assert bytes(parsed) == data


def test_unknown_enum_values_are_kept_up_to_a_bound() -> None:
    """Each unknown value is built once, but values from many messages cannot grow the table without limit."""
    members = _convert._EnumMembers(v1.PluginEventType)
    known = len(members)
    unknown = range(1000, 1000 + members.UNKNOWN_KEPT + 2)
    assert [members[value] for value in unknown] == list(unknown)
    assert len(members) == known + members.UNKNOWN_KEPT
    assert members[unknown[0]] is members[unknown[0]]  # kept
    assert members[unknown[-1]] is not members[unknown[-1]]  # past the bound: built each time
