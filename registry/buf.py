"""Running the buf CLI (installed from the ``buf-bin`` wheel) with clear errors."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path


class BufError(RuntimeError):
    """buf is missing, or a buf command failed; the message carries buf's own output."""


def buf_executable() -> str:
    """Return the path of the buf binary: the one beside this interpreter, else on PATH."""
    beside = Path(sys.executable).parent / ("buf.exe" if os.name == "nt" else "buf")
    if beside.is_file():
        return str(beside)
    found = shutil.which("buf")
    if found is None:
        raise BufError("buf not found: install it with `python -m pip install buf-bin` (nox sessions do)")
    return found


def run_buf(args: Sequence[str], *, cwd: Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run ``buf ARGS`` in ``cwd``; with ``check``, raise :class:`BufError` on a non-zero exit."""
    env = dict(os.environ)
    # Plugins (protoc-gen-*, python-grpc-tools-protoc) are console scripts of this
    # interpreter's environment; make sure buf finds those before any others.
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    result = subprocess.run(
        [buf_executable(), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if check and result.returncode != 0:
        output = (result.stderr + result.stdout).strip()
        raise BufError(f"`buf {' '.join(args)}` failed with exit code {result.returncode}:\n{output}")
    return result
