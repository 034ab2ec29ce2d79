"""A field or extension matched on both sides: name, JSON name, number, type, label, presence."""

from __future__ import annotations

from google.protobuf import descriptor_pb2 as dpb

from registry.diff.change import Verdict
from registry.diff.options import decorate
from registry.diff.recorder import Recorder
from registry.diff.schema import At
from registry.diff.types import FieldType, json_compatible, wire_compatible

_REPEATED = dpb.FieldDescriptorProto.LABEL_REPEATED


def _type_change(
    rec: Recorder, what: str, bf: dpb.FieldDescriptorProto, hf: dpb.FieldDescriptorProto, label: str, at: At
) -> tuple[FieldType, FieldType]:
    """Report a type change (a map <-> repeated entry twin is its own kind); return both types."""
    b_type, h_type = rec.base.field_type(bf), rec.head.field_type(hf)
    if b_type == h_type:
        return b_type, h_type
    detail = f"{label} changed type from {b_type} to {h_type}"
    b_shape = b_type if b_type.entry is not None else rec.base.entry_shape(bf)
    h_shape = h_type if h_type.entry is not None else rec.head.entry_shape(hf)
    twins = (b_type.entry is None) != (h_type.entry is None) and b_shape is not None and h_shape is not None
    if what == "field" and twins and b_shape == h_shape:
        detail += ": the same bytes on the wire, but another JSON form and another generated type"
        rec.add("field_map_shape_changed", at, "head", detail, old=str(b_type), new=str(h_type))
        return b_type, h_type
    verdict = Verdict(not wire_compatible(b_type, h_type), not json_compatible(b_type, h_type), True)
    rec.add(f"{what}_type_changed", at, "head", detail, verdict, old=str(b_type), new=str(h_type))
    return b_type, h_type


def compare_field(
    rec: Recorder, what: str, bf: dpb.FieldDescriptorProto, hf: dpb.FieldDescriptorProto, at: At, was: At
) -> None:
    """Report how a matched field (``what`` = "field") or extension (``what`` = "extension") changed."""
    label = f"{what} `{hf.name}` ({hf.number})"
    if bf.name != hf.name:
        same_json = bf.json_name == hf.json_name
        json_note = (
            f"its JSON name stays `{hf.json_name}`"
            if same_json
            else f"its JSON name changes from `{bf.json_name}` to `{hf.json_name}`"
        )
        detail = f"{what} {hf.number} renamed from `{bf.name}` to `{hf.name}`; {json_note}"
        # ProtoJSON parsers accept the proto field name as well as the JSON name,
        # so JSON that spells the old name no longer parses either way.
        rec.add(f"{what}_renamed", at, "head", detail, old=bf.name, new=hf.name)
    elif bf.json_name != hf.json_name and what == "field":
        detail = f"{label} changed its JSON name from `{bf.json_name}` to `{hf.json_name}`"
        rec.add("field_json_name_changed", at, "head", detail, old=bf.json_name, new=hf.json_name)
    if bf.number != hf.number:
        detail = f"{what} `{hf.name}` changed number from {bf.number} to {hf.number}"
        rec.add(f"{what}_number_changed", at, "head", detail, old=str(bf.number), new=str(hf.number))
    b_type, h_type = _type_change(rec, what, bf, hf, label, at)
    # A map field is repeated on the wire; to or from a map is a type change only.
    b_repeated, h_repeated = bf.label == _REPEATED, hf.label == _REPEATED
    if b_repeated != h_repeated and b_type.entry is None and h_type.entry is None:
        shape = ("singular", "repeated") if h_repeated else ("repeated", "singular")
        rec.add(f"{what}_label_changed", at, "head", f"{label} changed from {shape[0]} to {shape[1]}")
    if what == "field" and b_type == h_type and not (b_repeated or h_repeated):
        _presence_and_default(rec, bf, hf, label, at, was, message=b_type.kind == "message")
    decorate(rec, what, label, was, at, bf.options, hf.options, subject=hf.name)


def _in_oneof(fld: dpb.FieldDescriptorProto) -> bool:
    return fld.HasField("oneof_index") and not fld.proto3_optional


def _presence_and_default(
    rec: Recorder,
    bf: dpb.FieldDescriptorProto,
    hf: dpb.FieldDescriptorProto,
    label: str,
    at: At,
    was: At,
    *,
    message: bool,
) -> None:
    """Presence and default as the runtime resolves them (syntax, edition, features), not as written."""
    # Message fields always have presence: `optional` on them changes nothing. A field
    # entering or leaving a real oneof gains or loses presence with it, reported as the move.
    b_presence, h_presence = rec.base.has_presence(was.name, bf), rec.head.has_presence(at.name, hf)
    if b_presence != h_presence and not message and _in_oneof(bf) == _in_oneof(hf):
        change = "gained" if h_presence else "lost"
        detail = (
            f"{label} {change} explicit presence: _pb2's HasField "
            f"{'accepts it' if h_presence else 'raises'}, the dataclass SDK's attribute "
            f"{'becomes' if h_presence else 'is no longer'} optional (unset reads None), and so does "
            "the TypeScript property"
        )
        rec.add("field_presence_changed", at, "head", detail)
    elif bf.proto3_optional != hf.proto3_optional and not message and _in_oneof(bf) == _in_oneof(hf):
        # protoc-gen-es makes only proto3 `optional` scalars optional properties; explicit
        # presence in editions (or proto2) is a plain property that reads its default.
        shapes = ("`n?: T | undefined`", "`n: T`")
        before_shape, after_shape = shapes if bf.proto3_optional else shapes[::-1]
        detail = (
            f"{label} keeps explicit presence, but its TypeScript property changes from {before_shape} to "
            f"{after_shape} (protoc-gen-es makes only proto3 `optional` fields optional); _pb2 is unchanged"
        )
        rec.add("field_presence_changed", at, "head", detail)
    b_default, h_default = rec.base.default(was.name, bf), rec.head.default(at.name, hf)
    if b_default != h_default and not message:
        detail = (
            f"{label} changed its default from {b_default!r} to {h_default!r}: "
            "an unset field reads another value"
        )
        rec.add("field_default_changed", at, "head", detail, old=str(b_default), new=str(h_default))
