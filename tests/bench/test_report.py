"""Known answers for the benchmark report (chat_bench.report): the criteria table and its verdicts.

``fixtures/results.json`` is a small run written by hand (three rounds of three calls per
shape and client); every figure expected here was worked out from it on paper, never
copied from the code's output. The boundary tests put one measured ratio exactly on each
target, just above it and just below it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy
import pytest
from chat_bench import codec_bench, report, targets
from chat_bench.codec_bench import CodecResults
from chat_bench.runner import Results, Settings, Shape
from chat_bench.stats import LoadResult

RESULTS = Path(__file__).resolve().parent / "fixtures" / "results.json"
PASS, FAIL = "**pass**", "**FAIL**"
STARTED = 1_700_000_000.0  # 2023-11-14 22:13:20 UTC
NUDGE = 1e-9  # a relative step off a target: far above float rounding, far below any real figure


def _never(*_args: object) -> Any:
    raise AssertionError("a report never makes calls")


def _mixed(ok: int, failed: int, elapsed: float = 10.0) -> LoadResult:
    result = LoadResult(elapsed=elapsed)
    for _ in range(ok):
        result.record("GetMessage", 0.005)
    for _ in range(failed):
        result.record("GetMessage", 0.005, "UNAVAILABLE", "connection refused")
    return result


def load_results(path: Path = RESULTS) -> Results:
    """The run that ``path`` describes, as the runner would have measured it."""
    data = json.loads(path.read_text(encoding="utf-8"))
    results = Results(
        settings=Settings(**data["settings"]),
        transports=data["transports"],
        shapes=[Shape(s["name"], s["description"], _never, _never, s["streamed"]) for s in data["shapes"]],
        pinned=False,
        previous_ref="3d6eefafee444ce1cd4bdf87ff261de29ccca7b5",
        started=STARTED,
        finished=STARTED + 600.0,
    )
    for shape, by_client in data["latencies"].items():
        for client, rounds in by_client.items():
            results.latencies[(shape, client)] = rounds
    for shape, by_client in data["bytes_per_call"].items():
        for client, size in by_client.items():
            results.bytes_per_call[(shape, client)] = float(size)
    results.c50 = {client: [(p50, rps) for p50, rps in rounds] for client, rounds in data["c50"].items()}
    for figure, table in (
        ("cpu_per_call", results.cpu_per_call),
        ("compression_cpu", results.compression_cpu),
    ):
        for shape, by_name in data[figure].items():
            for name, rounds in by_name.items():
                table[(shape, name)] = rounds
    statuses = data["mixed"]["statuses"]
    results.mixed = _mixed(statuses["OK"], statuses["UNAVAILABLE"], data["mixed"]["elapsed"])
    codec = data["codec"]
    results.codec = CodecResults(
        codec["message_bytes"],
        {tuple(key.split()): values for key, values in codec["rounds"].items()},
    )
    return results


# The fixture's in-round ratios, worked out on paper: (shape, mine, theirs) -> the rounds' ratios.
# Each round's p50 is its middle value; the median of three ratios is the middle one.
LATENCY_RATIOS = {
    ("GetMessage small", "pb2"): (0.25, 0.4, 0.3),  # 1 / 4, 1.6 / 4, 1.2 / 4 (ms)
    ("GetMessage small", "dataclass"): (0.75, 0.6, 0.7),  # 3 / 4, 2.4 / 4, 2.8 / 4
    ("ListMessages 50", "pb2"): (0.4, 0.5, 0.3),  # 4 / 10, 5 / 10, 3 / 10
    ("ListMessages 50", "dataclass"): (0.6, 0.4, 0.5),  # 6 / 10, 4 / 10, 5 / 10
    ("StreamMessages 1000", "pb2"): (0.4, 0.5, 0.6),  # 40 / 100, 50 / 100, 60 / 100
    ("StreamMessages 1000", "dataclass"): (0.55, 1.0, 0.6),  # 55 / 100, 100 / 100, 60 / 100
}
CPU_RATIOS = {  # grpclib's server CPU per call over the other server's, per round
    ("GetMessage small", "previous"): (0.5, 0.6, 0.5),  # 100 / 200, 120 / 200, 90 / 180 (µs)
    ("GetMessage small", "http-json"): (1.25, 1.0, 0.9),  # 100 / 80, 120 / 120, 90 / 100
    ("ListMessages 50", "previous"): (0.5, 0.55, 0.45),  # 2000 / 4000, 2200 / 4000, 1800 / 4000
    ("ListMessages 50", "http-json"): (0.8, 1.1, 0.9),  # 2000 / 2500, 2200 / 2000, 1800 / 2000
    ("StreamMessages 1000", "previous"): (1.2, 1.3, 1.4),  # 60 / 50, 65 / 50, 70 / 50 (ms)
    ("StreamMessages 1000", "http-json"): (2.0, 1.3, 2.0),  # 60 / 30, 65 / 50, 70 / 35
}


def _middle(values: list[float]) -> float:
    """The p50 of an odd number of values, independently of chat_bench: numpy's median."""
    return float(numpy.median(values))


@pytest.mark.parametrize(("shape", "client"), list(LATENCY_RATIOS))
def test_the_hand_worked_latency_ratios_agree_with_numpy_and_the_runner(shape: str, client: str) -> None:
    results = load_results()
    rounds = zip(results.latencies[(shape, client)], results.latencies[(shape, "http-json")], strict=True)
    by_numpy = [_middle(mine) / _middle(base) for mine, base in rounds]
    assert by_numpy == pytest.approx(LATENCY_RATIOS[(shape, client)])
    assert results.ratios(shape, client).values == pytest.approx(LATENCY_RATIOS[(shape, client)])
    assert results.ratio(shape, client) == pytest.approx(float(numpy.median(by_numpy)))


