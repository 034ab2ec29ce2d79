"""Soak: mixed, paced load against a fresh ``chat-services`` process, sampled at intervals.

Workers send a mix of calls at a steady rate (sends, reads, pages, replays, searches,
health checks); every ``--sample-seconds`` the server's RSS, open file descriptors and
threads (from /proc) and the calls and errors so far are recorded. The report is a
Markdown table plus the RSS slope after warm-up (least squares over the samples after
the first ``--warmup-minutes``), written to ``--report`` and printed.
``python3 -m nox -s soak -- --minutes 30``; the suite runs a ~10 s slice (test_soak.py).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from grpclib.client import Channel
from grpclib.exceptions import GRPCError, StreamTerminatedError
from grpclib.health.v1.health_grpc import HealthStub
from grpclib.health.v1.health_pb2 import HealthCheckRequest

from chat.v1 import message_service_grpc, rag_service_grpc
from chat.v1.message_service_pb2 import (
    GetMessageRequest,
    ListMessagesRequest,
    NewMessage,
    SendMessagesRequest,
    StreamMessagesRequest,
)
from chat.v1.rag_service_pb2 import DocumentHeader, IngestDocumentRequest, SearchDocumentsRequest

from ..fuzz.driver import rss_kb, server_process

CONVERSATIONS = 20
CALL_TIMEOUT = 30.0
WORDS = ("alpha", "beta", "gamma", "delta", "river", "stone", "cloud", "paper", "lamp", "orbit", "garden")
MIX = {  # call kind: weight
    "send": 35,
    "get": 25,
    "list": 20,
    "replay": 5,
    "search": 5,
    "health": 10,
}


@dataclass
class Sample:
    """One reading of the server and the load so far."""

    minute: float
    rss_mb: float
    fds: int
    threads: int
    calls: int
    errors: int


@dataclass
class SoakReport:
    """Samples, errors by kind, and the figures the verdict uses."""

    samples: list[Sample] = field(default_factory=list)
    calls: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    warmup_minutes: float = 1.0

    @property
    def rss_slope(self) -> float | None:
        """RSS growth in MB per minute after warm-up (least squares); None with under three samples."""
        points = [(s.minute, s.rss_mb) for s in self.samples if s.minute >= self.warmup_minutes]
        if len(points) < 3:
            return None
        mean_x = sum(x for x, _ in points) / len(points)
        mean_y = sum(y for _, y in points) / len(points)
        spread = sum((x - mean_x) ** 2 for x, _ in points)
        return sum((x - mean_x) * (y - mean_y) for x, y in points) / spread if spread else None

    def markdown(self) -> str:
        """The report: one row per sample, then calls and errors by kind and the slope."""
        lines = [
            f"# Soak, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
            "",
            "| minute | RSS MB | fds | threads | calls | errors |",
            "| ---: | ---: | ---: | ---: | ---: | ---: |",
            *(
                f"| {s.minute:.1f} | {s.rss_mb:.1f} | {s.fds} | {s.threads} | {s.calls} | {s.errors} |"
                for s in self.samples
            ),
            "",
            "calls by kind: " + ", ".join(f"{kind} {n}" for kind, n in sorted(self.calls.items())),
            "errors: " + (", ".join(f"{kind} {n}" for kind, n in sorted(self.errors.items())) or "none"),
        ]
        slope = self.rss_slope
        after = f"after {self.warmup_minutes:g} min of warm-up"
        lines.append(
            f"RSS slope {after}: {slope:+.3f} MB/min"
            if slope is not None
            else f"RSS slope {after}: too few samples"
        )
        return "\n".join(lines) + "\n"


def _proc_status(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def sample(pid: int, started: float, report: SoakReport) -> Sample:
    """Read the server's RSS, fds and threads now."""
    return Sample(
        minute=(time.monotonic() - started) / 60,
        rss_mb=rss_kb(pid) / 1024,
        fds=sum(1 for _ in Path(f"/proc/{pid}/fd").iterdir()),
        threads=_proc_status(pid, "Threads"),
        calls=sum(report.calls.values()),
        errors=sum(report.errors.values()),
    )


