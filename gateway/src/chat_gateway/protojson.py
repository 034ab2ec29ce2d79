"""Messages to ProtoJSON objects, with a converter per field worked out once per message type.

``json_format.MessageToDict`` decides again, for every field of every message, whether it
is a map, a list, an enum, an int64 or a well-known type: on a 1,000-message replay that
walk took a fifth of the gateway's CPU. :func:`to_json` takes the same decisions once per
message type and gives the same objects (tests/gateway/test_protojson.py compares the two on
every request and reply type of the schema). Types it does not speed up (well-known types,
messages with float fields or extensions) go through ``json_format`` itself.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from functools import cache
from typing import Any

from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

Convert = Callable[[Any], Any]
_INT64 = (FieldDescriptor.CPPTYPE_INT64, FieldDescriptor.CPPTYPE_UINT64)
_FLOAT = (FieldDescriptor.CPPTYPE_FLOAT, FieldDescriptor.CPPTYPE_DOUBLE)
_AS_STRING = ("google.protobuf.Timestamp", "google.protobuf.Duration")


def to_json(message: Message) -> Any:
    """``message`` as ``json_format.MessageToDict`` writes it (lowerCamel names, enum names, int64
    as strings, RFC 3339 times, defaults left out)."""
    return _printer(message.DESCRIPTOR)(message)


@cache
def _printer(descriptor: Descriptor) -> Convert:
    if descriptor.full_name.startswith("google.protobuf.") or any(
        field.cpp_type in _FLOAT for field in descriptor.fields
    ):
        return json_format.MessageToDict
    fields = {field.name: (field.json_name, _field_converter(field)) for field in descriptor.fields}

    def convert(message: Message) -> Any:
        out: dict[str, Any] = {}
        for field, value in message.ListFields():
            known = fields.get(field.name)
            if known is None or field.is_extension:
                return json_format.MessageToDict(message)
            out[known[0]] = known[1](value)
        return out

    return convert


def _field_converter(field: FieldDescriptor) -> Convert:
    entry = field.message_type
    if entry is not None and entry.GetOptions().map_entry:
        value = _value_converter(entry.fields_by_name["value"])
        if entry.fields_by_name["key"].cpp_type == FieldDescriptor.CPPTYPE_BOOL:
            return lambda pairs: {("true" if key else "false"): value(item) for key, item in pairs.items()}
        return lambda pairs: {str(key): value(item) for key, item in pairs.items()}
    single = _value_converter(field)
    if field.is_repeated:
        return lambda items: [single(item) for item in items]
    return single


def _value_converter(field: FieldDescriptor) -> Convert:
    kind, message, enum = field.cpp_type, field.message_type, field.enum_type
    if message is not None:
        return _json_string if message.full_name in _AS_STRING else _nested
    if enum is not None:
        names = {value.number: value.name for value in enum.values}
        return lambda number: names.get(number, number)  # an open enum's unknown value stays a number
    if field.type == FieldDescriptor.TYPE_BYTES:
        return _base64
    if kind in _INT64:
        return str
    return _same  # strings, booleans and 32-bit integers are themselves in JSON


def _nested(message: Message) -> Any:
    return _printer(message.DESCRIPTOR)(message)


def _json_string(message: Any) -> str:
    text: str = message.ToJsonString()
    return text


def _base64(data: bytes) -> str:
    return base64.b64encode(data).decode("utf-8")


def _same(value: Any) -> Any:
    return value
