"""Every Python snippet of README.md and sdk/python/README.md type-checks and runs.

Each fenced ``python`` block is a whole program. All of them pass ``mypy --strict``
against the installed SDK wheel (with types-protobuf, as the README tells users to
install it); every one except the server example runs against the real services on
127.0.0.1 (the README's port 50051 replaced by the test server's).
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
READMES = (ROOT / "README.md", ROOT / "sdk" / "python" / "README.md")
FENCE = re.compile(r"^```python\n(.*?)^```", re.MULTILINE | re.DOTALL)
ADDRESS = "127.0.0.1:50051"


def snippets() -> list[tuple[str, str]]:
    """``(name, code)`` of every python block of the READMEs, in order."""
    found = []
    for readme in READMES:
        for index, match in enumerate(FENCE.finditer(readme.read_text()), start=1):
            found.append((f"{readme.relative_to(ROOT).as_posix()}#{index}", match.group(1)))
    return found


def _runnable(code: str) -> bool:
    # The serving example would serve until killed; the secure one names a remote host and
    # certificates that exist only in a deployment (tests talk to 127.0.0.1 alone).
    return "grpclib.server" not in code and "chat.internal" not in code


def test_every_readme_has_python_snippets_and_most_run() -> None:
    names = {name.split("#")[0] for name, _ in snippets()}
    assert names == {readme.relative_to(ROOT).as_posix() for readme in READMES}
    assert sum(_runnable(code) for _, code in snippets()) >= 5


def test_every_snippet_passes_mypy_strict_against_the_installed_wheel(tmp_path: Path) -> None:
    files = []
    for index, (_, code) in enumerate(snippets()):
        path = tmp_path / f"snippet_{index}.py"
        path.write_text(code)
        files.append(path.name)
    # An empty config: the repository's mypy settings point at the source tree, not the wheel.
    (tmp_path / "mypy.ini").write_text("[mypy]\n")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--config-file",
            "mypy.ini",
            "--cache-dir",
            ".cache",
            *files,
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    names = dict(zip(files, (name for name, _ in snippets()), strict=True))
    report = re.sub(r"snippet_\d+\.py", lambda m: names[m.group(0)], result.stdout)
    assert result.returncode == 0, report


@pytest.mark.parametrize(
    ("name", "code"), [pytest.param(name, code, id=name) for name, code in snippets() if _runnable(code)]
)
async def test_snippet_runs_against_the_services(name: str, code: str, tmp_path: Path) -> None:
    from chat_services.config import ServiceConfig
    from chat_services.server import build_app

    app = await build_app(ServiceConfig(port=0, database=tmp_path / "chat.db", completion_chunk_delay=0.0))
    port = await app.start()
    try:
        script = tmp_path / "snippet.py"
        script.write_text(code.replace(ADDRESS, f"127.0.0.1:{port}"))
        result = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-I", str(script)],
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
    finally:
        await app.shutdown()
    assert result.returncode == 0, f"{name}:\n{result.stderr[-3000:]}"
