"""Cached test environments are keyed by what they hold, not by where the files came from."""

from __future__ import annotations

from pathlib import Path

from .venvs import environment_digest


def test_the_digest_follows_file_contents_not_their_location(tmp_path: Path) -> None:
    first, second = tmp_path / "a" / "pkg.whl", tmp_path / "b" / "pkg.whl"
    for path in (first, second):
        path.parent.mkdir()
        path.write_bytes(b"wheel")
    same = [environment_digest([f"{path}[typing]", "mypy==2.4.1"], [path]) for path in (first, second)]
    assert same[0] == same[1]
    second.write_bytes(b"another wheel")
    assert environment_digest([f"{second}[typing]", "mypy==2.4.1"], [second]) != same[0]
    assert environment_digest([f"{first}[typing]", "mypy==2.5.0"], [first]) != same[0]
