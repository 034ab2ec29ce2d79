"""The TypeScript package's version, kept equal to the Python SDK's (one release, two packages).

npm wants SemVer, the wheel PEP 440: a development version ``1.2.0.dev0`` becomes the
SemVer pre-release ``1.2.0-dev.0``, which npm sorts before ``1.2.0`` and after ``1.1.0``.
Generation rewrites only the ``version`` of ``package.json`` and ``package-lock.json``
(the lock file records the root package's version too); every other field is hand-written.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

_PEP440 = re.compile(r"(\d+\.\d+\.\d+)(?:\.dev(\d+))?")
PACKAGE_FILES = ("package.json", "package-lock.json")


def npm_version(pep440: str) -> str:
    """The SemVer form of an SDK version: ``1.2.0`` stays, ``1.2.0.dev0`` becomes ``1.2.0-dev.0``."""
    match = _PEP440.fullmatch(pep440)
    if match is None:
        raise ValueError(f"not an SDK version (X.Y.Z or X.Y.Z.devN): {pep440[:40]!r}")
    release, dev = match.groups()
    return release if dev is None else f"{release}-dev.{dev}"


def write_package_version(source: Path, target: Path, version: str) -> None:
    """Copy ``package.json`` and ``package-lock.json`` from ``source`` to ``target`` with ``version``."""
    target.mkdir(parents=True, exist_ok=True)
    for name in PACKAGE_FILES:
        document = json.loads((source / name).read_text())
        document["version"] = version
        root_package = document.get("packages", {}).get("")
        if root_package is not None:
            root_package["version"] = version
        # npm's own layout: two-space indent and a final newline, so npm leaves it unchanged.
        (target / name).write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
