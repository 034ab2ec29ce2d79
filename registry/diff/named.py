"""Matching the named types of both sides (messages, enums, services): added, removed, moved."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

from registry.diff.recorder import Recorder
from registry.diff.schema import At, Def, P


def moved(rec: Recorder, what: str, before: Def[P], after: Def[P]) -> None:
    """A top-level type that moved to another file: generated imports change."""
    if after.parent is None and before.file != after.file:
        detail = f"{what} `{after.name}` moved from `{before.file}` to `{after.file}`"
        old_file = rec.head.files.get(before.file)
        if old_file is not None and any(
            old_file.dependency[i] == after.file for i in old_file.public_dependency
        ):
            detail += (
                f" behind `import public` in `{before.file}`: the Python SDKs keep it where it was "
                "(the _pb2 module re-exports public imports, the dataclass SDK has one module per "
                "package), but protoc-gen-es does not re-export them, so TypeScript imports break"
            )
        at = At(after.name, after.file, after.path)
        rec.add(f"{what}_moved", at, "head", detail, old=before.file, new=after.file)


def matched(
    rec: Recorder,
    what: str,
    base: Mapping[str, Def[P]],
    head: Mapping[str, Def[P]],
    *,
    skip: Callable[[Def[P]], bool] = lambda _: False,
    removed_note: str = "",
) -> Iterator[tuple[Def[P], Def[P], At, At]]:
    """Report ``what``s added, removed and moved; yield (before, after, was, at) for the rest.

    A nested type is reported only when its parent exists on the other side: a removed
    message's nested types go with it.
    """
    for key, after in head.items():
        if after.file not in rec.head.ours or skip(after):
            continue
        before = base.get(key)
        at = At(after.name, after.file, after.path)
        if before is None:
            if after.parent is None or after.parent in rec.base.messages:
                rec.add(f"{what}_added", at, "head", f"{what} `{after.name}` added")
            continue
        moved(rec, what, before, after)
        yield before, after, At(before.name, before.file, before.path), at
    for key, gone in base.items():
        if gone.file not in rec.base.ours or skip(gone) or key in head:
            continue
        if gone.parent is None or gone.parent in rec.head.messages:
            at = At(gone.name, gone.file, gone.path)
            rec.add(f"{what}_removed", at, "base", f"{what} `{gone.name}` removed{removed_note}")