@pytest.mark.parametrize(("shape", "against"), list(CPU_RATIOS))
def test_the_hand_worked_cpu_ratios_agree_with_numpy_and_the_runner(shape: str, against: str) -> None:
    results = load_results()
    by_numpy = numpy.array(results.cpu_per_call[(shape, "grpclib")]) / results.cpu_per_call[(shape, against)]
    assert list(by_numpy) == pytest.approx(CPU_RATIOS[(shape, against)])
    assert results.cpu_ratios(shape, "grpclib", against).values == pytest.approx(CPU_RATIOS[(shape, against)])


def test_the_criteria_table_of_a_known_run() -> None:
    assert report.criteria_table(load_results()).splitlines() == [
        "| criterion | target | measured | result |",
        "|---|---|---|---|",
        # medians 0.30, 0.40, 0.50: all at most 0.5; the last two ranges reach 0.5
        "| latency, pb2 client (p50, c=1) | ≥ 50% lower than HTTP/JSON in every shape "
        "| 3/3 shapes; worst StreamMessages 1000: 0.50 (0.40-0.60)x the baseline; "
        "inside the noise: ListMessages 50, StreamMessages 1000 | **pass** |",
        # medians 0.70, 0.50, 0.60: only the page at most 0.5; only its range (0.40-0.60) spans 0.5
        "| latency, dataclass client (p50, c=1) | ≥ 50% lower than HTTP/JSON in every shape "
        "| 1/3 shapes; worst GetMessage small: 0.70 (0.60-0.75)x the baseline; "
        "inside the noise: ListMessages 50 | **FAIL** |",
        "| latency, pb2 client (p50, c=1), small calls | ≤ 1.0x HTTP/JSON "
        "| GetMessage small 0.30 (0.25-0.40) | **pass** |",
        "| latency, pb2 client (p50, c=1), every other shape | ≤ 0.5x HTTP/JSON "
        "| ListMessages 50 0.40 (0.30-0.50); StreamMessages 1000 0.50 (0.40-0.60) "
        "| **pass** (inside the noise) |",
        # pb2-gzip over http-json: 450 / 500, 1200 / 10000, 44000 / 100000
        "| bandwidth (bytes on the wire per call), pb2-gzip client "
        "| ≥ 30% fewer than HTTP/JSON in every shape | worst GetMessage small: 0.90x | **FAIL** |",
        # pb2-gzip over http-json-gzip: 450 / 500, 1200 / 2000, 44000 / 40000
        "| bandwidth (bytes on the wire per call), pb2-gzip client "
        "| ≥ 30% fewer than HTTP/JSON with gzip in every shape "
        "| worst StreamMessages 1000: 1.10x | **FAIL** |",
        "| RPC success, mixed load 10 s at c=50 | ≥ 99.9% "
        "| 99.9000% of 2000 calls (200/s); OK 1998, UNAVAILABLE 2 | **pass** |",
        # dataclass over pb2 on the page: 6 / 4, 4 / 5, 5 / 3 (ms)
        "| ListMessages 50 p50, dataclass client / pb2 client | ≤ 1.2 | 1.50 | **FAIL** |",
        # throughput is 1 / latency: pb2's over dataclass's latency, 40 / 55, 50 / 100, 60 / 60
        "| streaming throughput, dataclass client / pb2 client | ≥ 0.70 | 0.73 | **pass** |",
        "| parse a 250-byte Message, dataclass target / upb | ≤ 5x "
        "| 3.5x (3.50 µs against 1.00 µs) | **pass** |",
        "| encode a 250-byte Message, dataclass target / upb | ≤ 5x "
        "| 6.0x (3.00 µs against 0.50 µs) | **FAIL** |",
        # 1.00 exactly on its target passes; its range 0.90-1.25 spans it
        "| server CPU per GetMessage, this server / HTTP/JSON server's | ≤ 1.0 (no more CPU than HTTP/JSON) "
        "| 1.00 (0.90-1.25) (100 (90-120) µs against 100 (80-120) µs) | **pass** (inside the noise) |",
        "| server CPU per GetMessage, this server / previous release's | ≤ 0.75 (≥ 25% less) "
        "| 0.50 (0.50-0.60) (100 (90-120) µs against 200 (180-200) µs) | **pass** |",
    ]


def test_ratios_are_medians_of_in_round_ratios_of_round_medians() -> None:
    results = load_results()
    assert results.p50s("GetMessage small", "pb2") == [0.001, 0.0016, 0.0012]
    assert results.ratio("GetMessage small", "pb2") == pytest.approx(0.3)  # of 0.25, 0.4, 0.3
    page = results.ratio("ListMessages 50", "dataclass", against="pb2")
    assert page == pytest.approx(1.5)  # of 1.5, 0.8, 1.67
    assert report.stream_ratio(results, "dataclass") == pytest.approx(0.04 / 0.055)  # of 0.73, 0.5, 1.0


def test_the_shapes_table_of_a_known_run() -> None:
    """† where a range spans the shape's target: 1.0 for GetMessage small, 0.5 for the others."""
    assert report.shapes_table(load_results()).splitlines() == [
        "| shape | http-json p50 ms | pb2 latency x | dataclass latency x "
        "| bytes/call gRPC : JSON | bytes x |",
        "|---|---|---|---|---|---|",
        "| GetMessage small (one small message) | 4.00 | 0.30 (0.25-0.40) | 0.70 (0.60-0.75) "
        "| 450 : 500 | 0.90 |",
        "| ListMessages 50 (a page of 50) | 10.00 | 0.40 (0.30-0.50)† | 0.50 (0.40-0.60)† "
        "| 3,000 : 10,000 | 0.30 |",
        "| StreamMessages 1000 (replay of 1,000) | 100.00 | 0.50 (0.40-0.60)† | 0.60 (0.55-1.00) "
        "| 80,000 : 100,000 | 0.80 |",
    ]


