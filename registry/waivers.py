"""Recorded waivers: the explicit, reviewed escape hatch for an intentional breaking change.

``waivers.toml`` at the repository root holds one ``[[waiver]]`` table per waiver::

    [[waiver]]
    rule = "FIELD_NO_DELETE"                   # the buf rule it excuses
    path = "proto/chat/v1/common.proto"        # the file it applies to
    match = 'name "legacy_id"'                 # optional: a phrase of buf's message
    against = "1.0.0"                          # optional: a release, "base", or "*" (default)
    reason = "legacy_id never shipped to a client; removed before any consumer adopted it."

A waiver without a reason is refused. Waived findings still appear, marked as waived
with their reason, in the breaking-check output, the review report and the changelog.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass

from registry.layout import RepoLayout
from registry.lint import Finding


@dataclass(frozen=True)
class Waiver:
    """One intentional break, allowed for a written reason."""

    rule: str
    path: str
    reason: str
    match: str = ""
    against: str = "*"

    def covers(self, finding: Finding, against: str) -> bool:
        """Whether this waiver excuses ``finding`` in the check against ``against``."""
        return (
            finding.rule == self.rule
            and finding.path == self.path
            and self.match in finding.message
            and self.against in ("*", against)
        )


class WaiverError(ValueError):
    """waivers.toml is malformed; the message says where."""


def load_waivers(layout: RepoLayout) -> list[Waiver]:
    """Read waivers.toml; a missing file means no waivers."""
    if not layout.waivers.is_file():
        return []
    try:
        data = tomllib.loads(layout.waivers.read_text())
    except tomllib.TOMLDecodeError as error:
        raise WaiverError(f"{layout.waivers.name}: {error}") from error
    waivers = []
    for index, entry in enumerate(data.get("waiver", []), start=1):
        missing = [key for key in ("rule", "path", "reason") if not str(entry.get(key, "")).strip()]
        if missing:
            raise WaiverError(f"{layout.waivers.name}: waiver {index} lacks {', '.join(missing)}")
        unknown = set(entry) - {"rule", "path", "reason", "match", "against"}
        if unknown:
            raise WaiverError(f"{layout.waivers.name}: waiver {index} has unknown keys {sorted(unknown)}")
        waivers.append(Waiver(**{key: str(value) for key, value in entry.items()}))
    return waivers
