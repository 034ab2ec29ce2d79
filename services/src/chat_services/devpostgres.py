"""A throwaway PostgreSQL cluster in a temp directory, for tests, benchmarks and a developer.

:func:`start_cluster` runs Debian's ``initdb`` and ``pg_ctl`` (``/usr/lib/postgresql/<ver>/bin``
or ``pg_config --bindir``) on a fresh directory: the cluster listens on 127.0.0.1 on a free port
and on a Unix socket in that directory, trusts local connections, and is stopped by its PID
(``pg_ctl stop -m fast``, the postmaster killed as a last resort), the directory removed.
An owner that dies without stopping it (SIGKILL) leaves no cluster behind either: a
watchdog (:mod:`chat_services.pg_watchdog`) waits for the owner's exit and stops it then.
``initdb`` refuses to run as root: as root, the directory is handed to the ``postgres`` user
(the Debian package creates it) and every binary runs as that user through ``runuser``.

``chat-services dev-postgres`` starts one and prints its DSN until interrupted.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

SERVICE_USER = "postgres"  # the account Debian's package creates; initdb refuses root
START_TIMEOUT = 60  # seconds pg_ctl waits for the server to accept connections


class PostgresUnavailable(RuntimeError):
    """PostgreSQL's server binaries are not installed (or cannot be run here)."""


def find_bindir() -> Path | None:
    """The directory holding ``initdb`` and ``pg_ctl``: Debian's newest version, else ``pg_config``'s."""
    versions = sorted(
        (path for path in Path("/usr/lib/postgresql").glob("*/bin") if (path / "pg_ctl").exists()),
        key=lambda path: int(path.parent.name) if path.parent.name.isdigit() else 0,
    )
    if versions:
        return versions[-1]
    pg_config = shutil.which("pg_config")
    if pg_config is not None:
        with contextlib.suppress(OSError, subprocess.CalledProcessError):
            found = Path(
                subprocess.run(
                    [pg_config, "--bindir"], check=True, capture_output=True, text=True
                ).stdout.strip()
            )
            if (found / "initdb").exists() and (found / "pg_ctl").exists():
                return found
    on_path = shutil.which("pg_ctl")
    if on_path is not None and (Path(on_path).resolve().parent / "initdb").exists():
        return Path(on_path).resolve().parent
    return None


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Cluster:
    """A running throwaway cluster: :attr:`dsn` reaches its ``postgres`` database as the superuser."""

    directory: Path
    bindir: Path
    port: int
    durable: bool = True
    owned_directory: bool = True  # remove ``directory`` on stop
    _running: bool = field(default=False, repr=False)
    _watchdog: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def data(self) -> Path:
        """The cluster's data directory."""
        return self.directory / "data"

    @property
    def socket_dir(self) -> Path:
        """The directory holding the server's Unix socket."""
        return self.directory

    @property
    def log_file(self) -> Path:
        """The server's log (startup errors are read from it)."""
        return self.directory / "postgres.log"

    @property
    def dsn(self) -> str:
        """A ``postgresql://`` URL of the ``postgres`` database over TCP."""
        return self.dsn_for("postgres")

    def dsn_for(self, database: str) -> str:
        """A ``postgresql://`` URL of ``database`` in this cluster over TCP."""
        return f"postgresql://{SERVICE_USER}@127.0.0.1:{self.port}/{database}"

    @property
    def pid(self) -> int | None:
        """The postmaster's PID from its PID file; None when it is not running."""
        try:
            first = (self.data / "postmaster.pid").read_text().split("\n", 1)[0]
        except OSError:
            return None
        return int(first) if first.strip().isdigit() else None

    def create_database(self, name: str | None = None) -> str:
        """Create an empty database (a unique name unless given) and return its DSN."""
        import psycopg  # the services' driver; imported here so the module loads without it

        name = name or f"test_{uuid.uuid4().hex[:16]}"
        if not re.fullmatch(r"[a-z_][a-z0-9_]*", name):
            raise ValueError(f"not a plain database name: {name[:64]!r}")
        with psycopg.connect(self.dsn, autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')  # name checked above
        return self.dsn_for(name)

    def drop_database(self, name: str) -> None:
        """Drop ``name``, ending any session still connected to it."""
        import psycopg

        if not re.fullmatch(r"[a-z_][a-z0-9_]*", name):
            raise ValueError(f"not a plain database name: {name[:64]!r}")
        with psycopg.connect(self.dsn, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def start(self) -> None:
        """Start the server (again, after :meth:`stop` with ``remove=False``) and wait until it accepts."""
        options = [
            "-c listen_addresses=127.0.0.1",
            f"-c port={self.port}",
            f"-c unix_socket_directories={self.socket_dir}",
            "-c max_connections=300",
        ]
        if not self.durable:  # a test cluster: nothing of it survives the run anyway
            options += ["-c fsync=off", "-c full_page_writes=off", "-c synchronous_commit=off"]
        result = self._run(
            "pg_ctl", "-D", str(self.data), "-l", str(self.log_file), "-w", "-t", str(START_TIMEOUT),
            "-o", " ".join(options), "start",
        )  # fmt: skip
        if result.returncode != 0:
            raise PostgresUnavailable(f"pg_ctl start failed: {self._tail(result)}")
        self._running = True
        self._watch()

    def stop(self, *, remove: bool = True) -> None:
        """Stop the server by its PID (fast shutdown, killed if that fails); remove the directory."""
        self._unwatch()
        pid = self.pid
        if pid is not None:
            result = self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "-t", "30", "stop")
            if result.returncode != 0:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        self._running = False
        if remove and self.owned_directory:
            shutil.rmtree(self.directory, ignore_errors=True)

    def _watch(self) -> None:
        """Start the watchdog that stops this cluster if this process dies without stopping it."""
        if self._watchdog is not None:
            return
        command = [sys.executable, "-m", "chat_services.pg_watchdog", str(os.getpid()), str(self.directory)]
        command += [str(self.bindir), *(["--remove"] if self.owned_directory else [])]
        self._watchdog = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # a signal to this process group leaves it running
        )

    def _unwatch(self) -> None:
        """End the watchdog: this process stops the cluster itself."""
        watchdog, self._watchdog = self._watchdog, None
        if watchdog is not None:
            watchdog.terminate()
            try:
                watchdog.wait(timeout=10)
            except subprocess.TimeoutExpired:
                watchdog.kill()
                watchdog.wait()

    def _run(self, tool: str, *args: str) -> subprocess.CompletedProcess[str]:
        command = [str(self.bindir / tool), *args]
        if os.geteuid() == 0:
            command = ["runuser", "-u", SERVICE_USER, "--", *command]
        return subprocess.run(command, capture_output=True, text=True, check=False, stdin=subprocess.DEVNULL)

    def _tail(self, result: subprocess.CompletedProcess[str]) -> str:
        text = (result.stderr or result.stdout).strip()
        with contextlib.suppress(OSError):
            text += " | " + " ".join(self.log_file.read_text().strip().splitlines()[-3:])
        return text[-600:]


