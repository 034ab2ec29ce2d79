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
        _openness(rec, before, after, at)
        _values(rec, before, after)


def _openness(
    rec: Recorder, before: Def[dpb.EnumDescriptorProto], after: Def[dpb.EnumDescriptorProto], at: At
) -> None:
    """Open or closed, as the runtime resolves it from the syntax, edition and ``features.enum_type``."""
    was, now = rec.base.enum_closed(before.name), rec.head.enum_closed(after.name)
    if was is None or now is None or was == now:
        return
    if now:
        detail = (
            f"enum `{after.name}` became closed: a number it does not name is dropped to the unknown "
            "fields and the field reads its default, where the base kept it"
        )
        rec.add("enum_made_closed", at, "head", detail)
    else:
        detail = f"enum `{after.name}` became open: fields now keep numbers it does not name"
        rec.add("enum_made_open", at, "head", detail)


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
    _first_names(rec, before, after)


def _first_names(
    rec: Recorder, before: Def[dpb.EnumDescriptorProto], after: Def[dpb.EnumDescriptorProto]
) -> None:
    """Aliases (``allow_alias``): the first name of a number is the one generated code and JSON use.

    ``Name(n)`` returns it and the JSON mapping writes it, so an alias inserted before
    a name that stays changes the JSON written: old strict readers refuse it.
    """
    b_first, h_first = _first_name_of(before.proto), _first_name_of(after.proto)
    h_names = {v.name: v.number for v in after.proto.value}
    for number, old in b_first.items():
        new = h_first.get(number)
        if new is None or new == old or h_names.get(old) != number:
            continue  # gone, unchanged, or renamed/removed (reported on its own)
        j = next(k for k, v in enumerate(after.proto.value) if v.name == new)
        at = At(f"{after.name}.{new}", after.file, (*after.path, 2, j))
        detail = (
            f"number {number} of enum `{after.name}` is now first named `{new}` instead of `{old}` "
            f"(an alias before it): generated code's Name({number}) and the JSON written say `{new}`, "
            "which old strict JSON readers refuse"
        )
        rec.add("enum_value_alias_first_changed", at, "head", detail, old=old, new=new)


def _first_name_of(enum: dpb.EnumDescriptorProto) -> dict[int, str]:
    """Number -> the first name declared for it."""
    first: dict[int, str] = {}
    for value in enum.value:
        first.setdefault(value.number, value.name)
    return first
