"""Sample messages built from the schema's descriptors, so new messages are covered unaided."""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from typing import Any

from google.protobuf import descriptor_pb2
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

import chat_sdk.schema

_WELL_KNOWN = "google.protobuf."


def chat_files() -> list[descriptor_pb2.FileDescriptorProto]:
    """The schema's own files (not its imports), from the image shipped in the wheel."""
    return [f for f in chat_sdk.schema.file_descriptor_set().file if f.package.startswith("chat.")]


def pb2_module_name(proto_file: str) -> str:
    """``chat/v1/common.proto`` -> ``chat.v1.common_pb2``."""
    return proto_file.removesuffix(".proto").replace("/", ".") + "_pb2"


def chat_message_descriptors() -> Iterator[Descriptor]:
    """Every top-level message of the schema, as the standard target's descriptors."""
    for file in chat_files():
        module = importlib.import_module(pb2_module_name(file.name))
        yield from module.DESCRIPTOR.message_types_by_name.values()


def _scalar(field: Any, seed: int) -> object:
    kind = field.type
    if kind == FieldDescriptor.TYPE_STRING:
        return f"{field.name}-{seed}-ünï"
    if kind == FieldDescriptor.TYPE_BYTES:
        return bytes([seed % 256, 0, 255])
    if kind == FieldDescriptor.TYPE_BOOL:
        return True
    if kind in (FieldDescriptor.TYPE_FLOAT, FieldDescriptor.TYPE_DOUBLE):
        return 0.5 + seed  # exactly representable in a float32
    if kind == FieldDescriptor.TYPE_ENUM:
        values = field.enum_type.values
        return values[min(1 + seed % max(len(values) - 1, 1), len(values) - 1)].number
    return 7 + seed  # every integer kind


def populate(message: Message, *, oneof_choice: int = 0, depth: int = 0) -> Message:
    """Set every field of ``message`` to a non-default value; in each oneof, member ``oneof_choice``."""
    descriptor = message.DESCRIPTOR
    if descriptor.full_name == _WELL_KNOWN + "Timestamp":
        message.seconds, message.nanos = 1_764_000_000, 123_456_000  # type: ignore[attr-defined]
        return message
    if descriptor.full_name == _WELL_KNOWN + "Duration":
        message.seconds, message.nanos = 12, 500_000_000  # type: ignore[attr-defined]
        return message
    for field in descriptor.fields:
        oneof = field.containing_oneof
        if oneof is not None and oneof.fields[oneof_choice % len(oneof.fields)] is not field:
            continue
        value = getattr(message, field.name)
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            key_field, value_field = field.message_type.fields
            for seed in (1, 2):
                key = _scalar(key_field, seed)
                if value_field.message_type is not None:
                    populate(value[key], depth=depth + 1)
                else:
                    value[key] = _scalar(value_field, seed)
        elif field.is_repeated:
            for seed in (1, 2):
                if field.message_type is not None:
                    if depth < 3:
                        populate(value.add(), depth=depth + 1)
                else:
                    value.append(_scalar(field, seed))
        elif field.message_type is not None:
            if depth < 3:
                populate(value, depth=depth + 1)
        else:
            setattr(message, field.name, _scalar(field, depth))
    return message


def oneof_variants(descriptor: Descriptor) -> int:
    """How many distinct samples cover every member of every oneof of ``descriptor``."""
    return max([len(oneof.fields) for oneof in descriptor.oneofs], default=1)
