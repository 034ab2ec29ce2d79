"""The benchmark's report: the ADR criteria table (printed and written as Markdown) and a plot."""

from __future__ import annotations

import os
import platform
import statistics
import time
from pathlib import Path

from chat_bench import codec_bench, floor_report, latency_floor
from chat_bench.runner import BASELINE, CPU_SERVERS, Results
from chat_bench.spread import MIN_ROUNDS, Spread, difference, ratios, verdict
from chat_bench.stats import percentile
from chat_bench.targets import LATENCY_TARGET, latency_target, target_groups

BYTES_TARGET = 0.7  # >= 30% fewer bytes
SUCCESS_TARGET = 0.999
STREAM_TARGET = 0.7  # dataclass client >= 70% of the _pb2 client's messages/s
PAGE_TARGET = 1.2  # dataclass client's p50 on a page of 50 within 1.2x of the _pb2 client's
PAGE_SHAPE = "ListMessages 50"
CPU_TARGET = 0.75  # server CPU per GetMessage >= 25% below the previous release's
CPU_BASELINE_TARGET = 1.0  # server CPU per GetMessage no more than the HTTP/JSON server's
CPU_SHAPE = "GetMessage small"
NOISE = "†"  # marks a figure whose rounds' range spans its target (or 1.0): inside the noise


def _noisy(spread: Spread, target: float) -> bool:
    """Whether the rounds' range spans ``target`` (one round has no range to span it)."""
    return len(spread.values) > 1 and spread.spans(target)


def _marked(spread: Spread, target: float, digits: int = 2) -> str:
    """The spread's text, marked with the noise sign when its range spans ``target``."""
    return spread.text(digits) + (NOISE if _noisy(spread, target) else "")


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
    for client in (name for name in _grpc(results) if name != GATEWAY):  # the gateway: gateway_rows
        spreads = {shape.name: results.ratios(shape.name, client) for shape in results.shapes}
        passed = [name for name, spread in spreads.items() if spread.median <= LATENCY_TARGET]
        worst = max(spreads, key=lambda name: spreads[name].median)
        noisy = [name for name, spread in spreads.items() if _noisy(spread, LATENCY_TARGET)]
        rows.append(
            (
                f"latency, {client} client (p50, c=1)",
                "≥ 50% lower than HTTP/JSON in every shape",
                f"{len(passed)}/{len(spreads)} shapes; worst {worst}: {spreads[worst].text()}x the baseline"
                + (f"; inside the noise: {', '.join(noisy)}" if noisy else ""),
                _verdict(len(passed) == len(spreads)),
            )
        )
    rows += _target_rows(results)
    rows += latency_floor.criteria_rows(results)
    rows += _bytes_rows(results)
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
    rows += _cpu_rows(results)
    rows += floor_report.criteria_rows(results)
    return rows


def _target_rows(results: Results) -> list[tuple[str, str, str, str]]:
    """Issue 26's latency targets for the `_pb2` client: ≤ 1.0x on the small calls, ≤ 0.5x elsewhere."""
    if "pb2" not in results.transports:
        return []
    rows = []
    for label, names in target_groups([s.name for s in results.shapes]):
        spreads = {name: results.ratios(name, "pb2") for name in names}
        target = max(latency_target(name) for name in names)
        rows.append(
            (
                f"latency, pb2 client (p50, c=1), {label}",
                f"≤ {target:.1f}x HTTP/JSON",
                "; ".join(f"{name} {spread.text()}" for name, spread in spreads.items()),
                _worst_verdict([verdict(spread, target) for spread in spreads.values()]),
            )
        )
    return rows


def _worst_verdict(verdicts: list[str]) -> str:
    """One verdict for several figures: a FAIL if any fails, *inside the noise* if any is."""
    word = "**FAIL**" if any(v.startswith("**FAIL**") for v in verdicts) else "**pass**"
    return word + (" (inside the noise)" if any("noise" in v for v in verdicts) else "")


def _cpu_rows(results: Results) -> list[tuple[str, str, str, str]]:
    """Server CPU per GetMessage against the HTTP/JSON server's and against the previous release's."""
    rows = []
    for against, name, target, goal in (
        (BASELINE, "HTTP/JSON server", CPU_BASELINE_TARGET, "≤ 1.0 (no more CPU than HTTP/JSON)"),
        ("previous", "previous release", CPU_TARGET, "≤ 0.75 (≥ 25% less)"),
    ):
        measured = results.cpu_per_call
        if (CPU_SHAPE, against) not in measured or (CPU_SHAPE, "grpclib") not in measured:
            continue
        spread = results.cpu_ratios(CPU_SHAPE, "grpclib", against)
        mine = Spread.of(results.cpu_per_call[(CPU_SHAPE, "grpclib")])
        theirs = Spread.of(results.cpu_per_call[(CPU_SHAPE, against)])
        rows.append(
            (
                f"server CPU per GetMessage, this server / {name}'s",
                goal,
                f"{spread.text()} ({mine.text(0, 1e6)} µs against {theirs.text(0, 1e6)} µs)",
                verdict(spread, target),
            )
        )
    return rows


