"""Running the TypeScript package's `node --test` suites from pytest.

The nox sessions install the package's locked npm dependencies (`npm ci`) and compile
it with `tsc` before pytest starts, so the suites are plain JavaScript under
``sdk/typescript/dist/test`` by then.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

TS_DIR = Path(__file__).resolve().parent.parent / "sdk" / "typescript"
COMPILED_TESTS = TS_DIR / "dist" / "test"


def run_node_suite(
    name: str, env: dict[str, str], *, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run ``sdk/typescript/test/<name>.test.ts`` (compiled) with ``node --test`` and extra ``env``."""
    node = shutil.which("node")
    assert node is not None, "node (20 or later) must be on PATH"
    suite = COMPILED_TESTS / f"{name}.test.js"
    assert suite.is_file(), (
        f"{suite} is missing: build the TypeScript package (nox -s tests runs npm ci and tsc)"
    )
    return subprocess.run(
        [node, "--test", "--test-reporter=spec", str(suite)],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
    )


def failure_report(result: subprocess.CompletedProcess[str], limit: int = 6000) -> str:
    """The end of a failed suite's output (node lists the failing tests last)."""
    return (result.stdout + result.stderr)[-limit:]