class Load:
    """One worker's calls over its own channel; remembers message ids to read back."""

    def __init__(self, port: int, worker: int, seed: int) -> None:
        self.channel = Channel("127.0.0.1", port)
        self.messages = message_service_grpc.MessageServiceStub(self.channel)
        self.rag = rag_service_grpc.RAGServiceStub(self.channel)
        self.health = HealthStub(self.channel)
        self.random = random.Random(seed * 1000 + worker)
        self.worker = worker
        self.sent = 0
        self.ids: list[str] = []
        self.written: dict[str, int] = {}  # conversations this worker sent to (they exist): last sequence

    def _conversation(self) -> str:
        return f"soak-{self.random.randrange(CONVERSATIONS)}"

    def _written(self) -> str:
        return self.random.choice(sorted(self.written))

    def _text(self, words: int) -> str:
        return " ".join(self.random.choice(WORDS) for _ in range(words))

    async def call(self, kind: str) -> None:
        """Make one call of ``kind``."""
        if kind == "send" or (kind in ("get", "list", "replay") and not self.ids):
            requests = []
            for _ in range(self.random.randint(1, 5)):
                self.sent += 1
                new = NewMessage(
                    idempotency_key=f"w{self.worker}-{self.sent}",
                    conversation_id=self._conversation(),
                    author_id=f"user-{self.worker}",
                    content=self._text(self.random.randint(3, 60)),
                )
                requests.append(SendMessagesRequest(message=new))
            reply = await self.messages.SendMessages(requests, timeout=CALL_TIMEOUT)
            self.ids = (self.ids + [m.id for m in reply.messages])[-500:]
            self.written.update((m.conversation_id, m.sequence) for m in reply.messages)
        elif kind == "get":
            await self.messages.GetMessage(
                GetMessageRequest(message_id=self.random.choice(self.ids), include_user=True),
                timeout=CALL_TIMEOUT,
            )
        elif kind == "list":
            request = ListMessagesRequest(conversation_id=self._written())
            request.page.page_size = 20
            await self.messages.ListMessages(request, timeout=CALL_TIMEOUT)
        elif kind == "replay":
            conversation = self._written()  # the last 50 messages: a replay that does not grow with the run
            after = max(0, self.written[conversation] - 50)
            replay = StreamMessagesRequest(conversation_id=conversation, after_sequence=after)
            await self.messages.StreamMessages(replay, timeout=CALL_TIMEOUT)
        elif kind == "search":
            await self.rag.SearchDocuments(
                SearchDocumentsRequest(text=self._text(4), top_k=3), timeout=CALL_TIMEOUT
            )
        else:
            await self.health.Check(HealthCheckRequest(service=""), timeout=CALL_TIMEOUT)


async def seed_documents(port: int) -> None:
    """A few small documents for the searches to find."""
    async with Channel("127.0.0.1", port) as channel:
        rag = rag_service_grpc.RAGServiceStub(channel)
        for n in range(5):
            text = " ".join(WORDS[(n + k) % len(WORDS)] for k in range(400))
            await rag.IngestDocument(
                [IngestDocumentRequest(header=DocumentHeader(document_id=f"soak-doc-{n}"), text=text)],
                timeout=CALL_TIMEOUT,
            )


async def run(
    *, seconds: float, rate: float = 100.0, workers: int = 4, sample_seconds: float = 60.0, seed: int = 0
) -> SoakReport:
    """Soak a fresh server ``seconds`` long at about ``rate`` calls/s; sample every ``sample_seconds``."""
    report = SoakReport(warmup_minutes=min(1.0, seconds / 60 / 3))
    kinds, weights = list(MIX), list(MIX.values())
    with tempfile.TemporaryDirectory() as workdir:
        async with server_process(Path(workdir)) as (pid, port):
            await seed_documents(port)
            started = time.monotonic()
            deadline = started + seconds
            report.samples.append(sample(pid, started, report))

            async def worker(number: int) -> None:
                load = Load(port, number, seed)
                pace = workers / rate
                next_call = time.monotonic()
                try:
                    while time.monotonic() < deadline:
                        kind = load.random.choices(kinds, weights)[0]
                        try:
                            await load.call(kind)
                        except (GRPCError, StreamTerminatedError, OSError, TimeoutError) as error:
                            name = getattr(error, "status", None)
                            report.errors[f"{kind}: {name.name if name else type(error).__name__}"] += 1
                        report.calls[kind] += 1
                        next_call += pace
                        await asyncio.sleep(max(0.0, next_call - time.monotonic()))
                finally:
                    load.channel.close()

            async def sampler() -> None:
                while time.monotonic() < deadline:
                    await asyncio.sleep(min(sample_seconds, max(0.0, deadline - time.monotonic())))
                    report.samples.append(sample(pid, started, report))

            await asyncio.gather(sampler(), *(worker(n) for n in range(workers)))
    return report


def main(argv: list[str] | None = None) -> int:
    """Command line: soak, write and print the report; exit 1 on any error or an RSS slope over the bound."""
    parser = argparse.ArgumentParser(prog="python -m tests.services.soak.driver", description=__doc__)
    parser.add_argument("--minutes", type=float, default=10.0, help="how long to soak (default 10)")
    parser.add_argument("--rate", type=float, default=100.0, help="calls a second, all workers together")
    parser.add_argument("--workers", type=int, default=4, help="concurrent clients, one connection each")
    parser.add_argument("--sample-seconds", type=float, default=60.0, help="seconds between samples")
    parser.add_argument("--max-rss-slope", type=float, default=0.1, help="MB/min allowed after warm-up")
    parser.add_argument("--report", type=Path, help="write the Markdown report here too")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    report = asyncio.run(
        run(
            seconds=args.minutes * 60,
            rate=args.rate,
            workers=args.workers,
            sample_seconds=args.sample_seconds,
            seed=args.seed,
        )
    )
    text = report.markdown()
    print(text)
    if args.report is not None:
        args.report.parent.mkdir(parents=True, exist_ok=True)
        args.report.write_text(text)
    failures = []
    if report.errors:
        failures.append(f"{sum(report.errors.values())} calls failed")
    slope = report.rss_slope
    if slope is not None and slope > args.max_rss_slope:
        failures.append(f"RSS grew {slope:.3f} MB/min after warm-up (bound {args.max_rss_slope:g})")
    for failure in failures:
        print(f"FAIL: {failure}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
