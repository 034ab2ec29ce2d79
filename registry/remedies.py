"""Breaking findings as a reviewer acts on them: one line per change, the checks it fails, the next step.

buf reports one finding per rule and per release checked; a field deleted without
reservation fails three rules against three releases. :func:`changes_to_fix` folds
them by element into one :class:`ToFix`, naming the rules and the checks, with what to
do next: reserve, deprecate first, move to ``chat.v2``, or the waiver to write.
"""

from __future__ import annotations

from dataclasses import dataclass

from registry.breaking import BreakingCheck

_V2 = "or make it in a new package version beside v1 (proto/chat/v2, package chat.v2)"
# (a part of the rule's name, next step), first match wins.
_STEPS: tuple[tuple[str, str], ...] = (
    ("WAIVER_", "edit waivers.toml as the finding says"),
    (
        "FIELD_NO_DELETE_UNLESS",
        'reserve its number and name in the message (`reserved N;` and `reserved "name";`)',
    ),
    (
        "ENUM_VALUE_NO_DELETE_UNLESS",
        'reserve its number and name in the enum (`reserved N;` and `reserved "NAME";`)',
    ),
    (
        "FIELD_NO_DELETE",
        "deprecate it first (`[deprecated = true]`) in a release, then delete it with its number and "
        "name reserved",
    ),
    ("ENUM_VALUE_NO_DELETE", "deprecate it first, then delete it with its number and name reserved"),
    ("RESERVED_", "put the reservation back: a freed number or name can be reused with another meaning"),
    ("FILE_SAME_PACKAGE", f"keep the package: {_V2.removeprefix('or ')}"),
    ("FILE_NO_DELETE", f"keep the file and mark its elements `deprecated = true`, {_V2}"),
    ("_NO_DELETE", f"keep it and mark it `deprecated = true` until callers have moved, {_V2}"),
    ("LIMIT_", "keep the old limit for existing fields (put the stricter one on a new field), or relax it"),
    ("HTTP_ROUTE_", "keep the old route as an `additional_bindings` entry beside the new one"),
    ("", f"revert it; add a new field or value (new number and name) and deprecate the old one, {_V2}"),
)


def next_step(rules: tuple[str, ...]) -> str:
    """What to do about a change that fails ``rules`` (the first rule with a specific step decides)."""
    for part, step in _STEPS:
        if any(part in rule for rule in rules):
            return step
    return _STEPS[-1][1]


@dataclass(frozen=True)
class ToFix:
    """One change that fails at least one check, as a reviewer acts on it."""

    element: str  # the full name, or a file path
    path: str
    line: int
    column: int
    rules: tuple[str, ...]
    against: tuple[str, ...]  # the labels of the checks it fails, in check order
    message: str  # buf's sentence of the first finding

    @property
    def step(self) -> str:
        """The next step, and the waiver to write if the break is intended."""
        step = next_step(self.rules)
        if any(rule.startswith("WAIVER_") for rule in self.rules) or ":" in self.element:
            return step  # a waivers.toml finding, or a finding no element could be named for
        return f'{step}; if it is intended, waive it: [[waiver]] element = "{self.element}" reason = "..."'

    def __str__(self) -> str:
        return (
            f"{self.path}:{self.line}:{self.column}: {self.element}: {', '.join(self.rules)} "
            f"(against {', '.join(self.against)}): {self.message}\n    next: {self.step}"
        )


def changes_to_fix(checks: list[BreakingCheck]) -> list[ToFix]:
    """Every failing finding of ``checks``, one entry per element, in order of first appearance."""
    found: dict[str, ToFix] = {}
    for check in checks:
        for finding in check.findings:
            element = check.elements.get(finding) or f"{finding.path}:{finding.line}"
            seen = found.get(element)
            if seen is None:
                found[element] = ToFix(
                    element,
                    finding.path,
                    finding.line,
                    finding.column,
                    (finding.rule,),
                    (check.label,),
                    finding.message,
                )
                continue
            rules = seen.rules + (() if finding.rule in seen.rules else (finding.rule,))
            against = seen.against + (() if check.label in seen.against else (check.label,))
            found[element] = ToFix(element, seen.path, seen.line, seen.column, rules, against, seen.message)
    return list(found.values())


def github_annotation(item: ToFix) -> str:
    """The change as a GitHub Actions error annotation on its file and line."""
    message = f"{item.message} (against {', '.join(item.against)}). Next: {item.step}".replace("\n", " ")
    where = f"file={item.path},line={item.line},col={item.column}"
    return f"::error {where},title={item.element}: {', '.join(item.rules)}::{message}"