def _bytes_ratios(results: Results, client: str, against: str) -> dict[str, float]:
    return {
        shape.name: results.bytes_per_call[(shape.name, client)]
        / results.bytes_per_call[(shape.name, against)]
        for shape in results.shapes
        if (shape.name, client) in results.bytes_per_call and (shape.name, against) in results.bytes_per_call
    }


def _bytes_rows(results: Results) -> list[tuple[str, str, str, str]]:
    """Bytes per call: the SDK's client with compression (pb2-gzip, when measured), else pb2, against
    plain HTTP/JSON; and against HTTP/JSON behind gzip, when measured."""
    client = "pb2-gzip" if _bytes_ratios(results, "pb2-gzip", BASELINE) else "pb2"
    rows = []
    for against, label in ((BASELINE, "HTTP/JSON"), (f"{BASELINE}-gzip", "HTTP/JSON with gzip")):
        ratios = _bytes_ratios(results, client, against)
        if not ratios:
            continue
        worst = max(ratios, key=ratios.__getitem__)
        rows.append(
            (
                f"bandwidth (bytes on the wire per call), {client} client",
                f"≥ 30% fewer than {label} in every shape",
                f"worst {worst}: {ratios[worst]:.2f}x",
                _verdict(all(r <= BYTES_TARGET for r in ratios.values())),
            )
        )
    return rows


def compression_table(results: Results) -> str:
    """Per shape: bytes per call of each client, plain and compressing, and the server CPU it costs."""
    clients = ["pb2", "pb2-gzip", BASELINE, f"{BASELINE}-gzip"]
    rows = []
    for shape in results.shapes:
        sizes = [results.bytes_per_call.get((shape.name, c), 0.0) for c in clients]
        cpu = [results.compression_cpu.get((shape.name, c)) for c in clients]
        rows.append(
            [
                shape.name,
                *(f"{size:,.0f}" if size else "-" for size in sizes),
                *(f"{sizes[1] / sizes[i]:.2f}" if sizes[1] and sizes[i] else "-" for i in (2, 3)),
                *(f"{statistics.median(c) * 1e6:,.0f}" if c else "-" for c in cpu),
            ]
        )
    header = [
        "shape",
        *(f"bytes {c}" for c in clients),
        "pb2-gzip ÷ http-json",
        "pb2-gzip ÷ http-json-gzip",
        *(f"server CPU µs/call {c}" for c in clients),
    ]
    return _table(header, rows)


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
                *(_marked(results.ratios(shape.name, c), latency_target(shape.name)) for c in grpc),
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
        p50_ratio = ratios((m[0] for m in mine), (b[0] for b in base))
        rps_ratio = ratios((m[1] for m in mine), (b[1] for b in base))
        rows.append(
            [
                client,
                f"{statistics.median(m[0] for m in mine) * 1000:.1f}",
                f"{statistics.median(m[1] for m in mine):.0f}",
                *(
                    ("1.00", "1.00")  # the baseline against itself: no spread to speak of
                    if client == BASELINE
                    else (_marked(p50_ratio, 1.0), _marked(rps_ratio, 1.0))
                ),
            ]
        )
    return _table(["client", "p50 ms", "calls/s", "p50 x baseline", "calls/s x baseline"], rows)


def cpu_table(results: Results) -> str:
    """Server CPU per call of each shape on each server, and this server's against the others, per round."""
    servers = [name for name in CPU_SERVERS if any(key[1] == name for key in results.cpu_per_call)]
    others = [name for name in servers if name != "grpclib"]
    header = ["shape", *(f"{name} µs/call" for name in servers), *(f"grpclib ÷ {name}" for name in others)]
    rows = []
    for shape in results.shapes:
        if any((shape.name, name) not in results.cpu_per_call for name in servers):
            continue
        cells = [Spread.of(results.cpu_per_call[(shape.name, name)]).text(0, 1e6) for name in servers]
        for name in others:
            spread = results.cpu_ratios(shape.name, "grpclib", name)
            target = CPU_BASELINE_TARGET if name == BASELINE else CPU_TARGET
            cells.append(f"{_marked(spread, target)} {difference(spread)}")
        rows.append([shape.name, *cells])
    return _table(header, rows)


