"""What each gRPC message encoding costs and saves on chat text: ``python -m chat_bench.compression_costs``.

For messages of chat prose (:mod:`chat_bench.prose`) from a few hundred bytes to 64 kB,
each encoding the SDK and the services speak (:data:`chat_sdk.compression.ENCODINGS`)
compresses and inflates them through the very functions the calls use
(:func:`~chat_sdk.compression.compress`, :func:`~chat_sdk.compression.inflate`). CPU per
message is ``time.process_time`` over a batch, the median of the rounds; the size is the
compressed length ÷ the message's. services/README.md ("Compression") quotes the table.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from chat_bench.prose import prose
from chat_sdk.compression import ENCODINGS, compress, inflate

SIZES = (256, 512, 1024, 4096, 16384, 65536)


@dataclass(frozen=True)
class Cost:
    """One encoding on one message size."""

    encoding: str
    size: int
    ratio: float  # compressed ÷ original bytes
    compress_us: float
    inflate_us: float


def cpu_per_call(call: Callable[[], object], calls: int, rounds: int) -> float:
    """Median CPU µs per call of ``rounds`` batches of ``calls`` calls."""
    figures = []
    for _ in range(rounds):
        started = time.process_time()
        for _ in range(calls):
            call()
        figures.append((time.process_time() - started) / calls * 1e6)
    return statistics.median(figures)


def measure(sizes: Sequence[int] = SIZES, rounds: int = 5, bytes_per_batch: int = 4_000_000) -> list[Cost]:
    """The cost of every encoding on a message of each size (``bytes_per_batch`` sizes a batch)."""
    costs = []
    for size in sizes:
        data = prose(size, f"compression-{size}").encode()
        calls = max(20, bytes_per_batch // size)
        for encoding in ENCODINGS:
            packed = compress(data, encoding)
            assert inflate(packed, encoding, size) == data
            costs.append(
                Cost(
                    encoding,
                    size,
                    len(packed) / size,
                    cpu_per_call(lambda: compress(data, encoding), calls, rounds),  # noqa: B023 (used at once)
                    cpu_per_call(lambda: inflate(packed, encoding, size), calls, rounds),  # noqa: B023
                )
            )
    return costs


def table(costs: Sequence[Cost]) -> str:
    """A Markdown table: a row per size, a size ratio and the CPU both ways per encoding."""
    encodings = list(dict.fromkeys(cost.encoding for cost in costs))
    header = "| message | " + " | ".join(
        f"{name} size | {name} µs (compress / inflate)" for name in encodings
    )
    lines = [header + " |", "| ---: |" + " ---: | ---: |" * len(encodings)]
    for size in dict.fromkeys(cost.size for cost in costs):
        cells = []
        for name in encodings:
            (cost,) = [c for c in costs if c.size == size and c.encoding == name]
            cells += [f"{cost.ratio:.2f}", f"{cost.compress_us:.1f} / {cost.inflate_us:.1f}"]
        label = f"{size // 1024} kB" if size >= 1024 else f"{size} B"
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m chat_bench.compression_costs", description=__doc__)
    parser.add_argument("--rounds", type=int, default=5, help="batches per figure (the median is shown)")
    arguments = parser.parse_args(argv)
    print(table(measure(rounds=arguments.rounds)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
