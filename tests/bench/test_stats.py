"""Known answers for the load run's figures (chat_bench.stats): the numbers the benchmark publishes.

The project's percentile is the nearest-rank one: the smallest value with at least
``p`` percent of the values at or below it, never an interpolation between two calls.
That is numpy's ``method="inverted_cdf"`` (Hyndman and Fan's definition 1), and the
tests hold it to numpy on fixed data, and to hand-worked answers where the two
definitions in common use (nearest rank, numpy's default linear) disagree.
"""

from __future__ import annotations

import csv
import io
import json
import random
from typing import Final

import numpy as np
import pytest
from chat_bench.report import p99
from chat_bench.stats import (
    MAX_ERROR_KINDS,
    MAX_ERROR_MESSAGE,
    OTHER_MESSAGES,
    PERCENTILES,
    LoadResult,
    histogram,
    percentile,
)

PERCENTILE_METHOD: Final = "inverted_cdf"  # numpy's name for the nearest-rank percentile
RANKS = (0, 1, 10, 25, 33.3, 50, 66.7, 75, 90, 95, 99, 99.9, 100)


def _fixed_latencies(count: int, seed: int) -> list[float]:
    """``count`` latencies in seconds, log-normal around 2.5 ms as real calls are, the same every run."""
    rng = random.Random(seed)
    return [rng.lognormvariate(-6, 1) for _ in range(count)]


@pytest.mark.parametrize("count", [1, 2, 3, 4, 5, 7, 10, 19, 20, 21, 99, 100, 101, 150, 1000, 1001])
def test_percentiles_are_numpys_nearest_rank_ones(count: int) -> None:
    values = sorted(_fixed_latencies(count, seed=count))
    for p in RANKS:
        expected = float(np.percentile(values, p, method=PERCENTILE_METHOD))
        assert percentile(values, p) == expected, (count, p)


def test_a_percentile_is_a_measured_value_never_an_interpolation() -> None:
    values = [float(v) for v in range(1, 11)]  # 1..10
    assert [percentile(values, p) for p in PERCENTILES] == [5.0, 9.0, 10.0, 10.0]
    # numpy's default (linear) would publish values no call took: 5.5 and 9.1
    assert float(np.percentile(values, 50)) == 5.5
    assert float(np.percentile(values, 90)) == pytest.approx(9.1)


def test_percentile_ranks_round_up_at_every_boundary() -> None:
    values = [float(v) for v in range(1, 101)]  # the p-th percentile of 1..100 is p itself
    assert [percentile(values, p) for p in (1, 50, 90, 95, 99, 100)] == [1.0, 50.0, 90.0, 95.0, 99.0, 100.0]
    assert percentile(values, 50.01) == 51.0  # just past a rank: the next value
    assert percentile(values, 49.99) == 50.0
    assert percentile(values, 0) == 1.0  # the fastest, not an index before it
    three = [0.1, 0.2, 0.3]
    assert [percentile(three, p) for p in (33, 34, 66, 67, 100)] == [0.1, 0.2, 0.2, 0.3, 0.3]


def test_the_percentile_of_no_values_is_zero_and_of_one_value_that_value() -> None:
    assert percentile([], 50) == 0.0
    assert percentile([], 99) == 0.0
    assert [percentile([0.25], p) for p in (0, 50, 99, 100)] == [0.25] * 4


def test_p99_sorts_what_it_is_given() -> None:
    values = _fixed_latencies(200, seed=99)
    assert p99(values) == float(np.percentile(values, 99, method=PERCENTILE_METHOD))
    assert p99([5.0, 1.0, 3.0, 2.0, 4.0]) == 5.0


