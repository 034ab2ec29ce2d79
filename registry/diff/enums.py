"""Enums and their values: added, removed, renamed, renumbered."""

from __future__ import annotations

from google.protobuf import descriptor_pb2 as dpb

from registry.diff.named import matched
from registry.diff.options import decorate
from registry.diff.recorder import Recorder, pair
from registry.diff.reserved import compare_reserved, removed_member
from registry.diff.schema import At, Def


def walk_enums(rec: Recorder) -> None:
    """Compare every enum of the registry's own files."""
    for before, after, was, at in matched(rec, "enum", rec.base.enums, rec.head.enums):
        decorate(rec, "enum", f"enum `{after.name}`", was, at, before.proto.options, after.proto.options)
        _values(rec, before, after)


def _values(rec: Recorder, before: Def[dpb.EnumDescriptorProto], after: Def[dpb.EnumDescriptorProto]) -> None:
    b, h = before.proto, after.proto
    pairs, removed, added = pair([(v.name, v.number) for v in b.value], [(v.name, v.number) for v in h.value])
    for j in added:
        value = h.value[j]
        at = At(f"{after.name}.{value.name}", after.file, (*after.path, 2, j))
        rec.add("enum_value_added", at, "head", f"enum value `{value.name}` ({value.number}) added")
    for i in removed:
        value = b.value[i]
        at = At(f"{before.name}.{value.name}", before.file, (*before.path, 2, i))
        removed_member(rec, "enum_value", value.name, value.number, at, h)
    compare_reserved(rec, before, after, [(b.value[i].name, b.value[i].number) for i in removed])
    for i, j in pairs:
        bv, hv = b.value[i], h.value[j]
        at = At(f"{after.name}.{hv.name}", after.file, (*after.path, 2, j))
        was = At(f"{before.name}.{bv.name}", before.file, (*before.path, 2, i))
        if bv.name != hv.name:
            detail = f"enum value {hv.number} renamed from `{bv.name}` to `{hv.name}`"
            rec.add("enum_value_renamed", at, "head", detail, old=bv.name, new=hv.name)
        if bv.number != hv.number:
            detail = f"enum value `{hv.name}` changed number from {bv.number} to {hv.number}"
            rec.add("enum_value_number_changed", at, "head", detail, old=str(bv.number), new=str(hv.number))
        label = f"enum value `{hv.name}` ({hv.number})"
        decorate(rec, "enum_value", label, was, at, bv.options, hv.options)
