"""Where walkers write what they find: a change named by kind, judged by the rules table."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from registry.diff.change import Change, Side, Verdict
from registry.diff.rules import RULES
from registry.diff.schema import At, Schema


class Recorder:
    """Both sides of the comparison, and the changes found so far."""

    def __init__(self, base: Schema, head: Schema) -> None:
        self.base = base
        self.head = head
        self.changes: list[Change] = []

    @staticmethod
    def rule_verdict(kind: str) -> Verdict:
        """The verdict the rules table gives ``kind`` (for a varying kind, the strongest)."""
        return RULES[kind].verdict

    def add(
        self,
        kind: str,
        at: At,
        side: Side,
        detail: str,
        verdict: Verdict | None = None,
        *,
        old: str = "",
        new: str = "",
    ) -> None:
        """Record a change of ``kind``; only a kind whose verdict varies may pass ``verdict``."""
        rule = RULES[kind]
        if verdict is None:
            verdict = rule.verdict
        elif not rule.varies or not verdict.within(rule.verdict):
            raise ValueError(f"{kind}: the rules table fixes its verdict ({rule.verdict}), not {verdict}")
        schema = self.head if side == "head" else self.base
        line = schema.line(at.file, at.path)
        wire, json, source, clients = verdict
        self.changes.append(
            Change(at.name, kind, at.file, line, side, wire, json, source, detail, clients, old, new)
        )


def pair(
    base: Sequence[tuple[str, int]], head: Sequence[tuple[str, int]]
) -> tuple[list[tuple[int, int]], list[int], list[int]]:
    """Match (name, number) items: both equal, then same name, then same number.

    Returns the matched index pairs, and the unmatched base and head indexes.
    """
    pairs: list[tuple[int, int]] = []
    left_base, left_head = list(range(len(base))), list(range(len(head)))
    matchers: tuple[Callable[[tuple[str, int], tuple[str, int]], bool], ...] = (
        lambda b, h: b == h,
        lambda b, h: b[0] == h[0],
        lambda b, h: b[1] == h[1],
    )
    for matches in matchers:
        for i in list(left_base):
            for j in left_head:
                if matches(base[i], head[j]):
                    pairs.append((i, j))
                    left_base.remove(i)
                    left_head.remove(j)
                    break
    return pairs, left_base, left_head
