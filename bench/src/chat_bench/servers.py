"""Server processes for the benchmark: started on a pinned CPU, port read back, stopped by SIGTERM."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import tarfile
from functools import cache
from io import BytesIO
from pathlib import Path

import psutil

# Both print their port once they listen: chat-services in its "serving" log line, the baseline as "port N".
_PORT = re.compile(rb"(?:serving address=\S+:|^port )(\d+)", re.MULTILINE)
START_TIMEOUT = 60.0


@cache
def can_pin() -> bool:
    """Whether server and client can have a core each (asked once, before this process is pinned)."""
    return hasattr(os, "sched_setaffinity") and len(os.sched_getaffinity(0)) >= 2


def pin(pid: int, cpus: set[int]) -> None:
    """Keep process ``pid`` (0: this one) on ``cpus`` when pinning is possible."""
    if can_pin():
        os.sched_setaffinity(pid, cpus)


class ServerProcess:
    """One server in its own process; its output goes to a log file in the work folder."""

    def __init__(self, name: str, argv: list[str], log: Path, env: dict[str, str] | None = None) -> None:
        self.name = name
        self.argv = argv
        self.log = log
        self.env = env
        self.process: subprocess.Popen[bytes] | None = None
        self.port = 0

    async def start(self, cpus: set[int]) -> int:
        """Start, pin to ``cpus``, and wait (bounded) until it reports its port."""
        with self.log.open("wb") as output:
            self.process = subprocess.Popen(
                self.argv, stdout=output, stderr=subprocess.STDOUT, env={**os.environ, **(self.env or {})}
            )
        pin(self.process.pid, cpus)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + START_TIMEOUT
        while loop.time() < deadline:
            found = _PORT.search(self.log.read_bytes())
            if found:
                self.port = int(found.group(1))
                return self.port
            if self.process.poll() is not None:
                break
            await asyncio.sleep(0.05)
        self.stop()
        tail = self.log.read_bytes()[-2000:].decode(errors="replace")
        raise RuntimeError(f"{self.name} did not start:\n{tail}")

    def cpu_seconds(self) -> float:
        """User plus system CPU time the server has used so far."""
        assert self.process is not None
        times = psutil.Process(self.process.pid).cpu_times()
        return float(times.user + times.system)

    def stop(self) -> None:
        """SIGTERM, then wait (the services drain and checkpoint SQLite); kill after 30 s."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def grpclib_server(name: str, database: Path, log: Path, source: Path | None = None) -> ServerProcess:
    """chat-services on port 0; ``source`` runs another copy of its code (the previous release)."""
    argv = [sys.executable, "-m", "chat_services", "serve", "--port", "0", "--database", str(database)]
    argv += ["--completion-chunk-delay", "0", "--log-level", "INFO"]
    env = {"PYTHONPATH": str(source)} if source is not None else None
    return ServerProcess(name, argv, log, env)


def http_server(database: Path, log: Path) -> ServerProcess:
    """The HTTP/JSON baseline over the same services."""
    argv = [sys.executable, "-m", "chat_bench.serve_http", "--database", str(database)]
    return ServerProcess("http-json", argv, log)


def extract_services(repository: Path, ref: str, into: Path) -> Path | None:
    """Write ``services/src`` as of git ``ref`` into ``into``; None when git or the commit is missing."""
    try:
        archive = subprocess.run(
            ["git", "-C", str(repository), "archive", "--format=tar", ref, "services/src"],
            capture_output=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into / "services" / "src"
