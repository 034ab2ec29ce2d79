"""Virtual environments for tests that need a clean interpreter, cached by the digest of what they hold.

Creating a venv and installing into it costs tens of seconds; the result depends only
on the interpreter, the requirements and the bytes of the files installed (wheels are
built reproducibly). So each environment lives under ``.nox/venv-cache/<name>-<digest>``
and is made once per digest: a changed wheel gets a new one, and the stale ones of the
same name are removed. A half-made environment (no ``.complete`` marker) is rebuilt.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import venv
from collections.abc import Callable, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CACHE = Path(os.environ.get("CHAT_VENV_CACHE", ROOT / ".nox" / "venv-cache"))
MARKER = ".complete"


def environment_digest(requirements: Sequence[str], files: Sequence[Path]) -> str:
    """The digest of an environment's contents: interpreter, requirement strings, file bytes."""
    digest = hashlib.sha256(sys.version.encode() + b"\0")
    for requirement in requirements:
        for path in files:  # where a file lies does not matter, only what it holds
            requirement = requirement.replace(str(path), path.name)
        digest.update(requirement.encode() + b"\0")
    for path in files:
        digest.update(path.name.encode() + b"\0" + hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()[:24]


def cached_venv(name: str, requirements: Sequence[str], files: Sequence[Path] = ()) -> Path:
    """The python of a venv with ``requirements`` installed (pip arguments; ``files`` are the local
    files among them, digested by content); made on first use, reused while the digest holds."""

    def make(directory: Path) -> None:
        venv.create(directory, with_pip=True)
        subprocess.run(
            [
                directory / "bin" / "python",
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                *requirements,
            ],
            check=True,
        )

    return cached(name, environment_digest(requirements, files), make) / "bin" / "python"


def cached(name: str, digest: str, make: Callable[[Path], None]) -> Path:
    """``CACHE/<name>-<digest>``, filled by ``make(directory)`` on first use; stale digests of ``name`` go."""
    directory = CACHE / f"{name}-{digest}"
    if (directory / MARKER).is_file():
        return directory
    for stale in CACHE.glob(f"{name}-*"):
        shutil.rmtree(stale, ignore_errors=True)
    make(directory)
    (directory / MARKER).write_text(digest + "\n")
    return directory
