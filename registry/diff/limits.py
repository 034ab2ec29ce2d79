"""``buf.validate`` rules (protovalidate) before and after: tightened, loosened, or changed.

A rule is compared leaf by leaf (``string.max_len``, ``repeated.items.string.pattern``).
Bounds are ranked: a lower maximum, a higher minimum, a new ``required`` or a smaller
``in`` list is *tightened* (requests that passed are now refused with
INVALID_ARGUMENT); the reverse, or a deleted rule, is *loosened*. What cannot be
ranked (CEL expressions, patterns, formats, ``ignore``) is *changed*, reviewed by
hand and treated as tightened.
"""

from __future__ import annotations

from dataclasses import dataclass

from google.protobuf.message import Message

from registry.diff.recorder import Recorder
from registry.diff.schema import At

EXTENSIONS = ("buf.validate.field", "buf.validate.message", "buf.validate.oneof")

_UPPER = {"max_len": "characters", "max_bytes": "bytes", "max_items": "items", "max_pairs": "entries"}
_LOWER = {"min_len": "characters", "min_bytes": "bytes", "min_items": "items", "min_pairs": "entries"}
_EXACT = frozenset({"len", "len_bytes", "const"})
_UNRANKED = frozenset({"ignore"})  # either direction may refuse more
# Rules whose effect the engine cannot rank: any change but a deletion is reviewed by hand.
_COMPLEX = frozenset({"cel", "pattern", "prefix", "suffix", "contains", "not_contains", "well_known_regex"})
_DOCUMENTATION = frozenset({"example"})
_SHOWN = 60


@dataclass(frozen=True)
class Bound:
    """A numeric bound from ``gt``/``gte`` (lower) or ``lt``/``lte`` (upper)."""

    value: object
    inclusive: bool

    def __str__(self) -> str:
        return f"{'=' if self.inclusive else ''}{self.value}"


def _show(value: object) -> str:
    text = ", ".join(map(str, value)) if isinstance(value, tuple) else str(value)
    text = " ".join(text.split())
    return text if len(text) <= _SHOWN else text[: _SHOWN - 1] + "…"


def leaves(rules: Message | None, prefix: str = "") -> dict[str, object]:
    """Every rule set in ``rules``, by dotted path; gt/gte and lt/lte folded into ``>`` and ``<``."""
    found: dict[str, object] = {}
    if rules is None:
        return found
    for fd, value in rules.ListFields():
        path = f"{prefix}{fd.name}"
        if fd.is_repeated:
            found[path] = tuple(
                item.SerializeToString(deterministic=True) if isinstance(item, Message) else item
                for item in value
            )
        elif isinstance(value, Message):
            if value.DESCRIPTOR.full_name.startswith("google.protobuf."):
                found[path] = _show(value)  # a Timestamp or Duration bound: not ranked
            else:
                found.update(leaves(value, f"{path}."))
        elif fd.name in ("gt", "gte"):
            found[f"{prefix}>"] = Bound(value, fd.name == "gte")
        elif fd.name in ("lt", "lte"):
            found[f"{prefix}<"] = Bound(value, fd.name == "lte")
        else:
            found[path] = value
    return found


def _bound_direction(name: str, old: Bound, new: Bound) -> str:
    """ "tightened", "loosened" or "changed" for a ``>``/``<`` bound that is set on both sides."""
    if not isinstance(old.value, int | float) or not isinstance(new.value, int | float):
        return "changed"
    sign = 1 if name == ">" else -1
    if old.value == new.value:
        return "tightened" if old.inclusive and not new.inclusive else "loosened"
    return "tightened" if sign * (new.value - old.value) > 0 else "loosened"


def direction(path: str, old: object, new: object) -> str:
    """How a rule leaf moved: "tightened", "loosened", "changed" or "" (no effect on requests)."""
    name = path.rsplit(".", 1)[-1]
    if name in _DOCUMENTATION:
        return ""
    if name in _UNRANKED:
        return "changed"
    if name in _COMPLEX:
        return "loosened" if new is None else "changed"
    if old is None:
        return "tightened" if new is not False else ""
    if new is None:
        return "loosened" if old is not False else ""
    if isinstance(old, Bound) and isinstance(new, Bound):
        return _bound_direction(name, old, new)
    if name in _UPPER and isinstance(old, int) and isinstance(new, int):
        return "tightened" if new < old else "loosened"
    if name in _LOWER and isinstance(old, int) and isinstance(new, int):
        return "tightened" if new > old else "loosened"
    if name in ("in", "not_in") and isinstance(old, tuple) and isinstance(new, tuple):
        fewer, more = set(new) <= set(old), set(new) >= set(old)
        if name == "not_in":
            fewer, more = more, fewer
        return "tightened" if fewer else "loosened" if more else "changed"
    if name in _EXACT:
        return "tightened"
    if isinstance(old, bool) and isinstance(new, bool):
        return "tightened" if new else "loosened"
    return "changed"


