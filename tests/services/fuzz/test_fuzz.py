"""The short fuzz budget of the suite: a few hundred hostile payloads against a real server process.

The long run with the strict targets (stalls over 100 ms, RSS growth) is ``nox -s fuzz``.
"""

from __future__ import annotations

from .driver import run

PAYLOADS = 400
BUDGET_SECONDS = 30.0
# The suite checks that health keeps answering (every probe within the prober's call
# deadline) and that memory stays bounded; stall times are the fuzz session's figures.
RSS_GROWTH_BOUND_MB = 100.0


async def test_hostile_payloads_get_client_errors_and_never_stall_or_bloat_the_server() -> None:
    report = await run(budget=BUDGET_SECONDS, max_payloads=PAYLOADS, workers=4, seed=8)
    assert report.payloads >= min(PAYLOADS, 100), report.table()
    assert report.forbidden == 0, report.table()
    assert report.health_checks > 0 and report.health_unanswered == 0, report.table()
    assert report.rss_growth_mb < RSS_GROWTH_BOUND_MB, report.table()
    kinds = set(report.outcomes)
    assert {"over-claimed", "compressed", "http2-fault", "truncated", "bit-flip"} <= kinds, kinds


async def test_with_authentication_on_hostile_payloads_still_get_client_errors() -> None:
    """The same, with JWTs and rate limits enforced and a valid token on every payload."""
    report = await run(budget=BUDGET_SECONDS / 2, max_payloads=PAYLOADS // 2, workers=4, seed=9, auth=True)
    assert report.payloads >= min(PAYLOADS // 2, 100), report.table()
    assert report.forbidden == 0, report.table()
    assert report.health_checks > 0 and report.health_unanswered == 0, report.table()
    # Payloads reached the handlers: not everything was refused at authentication.
    outcomes = [o for counter in report.outcomes.values() for o in counter.elements()]
    assert outcomes.count("UNAUTHENTICATED") < len(outcomes) / 2, report.table()
    assert {"OK", "INVALID_ARGUMENT"} & set(outcomes), report.table()
