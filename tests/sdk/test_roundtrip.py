"""Every message of the schema survives both targets: standard -> dataclass -> standard.

The standard target (protobuf ``_pb2``) is the canonical encoder; the dataclass
target (betterproto2) must read its bytes and JSON and write them back unchanged.
"""

from __future__ import annotations

import json

import betterproto2
import pytest
from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor
from google.protobuf.message_factory import GetMessageClass

from chat_sdk._generated.message_pool import default_message_pool

from .samples import chat_message_descriptors, oneof_variants, populate

CASES = [
    pytest.param(descriptor, choice, id=f"{descriptor.full_name}[{choice}]")
    for descriptor in chat_message_descriptors()
    for choice in range(oneof_variants(descriptor))
]


def _dataclass_for(descriptor: Descriptor) -> type[betterproto2.Message]:
    return default_message_pool.url_to_type[f"type.googleapis.com/{descriptor.full_name}"]


def test_the_schema_has_messages_to_test() -> None:
    assert len(CASES) >= 40


@pytest.mark.parametrize(("descriptor", "choice"), CASES)
def test_binary_round_trip_through_the_dataclass_target(descriptor: Descriptor, choice: int) -> None:
    original = populate(GetMessageClass(descriptor)(), oneof_choice=choice)
    wire = original.SerializeToString(deterministic=True)

    dataclass_message = _dataclass_for(descriptor).parse(wire)
    back = GetMessageClass(descriptor).FromString(bytes(dataclass_message))

    assert back == original
    assert back.SerializeToString(deterministic=True) == wire


@pytest.mark.parametrize(("descriptor", "choice"), CASES)
def test_json_round_trip_through_the_dataclass_target(descriptor: Descriptor, choice: int) -> None:
    original = populate(GetMessageClass(descriptor)(), oneof_choice=choice)
    canonical = json_format.MessageToJson(original)

    dataclass_message = _dataclass_for(descriptor).from_json(canonical)
    back = json_format.Parse(dataclass_message.to_json(), GetMessageClass(descriptor)())

    assert back == original
    assert json.loads(dataclass_message.to_json()) == json.loads(canonical)


@pytest.mark.parametrize(("descriptor", "choice"), CASES)
def test_dataclass_bytes_decode_in_the_standard_target(descriptor: Descriptor, choice: int) -> None:
    original = populate(GetMessageClass(descriptor)(), oneof_choice=choice)
    dataclass_message = _dataclass_for(descriptor).parse(original.SerializeToString())
    assert dataclass_message == _dataclass_for(descriptor).parse(bytes(dataclass_message))
    assert GetMessageClass(descriptor).FromString(bytes(dataclass_message)) == original
