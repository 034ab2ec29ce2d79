"""The SDK's FastCodec (upb doing the dataclass target's wire work) agrees with betterproto2 itself.

For random messages of every type of the current schema: parsing with the fast path
gives a dataclass equal to betterproto2's own parse of the same bytes, and encoding
with it gives bytes that read back (in the standard target) to the same message as
betterproto2's encoding. Unknown fields survive both ways.
"""

from __future__ import annotations

from typing import cast

import pytest
from google.protobuf.descriptor import Descriptor
from google.protobuf.message import Message
from hypothesis import HealthCheck, given, settings

import chat_sdk.schema
from chat.v1 import message_service_pb2
from chat_sdk import FastCodec, v1
from compat_tests.current import dataclass_class, standard_class
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
CODEC = FastCodec()


@pytest.mark.parametrize("name", NAMES)
def test_fast_codec_parses_and_encodes_like_betterproto2(name: str) -> None:
    standard, dataclass = standard_class(name), dataclass_class(name)

    @EXAMPLES
    @given(messages(cast(Descriptor, standard.DESCRIPTOR)))
    def agree(message: Message) -> None:
        data = message.SerializeToString()
        reference = dataclass.parse(data)
        fast = CODEC.decode(data, dataclass)
        assert type(fast) is dataclass
        assert fast == reference
        encoded = CODEC.encode(reference, dataclass)
        # Known difference, in the fast path's favour: upb keeps a singular -0.0, betterproto2 drops it.
        assert _positive_zeros(standard.FromString(encoded)) == standard.FromString(bytes(reference))

    agree()


def test_unknown_fields_survive_the_fast_codec() -> None:
    known = message_service_pb2.GetMessageRequest(message_id="m-1", include_user=True)
    unknown_field = b"\xf8\x06\x07"  # field 111, varint 7: from a newer schema
    data = known.SerializeToString() + unknown_field
    parsed = CODEC.decode(data, v1.GetMessageRequest)
    assert parsed == v1.GetMessageRequest(message_id="m-1", include_user=True)
    assert CODEC.encode(parsed, v1.GetMessageRequest).endswith(unknown_field)


def test_the_fast_codec_passes_standard_messages_through() -> None:
    request = message_service_pb2.GetMessageRequest(message_id="m-1")
    data = CODEC.encode(request, message_service_pb2.GetMessageRequest)
    assert data == request.SerializeToString()
    assert CODEC.decode(data, message_service_pb2.GetMessageRequest) == request


def test_the_fast_codec_refuses_a_message_of_another_type() -> None:
    with pytest.raises(TypeError):
        CODEC.encode(v1.GetMessageRequest(message_id="m-1"), v1.ListMessagesRequest)
