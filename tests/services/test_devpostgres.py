"""The throwaway PostgreSQL cluster leaves nothing running, even when its owner is killed."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from chat_services.devpostgres import Cluster, find_bindir, start_cluster

from .clients import until

GONE_WITHIN = 60.0  # seconds a stop may take on a loaded machine (a bound against hanging, not a target)

OWNER = """
import sys
from pathlib import Path
from chat_services.devpostgres import start_cluster
cluster = start_cluster({arguments})
print(cluster.directory, cluster.pid, cluster._watchdog.pid, flush=True)
sys.stdin.read()  # until killed
"""


def running(pid: int) -> bool:
    """Whether ``pid`` is a live process (a zombie waiting for its parent counts as ended)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return fields[0] != "Z"


def killed_owner(arguments: str) -> tuple[Path, int, int]:
    """Start a cluster in another process, SIGKILL that process: the cluster's directory and PIDs."""
    script = OWNER.format(arguments=arguments)
    with subprocess.Popen(
        [sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    ) as owner:
        try:
            assert owner.stdout is not None
            directory, postmaster, watchdog = owner.stdout.readline().split()
            assert running(int(postmaster)) and running(int(watchdog)) and (Path(directory) / "data").is_dir()
        finally:
            owner.send_signal(signal.SIGKILL)  # no clean-up runs in the owner
    return Path(directory), int(postmaster), int(watchdog)


def stop_leftover(directory: Path) -> None:
    """Stop and remove what a failed test left (nothing when the watchdog did its job)."""
    bindir = find_bindir()
    assert bindir is not None
    Cluster(directory, bindir, port=0).stop()


async def wait_until_gone(pids: list[int], directory: Path) -> None:
    def gone() -> bool:
        return not any(running(pid) for pid in pids) and not directory.exists()

    with contextlib.suppress(TimeoutError):  # the assertions that follow say what is left
        await until(gone, timeout=GONE_WITHIN)


async def test_a_killed_owner_leaves_no_cluster_running(postgres_cluster: Cluster) -> None:
    # postgres_cluster: PostgreSQL is installed here (or the test is skipped on request).
    directory, postmaster, watchdog = killed_owner("durable=False")
    try:
        await wait_until_gone([postmaster, watchdog], directory)
        assert not running(postmaster), "the killed owner's postmaster still runs"
        assert not directory.exists(), "the killed owner's cluster directory is still there"
        assert not running(watchdog)
    finally:
        stop_leftover(directory)


def test_a_stop_ends_the_watchdog_and_a_restart_watches_again(postgres_cluster: Cluster) -> None:
    cluster = start_cluster(durable=False)
    try:
        first = cluster._watchdog
        assert first is not None and first.poll() is None
        cluster.stop(remove=False)
        assert first.poll() is not None and cluster._watchdog is None  # no watchdog left behind
        assert cluster.directory.exists()  # kept: the watchdog removed nothing when told to stop
        cluster.start()
        second = cluster._watchdog
        assert second is not None and second.poll() is None and second.pid != first.pid
        postmaster = cluster.pid
        assert postmaster is not None and running(postmaster)
    finally:
        cluster.stop()
    assert second.poll() is not None
    assert not running(postmaster) and not cluster.directory.exists()


async def test_a_kept_directory_outlives_its_killed_owner(postgres_cluster: Cluster) -> None:
    # A cluster in a directory the caller gave (dev-postgres --dir) is stopped, not removed.
    # (Not under tmp_path: as root the cluster runs as postgres, which cannot enter pytest's.)
    keep = Path(tempfile.mkdtemp(prefix="chat-pg-kept-"))
    try:
        directory, postmaster, watchdog = killed_owner(f"Path({str(keep)!r}), durable=False")
        assert directory == keep
        await wait_until_gone([postmaster, watchdog], keep / "never-there")
        assert not running(postmaster) and not running(watchdog)
        assert (keep / "data" / "PG_VERSION").exists()
        assert not (keep / "data" / "postmaster.pid").exists()  # a clean stop, not a kill
    finally:
        stop_leftover(keep)
