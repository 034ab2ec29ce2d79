"""Hypothesis strategies derived from message descriptors: every message type, no hand-written cases.

``messages(descriptor)`` draws instances of the standard (`_pb2`) class of any message:
each field set or left unset, scalars across their whole range (integer extremes,
unicode text, raw bytes, floats), enum values, at most one member of each oneof,
small repeated and map fields, and nested messages to a bounded depth. A message type
added in a later release is covered as soon as it is in the schema.

What is left out, and why:

- NaN: it never equals itself, so no round trip could be compared. Infinities are
  drawn (both targets carry them, in binary and as ProtoJSON ``"Infinity"``).
- ±FLT_MAX in ``float`` fields: protobuf's own ProtoJSON writer prints it as
  ``3.4028235e+38`` and its parser then refuses that as too large
  (https://github.com/protocolbuffers/protobuf/issues/8336); not a target difference.
- Enum numbers the schema does not define: they are drawn from the defined values
  only, as the schema's writers send them. That unknown values are kept is asserted
  separately, in ``test_targets_agree``.

Well-known types get valid values rather than raw fields: Timestamps from year 1 to
9999 with nanoseconds, Durations up to ten thousand years either way, FieldMasks of
snake_case paths (what ProtoJSON can carry), Struct/Value/ListValue with one kind set
and finite numbers. Wrappers and Empty need nothing special. ``google.protobuf.Any``
has no strategy: what it may carry is a decision for whoever adds one to the schema.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from google.protobuf.descriptor import Descriptor, FieldDescriptor, OneofDescriptor
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass
from hypothesis import strategies as st

from registry.fixtures import INT_RANGES  # each integer type's range, as the golden fixtures use

MAX_ITEMS = 3  # repeated and map fields
MAX_DEPTH = 3  # nested messages; deeper fields are left unset
TIMESTAMP_SECONDS = (-62_135_596_800, 253_402_300_799)  # 0001-01-01 to 9999-12-31, UTC
DURATION_SECONDS = 315_576_000_000  # the ProtoJSON limit, about ten thousand years
FLOAT32_MAX = 3.4028234663852886e38


def messages(descriptor: Descriptor, depth: int = MAX_DEPTH) -> st.SearchStrategy[Message]:
    """Instances of ``descriptor``'s standard class."""
    special = _WELL_KNOWN.get(descriptor.full_name)
    if special is not None:
        return special(descriptor, depth)
    if descriptor.full_name == "google.protobuf.Any":
        raise NotImplementedError("no strategy for google.protobuf.Any: decide what it may carry, add one")
    return _message(descriptor, depth)


@st.composite
def _message(draw: st.DrawFn, descriptor: Descriptor, depth: int) -> Message:
    message = GetMessageClass(descriptor)()
    chosen = {
        oneof.name: draw(st.sampled_from([None, *(field.name for field in oneof.fields)]))
        for oneof in descriptor.oneofs
        if not _synthetic(oneof)
    }
    for field in descriptor.fields:
        oneof = field.containing_oneof
        if oneof is not None and not _synthetic(oneof):
            if chosen[oneof.name] != field.name:
                continue
        elif not draw(st.booleans()):
            continue
        if field.message_type is not None and depth == 0:
            continue
        _assign(message, field, draw(_field_values(field, depth)))
    return message


def _field_values(field: FieldDescriptor, depth: int) -> st.SearchStrategy[Any]:
    if field.message_type is not None and field.message_type.GetOptions().map_entry:
        key, value = field.message_type.fields_by_name["key"], field.message_type.fields_by_name["value"]
        return st.dictionaries(_single(key, depth), _single(value, depth - 1), max_size=MAX_ITEMS)
    if field.is_repeated:
        return st.lists(_single(field, depth - 1), max_size=MAX_ITEMS)
    return _single(field, depth - 1)


def _single(field: FieldDescriptor, depth: int) -> st.SearchStrategy[Any]:
    """One value of a field's type (a message for message fields)."""
    kind = field.type
    if kind in INT_RANGES:
        low, high = INT_RANGES[kind]
        return st.integers(low, high)
    if kind == FieldDescriptor.TYPE_BOOL:
        return st.booleans()
    if kind == FieldDescriptor.TYPE_STRING:
        return st.text(max_size=12)
    if kind == FieldDescriptor.TYPE_BYTES:
        return st.binary(max_size=12)
    if kind == FieldDescriptor.TYPE_DOUBLE:
        return st.floats(allow_nan=False)
    if kind == FieldDescriptor.TYPE_FLOAT:
        return st.floats(width=32, allow_nan=False).filter(lambda x: abs(x) != FLOAT32_MAX)
    if kind == FieldDescriptor.TYPE_ENUM:
        assert field.enum_type is not None
        return st.sampled_from([value.number for value in field.enum_type.values])
    assert field.message_type is not None, f"unhandled field type {kind} of {field.full_name}"
    return messages(field.message_type, max(depth, 0))


