"""The benchmark's report: the ADR criteria table (printed and written as Markdown) and a plot."""

from __future__ import annotations

import os
import platform
import statistics
import time
from pathlib import Path

from chat_bench import codec_bench
from chat_bench.runner import BASELINE, Results
from chat_bench.stats import percentile

LATENCY_TARGET = 0.5  # gRPC p50 at most half the baseline's: >= 50% lower
BYTES_TARGET = 0.7  # >= 30% fewer bytes
SUCCESS_TARGET = 0.999
STREAM_TARGET = 0.7  # dataclass client >= 70% of the _pb2 client's messages/s
PAGE_TARGET = 1.2  # dataclass client's p50 on a page of 50 within 1.2x of the _pb2 client's
PAGE_SHAPE = "ListMessages 50"
CPU_TARGET = 0.75  # server CPU per GetMessage >= 25% below the previous release's


def _verdict(ok: bool) -> str:
    return "**pass**" if ok else "**FAIL**"


def _grpc(results: Results) -> list[str]:
    return [name for name in results.transports if name != BASELINE]


def stream_ratio(results: Results, client: str) -> float:
    """Median of in-round ratios of messages/s on the 1,000-message replay, ``client`` over pb2."""
    shape = next(s for s in results.shapes if s.streamed)
    return statistics.median(
        pb2 / mine
        for mine, pb2 in zip(results.p50s(shape.name, client), results.p50s(shape.name, "pb2"), strict=True)
    )


def criteria_rows(results: Results) -> list[tuple[str, str, str, str]]:
    """(criterion, target, measured, verdict) for each of the ADR's promises and the issue's targets."""
    rows = []
    for client in _grpc(results):
        ratios = {shape.name: results.ratio(shape.name, client) for shape in results.shapes}
        passed = [name for name, ratio in ratios.items() if ratio <= LATENCY_TARGET]
        worst = max(ratios, key=ratios.__getitem__)
        rows.append(
            (
                f"latency, {client} client (p50, c=1)",
                "≥ 50% lower than HTTP/JSON in every shape",
                f"{len(passed)}/{len(ratios)} shapes; worst {worst}: {ratios[worst]:.2f}x the baseline",
                _verdict(len(passed) == len(ratios)),
            )
        )
    bytes_ratios = {
        shape.name: results.bytes_per_call[(shape.name, "pb2")]
        / results.bytes_per_call[(shape.name, BASELINE)]
        for shape in results.shapes
    }
    worst = max(bytes_ratios, key=bytes_ratios.__getitem__)
    rows.append(
        (
            "bandwidth (bytes on the wire per call)",
            "≥ 30% fewer than HTTP/JSON in every shape",
            f"worst {worst}: {bytes_ratios[worst]:.2f}x the baseline",
            _verdict(all(r <= BYTES_TARGET for r in bytes_ratios.values())),
        )
    )
    if results.mixed is not None:
        mixed, settings = results.mixed, results.settings
        rows.append(
            (
                f"RPC success, mixed load {settings.mixed_seconds:.0f} s at c={settings.mixed_concurrency}",
                "≥ 99.9%",
                f"{mixed.success_rate:.4%} of {mixed.count} calls ({mixed.rps:.0f}/s); "
                + ", ".join(f"{k} {v}" for k, v in sorted(mixed.statuses.items())),
                _verdict(mixed.success_rate >= SUCCESS_TARGET),
            )
        )
    rows += _dataclass_rows(results)
    if "previous" in results.cpu_per_call:
        ratio = statistics.median(
            now / before
            for now, before in zip(
                results.cpu_per_call["grpclib"], results.cpu_per_call["previous"], strict=True
            )
        )
        rows.append(
            (
                "server CPU per GetMessage, this server / previous release's",
                "≤ 0.75 (≥ 25% less)",
                f"{ratio:.2f} ({statistics.median(results.cpu_per_call['grpclib']) * 1e6:.0f} µs against "
                f"{statistics.median(results.cpu_per_call['previous']) * 1e6:.0f} µs)",
                _verdict(ratio <= CPU_TARGET),
            )
        )
    return rows


def _dataclass_rows(results: Results) -> list[tuple[str, str, str, str]]:
    """The dataclass client against the `_pb2` one (page latency, stream throughput) and its codec."""
    rows = []
    for client in ("dataclass", "dataclass-bp2"):
        if client not in results.transports:
            continue
        page = results.ratio(PAGE_SHAPE, client, against="pb2")
        rows.append(
            (
                f"{PAGE_SHAPE} p50, {client} client / pb2 client",
                f"≤ {PAGE_TARGET}",
                f"{page:.2f}",
                _verdict(page <= PAGE_TARGET),
            )
        )
        ratio = stream_ratio(results, client)
        rows.append(
            (
                f"streaming throughput, {client} client / pb2 client",
                f"≥ {STREAM_TARGET:.2f}",
                f"{ratio:.2f}",
                _verdict(ratio >= STREAM_TARGET),
            )
        )
    codec = results.codec
    if codec is not None:
        for operation, target in (("parse", codec_bench.PARSE_TARGET), ("encode", codec_bench.ENCODE_TARGET)):
            ratio = codec.ratio("dataclass", operation)
            rows.append(
                (
                    f"{operation} a {codec.message_bytes}-byte Message, dataclass target / upb",
                    f"≤ {target:.0f}x",
                    f"{ratio:.1f}x ({codec.micros('dataclass', operation):.2f} µs against "
                    f"{codec.micros('upb', operation):.2f} µs)",
                    _verdict(ratio <= target),
                )
            )
    return rows


