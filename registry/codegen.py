"""Generating the SDK with buf, and proving the committed code is what buf writes."""

from __future__ import annotations

import filecmp
import subprocess
import tempfile
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from google.protobuf import descriptor_pb2

from registry.buf import run_buf
from registry.layout import RepoLayout
from registry.npm_package import npm_version, write_package_version
from registry.versioning import derived_version, write_version_file


class DriftKind(StrEnum):
    """How a generated file in the tree differs from buf's output."""

    MISSING = "missing"  # buf writes it, the tree lacks it
    CHANGED = "changed"  # both have it, with different content
    STALE = "stale"  # the tree has it, buf no longer writes it
    UNCOMMITTED = "uncommitted"  # matches buf, but git does not track it yet


@dataclass(frozen=True)
class Drift:
    """One generated file that differs from what buf writes."""

    path: str
    kind: DriftKind

    def __str__(self) -> str:
        return f"{self.kind.value:>11}  {self.path}"


def generate(layout: RepoLayout, *, into: Path | None = None) -> None:
    """Write the SDK targets, the schema image and the SDK versions below ``into`` (default: the repo)."""
    base = into or layout.root
    run_buf(["generate", "--output", str(base)], cwd=layout.root)
    image = base / layout.image.relative_to(layout.root)
    image.parent.mkdir(parents=True, exist_ok=True)
    # A plain FileDescriptorSet with comments: loadable by any protobuf runtime.
    run_buf(["build", "--as-file-descriptor-set", "--output", str(image)], cwd=layout.root)
    head = descriptor_pb2.FileDescriptorSet.FromString(image.read_bytes())
    version_file = base / layout.version_file.relative_to(layout.root)
    version = derived_version(layout, head)
    write_version_file(version_file, version)
    typescript = base / layout.typescript_dir.relative_to(layout.root)
    write_package_version(layout.typescript_dir, typescript, npm_version(version))


def _files_below(base: Path, owned: Path) -> set[str]:
    """Relative paths (to ``base``) of every file at or below ``owned``, ignoring caches."""
    if owned.is_file():
        return {owned.relative_to(base).as_posix()}
    if not owned.is_dir():
        return set()
    return {
        path.relative_to(base).as_posix()
        for path in owned.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    }


def _untracked(layout: RepoLayout, paths: set[str]) -> set[str]:
    """Those of ``paths`` that git does not track; empty outside a git checkout."""
    result = subprocess.run(
        ["git", "ls-files", "--", *sorted(paths)],
        cwd=layout.root,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        return set()
    return paths - set(result.stdout.splitlines())


def find_drift(layout: RepoLayout) -> list[Drift]:
    """Generate into a scratch directory and compare it, file by file, with the tree."""
    with tempfile.TemporaryDirectory(prefix="chat-generate-") as scratch:
        expected_base = Path(scratch)
        generate(layout, into=expected_base)
        expected: set[str] = set()
        actual: set[str] = set()
        for owned in layout.generated:
            relative = owned.relative_to(layout.root)
            expected |= _files_below(expected_base, expected_base / relative)
            actual |= _files_below(layout.root, owned)
        drift = [Drift(path, DriftKind.MISSING) for path in expected - actual]
        drift += [Drift(path, DriftKind.STALE) for path in actual - expected]
        drift += [
            Drift(path, DriftKind.CHANGED)
            for path in expected & actual
            if not filecmp.cmp(expected_base / path, layout.root / path, shallow=False)
        ]
    clean = expected & actual - {d.path for d in drift}
    drift += [Drift(path, DriftKind.UNCOMMITTED) for path in _untracked(layout, clean)]
    return sorted(drift, key=lambda d: d.path)
