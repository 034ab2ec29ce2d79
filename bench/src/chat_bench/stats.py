"""What a load run measured: latencies, statuses, errors, bytes, and how to print them."""

from __future__ import annotations

import bisect
import csv
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TextIO

PERCENTILES = (50, 90, 95, 99)
HISTOGRAM_BUCKETS = 10  # ghz's: marks from the fastest to the slowest call, evenly spaced
BAR_WIDTH = 40
MAX_ERROR_KINDS = 100  # distinct (status, message) pairs kept; later ones count as OTHER_MESSAGES
MAX_ERROR_MESSAGE = 200  # characters of a message kept: servers and sockets may say a lot
OTHER_MESSAGES = "(other messages)"
TEXT_ERROR_KINDS = 10  # lines of the summary's error distribution; JSON and CSV keep them all
_OK = ("OK", "")

Outcome = tuple[str, str]
"""A call's status name and its error message (empty when OK)."""


def percentile(sorted_values: Sequence[float], p: float) -> float:
    """The nearest-rank ``p``-th percentile of already sorted values (0.0 for none)."""
    if not sorted_values:
        return 0.0
    rank = max(1, math.ceil(p / 100 * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def histogram(latencies: Sequence[float], buckets: int = HISTOGRAM_BUCKETS) -> list[tuple[float, int]]:
    """ghz's response time histogram: ``(mark, count)`` for ``buckets + 1`` marks.

    The marks run evenly from the fastest call to the slowest; each counts the calls
    slower than the mark before it and no slower than itself (the first: the fastest).
    """
    if not latencies:
        return []
    fastest, slowest = min(latencies), max(latencies)
    width = (slowest - fastest) / buckets
    marks = [fastest + width * i for i in range(buckets)] + [slowest]
    counts = Counter(min(bisect.bisect_left(marks, latency), buckets) for latency in latencies)
    return [(mark, counts[i]) for i, mark in enumerate(marks)]


def _bounded(message: str) -> str:
    """``message`` on one line, cut to ``MAX_ERROR_MESSAGE`` characters."""
    line = " ".join(message.split())
    return line if len(line) <= MAX_ERROR_MESSAGE else line[:MAX_ERROR_MESSAGE] + "..."


@dataclass
class LoadResult:
    """The outcome of a run: every call's latency and status, bytes of messages both ways."""

    elapsed: float = 0.0
    latencies: list[float] = field(default_factory=list)  # seconds, one per finished call
    statuses: Counter[str] = field(default_factory=Counter)
    bytes_sent: int = 0  # gRPC messages with their 5-byte prefix, not HTTP/2 framing
    bytes_received: int = 0
    messages_received: int = 0
    per_call: dict[str, list[float]] = field(default_factory=dict)
    errors: Counter[Outcome] = field(default_factory=Counter)  # (status, message) of failed calls
    outcomes: list[Outcome] = field(default_factory=list)  # one per finished call, as latencies

    def record(self, label: str, latency: float, status: str = "OK", message: str = "") -> None:
        """Count one finished call of kind ``label``; a failure's message is kept bounded."""
        outcome = _OK
        if status != "OK":
            outcome = (status, _bounded(message))
            if outcome not in self.errors and len(self.errors) >= MAX_ERROR_KINDS:
                outcome = (status, OTHER_MESSAGES)
            self.errors[outcome] += 1
        self.latencies.append(latency)
        self.outcomes.append(outcome)
        self.per_call.setdefault(label, []).append(latency)
        self.statuses[status] += 1

    @property
    def count(self) -> int:
        """Calls finished, whatever their status."""
        return len(self.latencies)

    @property
    def rps(self) -> float:
        """Finished calls per second of the run."""
        return self.count / self.elapsed if self.elapsed else 0.0

    @property
    def success_rate(self) -> float:
        """The share of calls that ended OK (1.0 for an empty run)."""
        return self.statuses.get("OK", 0) / self.count if self.count else 1.0

    def latency_summary(self) -> dict[str, float]:
        """Fastest, average, percentiles and slowest, in milliseconds."""
        ordered = sorted(self.latencies)
        summary = {
            "fastest": ordered[0] if ordered else 0.0,
            "average": sum(ordered) / len(ordered) if ordered else 0.0,
            **{f"p{p}": percentile(ordered, p) for p in PERCENTILES},
            "slowest": ordered[-1] if ordered else 0.0,
        }
        return {key: round(value * 1000, 3) for key, value in summary.items()}

    def to_json(self) -> dict[str, object]:
        """A JSON-ready summary (``--format json``)."""
        count = self.count or 1
        return {
            "count": self.count,
            "total_seconds": round(self.elapsed, 4),
            "rps": round(self.rps, 2),
            "latency_ms": self.latency_summary(),
            "status_codes": dict(sorted(self.statuses.items())),
            "histogram": [
                {"mark_ms": round(mark * 1000, 3), "count": n, "frequency": round(n / count, 4)}
                for mark, n in histogram(self.latencies)
            ],
            "errors": [
                {"status": status, "message": message, "count": n}
                for (status, message), n in self.errors.most_common()
            ],
            "success_rate": self.success_rate,
            "bytes_sent_per_call": round(self.bytes_sent / count, 1),
            "bytes_received_per_call": round(self.bytes_received / count, 1),
            "messages_received_per_call": round(self.messages_received / count, 2),
            "calls": {
                name: {"count": len(values), "p50_ms": round(percentile(sorted(values), 50) * 1000, 3)}
                for name, values in sorted(self.per_call.items())
            },
        }

    def write_csv(self, out: TextIO) -> None:
        """ghz's CSV: one row per call, in the order they finished (``--format csv``)."""
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["duration (ms)", "status", "error"])
        for latency, (status, message) in zip(self.latencies, self.outcomes, strict=True):
            writer.writerow([f"{latency * 1000:.3f}", status, message])

    def histogram_lines(self) -> list[str]:
        """The histogram as ghz prints it: mark in ms, count, a bar scaled to the largest count."""
        buckets = histogram(self.latencies)
        largest = max((n for _, n in buckets), default=0) or 1
        return [f"  {mark * 1000:.3f} [{n}]\t|{'∎' * round(n / largest * BAR_WIDTH)}" for mark, n in buckets]

    def to_text(self) -> str:
        """A ghz-style summary for people (``--format summary``)."""
        count = self.count or 1
        latency = self.latency_summary()
        kinds = self.errors.most_common()
        errors = [f"  [{n}]\t{status}: {message}" for (status, message), n in kinds[:TEXT_ERROR_KINDS]]
        if len(kinds) > TEXT_ERROR_KINDS:
            rest = sum(n for _, n in kinds[TEXT_ERROR_KINDS:])
            more = len(kinds) - TEXT_ERROR_KINDS
            errors.append(f"  [{rest}]\t... {more} more kinds of error (--format json lists them)")
        lines = [
            "Summary:",
            f"  Count:\t{self.count}",
            f"  Total:\t{self.elapsed:.2f} s",
            f"  Slowest:\t{latency['slowest']:.2f} ms",
            f"  Fastest:\t{latency['fastest']:.2f} ms",
            f"  Average:\t{latency['average']:.2f} ms",
            f"  Requests/sec:\t{self.rps:.2f}",
            "",
            "Response time histogram (ms):",
            *self.histogram_lines(),
            "",
            "Latency distribution:",
            *(f"  {p} % in {latency[f'p{p}']:.2f} ms" for p in PERCENTILES),
            "",
            "Status code distribution:",
            *(f"  [{status}]\t{n} responses" for status, n in sorted(self.statuses.items())),
            "",
            *(["Error distribution:", *errors, ""] if errors else []),
            "Bytes per call (gRPC messages):",
            f"  sent:\t{self.bytes_sent / count:.1f}",
            f"  received:\t{self.bytes_received / count:.1f}",
            f"  messages received:\t{self.messages_received / count:.2f}",
        ]
        return "\n".join(lines)
