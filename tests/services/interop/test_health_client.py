"""grpcio-health-checking's client sees every chat.v1 service serving, and refuses unknown ones."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

from chat_services.server import App

CLIENT = Path(__file__).parent / "health_client.py"
SERVICES = ("chat.v1.MessageService", "chat.v1.AIService", "chat.v1.RAGService", "chat.v1.PluginService")


async def _ask(port: int, *services: str) -> dict[str, str]:
    result = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-I", str(CLIENT), str(port), *services],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    answers: dict[str, str] = json.loads(result.stdout)
    return answers


async def test_the_official_health_client_sees_each_service(app: App) -> None:
    answers = await _ask(app.port, "", *SERVICES, "chat.v1.Nope")
    assert answers == {"": "SERVING", **dict.fromkeys(SERVICES, "SERVING"), "chat.v1.Nope": "NOT_FOUND"}


async def test_the_official_health_client_sees_not_serving_while_draining(app: App) -> None:
    app.begin_draining()
    answers = await _ask(app.port, *SERVICES)
    assert answers == dict.fromkeys(SERVICES, "NOT_SERVING")
