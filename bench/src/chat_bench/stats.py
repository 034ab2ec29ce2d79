"""What a load run measured: latencies, statuses, bytes, and how to print them."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

PERCENTILES = (50, 90, 95, 99)


def percentile(sorted_values: Sequence[float], p: float) -> float:
    """The nearest-rank ``p``-th percentile of already sorted values (0.0 for none)."""
    if not sorted_values:
        return 0.0
    rank = max(1, math.ceil(p / 100 * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


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
            "success_rate": self.success_rate,
            "bytes_sent_per_call": round(self.bytes_sent / count, 1),
            "bytes_received_per_call": round(self.bytes_received / count, 1),
            "messages_received_per_call": round(self.messages_received / count, 2),
            "calls": {
                name: {"count": len(values), "p50_ms": round(percentile(sorted(values), 50) * 1000, 3)}
                for name, values in sorted(self.per_call.items())
            },
        }

    def to_text(self) -> str:
        """A ghz-style summary for people."""
        count = self.count or 1
        latency = self.latency_summary()
        lines = [
            "Summary:",
            f"  Count:\t{self.count}",
            f"  Total:\t{self.elapsed:.2f} s",
            f"  Slowest:\t{latency['slowest']:.2f} ms",
            f"  Fastest:\t{latency['fastest']:.2f} ms",
            f"  Average:\t{latency['average']:.2f} ms",
            f"  Requests/sec:\t{self.rps:.2f}",
            "",
            "Latency distribution:",
            *(f"  {p} % in {latency[f'p{p}']:.2f} ms" for p in PERCENTILES),
            "",
            "Status code distribution:",
            *(f"  [{status}]\t{n} responses" for status, n in sorted(self.statuses.items())),
            "",
            "Bytes per call (gRPC messages):",
            f"  sent:\t{self.bytes_sent / count:.1f}",
            f"  received:\t{self.bytes_received / count:.1f}",
            f"  messages received:\t{self.messages_received / count:.2f}",
        ]
        return "\n".join(lines)