def test_the_histogram_counts_each_call_once_under_the_first_mark_it_does_not_exceed() -> None:
    latencies = [0.0, 1.0, 1.0, 2.5, 4.0, 9.0, 10.0]
    assert histogram(latencies, buckets=5) == [
        (0.0, 1),  # the fastest call sits on the first mark
        (2.0, 2),  # (0, 2]
        (4.0, 2),  # (2, 4]: 2.5 and 4.0 exactly on the mark
        (6.0, 0),
        (8.0, 0),
        (10.0, 2),  # the last mark is the slowest call: 9 and 10
    ]
    assert histogram([]) == []
    assert LoadResult().histogram_lines() == []
    assert histogram([0.003, 0.003]) == [(0.003, 2)] + [(0.003, 0)] * 10  # all alike: one bucket holds them
    counts = [n for _, n in histogram(_fixed_latencies(500, seed=5))]
    assert len(counts) == 11 and sum(counts) == 500


def _result() -> LoadResult:
    """Ten calls of two kinds in 2 s: 8 OK, 2 failed, with known latencies and bytes."""
    result = LoadResult(elapsed=2.0, bytes_sent=1000, bytes_received=4005, messages_received=13)
    for latency in (0.001, 0.002, 0.003, 0.004, 0.005, 0.006, 0.007, 0.008):
        result.record("GetMessage", latency)
    result.record("ListMessages", 0.010, "UNAVAILABLE", "connection\nreset")
    result.record("ListMessages", 0.100, "DEADLINE_EXCEEDED", "")
    return result


def test_a_runs_rate_and_success_share_are_its_calls_over_its_time_and_count() -> None:
    result = _result()
    assert result.count == 10
    assert result.outcomes[0] == ("OK", "") and result.outcomes[-1] == ("DEADLINE_EXCEEDED", "")
    assert result.rps == 5.0
    assert result.success_rate == 0.8
    assert LoadResult().success_rate == 1.0 and LoadResult().rps == 0.0
    assert LoadResult(elapsed=0.0, latencies=[0.1]).rps == 0.0


def test_the_latency_summary_keeps_three_decimals_of_a_millisecond() -> None:
    result = LoadResult(latencies=[0.0012346])
    assert result.latency_summary()["p50"] == 1.235


def test_the_latency_summary_is_in_milliseconds_with_nearest_rank_percentiles() -> None:
    assert _result().latency_summary() == {
        "fastest": 1.0,
        "average": 14.6,  # (36 + 10 + 100) ms / 10
        "p50": 5.0,
        "p90": 10.0,
        "p95": 100.0,
        "p99": 100.0,
        "slowest": 100.0,
    }
    assert LoadResult().latency_summary() == dict.fromkeys(
        ["fastest", "average", "p50", "p90", "p95", "p99", "slowest"], 0.0
    )


def test_the_json_summary_carries_per_call_figures() -> None:
    summary = json.loads(json.dumps(_result().to_json()))
    assert summary["count"] == 10
    assert summary["total_seconds"] == 2.0
    assert summary["rps"] == 5.0
    assert summary["success_rate"] == 0.8
    assert summary["status_codes"] == {"DEADLINE_EXCEEDED": 1, "OK": 8, "UNAVAILABLE": 1}
    assert summary["bytes_sent_per_call"] == 100.0
    assert summary["bytes_received_per_call"] == 400.5
    assert summary["messages_received_per_call"] == 1.3
    assert summary["calls"] == {
        "GetMessage": {"count": 8, "p50_ms": 4.0},
        "ListMessages": {"count": 2, "p50_ms": 10.0},
    }
    assert summary["errors"] == [
        {"status": "UNAVAILABLE", "message": "connection reset", "count": 1},
        {"status": "DEADLINE_EXCEEDED", "message": "", "count": 1},
    ]
    histogram_rows = summary["histogram"]
    assert [row["count"] for row in histogram_rows] == [1, 8, 0, 0, 0, 0, 0, 0, 0, 0, 1]
    assert histogram_rows[1] == {"mark_ms": 10.9, "count": 8, "frequency": 0.8}
    assert histogram_rows[-1] == {"mark_ms": 100.0, "count": 1, "frequency": 0.1}