def test_the_c50_table_of_a_known_run() -> None:
    assert report.c50_table(load_results()).splitlines() == [
        "| client | p50 ms | calls/s | p50 x baseline | calls/s x baseline |",
        "|---|---|---|---|---|",
        "| http-json | 250.0 | 1800 | 1.00 | 1.00 |",
        # p50: 100 / 200, 100 / 300, 200 / 250; calls/s: 4000 / 2000, 3000 / 1500, 2700 / 1800
        "| pb2 | 100.0 | 3000 | 0.50 (0.33-0.80) | 2.00 (1.50-2.00) |",
        # p50: 400 / 200, 300 / 300, 250 / 250; calls/s: 1000 / 2000, 1500 / 1500, 900 / 1800
        "| dataclass | 300.0 | 1000 | 1.00 (1.00-2.00)† | 0.50 (0.50-1.00)† |",
    ]


def test_the_cpu_table_of_a_known_run() -> None:
    """Medians and ranges in µs; † where grpclib's ratio spans 0.75 (previous) or 1.0 (HTTP/JSON)."""
    assert report.cpu_table(load_results()).splitlines() == [
        "| shape | grpclib µs/call | previous µs/call | http-json µs/call "
        "| grpclib ÷ previous | grpclib ÷ http-json |",
        "|---|---|---|---|---|---|",
        "| GetMessage small | 100 (90-120) | 200 (180-200) | 100 (80-120) "
        "| 0.50 (0.50-0.60) lower | 1.00 (0.90-1.25)† inside the noise |",
        "| ListMessages 50 | 2000 (1800-2200) | 4000 (4000-4000) | 2000 (2000-2500) "
        "| 0.50 (0.45-0.55) lower | 0.90 (0.80-1.10)† inside the noise |",
        "| StreamMessages 1000 | 65000 (60000-70000) | 50000 (50000-50000) | 35000 (30000-50000) "
        "| 1.30 (1.20-1.40) higher | 2.00 (1.30-2.00) higher |",
    ]


def test_the_cpu_table_leaves_out_a_shape_a_server_did_not_measure() -> None:
    results = load_results()
    del results.cpu_per_call[("ListMessages 50", "previous")]
    rows = report.cpu_table(results).splitlines()[2:]
    assert [row.split(" | ")[0] for row in rows] == ["| GetMessage small", "| StreamMessages 1000"]
    for shape in ("GetMessage small", "StreamMessages 1000"):
        del results.cpu_per_call[(shape, "previous")]
    assert report.cpu_table(results).splitlines()[0] == (
        "| shape | grpclib µs/call | http-json µs/call | grpclib ÷ http-json |"
    )


def test_the_compression_table_of_a_known_run() -> None:
    """Bytes as measured, pb2-gzip's share of each baseline, and the median server CPU in µs."""
    assert report.compression_table(load_results()).splitlines() == [
        "| shape | bytes pb2 | bytes pb2-gzip | bytes http-json | bytes http-json-gzip "
        "| pb2-gzip ÷ http-json | pb2-gzip ÷ http-json-gzip | server CPU µs/call pb2 "
        "| server CPU µs/call pb2-gzip | server CPU µs/call http-json | server CPU µs/call http-json-gzip |",
        "|" + "---|" * 11,
        "| GetMessage small | 450 | 450 | 500 | 500 | 0.90 | 0.90 | 100 | 110 | 80 | 90 |",
        "| ListMessages 50 | 3,000 | 1,200 | 10,000 | 2,000 | 0.12 | 0.60 | 2,000 | 3,500 | 2,500 | 5,000 |",
        "| StreamMessages 1000 | 80,000 | 44,000 | 100,000 | 40,000 | 0.44 | 1.10 "
        "| 100,000 | 150,000 | 125,000 | - |",
    ]


def test_the_compression_table_without_compressing_clients() -> None:
    results = _two_client_run(baseline=2.0, pb2=0.5)
    assert report.compression_table(results).splitlines()[2] == (
        "| GetMessage small | 50 | - | 100 | - | - | - | - | - | - | - |"
    )


def test_the_losses_name_each_shape_where_grpc_misses_a_target() -> None:
    """Bytes above 0.7x (0.90, 0.80); no latency (0.50 at most) and no CPU (1.00 at most) line."""
    assert report.losses(load_results()).splitlines() == [
        "- GetMessage small: 0.90x the baseline's bytes (mostly text, which JSON carries as is).",
        "- StreamMessages 1000: 0.80x the baseline's bytes (mostly text, which JSON carries as is).",
    ]


def test_the_markdown_report_holds_the_tables_and_the_runs_settings() -> None:
    results = load_results()
    text = report.markdown(results, "run.png", "A quiet machine.")
    assert "(2023-11-14 22:13 UTC)" in text
    assert "Run: 3 interleaved rounds, 3 calls per unary shape per round at c=1," in text
    assert "1 replays of 1,000 messages, 4 GetMessage calls at c=50, mixed load\n" in text
    assert "\n10 s at c=50; 10.0 minutes." in text
    assert "Server and client pinned to separate cores: no." in text
    assert "Previous release's server: `3d6eefafee44`." in text
    assert "\nA quiet machine.\n" in text
    assert "Only 3 round(s)" not in text
    sections = (
        report.criteria_table,
        report.shapes_table,
        report.compression_table,
        report.c50_table,
        report.cpu_table,
        report.losses,
    )
    for section in sections:
        assert section(results) in text
    assert "![latency CDF and bytes per call](run.png)" in text


