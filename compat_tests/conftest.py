"""The compatibility suite's matrix: rows are releases, columns are checks, printed after the run.

Each compatibility test names its check with ``@pytest.mark.compat("column")`` and
takes a ``release`` parameter; a cell passes only when every test of it passed. When
the whole suite ran (``compat_tests`` or a parent directory was collected, nothing
deselected), the matrix is a gate: any cell that is not "pass" fails the run.
"""

from __future__ import annotations

from collections.abc import Generator
from pathlib import Path

import pytest

from compat_tests.matrix import gaps, render
from compat_tests.releases import release_versions

HERE = Path(__file__).resolve().parent
_results: dict[tuple[str, str], list[bool]] = {}
_deselected: list[pytest.Item] = []


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "compat(column): the matrix column a compatibility test fills")


def pytest_deselected(items: list[pytest.Item]) -> None:
    _deselected.extend(items)


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


def _whole_suite_ran(config: pytest.Config) -> bool:
    """Whether this run asked for the whole compatibility suite, with nothing filtered out."""
    if config.option.keyword or config.option.markexpr or _deselected:
        return False
    for arg in config.args:
        path = (config.invocation_params.dir / arg.split("::")[0]).resolve()
        if "::" not in arg and (path == HERE or path in HERE.parents):
            return True
    return False


def pytest_sessionfinish(session: pytest.Session) -> None:
    if _whole_suite_ran(session.config) and gaps(_results, release_versions()):
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not _results:
        return
    terminalreporter.section("compatibility matrix")
    for line in render(_results, release_versions()):
        terminalreporter.write_line(line)
    if _whole_suite_ran(terminalreporter.config):
        for problem in gaps(_results, release_versions()):
            terminalreporter.write_line(f"matrix gate: {problem}", red=True)
