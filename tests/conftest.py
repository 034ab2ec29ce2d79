"""Fixtures shared by the whole suite: the repository, and scratch copies of it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from registry.layout import RepoLayout

ROOT = Path(__file__).resolve().parent.parent

# What generation reads; a scratch copy with these can run buf on its own.
# pyproject.toml counts: betterproto2's compiler formats its output with ruff,
# which reads the repository's ruff settings.
GENERATION_INPUTS = ("buf.yaml", "buf.gen.yaml", "pyproject.toml", "proto", "releases", "waivers.toml")


@pytest.fixture(scope="session")
def repo() -> RepoLayout:
    """The repository under test, read-only."""
    return RepoLayout(ROOT)


def copy_repo(destination: Path, *, with_generated: bool = True, with_releases: bool = True) -> RepoLayout:
    """Copy the schema module (by default with the generated code and releases) to ``destination``."""
    source = RepoLayout(ROOT)
    target = RepoLayout(destination)
    destination.mkdir(parents=True, exist_ok=True)
    for name in GENERATION_INPUTS:
        path = ROOT / name
        if not path.exists() or (name == "releases" and not with_releases):
            continue
        if path.is_dir():
            shutil.copytree(path, destination / name)
        else:
            shutil.copy2(path, destination / name)
    if with_generated:
        for owned in source.generated:
            copy = destination / owned.relative_to(ROOT)
            copy.parent.mkdir(parents=True, exist_ok=True)
            if owned.is_dir():
                shutil.copytree(owned, copy, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                shutil.copy2(owned, copy)
    return target


@pytest.fixture
def scratch_repo(tmp_path: Path) -> RepoLayout:
    """A throw-away copy of the schema module and its generated code, outside any git checkout."""
    return copy_repo(tmp_path / "repo")
