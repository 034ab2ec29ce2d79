"""A reflection client with no chat SDK installed discovers and calls every chat.v1 service."""

from __future__ import annotations

import asyncio
import json
import subprocess
import venv
from pathlib import Path

import pytest

from chat_sdk.schema import file_descriptor_set
from chat_services.server import App

CLIENT = Path(__file__).parent / "reflection_client.py"
PACKAGES = ("grpcio==1.85.3", "grpcio-reflection==1.85.1", "protobuf>=7.35.1,<8")


@pytest.fixture(scope="module")
def bare_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A virtual environment with grpcio and grpcio-reflection only: no SDK, no services."""
    env_dir = tmp_path_factory.mktemp("reflection-venv")
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    subprocess.run(
        [python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *PACKAGES], check=True
    )
    probe = subprocess.run([python, "-c", "import chat_sdk"], capture_output=True, check=False)
    assert probe.returncode != 0, "the bare environment must not have the SDK"
    return python


async def test_reflection_lists_every_service_and_resolves_every_method(app: App, bare_python: Path) -> None:
    command = [str(bare_python), "-I", str(CLIENT), str(app.port)]
    result = await asyncio.to_thread(subprocess.run, command, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)

    expected = {
        f"{f.package}.{s.name}": {
            m.name: [m.input_type.lstrip("."), m.output_type.lstrip(".")] for m in s.method
        }
        for f in file_descriptor_set().file
        if f.package.startswith("chat.")
        for s in f.service
    }
    for name, methods in expected.items():
        assert report["services"][name] == methods
    assert "grpc.health.v1.Health" in report["services"]
    calls = report["calls"]
    assert calls["chat.v1.MessageService.GetMessage"] == {"status": "NOT_FOUND"}
    assert calls["chat.v1.AIService.Complete"]["status"] == "OK"
    assert calls["chat.v1.AIService.Complete"]["reply"]["finishReason"] == "FINISH_REASON_LENGTH"
    assert calls["chat.v1.RAGService.SearchDocuments"] == {"status": "OK", "reply": {}}  # nothing ingested
    plugins = calls["chat.v1.PluginService.ListPlugins"]["reply"]["plugins"]
    assert [p["name"] for p in plugins] == ["calculator", "summarize", "word_count"]