def test_the_text_summary_of_a_known_run() -> None:
    bar = "∎" * 5  # 1/8 of the 40 characters of the largest bucket
    marks = ["20.800", "30.700", "40.600", "50.500", "60.400", "70.300", "80.200", "90.100"]
    assert _result().to_text().split("\n") == [
        "Summary:",
        "  Count:\t10",
        "  Total:\t2.00 s",
        "  Slowest:\t100.00 ms",
        "  Fastest:\t1.00 ms",
        "  Average:\t14.60 ms",
        "  Requests/sec:\t5.00",
        "",
        "Response time histogram (ms):",
        f"  1.000 [1]\t|{bar}",
        "  10.900 [8]\t|" + "∎" * 40,
        *(f"  {mark} [0]\t|" for mark in marks),
        f"  100.000 [1]\t|{bar}",
        "",
        "Latency distribution:",
        "  50 % in 5.00 ms",
        "  90 % in 10.00 ms",
        "  95 % in 100.00 ms",
        "  99 % in 100.00 ms",
        "",
        "Status code distribution:",
        "  [DEADLINE_EXCEEDED]\t1 responses",
        "  [OK]\t8 responses",
        "  [UNAVAILABLE]\t1 responses",
        "",
        "Error distribution:",
        "  [1]\tUNAVAILABLE: connection reset",
        "  [1]\tDEADLINE_EXCEEDED: ",
        "",
        "Bytes per call (gRPC messages):",
        "  sent:\t100.0",
        "  received:\t400.5",
        "  messages received:\t1.30",
    ]


def test_the_text_summary_lists_ten_kinds_of_error_and_counts_the_rest() -> None:
    result = LoadResult(elapsed=1.0)
    for kind in range(12):
        for _ in range(20 - kind):  # kind 0 is the most common
            result.record("GetMessage", 0.001, "INTERNAL", f"error {kind}")
    lines = result.to_text().split("\n")
    first = lines.index("Error distribution:")
    assert lines[first + 1 : first + 12] == [
        *(f"  [{20 - kind}]\tINTERNAL: error {kind}" for kind in range(10)),
        "  [19]\t... 2 more kinds of error (--format json lists them)",  # 10 + 9 calls
    ]
    exactly_ten = LoadResult(elapsed=1.0)
    for kind in range(10):
        exactly_ten.record("GetMessage", 0.001, "INTERNAL", f"error {kind}")
    assert "more kinds of error" not in exactly_ten.to_text()
    assert "Error distribution:" not in LoadResult(elapsed=1.0, latencies=[0.1]).to_text()


def test_the_json_summary_rounds_each_figure_to_its_own_precision() -> None:
    result = LoadResult(elapsed=0.70001234, bytes_sent=1000, bytes_received=2000, messages_received=10)
    result.record("GetMessage", 0.0012345)
    result.record("GetMessage", 0.002)
    result.record("ListMessages", 0.0041, "UNAVAILABLE", "x")
    summary = result.to_json()
    histogram_rows = summary.pop("histogram")
    assert summary == {
        "count": 3,
        "total_seconds": 0.7,
        "rps": 4.29,  # 3 / 0.70001234 s
        "latency_ms": {
            "fastest": 1.234,
            "average": 2.445,  # 7.3345 ms / 3
            "p50": 2.0,
            "p90": 4.1,
            "p95": 4.1,
            "p99": 4.1,
            "slowest": 4.1,
        },
        "status_codes": {"OK": 2, "UNAVAILABLE": 1},
        "errors": [{"status": "UNAVAILABLE", "message": "x", "count": 1}],
        "success_rate": 2 / 3,
        "bytes_sent_per_call": 333.3,
        "bytes_received_per_call": 666.7,
        "messages_received_per_call": 3.33,
        "calls": {"GetMessage": {"count": 2, "p50_ms": 1.234}, "ListMessages": {"count": 1, "p50_ms": 4.1}},
    }
    assert isinstance(histogram_rows, list)
    assert [(row["count"], row["frequency"]) for row in histogram_rows if row["count"]] == [
        (1, 0.3333),
        (1, 0.3333),
        (1, 0.3333),
    ]
    assert histogram_rows[0]["mark_ms"] == 1.234 and histogram_rows[-1]["mark_ms"] == 4.1
    assert LoadResult(bytes_sent=10).to_json()["bytes_sent_per_call"] == 10.0  # no calls: per one call


