"""The past-one-process section of the benchmark report: a row per set-up, the scaling ratio, fan-out."""

from __future__ import annotations

from chat_bench.scale import Target, section
from chat_bench.stats import LoadResult


def result(calls: int, seconds: float, latency: float) -> LoadResult:
    measured = LoadResult(elapsed=seconds)
    for _ in range(calls):
        measured.record("call", latency)
    return measured


def test_the_section_states_each_set_up_and_the_two_worker_scaling_ratio() -> None:
    targets = [
        Target("SQLite, 1 process", "db"),
        Target("PostgreSQL, 1 worker", "postgresql://x"),
        Target("PostgreSQL, 2 workers", "postgresql://x", workers=2),
    ]
    for target, calls in zip(targets, (100, 200, 300), strict=True):
        target.results = {
            "GetMessage": result(calls, 1.0, 0.002),
            "SendMessages": result(calls // 2, 1.0, 0.004),
        }
    text = section(targets, {"same instance": [0.01, 0.02], "other instance": [0.03, 0.05]}, 10)
    assert "| PostgreSQL, 2 workers | 300 | 2.0 | 2.0 | 150 | 4.0 | 4.0 | 0 |" in text
    assert "- GetMessage: x1.50" in text and "- SendMessages: x1.50" in text
    assert "| other instance | 30.0 | 50.0 | 50.0 |" in text
