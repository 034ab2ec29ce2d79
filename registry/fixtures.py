"""Golden wire fixtures: every message of a release, encoded once by the protobuf runtime.

When a release is cut, each message type of its schema is encoded with edge values
(empty, defaults, extremes, unicode, large repeated and map fields, every oneof member,
every enum value, timestamps with nanoseconds) as canonical binary and ProtoJSON, into
``compat_tests/fixtures/<version>/<message>.json``. Fixtures are never regenerated: the
release record keeps their digest and the compatibility suite refuses edited ones.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from google.protobuf import descriptor_pb2, json_format
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.descriptor_pool import DescriptorPool
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass

from registry.diff.schema import is_ours

INT_RANGES = {
    FieldDescriptor.TYPE_INT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_SINT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_SFIXED32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_INT64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_SINT64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_SFIXED64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_UINT32: (0, 2**32 - 1),
    FieldDescriptor.TYPE_FIXED32: (0, 2**32 - 1),
    FieldDescriptor.TYPE_UINT64: (0, 2**64 - 1),
    FieldDescriptor.TYPE_FIXED64: (0, 2**64 - 1),
}
UNICODE = "héllo wörld — 你好 🚀 \u0000end"
LARGE = 100  # items in the "large" case's repeated and map fields


def pool_of(image: descriptor_pb2.FileDescriptorSet) -> DescriptorPool:
    """A private descriptor pool holding ``image`` (never protobuf's default pool)."""
    pool = DescriptorPool()
    for file in image.file:
        pool.Add(file)
    return pool


def chat_messages(image: descriptor_pb2.FileDescriptorSet, pool: DescriptorPool) -> list[Descriptor]:
    """Every top-level message of the schema's own files (package ``chat.*``), by full name.

    Imports are not the schema's: well-known types, and vendored ones such as ``buf.validate``.
    """
    names = [
        f"{file.package}.{message.name}"
        for file in image.file
        if is_ours(file.package)  # not the well-known types nor vendored buf.validate
        for message in file.message_type
    ]
    return [pool.FindMessageTypeByName(name) for name in sorted(names)]


def _extreme(field: Any, high: bool) -> Any:  # a FieldDescriptor (pure-Python or upb)
    kind = field.type
    if kind in INT_RANGES:
        low, top = INT_RANGES[kind]
        return top if high else low
    if kind == FieldDescriptor.TYPE_BOOL:
        return high
    if kind == FieldDescriptor.TYPE_FLOAT:
        # Not FLT_MAX: its shortest JSON form rounds up past it, and parsers refuse that.
        return 3.0e38 if high else -1.401298464324817e-45
    if kind == FieldDescriptor.TYPE_DOUBLE:
        return 1.7976931348623157e308 if high else -5e-324
    if kind == FieldDescriptor.TYPE_STRING:
        return UNICODE if high else "a"
    if kind == FieldDescriptor.TYPE_BYTES:
        return bytes(range(256)) if high else b"\x00"
    if kind == FieldDescriptor.TYPE_ENUM:
        assert field.enum_type is not None
        values = field.enum_type.values
        return values[-1].number if high else values[min(1, len(values) - 1)].number
    raise ValueError(f"no sample for field type {kind}")


def _fill(message: Message, *, high: bool, repeat: int, depth: int, oneof_member: str | None = None) -> None:
    """Set every field of ``message`` (the chosen member of each oneof) to an edge value."""
    name = message.DESCRIPTOR.full_name
    if name == "google.protobuf.Timestamp":
        message.seconds, message.nanos = (253402300799, 999999999) if high else (-62135596800, 1)  # type: ignore[attr-defined]
        return
    if name == "google.protobuf.Duration":
        seconds = 315_575_999_999  # the last whole second below the 10,000-year limit
        message.seconds, message.nanos = (seconds, 999999999) if high else (-seconds, -999999999)  # type: ignore[attr-defined]
        return
    for field in message.DESCRIPTOR.fields:
        oneof = field.containing_oneof
        if oneof is not None and not _synthetic(oneof):
            members = [member.name for member in oneof.fields]
            chosen = oneof_member if oneof_member in members else members[0]
            if field.name != chosen:
                continue
        value = getattr(message, field.name)
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            key_field, value_field = (
                field.message_type.fields_by_name["key"],
                field.message_type.fields_by_name["value"],
            )
            for index in range(repeat):
                key = f"k{index}-{UNICODE}" if key_field.type == FieldDescriptor.TYPE_STRING else index
                if value_field.message_type is not None:
                    if depth > 0:
                        _fill(value[key], high=high, repeat=1, depth=depth - 1)
                else:
                    value[key] = _extreme(value_field, high)
        elif field.is_repeated:
            for _ in range(repeat):
                if field.message_type is not None:
                    if depth > 0:
                        _fill(value.add(), high=high, repeat=1, depth=depth - 1)
                else:
                    value.append(_extreme(field, high))
        elif field.message_type is not None:
            if depth > 0:
                _fill(value, high=high, repeat=1, depth=depth - 1)
        else:
            setattr(message, field.name, _extreme(field, high))


def _synthetic(oneof: Any) -> bool:
    """Whether ``oneof`` is the hidden oneof of a proto3 ``optional`` field."""
    return len(oneof.fields) == 1 and oneof.name == f"_{oneof.fields[0].name}"


def cases(descriptor: Descriptor) -> Iterator[tuple[str, Message]]:
    """The named edge cases of one message type."""
    cls = GetMessageClass(descriptor)
    yield "empty", cls()
    for label, high in (("max", True), ("min", False)):
        message = cls()
        _fill(message, high=high, repeat=2, depth=3)
        yield label, message
    large = cls()
    _fill(large, high=True, repeat=LARGE, depth=1)
    yield "large", large
    for oneof in descriptor.oneofs:
        if _synthetic(oneof):
            continue  # proto3 `optional`: covered by the other cases
        for member in oneof.fields:
            message = cls()
            _fill(message, high=True, repeat=1, depth=2, oneof_member=member.name)
            yield f"oneof-{oneof.name}-{member.name}", message
    for field in descriptor.fields:
        if field.type == FieldDescriptor.TYPE_ENUM and not field.is_repeated:
            assert field.enum_type is not None
            for value in field.enum_type.values:
                message = cls()
                setattr(message, field.name, value.number)
                yield f"enum-{field.name}-{value.name}", message


def encode_case(message: Message) -> dict[str, Any]:
    """One fixture: canonical binary (deterministic, base64) and canonical ProtoJSON."""
    return {
        "binary": base64.b64encode(message.SerializeToString(deterministic=True)).decode(),
        "json": json.loads(json_format.MessageToJson(message)),
    }


def write_fixtures(image: descriptor_pb2.FileDescriptorSet, directory: Path) -> str:
    """Write the corpus of ``image`` into ``directory``; return the corpus digest."""
    pool = pool_of(image)
    directory.mkdir(parents=True, exist_ok=False)
    for descriptor in chat_messages(image, pool):
        corpus = {name: encode_case(message) for name, message in cases(descriptor)}
        path = directory / f"{descriptor.full_name}.json"
        document = {"message": descriptor.full_name, "cases": corpus}
        path.write_text(json.dumps(document, indent=1, sort_keys=True, ensure_ascii=False) + "\n")
    return corpus_digest(directory)


def corpus_digest(directory: Path) -> str:
    """The sha256 over every fixture file's name and content, in name order."""
    digest = hashlib.sha256()
    for path in sorted(directory.glob("*.json")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()
