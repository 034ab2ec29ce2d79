"""The dataclass target's codec (upb underneath, ``chat_sdk._wire``) agrees with betterproto2's own.

For random messages of every type of the current schema: ``Message.parse`` gives a
dataclass equal to betterproto2's pure-Python parse of the same bytes, and ``bytes()``
gives exactly the bytes of the standard target (betterproto2's own encoder differs in
the places the tests below name). Unknown fields and enum values survive both ways.
"""

from __future__ import annotations

import datetime
import pickle
from typing import cast

import pytest
from google.protobuf import duration_pb2, timestamp_pb2
from google.protobuf.descriptor import Descriptor
from google.protobuf.message import DecodeError, Message
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import chat_sdk.schema
from chat.v1 import ai_service_pb2, common_pb2, message_service_pb2, plugin_service_pb2
from chat_sdk import FastCodec, _convert, _wire, v1
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


@pytest.mark.parametrize("name", NAMES)
def test_the_codec_parses_like_betterproto2_and_encodes_like_upb(name: str) -> None:
    standard, dataclass = standard_class(name), dataclass_class(name)

    @EXAMPLES
    @given(messages(cast(Descriptor, standard.DESCRIPTOR)))
    def agree(message: Message) -> None:
        data = message.SerializeToString()
        reference = _wire.betterproto2_parse(dataclass, data)
        parsed = dataclass.parse(data)
        assert type(parsed) is dataclass
        assert parsed == reference
        assert dataclass.FromString(data) == reference
        written = bytes(parsed)
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
    with pytest.raises(ValueError, match="timezone aware"):
        bytes(v1.Message(id="m", created_at=datetime.datetime(2026, 1, 1)))


def test_two_members_of_one_oneof_are_refused_not_both_sent() -> None:
    """betterproto2 does not clear the first member (its issue 172) and sent both; the codec says so."""
    request = v1.ChatStreamRequest(join=v1.ChatJoin(conversation_id="c", user_id="u"))
    request.leave = v1.ChatLeave(conversation_id="c")
    with pytest.raises(ValueError, match="more than one member of oneof"):
        bytes(request)
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