def _refused(subject: str, path: str, new: object) -> str:
    """What a client sends that is now refused, in plain words."""
    name = path.rsplit(".", 1)[-1]
    if name in _UPPER:
        return (
            f"`{subject}` longer than {new} {_UPPER[name]}"
            if "len" in name or "bytes" in name
            else (f"`{subject}` with more than {new} {_UPPER[name]}")
        )
    if name in _LOWER:
        return f"`{subject}` with fewer than {new} {_LOWER[name]}"
    if name == "<" and isinstance(new, Bound):
        return f"`{subject}` {'above' if new.inclusive else 'at or above'} {new.value}"
    if name == ">" and isinstance(new, Bound):
        return f"`{subject}` {'below' if new.inclusive else 'at or below'} {new.value}"
    if name == "required":
        return f"no `{subject}`"
    if name == "defined_only":
        return f"an enum number `{subject}` does not define"
    if name == "in":
        return f"`{subject}` outside ({_show(new)})"
    if name == "not_in":
        return f"`{subject}` equal to one of ({_show(new)})"
    return f"`{subject}` that the new rule `{path}` rejects"


def _rule_name(path: str, value: object) -> str:
    """The rule as the schema spells it: a folded numeric bound becomes ``gt``/``gte``/``lt``/``lte``."""
    if not isinstance(value, Bound):
        return path
    owner, _, sign = path.rpartition(".")
    name = {">": "gt", "<": "lt"}[sign] + ("e" if value.inclusive else "")
    return f"{owner}.{name}" if owner else name


def _plain(value: object) -> str:
    return _show(value.value) if isinstance(value, Bound) else _show(value)


def _values(path: str, old: object, new: object) -> str:
    if old is None:
        return f"`{_rule_name(path, new)}` = {_plain(new)} added"
    if new is None:
        return f"`{_rule_name(path, old)}` (was {_plain(old)}) removed"
    before, after = _rule_name(path, old), _rule_name(path, new)
    if before != after:
        return f"`{before}` = {_plain(old)} became `{after}` = {_plain(new)}"
    return f"`{after}` from {_plain(old)} to {_plain(new)}"


def compare_limits(
    rec: Recorder, label: str, subject: str, at: At, before: dict[str, object], after: dict[str, object]
) -> None:
    """Report each ``buf.validate`` rule of an element (options by name) that changed."""
    for extension in EXTENSIONS:
        old_rule, new_rule = before.get(f"({extension})"), after.get(f"({extension})")
        old = leaves(old_rule if isinstance(old_rule, Message) else None)
        new = leaves(new_rule if isinstance(new_rule, Message) else None)
        for path in sorted(old.keys() | new.keys()):
            was, now = old.get(path), new.get(path)
            if was == now:
                continue
            moved = direction(path, was, now)
            values = _values(path, was, now)
            if moved == "tightened":
                detail = (
                    f"tightened limit of {label}: {values}; clients that send {_refused(subject, path, now)} "
                    "are now refused with INVALID_ARGUMENT"
                )
                rec.add("limit_tightened", at, "head", detail, old=_show(was), new=_show(now))
            elif moved == "loosened":
                detail = (
                    f"loosened limit of {label}: {values}; requests the base refused are now accepted "
                    "(minor: clients that rely on it need servers of this release)"
                )
                rec.add("limit_loosened", at, "head", detail, old=_show(was), new=_show(now))
            elif moved == "changed":
                detail = (
                    f"changed limit of {label}: {values}; the engine cannot rank it, review by hand: "
                    "treated as tightened, clients may now be refused with INVALID_ARGUMENT"
                )
                rec.add("limit_changed", at, "head", detail, old=_show(was), new=_show(now))


# Rules an unset (zero) value always passes: a new field carrying only these refuses
# no request an old client sends.
_ZERO_SAFE = frozenset({*_UPPER, "defined_only", "unique", "not_in", "<", "example"})
_IGNORED = (1, 3)  # IGNORE_IF_ZERO_VALUE, IGNORE_ALWAYS: rules skip an unset value


def _zero_safe(path: str, value: object) -> bool:
    name = path.rsplit(".", 1)[-1]
    if name == "<" and isinstance(value, Bound) and isinstance(value.value, int | float):
        return value.value > 0 or (value.value == 0 and value.inclusive)
    if name == "not_in" and isinstance(value, tuple):
        return 0 not in value and "" not in value
    return name in _ZERO_SAFE


def new_field_limits(
    rec: Recorder, label: str, subject: str, at: At, options: dict[str, object], *, has_presence: bool
) -> None:
    """Report the rules of an added field that refuse requests of clients who do not know the field.

    Old clients never set a new field. protovalidate skips an unset field with explicit
    presence unless it is ``required``; a field without presence is checked with its zero
    value, which fails ``min_len``, ``required``, ``const``, a pattern and the like.
    """
    rule = options.get(f"({EXTENSIONS[0]})")
    found = leaves(rule if isinstance(rule, Message) else None)
    if found.get("ignore") in _IGNORED:
        return
    for path, value in sorted(found.items()):
        if path == "required" and value is not True:
            continue
        if path != "required" and (has_presence or _zero_safe(path, value)):
            continue
        detail = (
            f"new {label} with limit `{path}` = {_show(value)}: clients that do not know the field "
            f"send no `{subject}`, and such requests are now refused with INVALID_ARGUMENT"
        )
        rec.add("limit_tightened", at, "head", detail, new=_show(value))
