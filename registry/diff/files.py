"""Files and packages: added, removed, moved to another package; file options and comments."""

from __future__ import annotations

from google.protobuf import descriptor_pb2 as dpb

from registry.diff.change import SAFE
from registry.diff.options import decorate
from registry.diff.recorder import Recorder
from registry.diff.schema import At


def walk_files(rec: Recorder) -> None:
    """Compare the registry's own files of both sides."""
    base, head = rec.base, rec.head
    for name in sorted(head.ours - base.files.keys()):
        rec.add("file_added", At(name, name, (2,)), "head", f"file `{name}` added")
    for name in sorted(base.ours - head.files.keys()):
        rec.add("file_removed", At(name, name, (2,)), "base", f"file `{name}` removed")
    for name in sorted(base.ours & head.ours):
        before, after = base.files[name], head.files[name]
        at = At(name, name, (2,))
        if before.package != after.package:
            detail = (
                f"package changed from `{before.package}` to `{after.package}`; "
                "every type in the file gets a new full name and SDK module"
            )
            rec.add("package_changed", at, "head", detail, old=before.package, new=after.package)
        _syntax(rec, at, before, after)
        decorate(rec, "file", f"file `{name}`", at, at, before.options, after.options)


def _syntax_of(file: dpb.FileDescriptorProto) -> str:
    """``proto2``, ``proto3`` or the edition (``2023``)."""
    if file.syntax == "editions":
        return dpb.Edition.Name(file.edition).removeprefix("EDITION_")
    return file.syntax or "proto2"


def _syntax(rec: Recorder, at: At, before: dpb.FileDescriptorProto, after: dpb.FileDescriptorProto) -> None:
    old, new = _syntax_of(before), _syntax_of(after)
    if old == new:
        return
    detail = f"file `{at.name}` changed from {old} to {new}"
    if "proto2" in (old, new):
        detail += ": proto2 has closed enums, required fields, groups and no UTF-8 checks: review by hand"
        rec.add("syntax_changed", at, "head", detail, old=old, new=new)
        return
    detail += ": judged on the features it resolves to (presence, enum openness, defaults), reported apart"
    if new not in ("proto2", "proto3"):
        detail += (
            "; note that this registry's betterproto2 and grpclib generators refuse editions files, "
            "so `buf generate` fails until they support them"
        )
    rec.add("syntax_changed", at, "head", detail, SAFE, old=old, new=new)
