"""Development: `python -m chat_gateway.dev [gateway flags]` starts chat-services, then the gateway.

chat-services runs as a child process on the upstream port (default 50051) with its
SQLite file in ``var/``. It is stopped on every way out: the gateway's own exit,
SIGTERM or SIGINT (also before the gateway listens), an error, and on Linux even
SIGKILL of this process (the child asks the kernel for SIGTERM when its parent dies).
"""

from __future__ import annotations

import ctypes
import importlib.util
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType

from chat_gateway.cli import main as gateway_main
from chat_gateway.cli import parser

READY_TIMEOUT = 30.0  # seconds chat-services gets to start listening
STOP_TIMEOUT = 30.0  # seconds chat-services gets to drain after SIGTERM before SIGKILL
_PR_SET_PDEATHSIG = 1  # linux/prctl.h


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


def _terminated_with_parent() -> Callable[[], None] | None:
    """A pre-exec hook that has the kernel send SIGTERM to the child when this process dies (Linux)."""
    if not sys.platform.startswith("linux"):
        return None
    libc = ctypes.CDLL(None, use_errno=True)

    def hook() -> None:
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)

    return hook


def _exit_on_signal(number: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + number)


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM (the services drain), then SIGKILL if they outlast ``STOP_TIMEOUT``; reaped either way."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def main(argv: Sequence[str] | None = None) -> int:
    """Start chat-services, then serve the gateway until interrupted."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    args = parser().parse_args(["serve", *arguments])
    if importlib.util.find_spec("chat_services") is None:
        raise SystemExit("chat-services is not installed: pip install ./services")
    database = Path("var") / "chat-services.db"
    database.parent.mkdir(exist_ok=True)
    # Until uvicorn installs its own handlers (and after it gives them back), SIGTERM
    # unwinds through the finally below instead of ending this process on the spot.
    signal.signal(signal.SIGTERM, _exit_on_signal)
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
        ],
        preexec_fn=_terminated_with_parent(),
    )
    try:
        wait_listening(args.upstream_host, args.upstream_port, services, READY_TIMEOUT)
        return gateway_main(["serve", *arguments])
    finally:
        stop(services)


if __name__ == "__main__":
    sys.exit(main())
