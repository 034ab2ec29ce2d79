"""The TypeScript package's SemVer version follows the Python SDK's PEP 440 version."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from registry.npm_package import npm_version, write_package_version


@pytest.mark.parametrize(
    ("pep440", "semver"),
    [
        ("1.1.0", "1.1.0"),
        ("1.2.0.dev0", "1.2.0-dev.0"),
        ("2.0.0.dev3", "2.0.0-dev.3"),
        ("10.0.12", "10.0.12"),
    ],
)
def test_npm_version_spells_development_versions_as_prereleases(pep440: str, semver: str) -> None:
    assert npm_version(pep440) == semver


@pytest.mark.parametrize("bad", ["1.2", "1.2.0rc1", "v1.2.0", "1.2.0.post1", ""])
def test_npm_version_refuses_other_versions(bad: str) -> None:
    with pytest.raises(ValueError, match="not an SDK version"):
        npm_version(bad)


def test_only_the_version_fields_change(tmp_path: Path) -> None:
    source, target = tmp_path / "source", tmp_path / "target"
    source.mkdir()
    manifest = {"name": "@chat-platform/sdk", "version": "0.0.0", "dependencies": {"a": "1.0.0"}}
    lock = {"name": "@chat-platform/sdk", "version": "0.0.0", "packages": {"": {"version": "0.0.0"}, "x": {}}}
    (source / "package.json").write_text(json.dumps(manifest))
    (source / "package-lock.json").write_text(json.dumps(lock))
    write_package_version(source, target, "1.2.0-dev.0")
    written = json.loads((target / "package.json").read_text())
    assert written == {**manifest, "version": "1.2.0-dev.0"}
    written_lock = json.loads((target / "package-lock.json").read_text())
    assert written_lock == {
        **lock,
        "version": "1.2.0-dev.0",
        "packages": {"": {"version": "1.2.0-dev.0"}, "x": {}},
    }
    assert (target / "package.json").read_text().endswith("}\n")
