"""Recorded waivers: the explicit, reviewed escape hatch for one intentional breaking change.

``waivers.toml`` at the repository root holds one ``[[waiver]]`` table per change::

    [[waiver]]
    element = "chat.v1.User.avatar_url"   # required: the fully qualified field, message, enum,
                                          # enum value, service, method or oneof; a deleted or
                                          # renamed file by its path (chat/v1/old.proto)
    rule = "FIELD_SAME_TYPE"              # optional: only this buf rule (or LIMIT_TIGHTENED, ...)
    against = "1.0.0"                     # optional: only this release, or "base"
    expires = 2027-06-30                  # optional: after this date the waiver fails `check`
    reason = "avatar_url was never filled in by any server."

A waiver without ``rule`` excuses every finding about its element, in every check
(wire/JSON against each release, source and clients against the base): one waiver
for one change. It never reaches another element, not even a sibling or a child.
Unknown keys, rules buf does not have, a missing reason or a malformed date are
errors; a waiver that excuses nothing, names a release that does not exist, or has
expired fails the check with its line (see :func:`registry.breaking.check_waivers`).
Waived findings still appear, marked as waived with their reason, in the
breaking-check output, the review report and the changelog.
"""

from __future__ import annotations

import datetime
import functools
import json
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

from registry.buf import run_buf
from registry.diff import RULES
from registry.layout import RepoLayout

_KEYS = frozenset({"element", "rule", "against", "expires", "reason"})
_HEADER = re.compile(r"^[ \t]*\[\[[ \t]*waiver[ \t]*\]\]", re.MULTILINE)


@dataclass(frozen=True)
class Waiver:
    """One intentional break of one element, allowed for a written reason."""

    element: str
    reason: str
    rule: str = ""  # empty: every rule
    against: str = ""  # empty: every check
    expires: datetime.date | None = None
    line: int = 0  # the line of its [[waiver]] header in waivers.toml

    def covers(self, element: str, rule: str, against: str) -> bool:
        """Whether this waiver excuses a finding of ``rule`` about ``element`` in the check ``against``."""
        return element == self.element and self.rule in ("", rule) and self.against in ("", against)

    def expired(self, today: datetime.date) -> bool:
        """True after the ``expires`` date."""
        return self.expires is not None and today > self.expires

    def __str__(self) -> str:
        scope = [f"element {self.element}"]
        scope += [f"rule {self.rule}"] if self.rule else []
        scope += [f"against {self.against}"] if self.against else []
        return f"waivers.toml:{self.line}: waiver for {', '.join(scope)}"


class WaiverError(ValueError):
    """waivers.toml is malformed; the message says where."""


@functools.cache
def _buf_rules(cwd: Path) -> frozenset[str]:
    result = run_buf(["config", "ls-breaking-rules", "--version", "v2", "--format", "json"], cwd=cwd)
    return frozenset(json.loads(line)["id"] for line in result.stdout.splitlines() if line.strip())


def known_rules(layout: RepoLayout) -> frozenset[str]:
    """Every rule a waiver may name: buf's breaking rules and the review's own client checks."""
    return _buf_rules(layout.root) | {rule.check for rule in RULES.values() if rule.check}


def _waiver(layout: RepoLayout, index: int, line: int, entry: dict[str, object]) -> Waiver:
    where = f"{layout.waivers.name}:{line}: waiver {index}"
    unknown = set(entry) - _KEYS
    if unknown:
        raise WaiverError(f"{where} has unknown keys {sorted(unknown)} (known: {', '.join(sorted(_KEYS))})")
    missing = [key for key in ("element", "reason") if not str(entry.get(key, "")).strip()]
    if missing:
        raise WaiverError(f"{where} lacks {', '.join(missing)}")
    expires = entry.get("expires")
    if expires is not None and not (
        isinstance(expires, datetime.date) and not isinstance(expires, datetime.datetime)
    ):
        raise WaiverError(f"{where}: expires must be a date such as 2027-06-30, without quotes")
    rule = str(entry.get("rule", ""))
    if rule and rule not in known_rules(layout):
        raise WaiverError(f"{where}: rule {rule!r} is not a buf breaking rule nor a check of the review")
    return Waiver(
        element=str(entry["element"]).strip(),
        reason=str(entry["reason"]).strip(),
        rule=rule,
        against=str(entry.get("against", "")).removeprefix("v"),
        expires=expires,
        line=line,
    )


def load_waivers(layout: RepoLayout) -> list[Waiver]:
    """Read waivers.toml; a missing file means no waivers."""
    if not layout.waivers.is_file():
        return []
    text = layout.waivers.read_text()
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise WaiverError(f"{layout.waivers.name}: {error}") from error
    unknown = set(data) - {"waiver"}
    if unknown:
        raise WaiverError(f"{layout.waivers.name}: unknown tables {sorted(unknown)}; write [[waiver]]")
    lines = [text.count("\n", 0, match.start()) + 1 for match in _HEADER.finditer(text)]
    entries = data.get("waiver", [])
    return [
        _waiver(layout, index, lines[index - 1] if index <= len(lines) else 0, entry)
        for index, entry in enumerate(entries, start=1)
    ]
