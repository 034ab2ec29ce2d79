"""The fuzz driver: hostile payloads against a real ``chat-services`` process, a health prober beside them.

Run ``python -m tests.services.fuzz.driver --budget 300`` (what ``nox -s fuzz`` does) or call
:func:`run` from a test. It starts ``chat-services serve --port 0`` as a subprocess on a
temporary database, sends payloads from several connections until the time budget or the
payload count runs out, and reports: outcomes per payload kind, the longest wait for a
health answer, and the server's resident memory at start, peak and end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from multiprocessing.connection import Connection
from multiprocessing.synchronize import Event as EventLike
from pathlib import Path

from grpclib.client import Channel
from grpclib.health.v1.health_grpc import HealthStub
from grpclib.health.v1.health_pb2 import HealthCheckRequest

from chat_services.security.scopes import METHOD_SCOPES

from .payloads import Payload, PayloadMaker
from .rawh2 import RawConnection, Reply

# Only the client's fault, or a limit: anything else from a hostile payload is a server bug.
FORBIDDEN = {"INTERNAL", "UNKNOWN", "no-answer"}
STATUS_NAMES = {
    0: "OK",
    1: "CANCELLED",
    2: "UNKNOWN",
    3: "INVALID_ARGUMENT",
    4: "DEADLINE_EXCEEDED",
    5: "NOT_FOUND",
    6: "ALREADY_EXISTS",
    7: "PERMISSION_DENIED",
    8: "RESOURCE_EXHAUSTED",
    9: "FAILED_PRECONDITION",
    10: "ABORTED",
    11: "OUT_OF_RANGE",
    12: "UNIMPLEMENTED",
    13: "INTERNAL",
    14: "UNAVAILABLE",
    15: "DATA_LOSS",
    16: "UNAUTHENTICATED",
}
CALL_TIMEOUT = 10.0  # seconds a payload may wait for its answer before it counts as no answer
STARTUP_TIMEOUT = 60.0
PROBE_INTERVAL = 0.02  # pacing of the health prober between answers


@dataclass
class Report:
    """What a fuzz run saw."""

    outcomes: dict[str, Counter[str]] = field(default_factory=dict)
    payloads: int = 0
    health_checks: int = 0
    health_unanswered: int = 0
    max_health_gap: float = 0.0
    stalls: int = 0  # health answers slower than the stall threshold
    rss_start_kb: int = 0
    rss_peak_kb: int = 0
    rss_end_kb: int = 0
    seconds: float = 0.0
    samples: list[str] = field(default_factory=list)  # a few forbidden outcomes, for the reader

    def record(self, kind: str, outcome: str, detail: str = "") -> None:
        """Count one payload's outcome."""
        self.outcomes.setdefault(kind, Counter())[outcome] += 1
        self.payloads += 1
        if outcome in FORBIDDEN and len(self.samples) < 10:
            self.samples.append(f"{kind}: {outcome} {detail[:200]}")

    @property
    def forbidden(self) -> int:
        """How many payloads got INTERNAL, UNKNOWN or no answer."""
        return sum(
            count for counter in self.outcomes.values() for o, count in counter.items() if o in FORBIDDEN
        )

    @property
    def rss_growth_mb(self) -> float:
        """Resident memory growth from start to end, MB."""
        return (self.rss_end_kb - self.rss_start_kb) / 1024

    def table(self) -> str:
        """The summary table: outcomes by payload kind, then health and memory figures."""
        columns = sorted({o for counter in self.outcomes.values() for o in counter})
        width = max([len(c) for c in columns] + [8])
        lines = ["kind".ljust(16) + "".join(c.rjust(width + 1) for c in columns) + "total".rjust(8)]
        for kind in sorted(self.outcomes):
            counter = self.outcomes[kind]
            lines.append(
                kind.ljust(16)
                + "".join(str(counter.get(c, 0)).rjust(width + 1) for c in columns)
                + str(sum(counter.values())).rjust(8)
            )
        lines += [
            "",
            f"payloads: {self.payloads} in {self.seconds:.1f} s; forbidden (INTERNAL/UNKNOWN/no answer): "
            f"{self.forbidden}",
            f"health: {self.health_checks} answers, longest wait {self.max_health_gap * 1000:.1f} ms, "
            f"{self.stalls} over the stall threshold",
            f"server RSS: start {self.rss_start_kb / 1024:.1f} MB, peak {self.rss_peak_kb / 1024:.1f} MB, "
            f"end {self.rss_end_kb / 1024:.1f} MB (growth {self.rss_growth_mb:.1f} MB)",
            *self.samples,
        ]
        return "\n".join(lines)


def rss_kb(pid: int) -> int:
    """Resident memory of process ``pid`` in kB, from /proc."""
    status = Path(f"/proc/{pid}/status").read_text()
    match = re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)
    return int(match.group(1)) if match else 0


