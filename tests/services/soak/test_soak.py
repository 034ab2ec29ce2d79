"""A ~10 s slice of the soak: mixed load with no errors, samples taken, nothing leaking descriptors.

The long run with the RSS slope bound is ``nox -s soak -- --minutes N``.
"""

from __future__ import annotations

from .driver import run

SECONDS = 10.0
FD_GROWTH_BOUND = 20  # open descriptors may vary with connections, not grow with calls


async def test_a_short_soak_of_mixed_load_has_no_errors_and_steady_descriptors() -> None:
    report = await run(seconds=SECONDS, rate=40.0, workers=2, sample_seconds=2.5)
    table = report.markdown()
    assert not report.errors, table
    assert set(report.calls) == {"send", "get", "list", "replay", "search", "health"}, table
    assert len(report.samples) >= 4, table
    first, last = report.samples[0], report.samples[-1]
    assert last.calls > 0 and last.errors == 0, table
    assert last.fds < first.fds + FD_GROWTH_BOUND, table
    assert last.threads <= first.threads + 2, table