@pytest.mark.parametrize("rounds", [1, 2])
def test_the_markdown_report_says_when_there_are_too_few_rounds(rounds: int) -> None:
    results = load_results()
    results.settings = Settings(rounds=rounds)
    text = report.markdown(results, "run.png", "")
    assert f"**Only {rounds} round(s): fewer than 3, so no spread here settles anything.**\n" in text


# The boundary tests: one criterion, its measured ratio on the target, a hair above, a hair below.


def _two_client_run(baseline: float, pb2: float, dataclass: float | None = None) -> Results:
    """One round of one call per shape: the p50 of a shape is the value given, the same for every shape."""
    clients = {"http-json": baseline, "pb2": pb2}
    if dataclass is not None:
        clients["dataclass"] = dataclass
    shapes = [
        Shape("GetMessage small", "small", _never, _never),
        Shape(report.PAGE_SHAPE, "page", _never, _never),
        Shape("StreamMessages 1000", "replay", _never, _never, streamed=1000),
    ]
    results = Results(Settings(), list(clients), shapes, pinned=False)
    for shape in shapes:
        for client, p50 in clients.items():
            results.latencies[(shape.name, client)] = [[p50]]
            results.bytes_per_call[(shape.name, client)] = 100.0 if client == "http-json" else 50.0
    return results


def _row(results: Results, criterion: str, target: str | None = None) -> tuple[str, str, str, str]:
    """The one criteria row named ``criterion`` (and with ``target``, when given)."""
    (row,) = [
        row
        for row in report.criteria_rows(results)
        if row[0] == criterion and (target is None or row[1] == target)
    ]
    return row


def _verdict(results: Results, criterion: str, target: str | None = None) -> str:
    return _row(results, criterion, target)[3]


def _around(target: float) -> list[tuple[float, str]]:
    """(value, "at" | "above" | "below") for a target."""
    return [(target, "at"), (target * (1 + NUDGE), "above"), (target * (1 - NUDGE), "below")]


def _cases(target: float, passes: Callable[[str], bool]) -> list[Any]:
    return [
        pytest.param(value, PASS if passes(where) else FAIL, id=where) for value, where in _around(target)
    ]


AT_MOST = {"at": PASS, "above": FAIL, "below": PASS}
LATENCY = "latency, pb2 client (p50, c=1)"


@pytest.mark.parametrize(("ratio", "verdict"), _cases(targets.LATENCY_TARGET, lambda where: where != "above"))
def test_latency_passes_at_half_the_baseline_or_less(ratio: float, verdict: str) -> None:
    row = _row(_two_client_run(baseline=2.0, pb2=2.0 * ratio), LATENCY)
    assert row[3] == verdict
    assert row[2].startswith(f"{3 if verdict == PASS else 0}/3 shapes; worst GetMessage small: ")
    assert "noise" not in row[2]  # one round has no range to be inside the noise


def test_latency_must_pass_in_every_shape_not_on_average() -> None:
    results = _two_client_run(baseline=2.0, pb2=0.2)
    results.latencies[("GetMessage small", "pb2")] = [[1.5]]  # 0.75x in one shape of three
    assert _row(results, LATENCY)[2:] == (
        "2/3 shapes; worst GetMessage small: 0.75 (0.75-0.75)x the baseline",
        FAIL,
    )


@pytest.mark.parametrize(("ratio", "verdict"), _cases(1.0, lambda where: where != "above"))
def test_small_calls_pass_at_the_baselines_latency_or_less(ratio: float, verdict: str) -> None:
    """Issue 26: GetMessage small at most 1.0x HTTP/JSON, while the other shapes stay at 0.2x."""
    results = _two_client_run(baseline=2.0, pb2=0.4)
    results.latencies[("GetMessage small", "pb2")] = [[2.0 * ratio]]
    row = _row(results, f"{LATENCY}, small calls")
    assert row[1:] == ("≤ 1.0x HTTP/JSON", f"GetMessage small {ratio:.2f} ({ratio:.2f}-{ratio:.2f})", verdict)
    assert _verdict(results, f"{LATENCY}, every other shape") == PASS


@pytest.mark.parametrize("shape", [report.PAGE_SHAPE, "StreamMessages 1000"])
@pytest.mark.parametrize(("ratio", "verdict"), _cases(0.5, lambda where: where != "above"))
def test_every_other_shape_passes_at_half_the_baselines_latency_or_less(
    shape: str, ratio: float, verdict: str
) -> None:
    results = _two_client_run(baseline=2.0, pb2=0.4)  # 0.2x everywhere else
    results.latencies[(shape, "pb2")] = [[2.0 * ratio]]
    row = _row(results, f"{LATENCY}, every other shape")
    assert row[1] == "≤ 0.5x HTTP/JSON"
    assert row[3] == verdict
    assert _verdict(results, f"{LATENCY}, small calls") == PASS