def codec_section(results: Results) -> str:
    """The codec microbenchmark's table, or a line saying it was not run."""
    if results.codec is None:
        return "Not measured in this run."
    return codec_bench.table(results.codec)


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


GATEWAY = "gateway"  # judged by its own targets (issue 25), not the ADR's gRPC ones
GATEWAY_LATENCY_TARGET = 1.3  # the gateway's p50 within 1.3x of HTTP/JSON in every shape
GATEWAY_THROUGHPUT_TARGET = 0.7  # its GetMessage calls/s at c=50 at least 0.7x HTTP/JSON's


def gateway_rows(results: Results) -> list[tuple[str, str, str, str]]:
    """The gateway's overhead targets: p50 within 1.3x of HTTP/JSON in every shape at c=1, and at
    least 0.7x its GetMessage throughput at c=50 (both medians of in-round ratios)."""
    if GATEWAY not in results.transports:
        return []
    ratios = {shape.name: results.ratio(shape.name, GATEWAY) for shape in results.shapes}
    passed = [name for name, ratio in ratios.items() if ratio <= GATEWAY_LATENCY_TARGET]
    worst = max(ratios, key=ratios.__getitem__)
    rows = [
        (
            "latency, gateway (p50, c=1)",
            f"≤ {GATEWAY_LATENCY_TARGET}x HTTP/JSON in every shape",
            f"{len(passed)}/{len(ratios)} shapes; worst {worst}: {ratios[worst]:.2f}x the baseline",
            _verdict(len(passed) == len(ratios)),
        )
    ]
    rounds = zip(results.c50.get(GATEWAY, []), results.c50.get(BASELINE, []), strict=True)
    throughput = [mine / theirs for (_, mine), (_, theirs) in rounds]
    if throughput:
        ratio = statistics.median(throughput)
        rows.append(
            (
                "throughput, gateway (GetMessage, c=50)",
                f"≥ {GATEWAY_THROUGHPUT_TARGET}x HTTP/JSON's calls/s",
                f"{ratio:.2f}x (rounds {min(throughput):.2f}-{max(throughput):.2f})",
                _verdict(ratio >= GATEWAY_THROUGHPUT_TARGET),
            )
        )
    return rows


def criteria_table(results: Results) -> str:
    """The criteria as a Markdown table (the gateway's own targets last)."""
    rows = criteria_rows(results) + gateway_rows(results)
    return _table(["criterion", "target", "measured", "result"], [list(row) for row in rows])


def shapes_table(results: Results) -> str:
    """Per shape: the baseline's p50, each gRPC client's latency ratio, and the bytes ratio."""
    grpc = _grpc(results)
    header = [
        "shape",
        f"{BASELINE} p50 ms",
        *(f"{c} latency x" for c in grpc),
        "bytes/call gRPC : JSON",
        "bytes x",
    ]
    rows = []
    for shape in results.shapes:
        base = statistics.median(results.p50s(shape.name, BASELINE)) * 1000
        grpc_bytes = results.bytes_per_call[(shape.name, "pb2")]
        json_bytes = results.bytes_per_call[(shape.name, BASELINE)]
        rows.append(
            [
                f"{shape.name} ({shape.description})",
                f"{base:.2f}",
                *(f"{results.ratio(shape.name, c):.2f}" for c in grpc),
                f"{grpc_bytes:,.0f} : {json_bytes:,.0f}",
                f"{grpc_bytes / json_bytes:.2f}",
            ]
        )
    return _table(header, rows)


def c50_table(results: Results) -> str:
    """GetMessage (small) at 50 in flight: p50 and calls per second, with in-round ratios."""
    rows = []
    base = results.c50[BASELINE]
    for client in results.transports:
        mine = results.c50[client]
        p50_ratio = statistics.median(m[0] / b[0] for m, b in zip(mine, base, strict=True))
        rps_ratio = statistics.median(m[1] / b[1] for m, b in zip(mine, base, strict=True))
        rows.append(
            [
                client,
                f"{statistics.median(m[0] for m in mine) * 1000:.1f}",
                f"{statistics.median(m[1] for m in mine):.0f}",
                f"{p50_ratio:.2f}",
                f"{rps_ratio:.2f}",
            ]
        )
    return _table(["client", "p50 ms", "calls/s", "p50 x baseline", "calls/s x baseline"], rows)


def cpu_table(results: Results) -> str:
    """Server CPU per GetMessage for each server measured."""
    rows = [
        [name, f"{statistics.median(values) * 1e6:.0f}", ", ".join(f"{v * 1e6:.0f}" for v in values)]
        for name, values in results.cpu_per_call.items()
    ]
    return _table(["server", "CPU µs per GetMessage (median)", "per round"], rows)


