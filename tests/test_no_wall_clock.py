"""The suite never asserts on wall-clock time and never sleeps to synchronise.

Durations belong in benchmarks; a test waits on the event, log line or state it
needs, with a bound. This greps every test module for the tell-tale calls. A sleep
that is part of the behaviour under test is allowed only where listed below, with why.
"""

from __future__ import annotations

import re
from pathlib import Path

from .conftest import ROOT

TREES = ("tests", "compat_tests")
# Measuring a duration in a test means asserting on it.
CLOCKS = re.compile(r"\btime\.(monotonic|perf_counter|process_time)(_ns)?\(|\belapsed\w*(\(\))?\s*<")
SLEEPS = re.compile(r"\b(asyncio|time)\.sleep\(")
# Tools that live beside the tests but test nothing themselves.
NOT_TESTS = {
    "tests/mutation/mutate.py": "the mutation driver reports how long each target took; it asserts nothing",
    "compat_tests/fuzz_codec.py": (
        "the codec fuzzer (`nox -s fuzz_codec`) runs for a time budget and reports its rate; its pytest "
        "slice runs a fixed number of rounds and asserts only that the two codec paths agreed"
    ),
    "tests/services/soak/driver.py": (
        "the soak driver (`nox -s soak`) paces its calls per second and samples each minute; its pytest "
        "slice asserts on errors, call kinds, descriptors and threads, never on the times it reports"
    ),
    "tests/services/fuzz/driver.py": (
        "the fuzz driver (`nox -s fuzz`) measures health-answer gaps and paces its prober; its pytest "
        "slice asserts on outcomes, answers and memory, never on the times it reports"
    ),
}
ALLOWED_SLEEPS = {
    ("tests/services/clients.py", "await asyncio.sleep(0.01)"): (
        "until() polls the condition a test waits for, with a bound: waiting on state, not on luck"
    ),
    (
        "tests/services/test_rag_service.py",
        "await asyncio.sleep(0)  # as if reading the next piece of a file",
    ): ("a client generator yields to the loop between pieces as a file reader would: behaviour, not a wait"),
    ("tests/services/test_storage.py", "await asyncio.sleep(0)"): (
        "one loop turn hands the queued calls to the database thread before one is cancelled: the race staged"
    ),
    ("tests/services/test_hygiene.py", "await asyncio.sleep(0.05)  # ten PINGs per idle timeout (0.5 s)"): (
        "the client under test pings at a pace: pinging is the behaviour; the test awaits the server's close"
    ),
    ("tests/services/test_rag_domain.py", "await asyncio.sleep(0)"): (
        "a chosen number of loop turns places the cancellation before, during or after the commit:"
        " the race staged, each turn counted"
    ),
    ("tests/services/test_database_queue.py", "await asyncio.sleep(0)  # queued"): (
        "one loop turn hands the queued calls to the database thread before one is cancelled: the race staged"
    ),
    ("tests/services/test_coalesced_writes.py", "await asyncio.sleep(0)"): (
        "one loop turn is when a gathered write would be flushed: the test shows none was (the turn is"
        " the behaviour, not a wait)"
    ),
    ("tests/services/test_fanout.py", "await asyncio.sleep(0)"): (
        "one loop turn puts the read to wait on the queue before the event arrives: the race the test stages"
    ),
    (
        "tests/services/plugins_for_tests.py",
        "time.sleep(60)",
    ): "the hanging plugin: hanging is what is tested",
    ("tests/services/plugins_for_tests.py", "time.sleep(0.005)"): (
        "the flooding plugin paces its writes to stdout; the test waits for the server's refusal"
    ),
}


def _lines() -> list[tuple[str, int, str]]:
    here = Path(__file__).resolve()
    found = []
    for tree in TREES:
        for path in sorted((ROOT / tree).rglob("*.py")):
            if path.resolve() == here or "fixtures" in path.parts:
                continue
            relative = path.relative_to(ROOT).as_posix()
            if relative in NOT_TESTS:
                continue
            for number, line in enumerate(path.read_text().splitlines(), start=1):
                found.append((relative, number, line.strip()))
    return found


def test_no_test_measures_wall_clock_time() -> None:
    offenders = [f"{path}:{number}: {line}" for path, number, line in _lines() if CLOCKS.search(line)]
    assert offenders == [], "assert on state or events, never on durations:\n" + "\n".join(offenders)


def test_no_test_sleeps_to_synchronise() -> None:
    offenders = [
        f"{path}:{number}: {line}"
        for path, number, line in _lines()
        if SLEEPS.search(line) and (path, line) not in ALLOWED_SLEEPS
    ]
    assert offenders == [], "wait on the event or state instead of sleeping:\n" + "\n".join(offenders)


def test_every_allowed_sleep_is_still_there() -> None:
    present = {(path, line) for path, _, line in _lines()}
    assert set(ALLOWED_SLEEPS) <= present, set(ALLOWED_SLEEPS) - present


def test_the_patterns_catch_what_they_are_for() -> None:
    assert CLOCKS.search("assert time.monotonic() - began < 5.0")
    assert CLOCKS.search("began = time.perf_counter_ns()")
    assert CLOCKS.search("assert elapsed < 2")
    assert not CLOCKS.search("assert counted.elapsed > datetime.timedelta(0)")
    assert SLEEPS.search("await asyncio.sleep(0.1)  # let the server catch up")
    assert SLEEPS.search("time.sleep(1)")