@pytest.mark.parametrize(
    ("edge", "where"),
    [(0.5, "at"), (0.5 * (1 + NUDGE), "above"), (0.5 * (1 - NUDGE), "below")],
)
@pytest.mark.parametrize("side", ["highest", "lowest"])
def test_a_range_that_reaches_the_target_is_inside_the_noise(edge: float, where: str, side: str) -> None:
    """Three rounds of the page: 0.3, 0.4 and the edge (highest), or the edge, 0.6, 0.7 (lowest)."""
    rounds = [0.3, 0.4, edge] if side == "highest" else [edge, 0.6, 0.7]
    results = _two_client_run(baseline=1.0, pb2=0.2)
    for shape in results.shapes:
        for client in ("http-json", "pb2"):
            results.latencies[(shape.name, client)] *= 3
    results.latencies[(report.PAGE_SHAPE, "pb2")] = [[r] for r in rounds]
    spans = where == "at" or (where == "above") == (side == "highest")  # the range reaches 0.5
    median = "0.40 (0.30-0.50)" if side == "highest" else "0.60 (0.50-0.70)"
    word = PASS if side == "highest" else FAIL
    shapes = report.shapes_table(results)
    assert (median + report.NOISE in shapes) is spans
    assert (f"| {median} |" in shapes) is not spans
    assert _verdict(results, f"{LATENCY}, every other shape") == word + (
        " (inside the noise)" if spans else ""
    )
    assert ("inside the noise: ListMessages 50" in _row(results, LATENCY)[2]) is spans


@pytest.mark.parametrize(("ratio", "verdict"), _cases(report.BYTES_TARGET, lambda where: where != "above"))
def test_bandwidth_passes_at_seven_tenths_of_the_baseline_or_less(ratio: float, verdict: str) -> None:
    results = _two_client_run(baseline=2.0, pb2=0.5)
    results.bytes_per_call[("StreamMessages 1000", "pb2")] = 10.0 * ratio
    results.bytes_per_call[("StreamMessages 1000", "http-json")] = 10.0
    assert _verdict(results, "bandwidth (bytes on the wire per call), pb2 client") == verdict


@pytest.mark.parametrize(
    ("against", "label"), [("http-json", "HTTP/JSON"), ("http-json-gzip", "HTTP/JSON with gzip")]
)
@pytest.mark.parametrize(("ratio", "verdict"), _cases(report.BYTES_TARGET, lambda where: where != "above"))
def test_compressed_bandwidth_passes_at_seven_tenths_of_each_baseline_or_less(
    against: str, label: str, ratio: float, verdict: str
) -> None:
    """With pb2-gzip measured, the bandwidth rows are its, against plain and gzipped HTTP/JSON."""
    results = _two_client_run(baseline=2.0, pb2=0.5)
    for shape in results.shapes:
        results.bytes_per_call[(shape.name, "pb2")] = 100.0  # the plain client would fail: not its row
        results.bytes_per_call[(shape.name, "pb2-gzip")] = 10.0
        results.bytes_per_call[(shape.name, "http-json-gzip")] = 100.0
    results.bytes_per_call[("ListMessages 50", against)] = 10.0 / ratio
    criterion = "bandwidth (bytes on the wire per call), pb2-gzip client"
    row = _row(results, criterion, f"≥ 30% fewer than {label} in every shape")
    assert row[2:] == (f"worst ListMessages 50: {ratio:.2f}x", verdict)
    assert [row[0] for row in report.criteria_rows(results)].count(criterion) == 2
    assert not any(row[0].endswith("pb2 client") for row in report.criteria_rows(results))


@pytest.mark.parametrize(
    ("ok", "failed", "verdict"),
    [
        pytest.param(1998, 2, PASS, id="at"),  # 99.9% exactly
        pytest.param(1999, 1, PASS, id="above"),
        pytest.param(1997, 3, FAIL, id="below"),
        pytest.param(0, 0, PASS, id="no calls"),  # an empty run has nothing failed (success_rate 1.0)
    ],
)
def test_success_passes_at_999_in_a_thousand_or_more(ok: int, failed: int, verdict: str) -> None:
    results = _two_client_run(baseline=2.0, pb2=0.5)
    results.mixed = _mixed(ok, failed)
    assert _verdict(results, "RPC success, mixed load 60 s at c=50") == verdict


def test_no_mixed_load_no_success_row() -> None:
    rows = report.criteria_rows(_two_client_run(baseline=2.0, pb2=0.5))
    assert [row[0] for row in rows] == [
        LATENCY,
        f"{LATENCY}, small calls",
        f"{LATENCY}, every other shape",
        "bandwidth (bytes on the wire per call), pb2 client",
    ]


@pytest.mark.parametrize(("ratio", "verdict"), _cases(report.PAGE_TARGET, lambda where: where != "above"))
def test_the_dataclass_page_passes_within_its_factor_of_pb2(ratio: float, verdict: str) -> None:
    results = _two_client_run(baseline=2.0, pb2=0.5, dataclass=0.5)
    results.latencies[(report.PAGE_SHAPE, "dataclass")] = [[0.5 * ratio]]
    assert _verdict(results, f"{report.PAGE_SHAPE} p50, dataclass client / pb2 client") == verdict


@pytest.mark.parametrize(("ratio", "verdict"), _cases(report.STREAM_TARGET, lambda where: where != "below"))
def test_the_dataclass_stream_passes_at_its_share_of_pb2s_throughput(ratio: float, verdict: str) -> None:
    results = _two_client_run(baseline=2.0, pb2=0.5, dataclass=0.5)
    results.latencies[("StreamMessages 1000", "dataclass")] = [[0.5 / ratio]]  # throughput is 1 / latency
    assert _verdict(results, "streaming throughput, dataclass client / pb2 client") == verdict


