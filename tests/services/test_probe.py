"""`chat-services health`: the container probe asks grpc.health.v1 and answers by its exit code."""

from __future__ import annotations

import argparse
import asyncio
import socket
import sys
from pathlib import Path

import pytest

from chat_services.probe import HealthTarget, add_health_command, check_health, target_from
from chat_services.server import App

SCRIPT = Path(sys.executable).parent / "chat-services"


async def run_probe(*args: str) -> tuple[int, str]:
    """Run the installed `chat-services health` as a probe would; its exit code and output."""
    process = await asyncio.create_subprocess_exec(
        str(SCRIPT), "health", *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    output, _ = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode is not None
    return process.returncode, output.decode()


async def test_a_serving_server_passes_the_probe(app: App) -> None:
    code, output = await run_probe("--port", str(app.port))
    assert code == 0, output
    assert "SERVING" in output


async def test_each_service_is_asked_by_its_name(app: App) -> None:
    target = HealthTarget(port=app.port, service="chat.v1.MessageService")
    assert await check_health(target) == "SERVING"


async def test_an_unknown_service_fails_the_probe(app: App) -> None:
    code, output = await run_probe("--port", str(app.port), "--service", "chat.v1.NoSuchService")
    assert code == 1
    assert "NOT_FOUND" in output


async def test_a_draining_server_fails_the_probe(app: App) -> None:
    app.begin_draining()
    assert await check_health(HealthTarget(port=app.port)) == "NOT_SERVING"
    code, output = await run_probe("--port", str(app.port))
    assert code == 1
    assert "NOT_SERVING" in output


async def test_nothing_listening_fails_the_probe_with_the_reason() -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]  # bound, never listening: connections are refused
        code, output = await run_probe("--port", str(port), "--timeout", "5")
    assert code == 1
    assert f"127.0.0.1:{port}" in output
    assert "Traceback" not in output


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--tls-cert", "c.pem"], "needs both --tls-cert and --tls-key"),
        (["--tls-cert", "c.pem", "--tls-key", "c.key"], "need --tls-ca"),
        (["--server-name", "chat-services"], "need --tls-ca"),
        (["--port", "0"], "outside 1-65535"),
        (["--timeout", "0"], "must be positive"),
        (["--service", "s" * 300], "longer than 256"),
    ],
)
def test_flags_that_do_not_fit_together_are_refused(flags: list[str], message: str) -> None:
    parser = argparse.ArgumentParser()
    add_health_command(parser.add_subparsers(dest="command"))
    with pytest.raises(ValueError, match=message):
        target_from(parser.parse_args(["health", *flags]))
