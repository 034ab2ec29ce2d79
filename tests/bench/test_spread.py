"""The benchmark's spreads: medians, ranges, and verdicts marked when they are inside the noise."""

from __future__ import annotations

import pytest
from chat_bench import report
from chat_bench.runner import BASELINE, Results, Seeded, Settings, shapes
from chat_bench.spread import Spread, difference, ratios, verdict


def test_a_spread_states_the_median_and_the_range_of_the_rounds() -> None:
    spread = Spread.of([0.9, 0.66, 0.96])
    assert (spread.median, spread.low, spread.high) == (0.9, 0.66, 0.96)
    assert spread.text() == "0.90 (0.66-0.96)"
    assert Spread.of([0.000653, 0.0007]).text(0, 1e6) == "676 (653-700)"


def test_ratios_are_taken_within_each_round() -> None:
    assert ratios([2.0, 3.0, 8.0], [1.0, 3.0, 4.0]).values == (2.0, 1.0, 2.0)
    with pytest.raises(ValueError, match="zip"):
        ratios([1.0], [1.0, 2.0])


@pytest.mark.parametrize(
    ("rounds", "expected"),
    [
        ([0.4, 0.45, 0.48], "**pass**"),
        ([0.55, 0.6, 0.7], "**FAIL**"),
        ([0.45, 0.48, 0.52], "**pass** (inside the noise)"),
        ([0.45, 0.52, 0.55], "**FAIL** (inside the noise)"),
        ([0.5], "**pass**"),  # one round has no spread to be inside of
    ],
)
def test_a_verdict_whose_rounds_straddle_the_target_is_inside_the_noise(
    rounds: list[float], expected: str
) -> None:
    assert verdict(Spread.of(rounds), 0.5) == expected


def test_a_difference_whose_ratios_span_one_is_no_difference() -> None:
    assert difference(Spread.of([0.9, 1.05, 0.97])) == "inside the noise"
    assert difference(Spread.of([0.8, 0.85, 0.9])) == "lower"
    assert difference(Spread.of([1.1, 1.2, 1.3])) == "higher"


def _results() -> Results:
    """Three rounds of made-up figures: gRPC at about 1.2x HTTP/JSON's CPU, latencies around the targets."""
    made = shapes(Seeded(small_id="m-1", large_id="m-2", sample=b""))
    results = Results(Settings(rounds=3), ["pb2", BASELINE], made, pinned=False)
    for shape in made:
        for transport, scale in (("pb2", 0.45), (BASELINE, 1.0)):
            results.latencies[(shape.name, transport)] = [[scale * r] for r in (1.0, 1.1, 0.9)]
            results.bytes_per_call[(shape.name, transport)] = 100 * scale
        results.cpu_per_call[(shape.name, "grpclib")] = [0.00060, 0.00066, 0.00057]
        results.cpu_per_call[(shape.name, BASELINE)] = [0.00050, 0.00051, 0.00052]
    results.c50 = {name: [(0.01, 1000.0)] * 3 for name in ("pb2", BASELINE)}
    return results


def test_the_report_shows_server_cpu_per_shape_with_its_spread_and_verdict() -> None:
    results = _results()
    table = report.cpu_table(results)
    assert "| GetMessage small | 600 (570-660) | 510 (500-520) | 1.20 (1.10-1.29) higher |" in table
    assert table.count("\n") == 1 + len(results.shapes)
    rows = {row[0]: row for row in report.criteria_rows(results)}
    cpu = rows["server CPU per GetMessage, this server / HTTP/JSON server's"]
    assert cpu[2].startswith("1.20 (1.10-1.29)")
    assert cpu[3] == "**FAIL**"
    small = rows["latency, pb2 client (p50, c=1), small calls"]
    assert small[1] == "≤ 1.0x HTTP/JSON"
    assert small[3] == "**pass**"
    assert "StreamCompletion 0.45 (0.45-0.45)" in small[2]


def test_the_report_marks_latencies_inside_the_noise() -> None:
    results = _results()
    results.latencies[("ListMessages 50", "pb2")] = [[0.48], [0.55], [0.5]]
    results.latencies[("ListMessages 50", BASELINE)] = [[1.0], [1.0], [1.0]]
    assert "0.50 (0.48-0.55)" + report.NOISE in report.shapes_table(results)
    rows = {row[0]: row for row in report.criteria_rows(results)}
    assert rows["latency, pb2 client (p50, c=1), every other shape"][3] == "**pass** (inside the noise)"
    assert "inside the noise: ListMessages 50" in rows["latency, pb2 client (p50, c=1)"][2]


def test_a_spread_of_nothing_is_refused_with_a_message() -> None:
    with pytest.raises(ValueError, match=r"^a spread needs at least one value$"):
        Spread.of([])


def test_two_rounds_already_have_a_range_to_be_inside_the_noise() -> None:
    assert verdict(Spread.of([0.45, 0.55]), 0.5) == "**pass** (inside the noise)"
    assert verdict(Spread.of([0.45, 0.49]), 0.5) == "**pass**"
    assert difference(Spread.of([0.9, 1.1])) == "inside the noise"
    assert difference(Spread.of([0.9, 0.95])) == "lower"


@pytest.mark.parametrize(
    ("rounds", "expected"),
    [
        ([0.7], "**pass**"),  # at least 0.7: on the target passes
        ([0.8, 0.9, 0.85], "**pass**"),
        ([0.7 * (1 - 1e-9)], "**FAIL**"),
        ([0.5, 0.6, 0.65], "**FAIL**"),
        ([0.6, 0.75, 0.8], "**pass** (inside the noise)"),
        ([0.6, 0.65, 0.8], "**FAIL** (inside the noise)"),
    ],
)
def test_an_at_least_verdict_passes_on_or_above_its_target(rounds: list[float], expected: str) -> None:
    assert verdict(Spread.of(rounds), 0.7, at_most=False) == expected


def test_one_round_exactly_level_is_no_difference() -> None:
    """One round at exactly 1.0 is neither lower nor higher (it read "higher" until this test)."""
    assert difference(Spread.of([1.0])) == "inside the noise"
    assert difference(Spread.of([1.0 + 1e-9])) == "higher"
    assert difference(Spread.of([1.0 - 1e-9])) == "lower"
