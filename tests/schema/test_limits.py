"""Every string, bytes, repeated and map field a client can send declares a buf.validate bound."""

from __future__ import annotations

import importlib
from collections.abc import Iterator

import pytest
from buf.validate import validate_pb2
from google.protobuf.descriptor import Descriptor, FieldDescriptor

from ..sdk.samples import chat_files, pb2_module_name

_WELL_KNOWN = "google.protobuf."


def request_types() -> list[Descriptor]:
    """The input message of every RPC of the schema."""
    found: dict[str, Descriptor] = {}
    for file in chat_files():
        module = importlib.import_module(pb2_module_name(file.name))
        for service in module.DESCRIPTOR.services_by_name.values():
            for method in service.methods:
                found[method.input_type.full_name] = method.input_type
    return list(found.values())


def reachable_from_requests() -> dict[str, Descriptor]:
    """Every chat message a request can carry, requests included, by full name."""
    seen: dict[str, Descriptor] = {}
    todo = request_types()
    while todo:
        message = todo.pop()
        if message.full_name in seen or message.full_name.startswith(_WELL_KNOWN):
            continue
        seen[message.full_name] = message
        for field in message.fields:
            target = field.message_type
            if target is not None and target.GetOptions().map_entry:
                target = target.fields_by_name["value"].message_type
            if target is not None:
                todo.append(target)
    return seen


def _string_bound(rules: validate_pb2.FieldRules, field: FieldDescriptor) -> bool:
    if field.type == FieldDescriptor.TYPE_STRING:
        return rules.string.HasField("max_len") or rules.string.HasField("max_bytes")
    if field.type == FieldDescriptor.TYPE_BYTES:
        return rules.bytes.HasField("max_len")
    return True  # other scalars carry no length


def missing_bounds(message: Descriptor) -> Iterator[str]:
    """``field: what is missing`` for each field of ``message`` that lacks a declared bound."""
    for field in message.fields:
        rules = field.GetOptions().Extensions[validate_pb2.field]
        entry = field.message_type
        if entry is not None and entry.GetOptions().map_entry:
            if not rules.map.HasField("max_pairs"):
                yield f"{field.full_name}: map without max_pairs"
            for part, nested in (("key", rules.map.keys), ("value", rules.map.values)):
                if not _string_bound(nested, entry.fields_by_name[part]):
                    yield f"{field.full_name}: map {part}s without max_len"
        elif field.is_repeated:
            if not rules.repeated.HasField("max_items"):
                yield f"{field.full_name}: repeated without max_items"
            if not _string_bound(rules.repeated.items, field):
                yield f"{field.full_name}: items without max_len"
        elif not _string_bound(rules, field):
            kind = "bytes" if field.type == field.TYPE_BYTES else "string"
            yield f"{field.full_name}: {kind} without max_len"


def test_the_walk_reaches_nested_request_messages() -> None:
    reached = set(reachable_from_requests())
    assert {"chat.v1.NewMessage", "chat.v1.File", "chat.v1.PageRequest", "chat.v1.Vector"} <= reached
    assert {
        "chat.v1.ChatJoin",
        "chat.v1.ChatTyping",
        "chat.v1.ChatLeave",
        "chat.v1.DocumentHeader",
    } <= reached
    assert "chat.v1.Message" not in reached, "responses carry no bounds"


@pytest.mark.parametrize("name", sorted(reachable_from_requests()))
def test_every_field_a_client_sends_is_bounded(name: str) -> None:
    assert list(missing_bounds(reachable_from_requests()[name])) == []


def test_the_check_catches_an_unbounded_field() -> None:
    # Document (a response) declares nothing: the same check must name its fields.
    module = importlib.import_module("chat.v1.rag_service_pb2")
    found = list(missing_bounds(module.DESCRIPTOR.message_types_by_name["Document"]))
    assert "chat.v1.Document.title: string without max_len" in found
    assert "chat.v1.Document.metadata: map without max_pairs" in found
