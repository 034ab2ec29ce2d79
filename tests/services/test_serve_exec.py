"""`nox -s serve` execs the `chat-services` console script: SIGTERM to that process drains the server.

Before, nox ran the server as a child: SIGTERM killed nox and orphaned a server that kept
the port. Here a launcher replaces itself with the installed script (as the session does,
with ``os.execv``), and the signal sent to the launcher's process id stops the server,
which releases its port.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(sys.executable).parent / "chat-services"
LAUNCHER = "import os, sys; os.execv(sys.argv[1], sys.argv[1:])"


def test_sigterm_to_the_launched_process_stops_the_server_and_frees_its_port(tmp_path: Path) -> None:
    assert SCRIPT.is_file(), "the services are installed with their console script"
    command = [
        sys.executable,
        "-c",
        LAUNCHER,
        str(SCRIPT),
        "serve",
        "--port",
        "0",
        "--database",
        str(tmp_path / "db"),
    ]
    process = subprocess.Popen(
        command, stderr=subprocess.PIPE, text=True, env={**os.environ, "CHAT_SERVICES_LOG_LEVEL": "INFO"}
    )
    try:
        assert process.stderr is not None
        port = None
        for line in process.stderr:
            match = re.search(r"serving address=127\.0\.0\.1:(\d+)", line)
            if match:
                port = int(match.group(1))
                break
        assert port is not None, f"the server never said it was serving (exit {process.wait(10)})"
        process.send_signal(signal.SIGTERM)
        _, rest = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
    assert process.returncode == 0, rest
    assert "stopped" in rest
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind(("127.0.0.1", port))  # nobody holds the port any more