def losses(results: Results) -> str:
    """Where gRPC (the `_pb2` client, the cheapest grpclib one) is not ahead, in words and numbers."""
    lines = []
    for shape in results.shapes:
        ratio = results.ratio(shape.name, "pb2")
        if ratio >= LATENCY_TARGET:
            verdict = "slower than" if ratio > 1 else "ahead of, but by less than half,"
            lines.append(
                f"- {shape.name}: the `_pb2` client's p50 is {ratio:.2f}x the baseline's ({verdict} it)."
            )
        size = results.bytes_per_call[(shape.name, "pb2")] / results.bytes_per_call[(shape.name, BASELINE)]
        if size > BYTES_TARGET:
            lines.append(
                f"- {shape.name}: {size:.2f}x the baseline's bytes (mostly text, which JSON carries as is)."
            )
    return "\n".join(lines) or "- nowhere in this run."


def markdown(results: Results, plot_name: str, notes: str) -> str:
    """The whole report."""
    settings = results.settings
    day = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(results.started))
    minutes = (results.finished - results.started) / 60
    previous = results.previous_ref[:12] if results.previous_ref else "not measured (git history unavailable)"
    return f"""# Benchmark: gRPC against the HTTP/JSON baseline ({day})

Machine: `nproc` = {os.cpu_count()}, {platform.machine()}, Python {platform.python_version()}.
Server and client pinned to separate cores: {"yes (server CPU 0, client CPU 1)" if results.pinned else "no"}.
Run: {settings.rounds} interleaved rounds, {settings.calls} calls per unary shape per round at c=1,
{settings.stream_calls} replays of 1,000 messages, {settings.c50_calls} GetMessage calls at c=50, mixed load
{settings.mixed_seconds:.0f} s at c={settings.mixed_concurrency}; {minutes:.1f} minutes. Ratios are medians
of in-round ratios (gRPC ÷ HTTP/JSON: below 1 is better for gRPC). Previous release's server: `{previous}`.

{notes}

## Criteria

{criteria_table(results)}

## Where gRPC does not meet the ADR's promise

{losses(results)}

Small calls on loopback are dominated by per-call protocol work in pure Python: grpclib's
HTTP/2 (h2, hpack, frames) costs more per call than aiohttp's HTTP/1.1 parser, which is
C. gRPC's binary encoding only pays off where there is structure to compress (pages,
streams of many messages); a message that is mostly text is about as large in both.
On a network, bytes and connection reuse weigh more and this gap narrows; on loopback
it is widest.

## Per call shape (p50 latency at c=1 and bytes on the wire, ratios against HTTP/JSON)

{shapes_table(results)}

## GetMessage (small) at 50 in flight

{c50_table(results)}

## Server CPU per GetMessage (c=50)

{cpu_table(results)}

## Codecs: one stored Message (author, a file, timestamps), encoded and parsed in-process

{codec_section(results)}

`dataclass` is the SDK's dataclass target as shipped: its C codec (`chat_sdk._fastwire`)
reads and writes the bytes straight into and out of the dataclasses. `python-path` is the
same classes through the SDK's Python path (upb parses and writes through the `_pb2` twin
of each class, converters generated from the descriptors build the dataclasses): what
the C codec hands over what it declines, and what a wheel built without it runs.
`betterproto2` is betterproto2's own pure-Python codec on the same classes (what the
dataclass target used before 2.1); `dataclass-bp2` above is a client using it.

![latency CDF and bytes per call]({plot_name})
"""


def plot(results: Results, path: Path) -> None:
    """Latency CDF of the small GetMessage per client, and bytes per call per shape."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (cdf, sizes) = plt.subplots(1, 2, figsize=(13, 5))
    shape = results.shapes[0].name
    for client in results.transports:
        values = sorted(v * 1000 for run in results.latencies[(shape, client)] for v in run)
        cdf.plot(values, [(i + 1) / len(values) for i in range(len(values))], label=client)
    cdf.set_xscale("log")
    cdf.set_xlabel("latency, ms (log)")
    cdf.set_ylabel("share of calls")
    cdf.set_title(f"{shape}, c=1: latency CDF")
    cdf.legend()
    width = 0.8 / len(results.transports)
    for index, client in enumerate(results.transports):
        sizes.bar(
            [i + index * width for i in range(len(results.shapes))],
            [results.bytes_per_call[(s.name, client)] for s in results.shapes],
            width,
            label=client,
        )
    sizes.set_xticks([i + 0.4 - width / 2 for i in range(len(results.shapes))])
    sizes.set_xticklabels([s.name for s in results.shapes], rotation=20, ha="right", fontsize=8)
    sizes.set_yscale("log")
    sizes.set_ylabel("bytes on the wire per call (log)")
    sizes.set_title("bytes per call")
    sizes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def p99(values: list[float]) -> float:
    """The 99th percentile of unsorted values."""
    return percentile(sorted(values), 99)
