"""The compatibility suite's matrix: rows are releases, columns are checks, printed after the run.

Each compatibility test names its check with ``@pytest.mark.compat("column")`` and
takes a ``release`` parameter; a cell passes only when every test of it passed.
"""

from __future__ import annotations

from collections.abc import Generator

import pytest

from compat_tests.releases import release_versions

COLUMNS = (
    "fixtures decode",
    "fixtures re-encode",
    "forward compatible",
    "targets agree",
    "old client, new server",
    "new client, old server",
    "TypeScript",
)
_results: dict[tuple[str, str], list[bool]] = {}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "compat(column): the matrix column a compatibility test fills")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, None, None]:
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    marker = item.get_closest_marker("compat")
    callspec = getattr(item, "callspec", None)
    if marker is None or callspec is None or "release" not in callspec.params:
        return
    if report.when == "call" or (report.when == "setup" and report.failed):
        _results.setdefault((str(callspec.params["release"]), marker.args[0]), []).append(report.passed)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not _results:
        return
    width = max(len(column) for column in COLUMNS)
    terminalreporter.section("compatibility matrix")
    terminalreporter.write_line("release  " + " | ".join(column.center(width) for column in COLUMNS))
    for release in release_versions():
        cells = []
        for column in COLUMNS:
            outcomes = _results.get((release, column))
            cell = "-" if outcomes is None else ("pass" if all(outcomes) else "FAIL")
            cells.append(cell.center(width))
        terminalreporter.write_line(f"{release:<8} " + " | ".join(cells))