@asynccontextmanager
async def server_process(
    workdir: Path, *, auth: bool = False, extra: Sequence[str] = ()
) -> AsyncIterator[tuple[int, int]]:
    """``chat-services serve --port 0`` as a subprocess; yields (pid, port), stops it with SIGTERM.

    With ``auth`` it verifies JWTs signed by the throwaway key in ``workdir/jwt`` (see :func:`tokens`);
    ``extra`` flags are added to the command line.
    """
    secured = (
        [
            "--jwt-public-key",
            str(workdir / "jwt" / "jwt-public.pem"),
            "--jwt-issuer",
            "chat-services-dev",
            "--jwt-audience",
            "chat-services",
        ]
        if auth
        else []
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "chat_services",
        "serve",
        "--port",
        "0",
        "--database",
        str(workdir / "fuzz.db"),
        "--log-format",
        "json",
        "--log-level",
        "INFO",
        "--grace-period",
        "2",
        *secured,
        *extra,
        stderr=subprocess.PIPE,
    )
    assert process.stderr is not None
    port = await asyncio.wait_for(_bound_port(process.stderr), STARTUP_TIMEOUT)
    drain = asyncio.ensure_future(_drain(process.stderr))
    try:
        yield process.pid, port
    finally:
        process.terminate()
        await asyncio.wait_for(process.wait(), 30)
        await drain


AUTH_USERS = 20  # users whose tokens the payloads take turns with, so no one bucket is drained


def tokens(directory: Path) -> list[str]:
    """A valid JWT of every scope for each of :data:`AUTH_USERS` users (the key is made in ``directory``)."""
    from chat_services.security.devcerts import dev_jwt

    every_scope = sorted({scope for scopes in METHOD_SCOPES.values() for scope in scopes})
    return [dev_jwt(directory, f"fuzz-user-{n}", every_scope) for n in range(AUTH_USERS)]


async def _bound_port(stderr: asyncio.StreamReader) -> int:
    while line := await stderr.readline():
        entry = json.loads(line)
        if entry.get("message") == "serving":
            return int(str(entry["address"]).rsplit(":", 1)[1])
    raise RuntimeError("the server exited before serving")


async def _drain(stderr: asyncio.StreamReader) -> None:
    """Keep reading the server's log so its pipe never fills; tracebacks would be printed here."""
    while line := await stderr.readline():
        # Tracebacks are bugs; "took" lines are slow callbacks when run with PYTHONASYNCIODEBUG=1.
        if b"Traceback" in line or b"took" in line:
            sys.stderr.write(line.decode(errors="replace")[:2000] + "\n")


def outcome_of(reply: Reply) -> str:
    """A reply's outcome: the status name, or how the stream ended without one."""
    if reply.status is not None:
        return STATUS_NAMES.get(reply.status, f"status-{reply.status}")
    if reply.reset:
        return "reset"
    if reply.connection_closed:
        return "connection-closed"
    return "no-answer"


async def send(
    port: int, payload: Payload, connection: RawConnection | None
) -> tuple[str, str, RawConnection | None]:
    """Send one payload, on ``connection`` if it is still open; returns (outcome, detail, connection)."""
    if payload.raw_http2 is not None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            writer.write(payload.raw_http2)
            await writer.drain()
            writer.write_eof()
            await asyncio.wait_for(_read_to_eof(reader), CALL_TIMEOUT)
            return "connection-closed", "", connection
        except (ConnectionError, TimeoutError):
            return "connection-closed", "", connection
        finally:
            writer.close()
    if connection is None or connection.closed:
        if connection is not None:
            await connection.close()
        connection = await RawConnection.open(port)
    try:
        reply = await connection.call(
            payload.method, payload.body, extra_headers=payload.headers, timeout=CALL_TIMEOUT
        )
    except TimeoutError:
        await connection.close()
        return "no-answer", payload.method, None
    except ConnectionError:
        await connection.close()
        return "connection-closed", "", None
    return outcome_of(reply), f"{payload.method} {reply.message}", connection


async def _read_to_eof(reader: asyncio.StreamReader) -> None:
    while await reader.read(65536):
        pass


@dataclass
class HealthFigures:
    """What the health prober saw: answers, the longest wait for one, and waits over the threshold."""

    checks: int = 0
    longest: float = 0.0
    stalls: int = 0
    unanswered: int = 0  # checks that failed or got no answer within CALL_TIMEOUT


def probe_health(port: int, stop: EventLike, results: Connection, stall_threshold: float) -> None:
    """Prober process: ask health until ``stop`` is set, then send :class:`HealthFigures` back.

    It runs in its own process so that the fuzzers' own CPU work (pure-Python HTTP/2 on the
    client side) never delays its answers: a slow answer is the server's.
    """
    figures = HealthFigures()

    async def probe() -> None:
        async with Channel("127.0.0.1", port) as channel:
            health = HealthStub(channel)
            while not stop.is_set():
                started = time.monotonic()
                try:
                    await health.Check(HealthCheckRequest(), timeout=CALL_TIMEOUT)
                except (TimeoutError, OSError):
                    figures.unanswered += 1
                waited = time.monotonic() - started
                figures.checks += 1
                figures.longest = max(figures.longest, waited)
                figures.stalls += waited > stall_threshold
                await asyncio.sleep(PROBE_INTERVAL)

    asyncio.run(probe())
    results.send(figures)