def losses(results: Results) -> str:
    """Where gRPC (the `_pb2` client, the cheapest grpclib one) is not ahead, in words and numbers."""
    lines = []
    for shape in results.shapes:
        ratio = results.ratio(shape.name, "pb2")
        if ratio > LATENCY_TARGET:  # at the target the criterion passes: no loss
            verdict = (
                "slower than"
                if ratio > 1
                else "ahead of, but by less than half,"
                if ratio < 1
                else "level with"
            )
            floor = (
                f" {latency_floor.sentence(results, shape.name)}"
                if latency_floor.measured(results, shape.name)
                else ""
            )
            lines.append(
                f"- {shape.name}: the `_pb2` client's p50 is {ratio:.2f}x the baseline's"
                f" ({verdict} it).{floor}"
            )
        size = results.bytes_per_call[(shape.name, "pb2")] / results.bytes_per_call[(shape.name, BASELINE)]
        if size > BYTES_TARGET:
            lines.append(
                f"- {shape.name}: {size:.2f}x the baseline's bytes (mostly text, which JSON carries as is)."
            )
    if (CPU_SHAPE, "grpclib") in results.cpu_per_call and (CPU_SHAPE, BASELINE) in results.cpu_per_call:
        spread = results.cpu_ratios(CPU_SHAPE, "grpclib", BASELINE)
        if spread.median > CPU_BASELINE_TARGET:
            lines.append(
                f"- server CPU per {CPU_SHAPE}: {spread.text()}x the HTTP/JSON server's"
                f" ({difference(spread)}); the per-shape table below has the rest."
                + (f" {floor_report.floor_sentence(results)}" if floor_report.measured(results) else "")
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
of in-round ratios (gRPC ÷ HTTP/JSON: below 1 is better for gRPC), followed by the range of the rounds
(min-max). {NOISE} and "inside the noise" mark a figure whose range spans its target (or 1.0): the rounds
disagree on which side it is, so that verdict or difference is not settled by this run.
{_few_rounds(settings.rounds)}Previous release's server: `{previous}`.

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

## Latency floor: the protocol stacks alone (p50, c=1)

Measured in the same rounds as the table above: the `_pb2` client against (a) a bare
`grpclib.server.Server`, and the HTTP/JSON client against (b) the HTTP/JSON baseline's own
stack (aiohttp's HTTP/1.1, ProtoJSON), each answering every shape with the replies the real
server gave it, recorded once: no storage, no guard, none of this repository's layers
(`chat_bench.floor_servers`). Ratios are in-round ratios against the HTTP/JSON server's
whole call, as in the table above ("this server" is its `pb2` column). (a) and (b) leave
out the same work: the HTTP/JSON server runs this server's very handlers and storage. With
that shared work H, the two servers' calls take about a + H and b + H, whose ratio lies
between (a) ÷ (b) and 1 whatever H is: when (a) ÷ (b) is above a shape's target in every
round, no server on this stack meets the target doing the HTTP/JSON server's work, and
that is the floor. (a) writes as grpclib does (this server's coalescing of writes is one
of the layers left out).

{latency_floor.section(results)}

## Compression: bytes per call and the server CPU per call it costs (medians over rounds)

{compression_table(results)}

`pb2-gzip` is the `_pb2` client through the SDK's `connect(compression="gzip")`: gRPC
compression per message, from 512 bytes, both ways (services/README.md, "Compression").
`{BASELINE}-gzip` is the baseline as a deployment behind gzip serves it: replies from 512
bytes and request bodies from 512 bytes gzipped, a reply stream as one gzip stream.

## GetMessage (small) at 50 in flight

{c50_table(results)}

## Server CPU per call (up to 50 in flight)

The server process's CPU time (user + system, every thread, as the kernel counts it)
divided by the calls, per round and server, interleaved; each server is the `_pb2`
client's (HTTP/JSON's for the baseline) only load while it is measured. Medians and
range (min-max) over the rounds; the ratio columns are in-round ratios.

{cpu_table(results)}

## Server CPU floor: the protocol stacks alone (GetMessage small, c=50)

Measured in the same rounds as the table above: (a) a bare `grpclib.server.Server` and
(b) the HTTP/JSON baseline's own stack (aiohttp's HTTP/1.1, ProtoJSON), each running one
handler that reads the request and sends the small GetMessage's reply, built once: no
storage, no guard, none of this repository's layers (`chat_bench.floor_servers`); (c) the
two real servers' whole calls. Each stack decodes the request and encodes the reply with
its own codec. Ratios are in-round ratios against the HTTP/JSON server's whole call.

{floor_report.section(results)}

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


def _few_rounds(rounds: int) -> str:
    if rounds >= MIN_ROUNDS:
        return ""
    return f"**Only {rounds} round(s): fewer than {MIN_ROUNDS}, so no spread here settles anything.**\n"


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
