"""Extensions (custom options and extension fields), file-level and message-level.

An extension is matched by the message it extends and its number, then by its
full name (a changed number or extendee), so a rename, a renumbering, a new type
or a deletion is each reported once.
"""

from __future__ import annotations

from google.protobuf import descriptor_pb2 as dpb

from registry.diff.fields import compare_field
from registry.diff.recorder import Recorder
from registry.diff.schema import At, Def

Extension = Def[dpb.FieldDescriptorProto]


def _match(rec: Recorder) -> tuple[list[tuple[Extension, Extension]], list[Extension], list[Extension]]:
    base = [e for e in rec.base.extensions if e.file in rec.base.ours]
    head = [e for e in rec.head.extensions if e.file in rec.head.ours]
    pairs: list[tuple[Extension, Extension]] = []
    keys = (
        lambda schema, e: (schema.type_key(e.proto.extendee), e.proto.number),
        lambda schema, e: schema.key(e.name),
    )
    for key in keys:
        for b in list(base):
            found = next((h for h in head if key(rec.head, h) == key(rec.base, b)), None)
            if found is not None:
                pairs.append((b, found))
                base.remove(b)
                head.remove(found)
    return pairs, base, head


def walk_extensions(rec: Recorder) -> None:
    """Compare the extensions declared in the registry's own files."""
    pairs, removed, added = _match(rec)
    for ext in added:
        extendee = ext.proto.extendee.removeprefix(".")
        shape = f"{ext.proto.number}, {rec.head.field_type(ext.proto)}"
        detail = f"extension `{ext.name}` ({shape}) of `{extendee}` added"
        rec.add("extension_added", At(ext.name, ext.file, ext.path), "head", detail)
    for ext in removed:
        extendee = ext.proto.extendee.removeprefix(".")
        detail = (
            f"extension `{ext.name}` ({ext.proto.number}) of `{extendee}` removed: "
            "its number is free for reuse and values set with it are no longer read"
        )
        rec.add("extension_removed", At(ext.name, ext.file, ext.path), "base", detail)
    for before, after in pairs:
        at, was = At(after.name, after.file, after.path), At(before.name, before.file, before.path)
        old, new = before.proto.extendee.removeprefix("."), after.proto.extendee.removeprefix(".")
        if rec.base.type_key(before.proto.extendee) != rec.head.type_key(after.proto.extendee):
            detail = f"extension `{after.name}` now extends `{new}` instead of `{old}`"
            rec.add("extension_extendee_changed", at, "head", detail, old=old, new=new)
        compare_field(rec, "extension", before.proto, after.proto, at, was)
