"""Which version a schema change needs, from the changes :func:`registry.diff.diff_schemas` finds.

The policy, strongest rule first:

* **major**: any change that breaks the wire format, JSON, generated code or
  clients' requests (``wire_breaking``, ``json_breaking``, ``source_breaking`` or
  ``client_breaking``).
* **minor** or **patch** for a safe change: what :data:`registry.diff.RULES` says
  for its kind. Additions, deprecations and loosened limits are minor (the API
  grows, or tells its users to plan a move); comments, options that change no
  shipped SDK and new reservations are patch.
* **none**: no change at all.

Versions are plain ``X.Y.Z``; a major bump of ``0.Y.Z`` gives ``1.0.0`` (no
special meaning for 0.x). Development builds between releases get a PEP 440
``.devN`` version of the release they lead to, which sorts after the last release.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from enum import StrEnum

from registry.diff import RULES, Change

_VERSION = re.compile(r"(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)")


class Bump(StrEnum):
    """How far a version moves: none < patch < minor < major."""

    NONE = "none"
    PATCH = "patch"
    MINOR = "minor"
    MAJOR = "major"

    @property
    def rank(self) -> int:
        """Position in the order none (0) < patch (1) < minor (2) < major (3)."""
        return _RANKS[self]

    @staticmethod
    def highest(bumps: Iterable[Bump]) -> Bump:
        """The strongest of ``bumps``; ``NONE`` when there are none."""
        return max(bumps, key=lambda bump: bump.rank, default=Bump.NONE)


_RANKS = {Bump.NONE: 0, Bump.PATCH: 1, Bump.MINOR: 2, Bump.MAJOR: 3}


def change_bump(change: Change) -> Bump:
    """The bump one change needs on its own (see the module docstring)."""
    if not change.safe:
        return Bump.MAJOR
    rule = RULES.get(change.kind)
    return Bump(rule.bump) if rule is not None else Bump.PATCH


def required_bump(changes: Iterable[Change]) -> Bump:
    """The bump a release holding all of ``changes`` needs: the strongest any one needs."""
    return Bump.highest(change_bump(change) for change in changes)


def parse_version(version: str) -> tuple[int, int, int]:
    """Split a ``X.Y.Z`` version into numbers; :class:`ValueError` for anything else."""
    match = _VERSION.fullmatch(version)
    if match is None:
        raise ValueError(f"not a X.Y.Z version: {version!r}")
    major, minor, patch = (int(part) for part in match.groups())
    return major, minor, patch


def next_version(current: str, bump: Bump) -> str:
    """The version after ``current`` (``X.Y.Z``) for ``bump``; the same version for ``NONE``."""
    major, minor, patch = parse_version(current)
    if bump is Bump.MAJOR:
        return f"{major + 1}.0.0"
    if bump is Bump.MINOR:
        return f"{major}.{minor + 1}.0"
    if bump is Bump.PATCH:
        return f"{major}.{minor}.{patch + 1}"
    return current


def dev_version(last_release: str | None, bump: Bump) -> str:
    """A PEP 440 version for a build made after ``last_release`` with changes needing ``bump``.

    It is the ``.dev0`` pre-release of the next version, so it sorts after
    ``last_release`` and before the release it leads to. With no changes it is
    ``last_release`` itself; before any release it is ``1.0.0.dev0``.
    """
    if last_release is None:
        return "1.0.0.dev0"
    if bump is Bump.NONE:
        parse_version(last_release)
        return last_release
    return f"{next_version(last_release, bump)}.dev0"
