"""services/README.md's two-user session runs as written: alice's conversation is invisible to bob."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from pathlib import Path

from chat_services.cli import main
from chat_services.server import build_app

from ..conftest import make_config

README = Path(__file__).resolve().parents[3] / "services" / "README.md"


def session_script() -> str:
    """The python block that follows the README's "A two-user session" heading."""
    text = README.read_text()
    after = text[text.index("**A two-user session**") :]
    match = re.search(r"^```python\n(.*?)^```", after, re.MULTILINE | re.DOTALL)
    assert match is not None, "the two-user session has a python block"
    return match.group(1)


async def test_the_two_user_session_of_the_readme(tmp_path: Path, capsys: object) -> None:
    keys = tmp_path / "jwt"
    tokens = {}
    for user in ("alice", "bob"):
        assert (
            main(["dev-jwt", str(keys), user, "--scope", "messages:read", "--scope", "messages:write"]) == 0
        )
        tokens[user] = capsys.readouterr().out.strip()  # type: ignore[attr-defined]
    config = make_config(
        tmp_path,
        jwt_public_key=keys / "jwt-public.pem",
        jwt_issuer="chat-services-dev",
        jwt_audience="chat-services",
    )
    app = await build_app(config)
    await app.start()
    try:
        script = tmp_path / "two_users.py"
        script.write_text(session_script().replace("127.0.0.1:50051", f"127.0.0.1:{app.port}"))
        result = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, str(script)],
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
            env={**os.environ, "ALICE_TOKEN": tokens["alice"], "BOB_TOKEN": tokens["bob"]},
        )
    finally:
        await app.shutdown()
    assert result.returncode == 0, result.stderr[-3000:]
    bob, alice = result.stdout.splitlines()
    assert re.fullmatch(r"bob: NOT_FOUND conversation '[0-9a-f]{32}' not found", bob)
    assert alice == "alice: ['PIN 4711']"
