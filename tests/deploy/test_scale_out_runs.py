"""components/postgres-scale-out's settings, exactly as rendered, run the real server on PostgreSQL.

The manifest checks parse the settings; this runs them: `chat-services serve` with the
rendered container's arguments and ``CHAT_SERVICES_*`` variables (the DSN Secret's value
a throwaway database; addresses on loopback and free ports), its workers serving, each
worker's /metrics answering on its own port, health SERVING, and a clean drain on SIGTERM.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from .manifests import KUBERNETES, render, settings, workloads

devpostgres = pytest.importorskip(
    "chat_services.devpostgres", reason="the PostgreSQL backend (issue 22) has not landed on this branch"
)


@pytest.fixture
def database() -> Iterator[str]:
    """A fresh database in a throwaway PostgreSQL cluster, stopped by PID afterwards."""
    cluster = devpostgres.start_cluster(durable=False)
    try:
        yield cluster.create_database()
    finally:
        cluster.stop()


def free_ports(count: int) -> int:
    """The first of ``count`` consecutive free ports on 127.0.0.1 (worker i serves on first + i)."""
    for _ in range(100):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            first = int(probe.getsockname()[1])
        sockets = []
        try:
            for port in range(first, first + count):
                sockets.append(socket.socket())
                sockets[-1].bind(("127.0.0.1", port))
            return first
        except OSError:
            continue
        finally:
            for held in sockets:
                held.close()
    raise RuntimeError(f"no {count} consecutive free ports")


def test_the_rendered_scale_out_settings_serve_on_postgresql(database: str) -> None:
    rendered = render(KUBERNETES / "overlays" / "dev", [KUBERNETES / "components" / "postgres-scale-out"])
    [services] = [w for w in workloads(rendered) if w.name == "chat-services"]
    [container] = services.pod["containers"]
    workers = settings(container).workers
    assert workers > 1
    environ = {name: value for name, value in os.environ.items() if not name.startswith("CHAT_SERVICES_")}
    for variable in container["env"]:
        if variable["name"].startswith("CHAT_SERVICES_"):
            environ[variable["name"]] = variable.get("value", database)  # the one valueFrom: the DSN
    metrics = free_ports(workers)
    environ.update(
        CHAT_SERVICES_HOST="127.0.0.1",
        CHAT_SERVICES_PORT=str(free_ports(1)),
        CHAT_SERVICES_METRICS_HOST="127.0.0.1",
        CHAT_SERVICES_METRICS_PORT=str(metrics),
        CHAT_SERVICES_LOG_LEVEL="INFO",
    )
    script = Path(sys.executable).parent / "chat-services"
    server = subprocess.Popen(
        [str(script), *container["args"]],
        env=environ,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert server.stdout is not None
        serving = 0
        for line in server.stdout:
            if line.startswith("{") and json.loads(line).get("message") == "serving":
                serving += 1
            if serving == workers:
                break
        assert serving == workers, f"{serving} of {workers} workers serve (exit {server.wait(30)})"
        for worker in range(workers):
            with urllib.request.urlopen(f"http://127.0.0.1:{metrics + worker}/metrics", timeout=10) as answer:
                assert answer.status == 200
        health = subprocess.run(
            [str(script), "health", "--port", environ["CHAT_SERVICES_PORT"], "--timeout", "10"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert health.returncode == 0, health.stdout + health.stderr
        server.send_signal(signal.SIGTERM)
        server.communicate(timeout=60)
        assert server.returncode == 0
    finally:
        if server.poll() is None:
            server.kill()
            server.communicate(timeout=30)