def test_error_messages_are_kept_on_one_line_and_bounded() -> None:
    result = LoadResult()
    exact = "e" * MAX_ERROR_MESSAGE
    result.record("GetMessage", 0.001, "INTERNAL", exact)
    result.record("GetMessage", 0.001, "INTERNAL", exact + "f")
    result.record("GetMessage", 0.001, "INTERNAL", "two\n  lines\t here")
    assert list(result.errors) == [
        ("INTERNAL", exact),
        ("INTERNAL", exact + "..."),
        ("INTERNAL", "two lines here"),
    ]


def test_error_kinds_past_the_limit_share_one_entry_and_known_ones_keep_theirs() -> None:
    result = LoadResult()
    for kind in range(MAX_ERROR_KINDS):
        result.record("GetMessage", 0.001, "INTERNAL", f"error {kind}")
    result.record("GetMessage", 0.001, "INTERNAL", "error 0")  # known: counted under itself
    result.record("GetMessage", 0.001, "INTERNAL", "a new one")
    result.record("GetMessage", 0.001, "UNAVAILABLE", "another new one")
    assert len(result.errors) == MAX_ERROR_KINDS + 2
    assert result.errors[("INTERNAL", "error 0")] == 2
    assert result.errors[("INTERNAL", OTHER_MESSAGES)] == 1
    assert result.errors[("UNAVAILABLE", OTHER_MESSAGES)] == 1
    assert result.outcomes[-1] == ("UNAVAILABLE", OTHER_MESSAGES)


def test_histogram_bars_are_rounded_to_the_nearest_character() -> None:
    result = LoadResult(elapsed=1.0)
    for latency in (0.0, 0.0095, 0.0095, 0.020, 0.020, 0.020):
        result.record("GetMessage", latency)
    bars = {line.split("[")[1].split("]")[0]: line.count("∎") for line in result.histogram_lines()}
    assert bars == {"1": 13, "2": 27, "3": 40, "0": 0}  # 40/3 and 80/3 characters: 13.3 and 26.7


def test_the_csv_has_one_row_per_call_in_the_order_they_finished() -> None:
    out = io.StringIO()
    _result().write_csv(out)
    rows = list(csv.reader(io.StringIO(out.getvalue())))
    assert rows[0] == ["duration (ms)", "status", "error"]
    assert rows[1] == ["1.000", "OK", ""]
    assert rows[9:] == [["10.000", "UNAVAILABLE", "connection reset"], ["100.000", "DEADLINE_EXCEEDED", ""]]
    assert len(rows) == 11 and out.getvalue().endswith("\n") and "\r" not in out.getvalue()


def test_a_run_without_calls_reports_its_bytes_per_one_call() -> None:
    assert "  sent:\t10.0" in LoadResult(bytes_sent=10).to_text().split("\n")


def test_a_failure_recorded_without_a_message_has_an_empty_one() -> None:
    result = LoadResult(elapsed=1.0)
    result.record("GetMessage", 0.002, "UNAVAILABLE")
    assert result.errors == {("UNAVAILABLE", ""): 1}
    out = io.StringIO()
    result.write_csv(out)
    assert out.getvalue().splitlines()[1] == "2.000,UNAVAILABLE,"


def test_the_csv_refuses_latencies_without_their_outcomes() -> None:
    """A row per call: a result whose outcomes are short of its latencies must not lose rows silently."""
    with pytest.raises(ValueError, match="zip"):
        LoadResult(latencies=[0.001, 0.002], outcomes=[("OK", "")]).write_csv(io.StringIO())