@pytest.mark.parametrize(("ratio", "verdict"), _cases(report.CPU_TARGET, lambda where: where != "above"))
def test_server_cpu_passes_at_three_quarters_of_the_previous_releases(ratio: float, verdict: str) -> None:
    results = _two_client_run(baseline=2.0, pb2=0.5)
    results.cpu_per_call = {
        ("GetMessage small", "grpclib"): [4e-4 * ratio],
        ("GetMessage small", "previous"): [4e-4],
    }
    row = _row(results, "server CPU per GetMessage, this server / previous release's")
    assert row[1:] == (
        "≤ 0.75 (≥ 25% less)",
        f"{ratio:.2f} ({ratio:.2f}-{ratio:.2f}) (300 (300-300) µs against 400 (400-400) µs)",
        verdict,
    )
    assert [row[0] for row in report.criteria_rows(results)].count(
        row[0]
    ) == 1  # no HTTP/JSON row: not measured


@pytest.mark.parametrize(
    ("ratio", "verdict"), _cases(report.CPU_BASELINE_TARGET, lambda where: where != "above")
)
def test_server_cpu_passes_at_the_http_json_servers_or_less(ratio: float, verdict: str) -> None:
    results = _two_client_run(baseline=2.0, pb2=0.5)
    results.cpu_per_call = {
        ("GetMessage small", "grpclib"): [4e-4 * ratio],
        ("GetMessage small", "http-json"): [4e-4],
        ("ListMessages 50", "grpclib"): [9e-4],  # another shape does not weigh on the GetMessage figure
        ("ListMessages 50", "http-json"): [1e-4],
    }
    row = _row(results, "server CPU per GetMessage, this server / HTTP/JSON server's")
    assert row[1] == "≤ 1.0 (no more CPU than HTTP/JSON)"
    assert row[2] == "1.00 (1.00-1.00) (400 (400-400) µs against 400 (400-400) µs)"
    assert row[3] == verdict
    line = "- server CPU per GetMessage small: 1.00 (1.00-1.00)x the HTTP/JSON server's (higher);"
    assert (line in report.losses(results)) is (verdict == FAIL)


def test_no_server_cpu_rows_without_this_servers_figure() -> None:
    results = _two_client_run(baseline=2.0, pb2=0.5)
    results.cpu_per_call = {
        ("GetMessage small", "previous"): [4e-4],
        ("GetMessage small", "http-json"): [4e-4],
    }
    assert not any(row[0].startswith("server CPU") for row in report.criteria_rows(results))


@pytest.mark.parametrize("operation", ["parse", "encode"])
@pytest.mark.parametrize(("ratio", "verdict"), _cases(5.0, lambda where: where != "above"))
def test_the_codec_passes_within_its_factor_of_upb(operation: str, ratio: float, verdict: str) -> None:
    results = _two_client_run(baseline=2.0, pb2=0.5)
    other = "encode" if operation == "parse" else "parse"
    results.codec = CodecResults(
        250,
        {
            ("upb", operation): [2.0],
            ("dataclass", operation): [2.0 * ratio],
            ("upb", other): [2.0],
            ("dataclass", other): [2.0],
        },
    )
    assert _verdict(results, f"{operation} a 250-byte Message, dataclass target / upb") == verdict


def test_the_targets_are_the_ones_the_adr_and_the_issues_set() -> None:
    """Written from the ADR and the issues, not read from the module: a changed target fails here."""
    assert (targets.LATENCY_TARGET, report.BYTES_TARGET, report.SUCCESS_TARGET) == (0.5, 0.7, 0.999)
    assert (report.STREAM_TARGET, report.PAGE_TARGET, report.CPU_TARGET) == (0.7, 1.2, 0.75)
    assert report.CPU_BASELINE_TARGET == 1.0
    assert targets.SMALL_CALLS == {"GetMessage small": 1.0, "StreamCompletion": 1.0}  # issue 26
    assert [
        targets.latency_target(name) for name in ("GetMessage small", "StreamCompletion", "GetMessage large")
    ] == [1.0, 1.0, 0.5]
    from chat_bench.codec_bench import ENCODE_TARGET, PARSE_TARGET

    assert (PARSE_TARGET, ENCODE_TARGET) == (5.0, 5.0)


def test_the_markdown_report_says_when_the_previous_release_was_not_measured() -> None:
    results = load_results()
    results.previous_ref = None
    assert "Previous release's server: `not measured (git history unavailable)`." in report.markdown(
        results, "run.png", ""
    )


def test_the_codec_section_is_the_codec_table_or_says_it_was_not_run() -> None:
    results = load_results()
    assert results.codec is not None
    assert report.codec_section(results) == codec_bench.table(results.codec)
    results.codec = None
    assert report.codec_section(results) == "Not measured in this run."
    assert not any(row[0].startswith(("parse", "encode")) for row in report.criteria_rows(results))


@pytest.mark.parametrize(
    ("ratio", "words"),
    [
        pytest.param(2.0, "slower than", id="twice the baseline"),
        pytest.param(1.5, "slower than", id="slower"),
        pytest.param(0.75, "ahead of, but by less than half,", id="ahead by a quarter"),
        pytest.param(1.0, "level with", id="level"),  # read "ahead of" until this case
    ],
)
def test_the_losses_say_whether_grpc_is_slower_or_only_not_ahead_enough(ratio: float, words: str) -> None:
    results = _two_client_run(baseline=2.0, pb2=2.0 * ratio)
    line = f"the `_pb2` client's p50 is {ratio:.2f}x the baseline's ({words} it)."
    assert report.losses(results).splitlines() == [f"- {shape.name}: {line}" for shape in results.shapes]


