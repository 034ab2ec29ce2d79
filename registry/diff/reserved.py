"""Reserved numbers and names of messages and enums: added, and deleted (freed for reuse)."""

from __future__ import annotations

from collections.abc import Iterable

from google.protobuf import descriptor_pb2 as dpb

from registry.diff.recorder import Recorder
from registry.diff.schema import At, Def

Reserving = dpb.DescriptorProto | dpb.EnumDescriptorProto


def in_ranges(number: int, ranges: Iterable[tuple[int, int]]) -> bool:
    """Whether ``number`` lies in one of the half-open ``ranges``."""
    return any(start <= number < end for start, end in ranges)


def subtract(ranges: Iterable[tuple[int, int]], minus: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    """The parts of the half-open ``ranges`` not covered by ``minus``."""
    result = list(ranges)
    for cut_start, cut_end in minus:
        pieces: list[tuple[int, int]] = []
        for start, end in result:
            if cut_end <= start or end <= cut_start:
                pieces.append((start, end))
                continue
            if start < cut_start:
                pieces.append((start, cut_start))
            if cut_end < end:
                pieces.append((cut_end, end))
        result = pieces
    return result


def reserved_ranges(proto: Reserving) -> list[tuple[int, int]]:
    """Reserved numbers as half-open ranges (enum ranges are inclusive in the descriptor)."""
    if isinstance(proto, dpb.DescriptorProto):
        return [(r.start, r.end) for r in proto.reserved_range]
    return [(r.start, r.end + 1) for r in proto.reserved_range]


def _paths(proto: Reserving) -> tuple[int, int]:
    """The descriptor field numbers of ``reserved_range`` and ``reserved_name``."""
    return (9, 10) if isinstance(proto, dpb.DescriptorProto) else (4, 5)


def _shown(ranges: list[tuple[int, int]], names: list[str]) -> str:
    return ", ".join(
        [str(s) if e == s + 1 else f"{s} to {e - 1}" for s, e in ranges] + [f'"{n}"' for n in names]
    )


def _where(
    owner: Def[dpb.DescriptorProto] | Def[dpb.EnumDescriptorProto],
    ranges: list[tuple[int, int]],
    names: list[str],
) -> At:
    """The reserved statement holding the first of ``ranges`` (else of ``names``) in ``owner``."""
    range_path, name_path = _paths(owner.proto)
    if ranges:
        index = next(
            k
            for k, (start, end) in enumerate(reserved_ranges(owner.proto))
            if start < ranges[0][1] and ranges[0][0] < end
        )
        return At(owner.name, owner.file, (*owner.path, range_path, index))
    return At(
        owner.name, owner.file, (*owner.path, name_path, list(owner.proto.reserved_name).index(names[0]))
    )


def compare_reserved(
    rec: Recorder,
    before: Def[dpb.DescriptorProto] | Def[dpb.EnumDescriptorProto],
    after: Def[dpb.DescriptorProto] | Def[dpb.EnumDescriptorProto],
    removed: list[tuple[str, int]],
) -> None:
    """Report reservations deleted, and those added that do not just cover an element ``removed``."""
    b, h = reserved_ranges(before.proto), reserved_ranges(after.proto)
    freed = subtract(b, h)
    freed_names = sorted(set(before.proto.reserved_name) - set(after.proto.reserved_name))
    if freed or freed_names:
        detail = (
            f"`{after.name}` no longer reserves {_shown(freed, freed_names)}: "
            "they are free for reuse, and data or JSON written with the old meaning would be misread"
        )
        rec.add("reserved_removed", _where(before, freed, freed_names), "base", detail)
    removed_numbers = [number for _, number in removed]
    ranges = [r for r in subtract(h, b) if not any(in_ranges(n, [r]) for n in removed_numbers)]
    names = sorted(set(after.proto.reserved_name) - set(before.proto.reserved_name) - {n for n, _ in removed})
    if ranges or names:
        rec.add(
            "reserved_added",
            _where(after, ranges, names),
            "head",
            f"`{after.name}` now reserves {_shown(ranges, names)}",
        )


def removed_member(rec: Recorder, what: str, name: str, number: int, at: At, after: Reserving) -> None:
    """A field (``what`` = "field") or enum value ("enum_value") removed: reserved, or left free."""
    label = what.replace("_", " ")
    number_kept, name_kept = in_ranges(number, reserved_ranges(after)), name in after.reserved_name
    if number_kept and name_kept:
        detail = f"{label} `{name}` ({number}) removed; its number and name are reserved"
        rec.add(f"{what}_removed_reserved", at, "base", detail)
        return
    missing = " and ".join(part for part, kept in (("number", number_kept), ("name", name_kept)) if not kept)
    detail = f"{label} `{name}` ({number}) removed without reserving its {missing}"
    if what == "enum_value":
        detail += "; JSON holding its name no longer parses"
    verdict = rec.rule_verdict(f"{what}_removed_unreserved")._replace(wire=not number_kept)
    rec.add(f"{what}_removed_unreserved", at, "base", detail, verdict)
