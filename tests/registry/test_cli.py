"""`python -m registry generate --check`: exit codes and what it prints."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from registry.layout import RepoLayout


def _check(layout: RepoLayout) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "registry", "generate", "--check"],
        cwd=layout.root,
        capture_output=True,
        text=True,
        check=False,
    )


def test_check_passes_on_a_clean_copy(scratch_repo: RepoLayout) -> None:
    result = _check(scratch_repo)
    assert result.returncode == 0, result.stderr
    assert "matches" in result.stdout


def test_check_fails_and_names_each_drifted_file(scratch_repo: RepoLayout) -> None:
    (scratch_repo.root / "sdk/python/pb2/chat/v1/rag_service_pb2.pyi").unlink()
    result = _check(scratch_repo)
    assert result.returncode == 1
    assert "missing  sdk/python/pb2/chat/v1/rag_service_pb2.pyi" in result.stderr
    assert "nox -s generate" in result.stderr


def test_check_outside_a_repository_is_a_clear_error(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "registry", "generate", "--check"],
        cwd=str(tmp_path),
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert "no buf.yaml" in result.stderr
