"""`python -m chat_gateway.dev` stops the chat-services it started on every way out."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from tests.gateway.test_errors import closed_port

START_TIMEOUT = 60.0  # seconds for both processes to start on a busy machine
STOP_TIMEOUT = 60.0


@pytest.fixture
def dev(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], psutil.Process]]:
    """The dev runner (gateway on a free port) and the chat-services child it started, both listening."""
    runner = subprocess.Popen(
        [sys.executable, "-m", "chat_gateway.dev", "--port", "0", "--upstream-port", str(closed_port())],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join([*sys.path, os.environ.get("PYTHONPATH", "")])},
    )
    try:
        assert runner.stdout is not None
        for line in runner.stdout:  # the gateway prints "port N" once it listens, after the services
            if line.startswith("port "):
                break
        else:
            raise AssertionError(f"the dev runner exited with {runner.wait(START_TIMEOUT)} before listening")
        [services] = psutil.Process(runner.pid).children()
        assert "chat_services" in services.cmdline()
        yield runner, services
    finally:
        runner.kill()
        runner.wait(STOP_TIMEOUT)
        if runner.stdout is not None:
            runner.stdout.close()


def test_sigterm_stops_the_gateway_and_the_services(
    dev: tuple[subprocess.Popen[str], psutil.Process],
) -> None:
    runner, services = dev
    runner.send_signal(signal.SIGTERM)
    assert runner.wait(STOP_TIMEOUT) == 128 + signal.SIGTERM  # uvicorn hands the signal back once stopped
    services.wait(STOP_TIMEOUT)
    assert not services.is_running()


def test_even_a_killed_runner_takes_the_services_down(
    dev: tuple[subprocess.Popen[str], psutil.Process],
) -> None:
    runner, services = dev
    runner.kill()
    runner.wait(STOP_TIMEOUT)
    services.wait(STOP_TIMEOUT)  # raises psutil.TimeoutExpired if the services outlive their parent
    assert not services.is_running()