def _assign(message: Message, field: FieldDescriptor, value: Any) -> None:
    target = getattr(message, field.name)
    if field.message_type is not None and field.message_type.GetOptions().map_entry:
        if field.message_type.fields_by_name["value"].message_type is None:
            target.update(value)
        else:
            for key, item in value.items():
                target[key].CopyFrom(item)
    elif field.is_repeated:
        if field.message_type is None:
            target.extend(value)
        else:
            for item in value:
                target.add().CopyFrom(item)
    elif field.message_type is not None:
        target.SetInParent()
        target.MergeFrom(value)
    else:
        setattr(message, field.name, value)


def _synthetic(oneof: OneofDescriptor) -> bool:
    """The hidden oneof of a proto3 ``optional`` field: presence, not a choice."""
    return len(oneof.fields) == 1 and oneof.name == f"_{oneof.fields[0].name}"


def _timestamps(descriptor: Descriptor, depth: int) -> st.SearchStrategy[Message]:
    cls = GetMessageClass(descriptor)
    return st.builds(
        lambda seconds, nanos: cls(seconds=seconds, nanos=nanos),
        st.integers(*TIMESTAMP_SECONDS),
        st.integers(0, 999_999_999),
    )


def _durations(descriptor: Descriptor, depth: int) -> st.SearchStrategy[Message]:
    cls = GetMessageClass(descriptor)

    def build(seconds: int, nanos: int) -> Message:
        # Seconds and nanos share the sign of the whole duration.
        return cls(seconds=seconds, nanos=-nanos if seconds < 0 else nanos)

    return st.builds(build, st.integers(-DURATION_SECONDS, DURATION_SECONDS), st.integers(0, 999_999_999))


def _field_masks(descriptor: Descriptor, depth: int) -> st.SearchStrategy[Message]:
    # ProtoJSON writes paths in lowerCamelCase: only snake_case words starting with a
    # letter convert there and back.
    word = st.from_regex(r"[a-z][a-z0-9]{0,5}", fullmatch=True)
    name = st.lists(word, min_size=1, max_size=3).map("_".join)
    path = st.lists(name, min_size=1, max_size=3).map(".".join)
    cls = GetMessageClass(descriptor)
    return st.lists(path, max_size=MAX_ITEMS).map(lambda paths: cls(paths=paths))


def _values(descriptor: Descriptor, depth: int) -> st.SearchStrategy[Message]:
    """``google.protobuf.Value``: exactly one kind, finite numbers (ProtoJSON has no others)."""
    cls = GetMessageClass(descriptor)

    def of(kind: str) -> Callable[[Any], Message]:
        def build(item: Any) -> Message:
            value = cls()
            if isinstance(item, Message):
                getattr(value, kind).CopyFrom(item)
            else:
                setattr(value, kind, item)
            return value

        return build

    kinds = [
        st.just(0).map(of("null_value")),
        st.floats(allow_nan=False, allow_infinity=False).map(of("number_value")),
        st.text(max_size=12).map(of("string_value")),
        st.booleans().map(of("bool_value")),
    ]
    if depth > 0:
        kinds.append(_structs(_type_of(descriptor, "struct_value"), depth - 1).map(of("struct_value")))
        kinds.append(_lists(_type_of(descriptor, "list_value"), depth - 1).map(of("list_value")))
    return st.one_of(kinds)


def _structs(descriptor: Descriptor, depth: int) -> st.SearchStrategy[Message]:
    cls = GetMessageClass(descriptor)
    value = _type_of(_type_of(descriptor, "fields"), "value")  # map<string, Value>

    def build(fields: dict[str, Message]) -> Message:
        struct = cls()
        for key, item in fields.items():
            struct.fields[key].CopyFrom(item)  # type: ignore[attr-defined]
        return struct

    return st.dictionaries(st.text(max_size=8), _values(value, depth), max_size=MAX_ITEMS).map(build)


def _lists(descriptor: Descriptor, depth: int) -> st.SearchStrategy[Message]:
    cls = GetMessageClass(descriptor)
    value = _type_of(descriptor, "values")

    def build(items: list[Message]) -> Message:
        values = cls()
        for item in items:
            values.values.add().CopyFrom(item)  # type: ignore[attr-defined]
        return values

    return st.lists(_values(value, depth), max_size=MAX_ITEMS).map(build)


def _type_of(descriptor: Descriptor, field: str) -> Descriptor:
    """The message type of one of ``descriptor``'s message fields."""
    found = descriptor.fields_by_name[field].message_type
    assert found is not None, f"{descriptor.full_name}.{field} is not a message field"
    return found


_WELL_KNOWN: dict[str, Callable[[Descriptor, int], st.SearchStrategy[Message]]] = {
    "google.protobuf.Timestamp": _timestamps,
    "google.protobuf.Duration": _durations,
    "google.protobuf.FieldMask": _field_masks,
    "google.protobuf.Value": _values,
    "google.protobuf.Struct": _structs,
    "google.protobuf.ListValue": _lists,
}