def start_cluster(directory: Path | None = None, *, durable: bool = True) -> Cluster:
    """Create and start a cluster in ``directory`` (a new temp directory by default).

    ``durable=False`` turns fsync off: right for tests, wrong for anything measured against
    SQLite's ``synchronous = FULL``. :class:`PostgresUnavailable` when the binaries are missing.
    """
    bindir = find_bindir()
    if bindir is None:
        raise PostgresUnavailable(
            "PostgreSQL's initdb/pg_ctl were not found (install it: apt-get install -y postgresql)"
        )
    owned = directory is None
    root = Path(tempfile.mkdtemp(prefix="chat-pg-")) if directory is None else directory.resolve()
    root.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        try:
            account = pwd.getpwnam(SERVICE_USER)
        except KeyError as error:
            raise PostgresUnavailable(
                f"running as root needs the {SERVICE_USER!r} user to run initdb"
            ) from error
        os.chown(root, account.pw_uid, account.pw_gid)
        root.chmod(0o700)
    cluster = Cluster(root, bindir, free_port(), durable=durable, owned_directory=owned)
    try:
        if (cluster.data / "PG_VERSION").exists():  # a --dir kept from an earlier run: start it again
            result: subprocess.CompletedProcess[str] = subprocess.CompletedProcess([], 0)
        else:
            result = cluster._run(
            "initdb", "-D", str(cluster.data), "-U", SERVICE_USER, "--auth=trust", "-E", "UTF8",
            "--locale=C", "--no-sync", "--no-instructions",
        )  # fmt: skip
        if result.returncode != 0:
            raise PostgresUnavailable(f"initdb failed: {cluster._tail(result)}")
        for attempt in range(3):  # another process may take the free port before the server binds it
            try:
                cluster.start()
                break
            except PostgresUnavailable:
                if attempt == 2:
                    raise
                cluster.port = free_port()
    except BaseException:
        cluster.stop()
        raise
    return cluster


@contextlib.contextmanager
def running_cluster(directory: Path | None = None, *, durable: bool = True) -> Iterator[Cluster]:
    """A cluster for the length of a ``with`` block, stopped and removed after it."""
    cluster = start_cluster(directory, durable=durable)
    try:
        yield cluster
    finally:
        cluster.stop()


def run_dev_postgres(directory: Path | None) -> int:
    """``chat-services dev-postgres``: start a cluster, print its DSN, stop it on SIGINT/SIGTERM."""
    import sys

    previous = signal.signal(signal.SIGTERM, _interrupt)  # from the start: initdb's files too
    try:
        cluster = start_cluster(directory)
    except PostgresUnavailable as error:
        print(f"chat-services: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # start_cluster removed what it had made
        return 130
    try:
        print(cluster.dsn, flush=True)
        print(
            f"(PostgreSQL in {cluster.directory}, PID {cluster.pid}; Ctrl-C stops and removes it)",
            file=sys.stderr,
            flush=True,
        )
        signal.pause()
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        cluster.stop()
    return 0


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt
