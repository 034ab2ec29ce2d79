"""Stops a throwaway PostgreSQL cluster whose owner died without stopping it.

A cluster of :mod:`chat_services.devpostgres` is a daemon of its own: a test run or a
benchmark killed with SIGKILL (a CI timeout, an out-of-memory kill) runs no clean-up, and
its postmaster would keep its port, memory and temp directory until the machine restarts.
:meth:`Cluster.start <chat_services.devpostgres.Cluster.start>` therefore starts this
watchdog in a session of its own (a signal to the owner's process group does not reach
it): it waits for the owner's exit on a pidfd (no polling, no PID reuse) and then stops the
cluster by its PID as the owner would have, removing its directory when the owner would
have. An owner that stops the cluster itself ends the watchdog first (SIGTERM).

``python -m chat_services.pg_watchdog OWNER_PID DIRECTORY BINDIR [--remove]``
"""

from __future__ import annotations

import argparse
import os
import select
import signal
import sys
from pathlib import Path

from chat_services.devpostgres import Cluster


def wait_for_exit(pid: int) -> None:
    """Return once process ``pid`` has exited (at once when it already has)."""
    try:
        descriptor = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    try:
        select.select([descriptor], [], [])  # readable once the process has exited
    finally:
        os.close(descriptor)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m chat_services.pg_watchdog", description=__doc__.split("\n")[0]
    )
    parser.add_argument("owner", type=int, help="the PID whose exit stops the cluster")
    parser.add_argument("directory", type=Path, help="the cluster's directory (its data under data/)")
    parser.add_argument("bindir", type=Path, help="the directory holding pg_ctl")
    parser.add_argument("--remove", action="store_true", help="remove the directory once stopped")
    arguments = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))  # the owner stops it itself
    wait_for_exit(arguments.owner)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # from here on, finish the stop
    # stop() removes the directory only when the cluster owns it, as the owner's would have.
    Cluster(arguments.directory, arguments.bindir, port=0, owned_directory=arguments.remove).stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
