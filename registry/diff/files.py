"""Files and packages: added, removed, moved to another package; file options and comments."""

from __future__ import annotations

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
        decorate(rec, "file", f"file `{name}`", at, at, before.options, after.options)