@pytest.mark.parametrize(("ratio", "named"), [(0.5, False), (0.5 * (1 + NUDGE), True)], ids=["at", "above"])
def test_the_losses_name_latency_only_above_the_target(ratio: float, named: bool) -> None:
    """At 0.5x the latency criterion passes, so it is no loss (it was named until this test)."""
    results = _two_client_run(baseline=2.0, pb2=0.2)
    results.latencies[("StreamMessages 1000", "pb2")] = [[2.0 * ratio]]
    line = (
        "- StreamMessages 1000: the `_pb2` client's p50 is 0.50x the baseline's"
        " (ahead of, but by less than half, it)."
    )
    assert report.losses(results) == (line if named else "- nowhere in this run.")


@pytest.mark.parametrize(("ratio", "named"), [(0.7, False), (0.7 * (1 + NUDGE), True)], ids=["at", "above"])
def test_the_losses_name_bytes_only_above_the_target(ratio: float, named: bool) -> None:
    results = _two_client_run(baseline=2.0, pb2=0.5)
    results.bytes_per_call[("StreamMessages 1000", "pb2")] = 10.0 * ratio
    results.bytes_per_call[("StreamMessages 1000", "http-json")] = 10.0
    line = "- StreamMessages 1000: 0.70x the baseline's bytes (mostly text, which JSON carries as is)."
    assert report.losses(results) == (line if named else "- nowhere in this run.")


def test_rows_for_a_betterproto2_client_without_the_dataclass_one() -> None:
    results = _two_client_run(baseline=2.0, pb2=0.5, dataclass=0.5)
    results.transports = ["http-json", "pb2", "dataclass-bp2"]
    for shape in results.shapes:
        results.latencies[(shape.name, "dataclass-bp2")] = results.latencies.pop((shape.name, "dataclass"))
    names = [row[0] for row in report.criteria_rows(results)]
    assert f"{report.PAGE_SHAPE} p50, dataclass-bp2 client / pb2 client" in names
    assert "streaming throughput, dataclass-bp2 client / pb2 client" in names
    assert not any(", dataclass client" in name for name in names)


@pytest.mark.parametrize("figure", ["c50", "stream", "cpu", "latency"])
def test_clients_measured_in_different_numbers_of_rounds_are_an_error(figure: str) -> None:
    """A ratio of rounds pairs them one to one: a lost round must not shorten the median silently."""
    results = _two_client_run(baseline=2.0, pb2=0.5, dataclass=0.5)
    if figure == "c50":
        results.c50 = {"http-json": [(0.2, 100.0)], "pb2": [(0.1, 200.0), (0.1, 200.0)], "dataclass": []}
        with pytest.raises(ValueError, match="zip"):
            report.c50_table(results)
        results.c50 = {"http-json": [(0.2, 100.0), (0.2, 100.0)], "pb2": [(0.1, 200.0)], "dataclass": []}
        with pytest.raises(ValueError, match="zip"):
            report.c50_table(results)
        return
    if figure == "stream":
        results.latencies[("StreamMessages 1000", "dataclass")] = [[0.5], [0.5]]
        with pytest.raises(ValueError, match="zip"):
            report.stream_ratio(results, "dataclass")
    elif figure == "cpu":
        results.cpu_per_call = {
            ("GetMessage small", "grpclib"): [1e-4, 1e-4],
            ("GetMessage small", "previous"): [1e-4],
        }
        with pytest.raises(ValueError, match="zip"):
            report.cpu_table(results)
    else:
        results.latencies[("GetMessage small", "pb2")] = [[0.5], [0.5]]
    with pytest.raises(ValueError, match="zip"):
        report.criteria_rows(results)


def _gateway_run(latency: dict[str, float], throughput: list[float]) -> Results:
    """pb2 at 0.25x everywhere; the gateway's p50 per shape at ``latency`` times HTTP/JSON's, and its
    c=50 calls/s per round at ``throughput`` times HTTP/JSON's 1,000/s."""
    results = _two_client_run(baseline=2.0, pb2=0.5)
    results.transports.append(report.GATEWAY)
    for shape, ratio in latency.items():
        results.latencies[(shape, report.GATEWAY)] = [[2.0 * ratio]]
    results.c50 = {
        "http-json": [(0.1, 1000.0)] * len(throughput),
        report.GATEWAY: [(0.1, 1000.0 * ratio) for ratio in throughput],
    }
    return results


GATEWAY_LATENCY = {"GetMessage small": 1.3, report.PAGE_SHAPE: 1.0, "StreamMessages 1000": 1.2}


def test_the_gateway_rows_of_a_known_run() -> None:
    """1.3x exactly passes its latency target; 0.7x exactly (median of 0.7, 0.9, 0.6) its throughput."""
    rows = report.gateway_rows(_gateway_run(GATEWAY_LATENCY, [0.7, 0.9, 0.6]))
    assert rows == [
        (
            "latency, gateway (p50, c=1)",
            "≤ 1.3x HTTP/JSON in every shape",
            "3/3 shapes; worst GetMessage small: 1.30x the baseline",
            PASS,
        ),
        (
            "throughput, gateway (GetMessage, c=50)",
            "≥ 0.7x HTTP/JSON's calls/s",
            "0.70x (rounds 0.60-0.90)",
            PASS,
        ),
    ]
    table = report.criteria_table(_gateway_run(GATEWAY_LATENCY, [0.7, 0.9, 0.6]))
    assert table.splitlines()[-2:] == ["| " + " | ".join(row) + " |" for row in rows]


def test_the_gateway_fails_a_hair_past_either_target() -> None:
    latency = {**GATEWAY_LATENCY, report.PAGE_SHAPE: 1.3 * (1 + NUDGE)}
    latency_row, throughput_row = report.gateway_rows(_gateway_run(latency, [0.7 * (1 - NUDGE)]))
    assert latency_row[2:] == ("2/3 shapes; worst ListMessages 50: 1.30x the baseline", FAIL)
    assert throughput_row[2:] == ("0.70x (rounds 0.70-0.70)", FAIL)


