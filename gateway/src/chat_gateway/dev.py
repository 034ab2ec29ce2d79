"""Development: `python -m chat_gateway.dev [gateway flags]` starts chat-services, then the gateway.

chat-services runs as a child process on the upstream port (default 50051) with its
SQLite file in ``var/``; it is stopped (SIGTERM, so it drains) when the gateway exits.
"""

from __future__ import annotations

import importlib.util
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from chat_gateway.cli import main as gateway_main
from chat_gateway.cli import parser

READY_TIMEOUT = 30.0  # seconds chat-services gets to start listening


def wait_listening(host: str, port: int, process: subprocess.Popen[bytes], timeout: float) -> None:
    """Return once ``host:port`` accepts connections; fail if the process exits or time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"chat-services exited with code {process.returncode}")
        try:
            with socket.create_connection((host, port), timeout=1.0):
                return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"chat-services did not listen on {host}:{port} within {timeout:.0f} s")


def main(argv: Sequence[str] | None = None) -> int:
    """Start chat-services, then serve the gateway until interrupted."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    args = parser().parse_args(["serve", *arguments])
    if importlib.util.find_spec("chat_services") is None:
        raise SystemExit("chat-services is not installed: pip install ./services")
    database = Path("var") / "chat-services.db"
    database.parent.mkdir(exist_ok=True)
    services = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "chat_services",
            "serve",
            "--host",
            args.upstream_host,
            "--port",
            str(args.upstream_port),
            "--database",
            str(database),
        ]
    )
    try:
        wait_listening(args.upstream_host, args.upstream_port, services, READY_TIMEOUT)
        return gateway_main(["serve", *arguments])
    finally:
        services.terminate()
        services.wait(timeout=30)


if __name__ == "__main__":
    sys.exit(main())
