"""Messages, their oneofs and their fields: added, removed, moved, and changed."""

from __future__ import annotations

from google.protobuf import descriptor_pb2 as dpb

from registry.diff.fields import compare_field
from registry.diff.limits import new_field_limits
from registry.diff.named import matched
from registry.diff.options import decorate
from registry.diff.recorder import Recorder, pair
from registry.diff.reserved import compare_reserved, removed_member
from registry.diff.schema import At, Def


def walk_messages(rec: Recorder) -> None:
    """Compare every message of the registry's own files."""
    walk = matched(
        rec, "message", rec.base.messages, rec.head.messages, skip=lambda d: d.proto.options.map_entry
    )
    for before, after, was, at in walk:
        label = f"message `{after.name}`"
        decorate(
            rec, "message", label, was, at, before.proto.options, after.proto.options, subject=after.name
        )
        _oneofs(rec, before, after)
        _fields(rec, before, after)


def _real_oneofs(message: dpb.DescriptorProto) -> dict[str, int]:
    """Oneof name -> index, leaving out the synthetic oneofs of proto3 ``optional`` fields."""
    synthetic = {f.oneof_index for f in message.field if f.proto3_optional}
    return {o.name: k for k, o in enumerate(message.oneof_decl) if k not in synthetic}


def _oneof_name(message: dpb.DescriptorProto, fld: dpb.FieldDescriptorProto) -> str | None:
    """The real oneof ``fld`` belongs to, if any."""
    if not fld.HasField("oneof_index") or fld.proto3_optional:
        return None
    return message.oneof_decl[fld.oneof_index].name


def _oneofs(rec: Recorder, before: Def[dpb.DescriptorProto], after: Def[dpb.DescriptorProto]) -> None:
    b, h = before.proto, after.proto
    b_oneofs, h_oneofs = _real_oneofs(b), _real_oneofs(h)
    for name, k in h_oneofs.items():
        at = At(f"{after.name}.{name}", after.file, (*after.path, 8, k))
        if name not in b_oneofs:
            rec.add("oneof_added", at, "head", f"oneof `{name}` added to `{after.name}`")
            continue
        i = b_oneofs[name]
        was = At(f"{before.name}.{name}", before.file, (*before.path, 8, i))
        options = (b.oneof_decl[i].options, h.oneof_decl[k].options)
        decorate(rec, "oneof", f"oneof `{name}`", was, at, *options, subject=name)
    for name, i in b_oneofs.items():
        if name not in h_oneofs:
            at = At(f"{before.name}.{name}", before.file, (*before.path, 8, i))
            rec.add("oneof_removed", at, "base", f"oneof `{name}` removed from `{before.name}`")


def _fields(rec: Recorder, before: Def[dpb.DescriptorProto], after: Def[dpb.DescriptorProto]) -> None:
    b, h = before.proto, after.proto
    pairs, removed, added = pair([(f.name, f.number) for f in b.field], [(f.name, f.number) for f in h.field])
    for j in added:
        fld = h.field[j]
        presence = "optional " if fld.proto3_optional else ""
        at = At(f"{after.name}.{fld.name}", after.file, (*after.path, 2, j))
        detail = f"{presence}field `{fld.name}` ({fld.number}, {rec.head.field_type(fld)}) added"
        rec.add("field_added", at, "head", detail)
        explicit = fld.proto3_optional or fld.HasField("oneof_index") or fld.type == fld.TYPE_MESSAGE
        explicit = explicit and fld.label != fld.LABEL_REPEATED
        options = rec.head.options.fields(fld.options)
        new_field_limits(rec, f"field `{fld.name}`", fld.name, at, options, has_presence=explicit)
    for i in removed:
        fld = b.field[i]
        at = At(f"{before.name}.{fld.name}", before.file, (*before.path, 2, i))
        removed_member(rec, "field", fld.name, fld.number, at, h)
    compare_reserved(rec, before, after, [(b.field[i].name, b.field[i].number) for i in removed])

    # Which matched fields share a oneof, on each side: moving fields in or out
    # of a oneof is only wire-safe when no field gains or loses a oneof sibling.
    b_oneof_of = [_oneof_name(b, b.field[i]) for i, _ in pairs]
    h_oneof_of = [_oneof_name(h, h.field[j]) for _, j in pairs]
    for p, (i, j) in enumerate(pairs):
        bf, hf = b.field[i], h.field[j]
        at = At(f"{after.name}.{hf.name}", after.file, (*after.path, 2, j))
        was = At(f"{before.name}.{bf.name}", before.file, (*before.path, 2, i))
        compare_field(rec, "field", bf, hf, at, was)
        b_oneof, h_oneof = b_oneof_of[p], h_oneof_of[p]
        if b_oneof == h_oneof:
            continue
        b_siblings = {q for q, name in enumerate(b_oneof_of) if q != p and b_oneof and name == b_oneof}
        h_siblings = {q for q, name in enumerate(h_oneof_of) if q != p and h_oneof and name == h_oneof}
        gained = [h.field[pairs[q][1]].name for q in sorted(h_siblings - b_siblings)]
        lost = [b.field[pairs[q][0]].name for q in sorted(b_siblings - h_siblings)]
        _oneof_move(rec, hf, at, b_oneof, h_oneof, gained, lost)


def _oneof_move(
    rec: Recorder,
    fld: dpb.FieldDescriptorProto,
    at: At,
    b_oneof: str | None,
    h_oneof: str | None,
    gained: list[str],
    lost: list[str],
) -> None:
    """A field changed oneof; ``gained``/``lost``: matched fields it now does/no longer exclude."""
    label = f"field `{fld.name}` ({fld.number})"
    if b_oneof is None:
        kind, detail = "field_moved_into_oneof", f"{label} moved into oneof `{h_oneof}`"
    elif h_oneof is None:
        kind, detail = "field_moved_out_of_oneof", f"{label} moved out of oneof `{b_oneof}`"
    else:
        kind, detail = "field_oneof_changed", f"{label} moved from oneof `{b_oneof}` to `{h_oneof}`"
    if gained:
        detail += (
            f", now exclusive with {', '.join(f'`{name}`' for name in gained)}: data that sets both loses one"
        )
    if lost:
        others = ", ".join(f"`{name}`" for name in lost)
        detail += f", no longer exclusive with {others}: old readers keep only one of them"
    if not (gained or lost):
        # Binary-compatible by protobuf's own rules, but buf's WIRE rules reject
        # every oneof membership change (FIELD_SAME_ONEOF), and so does the review.
        detail += "; buf's wire rules reject any oneof change (FIELD_SAME_ONEOF)"
    rec.add(kind, at, "head", detail)