def test_no_gateway_throughput_row_without_its_c50_rounds_and_no_rows_without_the_gateway() -> None:
    results = _gateway_run(GATEWAY_LATENCY, [])
    results.c50 = {}
    assert [row[0] for row in report.gateway_rows(results)] == ["latency, gateway (p50, c=1)"]
    assert report.gateway_rows(_two_client_run(baseline=2.0, pb2=0.5)) == []


def test_gateway_rounds_must_pair_one_to_one() -> None:
    results = _gateway_run(GATEWAY_LATENCY, [0.7, 0.9])
    results.c50["http-json"] = results.c50["http-json"][:1]
    with pytest.raises(ValueError, match="zip"):
        report.gateway_rows(results)


def test_two_rounds_spanning_a_shapes_own_target_are_marked() -> None:
    """GetMessage small spans 1.0 (its target), not 0.5; the page spans 0.5. Two rounds make a range."""
    results = _two_client_run(baseline=1.0, pb2=0.2)
    for key in list(results.latencies):
        results.latencies[key] *= 2
    results.latencies[("GetMessage small", "pb2")] = [[0.9], [1.1]]
    results.latencies[(report.PAGE_SHAPE, "pb2")] = [[0.4], [0.6]]
    rows = report.shapes_table(results).splitlines()[2:]
    assert [row.split(" | ")[2] for row in rows] == [
        "1.00 (0.90-1.10)" + report.NOISE,
        "0.50 (0.40-0.60)" + report.NOISE,
        "0.20 (0.20-0.20)",
    ]


def test_the_c50_table_marks_a_ratio_whose_rounds_span_the_baseline() -> None:
    results = _two_client_run(baseline=2.0, pb2=0.5)
    results.c50 = {"http-json": [(0.1, 1000.0)] * 2, "pb2": [(0.09, 1000.0), (0.11, 1500.0)]}
    assert report.c50_table(results).splitlines()[3] == (
        "| pb2 | 100.0 | 1250 | 1.00 (0.90-1.10)† | 1.25 (1.00-1.50)† |"
    )


def test_the_cpu_table_marks_grpclib_against_the_previous_release_by_its_own_target() -> None:
    """0.70-0.80 spans 0.75 (the previous release's target), not 1.0 (HTTP/JSON's)."""
    results = _two_client_run(baseline=2.0, pb2=0.5)
    results.cpu_per_call = {
        ("GetMessage small", "grpclib"): [7e-4, 8e-4],
        ("GetMessage small", "previous"): [1e-3] * 2,
    }
    assert report.cpu_table(results).splitlines()[2] == (
        "| GetMessage small | 750 (700-800) | 1000 (1000-1000) | 0.75 (0.70-0.80)† lower |"
    )


def test_cpu_figures_of_whole_seconds_are_in_exact_microseconds() -> None:
    results = _two_client_run(baseline=2.0, pb2=0.5)
    results.cpu_per_call = {("GetMessage small", "grpclib"): [1.5], ("GetMessage small", "previous"): [3.0]}
    results.compression_cpu = {("GetMessage small", "pb2"): [1.5]}
    row = _row(results, "server CPU per GetMessage, this server / previous release's")
    assert row[2] == "0.50 (0.50-0.50) (1500000 (1500000-1500000) µs against 3000000 (3000000-3000000) µs)"
    assert report.cpu_table(results).splitlines()[2] == (
        "| GetMessage small | 1500000 (1500000-1500000) | 3000000 (3000000-3000000) "
        "| 0.50 (0.50-0.50) lower |"
    )
    assert report.compression_table(results).splitlines()[2] == (
        "| GetMessage small | 50 | - | 100 | - | - | - | 1,500,000 | - | - | - |"
    )


def test_the_losses_skip_server_cpu_without_the_http_json_servers_figure() -> None:
    results = _two_client_run(baseline=2.0, pb2=0.5)
    results.cpu_per_call = {("GetMessage small", "grpclib"): [2e-3], ("GetMessage small", "previous"): [1e-3]}
    assert report.losses(results) == "- nowhere in this run."


def test_a_bandwidth_row_against_gzipped_http_json_alone() -> None:
    """Plain HTTP/JSON's bytes not measured: the row against the gzipped baseline still stands."""
    results = _two_client_run(baseline=2.0, pb2=0.5)
    for shape in results.shapes:
        results.bytes_per_call[(shape.name, "http-json-gzip")] = results.bytes_per_call.pop(
            (shape.name, "http-json")
        )
    assert [row for row in report.criteria_rows(results) if row[0].startswith("bandwidth")] == [
        (
            "bandwidth (bytes on the wire per call), pb2 client",
            "≥ 30% fewer than HTTP/JSON with gzip in every shape",
            "worst GetMessage small: 0.50x",
            PASS,
        )
    ]


def test_latency_rows_for_other_shapes_without_small_calls() -> None:
    results = _two_client_run(baseline=2.0, pb2=0.5)
    results.shapes = [shape for shape in results.shapes if shape.name not in targets.SMALL_CALLS]
    names = [row[0] for row in report.criteria_rows(results)]
    assert f"{LATENCY}, every other shape" in names
    assert f"{LATENCY}, small calls" not in names


def test_the_markdown_report_says_when_server_and_client_are_pinned() -> None:
    results = load_results()
    results.pinned = True
    text = report.markdown(results, "run.png", "")
    assert "Server and client pinned to separate cores: yes (server CPU 0, client CPU 1).\n" in text
    assert "is not settled by this run.\nPrevious release's server:" in text  # no few-rounds line