async def run(
    *,
    budget: float,
    max_payloads: int,
    workers: int = 4,
    seed: int = 0,
    stall_threshold: float = 0.1,
    kinds: frozenset[str] | None = None,
    auth: bool = False,
) -> Report:
    """Fuzz a fresh server for ``budget`` seconds or ``max_payloads`` payloads, whichever ends first.

    With ``auth`` the server enforces JWTs and rate limits, and every payload carries a valid
    token of one of :data:`AUTH_USERS` users holding every scope, so payloads reach the handlers
    and the authorization checks instead of stopping at authentication.
    """
    report = Report()
    maker = PayloadMaker(seed, kinds)
    with tempfile.TemporaryDirectory() as workdir:
        bearer = tokens(Path(workdir) / "jwt") if auth else []
        async with server_process(Path(workdir), auth=auth) as (pid, port):
            report.rss_start_kb = report.rss_peak_kb = rss_kb(pid)
            context = multiprocessing.get_context("spawn")
            stop = context.Event()
            receiving, sending = context.Pipe(duplex=False)
            prober = context.Process(
                target=probe_health, args=(port, stop, sending, stall_threshold), daemon=True
            )
            prober.start()
            started = time.monotonic()
            deadline = started + budget
            issued = 0

            async def worker() -> None:
                nonlocal issued
                connection: RawConnection | None = None
                while time.monotonic() < deadline and issued < max_payloads:
                    issued += 1
                    payload = maker.draw()
                    if bearer and not any(name == "authorization" for name, _ in payload.headers):
                        token = bearer[issued % len(bearer)]
                        payload = replace(
                            payload, headers=(*payload.headers, ("authorization", f"Bearer {token}"))
                        )
                    outcome, detail, connection = await send(port, payload, connection)
                    report.record(payload.kind, outcome, detail)
                    if report.payloads % 200 == 0:
                        report.rss_peak_kb = max(report.rss_peak_kb, rss_kb(pid))
                if connection is not None:
                    await connection.close()

            try:
                await asyncio.gather(*(worker() for _ in range(workers)))
            finally:
                report.seconds = time.monotonic() - started
                stop.set()
            figures: HealthFigures = await asyncio.to_thread(receiving.recv)
            await asyncio.to_thread(prober.join, STARTUP_TIMEOUT)
            report.health_checks, report.health_unanswered, report.max_health_gap, report.stalls = (
                figures.checks,
                figures.unanswered,
                figures.longest,
                figures.stalls,
            )
            report.rss_end_kb = rss_kb(pid)
            report.rss_peak_kb = max(report.rss_peak_kb, report.rss_end_kb)
    return report


def main(argv: list[str] | None = None) -> int:
    """Command line: fuzz, print the table, exit 1 on a forbidden outcome, a stall or memory growth."""
    parser = argparse.ArgumentParser(prog="python -m tests.services.fuzz.driver", description=__doc__)
    parser.add_argument("--budget", type=float, default=60.0, help="seconds to fuzz (default 60)")
    parser.add_argument("--max-payloads", type=int, default=1_000_000, help="stop after this many payloads")
    parser.add_argument("--workers", type=int, default=4, help="concurrent fuzzing connections")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--stall-ms", type=float, default=100.0, help="a slower health answer is a stall")
    parser.add_argument("--max-rss-growth-mb", type=float, default=50.0)
    parser.add_argument("--kinds", help="comma-separated payload kinds to send (default: all)")
    parser.add_argument(
        "--auth", action="store_true", help="enforce JWTs; every payload carries a valid token"
    )
    args = parser.parse_args(argv)
    report = asyncio.run(
        run(
            budget=args.budget,
            max_payloads=args.max_payloads,
            workers=args.workers,
            seed=args.seed,
            stall_threshold=args.stall_ms / 1000,
            kinds=frozenset(args.kinds.split(",")) if args.kinds else None,
            auth=args.auth,
        )
    )
    print(report.table())
    failures = []
    if report.forbidden:
        failures.append(f"{report.forbidden} payloads got INTERNAL, UNKNOWN or no answer")
    if report.stalls:
        failures.append(f"{report.stalls} health answers took over {args.stall_ms:g} ms")
    if report.rss_growth_mb >= args.max_rss_growth_mb:
        failures.append(f"server RSS grew {report.rss_growth_mb:.1f} MB")
    for failure in failures:
        print(f"FAIL: {failure}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
