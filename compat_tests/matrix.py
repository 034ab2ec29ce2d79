"""The release-by-check matrix of the compatibility suite, and the gate it is.

Every compatibility test names its column with ``@pytest.mark.compat("column")`` and
takes a ``release`` parameter; a cell passes only when every test of it passed. A test
fails its cell when any of its phases failed (setup, call or teardown: whatever makes
pytest report it failed or in error); one skipped or expected to fail ("xfail") leaves
its cell unproven ("skip"). When the whole suite runs, every release must fill every
column: a failed cell ("FAIL"), an unproven one ("skip") or an empty one ("-": its tests
are gone, or never ran for that release) fails the run.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import pytest

COLUMNS = (
    "fixtures decode",
    "fixtures re-encode",
    "forward compatible",
    "targets agree",
    "old client, new server",
    "new client, old server",
    "TypeScript",
)
PASS, FAIL, SKIP, EMPTY = "pass", "FAIL", "skip", "-"
PASSED, FAILED, SKIPPED = "passed", "failed", "skipped"  # a test's outcome, over all its phases

Outcomes = Mapping[tuple[str, str], Sequence[str]]  # (release, column) -> each test's outcome


def cell(outcomes: Sequence[str] | None) -> str:
    """One cell: "FAIL" if a test failed, else "skip" if one was skipped, "pass"; "-" when none ran."""
    if not outcomes:
        return EMPTY
    if FAILED in outcomes:
        return FAIL
    return SKIP if SKIPPED in outcomes else PASS


def cells(outcomes: Outcomes, releases: Sequence[str]) -> dict[str, list[str]]:
    """Each release's row of cells, in column order."""
    return {release: [cell(outcomes.get((release, column))) for column in COLUMNS] for release in releases}


def render(outcomes: Outcomes, releases: Sequence[str]) -> list[str]:
    """The matrix as lines of text: a header, then one row per release."""
    width = max(len(column) for column in COLUMNS)
    lines = ["release  " + " | ".join(column.center(width) for column in COLUMNS)]
    for release, row in cells(outcomes, releases).items():
        lines.append(f"{release:<8} " + " | ".join(value.center(width) for value in row))
    return lines


def gaps(outcomes: Outcomes, releases: Sequence[str]) -> list[str]:
    """Every cell that is not "pass", said in words; empty when the matrix is all green."""
    problems = []
    for release, row in cells(outcomes, releases).items():
        for column, value in zip(COLUMNS, row, strict=True):
            if value == FAIL:
                problems.append(f"release {release}: {column} failed")
            elif value == SKIP:
                problems.append(f"release {release}: {column} skipped a test (or one is expected to fail)")
            elif value == EMPTY:
                problems.append(f"release {release}: {column} has no test that ran")
    return problems


def outcome(report: pytest.TestReport) -> str | None:
    """What one phase's report says of its test's outcome; None when it changes nothing."""
    if report.failed:  # in setup, call or teardown: whatever came before, the test failed
        return FAILED
    if report.skipped:  # a skip in setup or call, and an expected failure ("xfail")
        return SKIPPED
    return PASSED if report.when == "call" else None  # a setup or teardown that went well


class MatrixGate:
    """The pytest plugin that fills the matrix from each test's reports, prints it, and gates the run.

    ``root`` is the suite's directory: the gate closes only when a run collected it (or a
    parent) whole, with nothing filtered out. ``releases`` lists the matrix's rows.
    """

    def __init__(self, root: Path, releases: Callable[[], Sequence[str]]) -> None:
        self.root = root
        self.releases = releases
        self.cell_of: dict[str, tuple[str, str]] = {}  # test node id -> (release, column)
        self.tests: dict[tuple[str, str], dict[str, str]] = {}  # (release, column) -> node id -> outcome
        self.filtered = False

    def outcomes(self) -> dict[tuple[str, str], list[str]]:
        """Each cell's tests' outcomes, for ``render`` and ``gaps``."""
        return {key: list(tests.values()) for key, tests in self.tests.items()}

    def pytest_itemcollected(self, item: pytest.Item) -> None:
        marker = item.get_closest_marker("compat")
        callspec = getattr(item, "callspec", None)
        if marker is not None and callspec is not None and "release" in callspec.params:
            self.cell_of[item.nodeid] = (str(callspec.params["release"]), marker.args[0])

    def pytest_deselected(self, items: list[pytest.Item]) -> None:
        if items:
            self.filtered = True

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        key = self.cell_of.get(report.nodeid)
        if key is None:
            return
        tests = self.tests.setdefault(key, {})
        now = outcome(report)
        if now is not None:  # a failed phase is the last one to report anything
            tests[report.nodeid] = now

    def whole_suite_ran(self, config: pytest.Config) -> bool:
        """Whether this run asked for the whole compatibility suite, with nothing filtered out."""
        if config.option.keyword or config.option.markexpr or self.filtered:
            return False
        for arg in config.args:
            path = (config.invocation_params.dir / arg).resolve()  # a test id ("file::test") is no directory
            if path == self.root or path in self.root.parents:
                return True
        return False

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if self.whole_suite_ran(session.config) and gaps(self.outcomes(), self.releases()):
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        if not self.tests:
            return
        terminalreporter.section("compatibility matrix")
        for line in render(self.outcomes(), self.releases()):
            terminalreporter.write_line(line)
        if self.whole_suite_ran(terminalreporter.config):
            for problem in gaps(self.outcomes(), self.releases()):
                terminalreporter.write_line(f"matrix gate: {problem}", red=True)


def install(config: pytest.Config, root: Path, releases: Callable[[], Sequence[str]]) -> MatrixGate:
    """Declare the ``compat`` marker and register the gate for the suite at ``root``."""
    config.addinivalue_line("markers", "compat(column): the matrix column a compatibility test fills")
    gate = MatrixGate(root, releases)
    config.pluginmanager.register(gate, "compat-matrix")
    return gate
