"""The gateway's ProtoJSON writer gives exactly what ``json_format.MessageToDict`` gives, on every
request and reply type of the schema, for messages hypothesis fills at random."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from google.protobuf import json_format
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message
from hypothesis import given, settings
from hypothesis import strategies as st

from chat_gateway.protojson import to_json
from chat_gateway.schema import descriptor_of, rpcs

TYPES = sorted(
    {message for rpc in rpcs() for message in (rpc.request, rpc.response)},
    key=lambda t: t.DESCRIPTOR.full_name,
)
MAX_DEPTH = 3
_INTEGERS = {
    FieldDescriptor.TYPE_INT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_SINT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_SFIXED32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_UINT32: (0, 2**32 - 1),
    FieldDescriptor.TYPE_FIXED32: (0, 2**32 - 1),
    FieldDescriptor.TYPE_INT64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_SINT64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_SFIXED64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_UINT64: (0, 2**64 - 1),
    FieldDescriptor.TYPE_FIXED64: (0, 2**64 - 1),
}


def scalar(field: FieldDescriptor) -> st.SearchStrategy[Any]:
    if field.type in _INTEGERS:
        low, high = _INTEGERS[field.type]
        return st.sampled_from([low, -1, 0, 1, high]) if low < 0 else st.sampled_from([0, 1, high])
    if field.enum_type is not None:
        return st.sampled_from([value.number for value in field.enum_type.values] + [99])  # 99: unknown
    return {
        FieldDescriptor.TYPE_STRING: st.text(max_size=4),
        FieldDescriptor.TYPE_BYTES: st.binary(max_size=4),
        FieldDescriptor.TYPE_BOOL: st.booleans(),
        FieldDescriptor.TYPE_FLOAT: st.floats(width=32),
        FieldDescriptor.TYPE_DOUBLE: st.floats(),
    }[field.type]


def fill(draw: Callable[[st.SearchStrategy[Any]], Any], message: Message, depth: int) -> None:
    """Set a random choice of ``message``'s fields, nested messages down to MAX_DEPTH."""
    descriptor = descriptor_of(type(message))
    name = descriptor.full_name
    if name in ("google.protobuf.Timestamp", "google.protobuf.Duration"):
        message.seconds = draw(st.integers(0, 4_000_000_000))  # type: ignore[attr-defined]
        message.nanos = draw(st.sampled_from([0, 1_000, 5_000_000, 999_999_999]))  # type: ignore[attr-defined]
        return
    if name.startswith("google.protobuf.") or depth > MAX_DEPTH:
        return
    for field in descriptor.fields:
        if not draw(st.booleans()):
            continue
        target = getattr(message, field.name)
        entry = field.message_type
        if entry is not None and entry.GetOptions().map_entry:
            key_field, value_field = entry.fields_by_name["key"], entry.fields_by_name["value"]
            for _ in range(draw(st.integers(0, 2))):
                key = draw(scalar(key_field))
                if value_field.message_type is not None:
                    fill(draw, target[key], depth + 1)
                else:
                    target[key] = draw(scalar(value_field))
        elif field.is_repeated:
            for _ in range(draw(st.integers(0, 2))):
                if entry is not None:
                    fill(draw, target.add(), depth + 1)
                else:
                    target.append(draw(scalar(field)))
        elif entry is not None:
            target.SetInParent()
            fill(draw, target, depth + 1)
        else:
            setattr(message, field.name, draw(scalar(field)))


@pytest.mark.parametrize("message_type", TYPES, ids=lambda t: t.DESCRIPTOR.name)
@settings(max_examples=15, deadline=None)
@given(data=st.data())
def test_to_json_equals_json_format(message_type: type[Message], data: st.DataObject) -> None:
    message = message_type()
    fill(data.draw, message, 0)
    assert to_json(message) == json_format.MessageToDict(message)
