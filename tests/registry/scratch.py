"""Scratch git repositories holding a copy of the schema module, for governance tests."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from registry.codegen import generate
from registry.layout import RepoLayout

from ..conftest import copy_repo

GIT = [
    "git",
    "-c",
    "user.name=test",
    "-c",
    "user.email=test@example.invalid",
    "-c",
    "init.defaultBranch=main",
]


def git(layout: RepoLayout, *args: str) -> str:
    """Run git in the scratch repository and return its output."""
    result = subprocess.run([*GIT, *args], cwd=layout.root, capture_output=True, text=True, check=True)
    return result.stdout


def scratch_git_repo(destination: Path) -> RepoLayout:
    """The module and its generated code with no release yet, committed on ``main`` in a new repository."""
    layout = copy_repo(destination, with_releases=False)
    generate(layout)  # the SDK version of a tree without releases
    git(layout, "init", "-q")
    commit_all(layout, "base")
    return layout


def commit_all(layout: RepoLayout, message: str) -> None:
    """Commit every file of the scratch repository."""
    git(layout, "add", "-A")
    git(layout, "commit", "-q", "--allow-empty", "-m", message)


def edit(layout: RepoLayout, file: str, old: str, new: str, *, count: int = 1) -> None:
    """Replace ``old`` with ``new`` in a proto file of the module; fail loudly if it is absent."""
    path = layout.root / "proto" / "chat" / "v1" / file
    text = path.read_text()
    assert old in text, f"{old!r} not in {file}"
    path.write_text(text.replace(old, new, count))


def edit_regex(layout: RepoLayout, file: str, pattern: str, new: str) -> None:
    """Replace the first match of ``pattern`` (multi-line) in a proto file of the module."""
    path = layout.root / "proto" / "chat" / "v1" / file
    text, count = re.subn(pattern, new, path.read_text(), count=1, flags=re.MULTILINE | re.DOTALL)
    assert count == 1, f"{pattern!r} not found in {file}"
    path.write_text(text)


def line_of(layout: RepoLayout, file: str, needle: str) -> int:
    """The 1-based line of the first line containing ``needle``."""
    lines = (layout.root / "proto" / "chat" / "v1" / file).read_text().splitlines()
    return next(i for i, line in enumerate(lines, start=1) if needle in line)
