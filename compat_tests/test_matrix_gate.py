"""The matrix hook in real pytest runs: each printed cell is what its tests did; the exit code agrees.

Each test writes a small suite into a fresh directory: one test per column and release,
marked and parametrized as the compatibility tests are, behind a conftest that installs
the same gate (``compat_tests.matrix.install``) for two releases. One cell at a time is
then made to fail (in setup, call or teardown), skip or xfail, and pytest runs it in
process (pytester): the printed matrix must say so, and the run's exit code must be the
gate's verdict.
"""

from __future__ import annotations

import re

import pytest

from compat_tests.conftest import HERE, pytest_configure
from compat_tests.matrix import COLUMNS, MatrixGate
from compat_tests.releases import release_versions

pytest_plugins = ["pytester"]

RELEASES = ("1.0.0", "1.1.0")
CONFTEST = f"""
from pathlib import Path

from compat_tests.matrix import MatrixGate, install


def pytest_configure(config):
    install(config, Path(__file__).resolve().parent, lambda: {list(RELEASES)!r})


def pytest_sessionstart(session):
    assert isinstance(session.config.pluginmanager.get_plugin("compat-matrix"), MatrixGate)
"""
# --strict-markers: the conftest must declare the compat marker, as the suite's does
QUIET = (
    "--strict-markers",
    "-p",
    "no:asyncio",
    "-p",
    "no:anyio",
    "-p",
    "no:hypothesispytest",
    "-p",
    "no:cacheprovider",
)
SUITE = "compat"  # the suite's directory below the one pytest starts in
PLANTED = ("1.1.0", "forward compatible")
PASSED_CELLS = {release: ["pass"] * len(COLUMNS) for release in RELEASES}


def _suite(pytester: pytest.Pytester, body: str = "pass", *, decorator: str = "", fixture: str = "") -> None:
    """One test per column, for both releases; the planted cell's test runs ``body`` instead of passing.

    ``decorator`` goes on the planted column's test, ``fixture`` is a fixture it takes
    (named ``planted``) whose setup or teardown may fail for the planted release only.
    """
    suite = pytester.path / SUITE
    suite.mkdir(exist_ok=True)
    (suite / "conftest.py").write_text(CONFTEST)
    tests = [
        "import pytest",
        "",
        "@pytest.fixture",
        "def planted(release):",
        f"    {fixture or 'yield'}",
    ]
    for index, column in enumerate(COLUMNS):
        planted = column == PLANTED[1]
        tests += [
            "",
            f"@pytest.mark.compat({column!r})",
            f"@pytest.mark.parametrize('release', {list(RELEASES)!r})",
            *([decorator] if planted and decorator else []),
            f"def test_column_{index}(release{', planted' if planted else ''}):",
            f"    if release == {PLANTED[0]!r}:" if planted else "    pass",
            *([f"        {line}" for line in body.splitlines()] if planted else []),
        ]
    (suite / "test_cells.py").write_text("\n".join(tests) + "\n")


def _printed(result: pytest.RunResult) -> dict[str, list[str]]:
    """The matrix as the run printed it: release -> its row of cells."""
    lines = [line for line in result.outlines if line.strip()]
    start = next(i for i, line in enumerate(lines) if re.fullmatch("=+ compatibility matrix =+", line))
    header = lines[start + 1]
    assert header.startswith("release  ")
    assert [c.strip() for c in header.removeprefix("release  ").split(" | ")] == list(COLUMNS)
    rows = {}
    for line in lines[start + 2 : start + 2 + len(RELEASES)]:
        release, _, cells = line.partition(" ")
        rows[release] = [c.strip() for c in cells.strip().split(" | ")]
    return rows


def _run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    """pytest in process on the suite, without the plugins these suites do not use."""
    return pytester.runpytest_inprocess(*QUIET, *args)


def _gate_lines(result: pytest.RunResult) -> list[str]:
    return [line for line in result.outlines if line.startswith("matrix gate: ")]


def _with_planted(value: str) -> dict[str, list[str]]:
    rows = {release: list(row) for release, row in PASSED_CELLS.items()}
    rows[PLANTED[0]][COLUMNS.index(PLANTED[1])] = value
    return rows


WHOLE_SUITE = pytest.mark.parametrize(
    "args", [[], [SUITE]], ids=["from a parent directory", "the suite's directory"]
)


@WHOLE_SUITE
def test_an_all_green_suite_prints_pass_everywhere_and_passes(
    pytester: pytest.Pytester, args: list[str]
) -> None:
    _suite(pytester)
    result = _run(pytester, *args)
    assert result.ret == pytest.ExitCode.OK
    assert _printed(result) == PASSED_CELLS
    assert _gate_lines(result) == []


FAILED_GATE = "matrix gate: release 1.1.0: forward compatible failed"
SKIPPED_GATE = "matrix gate: release 1.1.0: forward compatible skipped a test (or one is expected to fail)"


@pytest.mark.parametrize(
    ("body", "decorator", "fixture", "pytest_says", "cell", "gate"),
    [
        pytest.param("assert release != '1.1.0'", "", "", "failed", "FAIL", FAILED_GATE, id="fails in call"),
        pytest.param(
            "pass",
            "",
            "assert release != '1.1.0'\n    yield",
            "errors",
            "FAIL",
            FAILED_GATE,
            id="fails in setup",
        ),
        pytest.param(
            "pass",
            "",
            "yield\n    assert release != '1.1.0'",
            "errors",
            "FAIL",
            FAILED_GATE,
            id="fails in teardown",
        ),
        # pytest alone passes these runs: the gate fails them
        pytest.param(
            "pytest.skip('not here')", "", "", "skipped", "skip", SKIPPED_GATE, id="skip in the test"
        ),
        pytest.param(
            "assert False",
            "@pytest.mark.xfail(reason='known')",
            "",
            "xfailed",
            "skip",
            SKIPPED_GATE,
            id="xfail",
        ),
    ],
)
def test_a_planted_cell_prints_what_its_test_did_and_the_run_fails(
    pytester: pytest.Pytester, body: str, decorator: str, fixture: str, pytest_says: str, cell: str, gate: str
) -> None:
    _suite(pytester, body, decorator=decorator, fixture=fixture)
    result = _run(pytester)
    assert result.parseoutcomes()[pytest_says] == 1
    assert _printed(result) == _with_planted(cell)
    assert _gate_lines(result) == [gate]
    assert result.ret == pytest.ExitCode.TESTS_FAILED


def test_on_a_colour_terminal_the_gate_lines_are_red_and_the_matrix_is_not(pytester: pytest.Pytester) -> None:
    _suite(pytester, "assert release != '1.1.0'")
    result = _run(pytester, "--color=yes")
    red = "\x1b[31m"
    assert [line for line in result.outlines if "matrix gate: " in line] == [f"{red}{FAILED_GATE}\x1b[0m"]
    assert not any(red in line for line in result.outlines if line.startswith(("release  ", "1.0.0 ")))


def test_a_skip_marker_leaves_every_release_it_skips_unproven(pytester: pytest.Pytester) -> None:
    _suite(pytester, decorator="@pytest.mark.skipif('True', reason='not here')")
    result = _run(pytester)
    assert result.parseoutcomes() == {"passed": len(COLUMNS) * 2 - 2, "skipped": 2}
    assert _printed(result) == dict.fromkeys(RELEASES, _with_planted("skip")[PLANTED[0]])
    assert result.ret == pytest.ExitCode.TESTS_FAILED


def test_an_unexpected_pass_of_an_xfail_test_counts_as_its_outcome(pytester: pytest.Pytester) -> None:
    _suite(pytester, "pass", decorator="@pytest.mark.xfail(reason='was known', strict=False)")
    result = _run(pytester)
    assert _printed(result) == PASSED_CELLS
    assert result.ret == pytest.ExitCode.OK
    _suite(pytester, "pass", decorator="@pytest.mark.xfail(reason='was known', strict=True)")
    strict = _run(pytester)
    failed_row = _with_planted("FAIL")[PLANTED[0]]
    assert _printed(strict) == dict.fromkeys(RELEASES, failed_row)  # both releases passed, unexpectedly
    assert strict.ret == pytest.ExitCode.TESTS_FAILED


def test_one_failed_test_of_several_fails_the_cell(pytester: pytest.Pytester) -> None:
    _suite(pytester)
    (pytester.path / SUITE / "test_more.py").write_text(
        """
import pytest

@pytest.mark.compat("forward compatible")
@pytest.mark.parametrize("release", ["1.0.0", "1.1.0"])
@pytest.mark.parametrize("case", ["a", "b", "c"])
def test_forward_case(release, case):
    assert (release, case) != ("1.0.0", "b")
"""
    )
    result = _run(pytester)
    assert result.parseoutcomes() == {"passed": len(COLUMNS) * 2 + 5, "failed": 1}
    rows = _printed(result)
    assert rows["1.0.0"][COLUMNS.index("forward compatible")] == "FAIL"
    assert rows["1.1.0"] == PASSED_CELLS["1.1.0"]


@WHOLE_SUITE
def test_a_column_whose_tests_are_gone_is_empty_and_fails_the_whole_suite(
    pytester: pytest.Pytester, args: list[str]
) -> None:
    _suite(pytester)
    cells = pytester.path / SUITE / "test_cells.py"
    cells.write_text(cells.read_text().replace("@pytest.mark.compat('TypeScript')\n", ""))
    result = _run(pytester, *args)
    assert result.parseoutcomes() == {"passed": len(COLUMNS) * 2}  # every test passed...
    rows = _printed(result)
    assert [row[COLUMNS.index("TypeScript")] for row in rows.values()] == ["-", "-"]
    assert result.ret == pytest.ExitCode.TESTS_FAILED  # ...but the matrix has holes
    assert _gate_lines(result) == [
        "matrix gate: release 1.0.0: TypeScript has no test that ran",
        "matrix gate: release 1.1.0: TypeScript has no test that ran",
    ]


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(["-k", "column_0 or column_1"], id="keyword"),
        pytest.param(["--deselect", f"{SUITE}/test_cells.py::test_column_6"], id="deselected"),
        pytest.param([f"{SUITE}/test_cells.py::test_column_0"], id="one test"),
        pytest.param(["-m", "compat"], id="marker expression"),
    ],
)
def test_a_filtered_run_prints_the_matrix_but_does_not_gate(
    pytester: pytest.Pytester, args: list[str]
) -> None:
    _suite(pytester, "pytest.skip('not here')")
    result = _run(pytester, *args)
    assert result.ret == pytest.ExitCode.OK
    assert "compatibility matrix" in result.stdout.str()
    assert _gate_lines(result) == []


def test_tests_without_a_column_or_a_release_leave_the_matrix_alone(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(
        test_other="""
import pytest

@pytest.mark.parametrize("release", ["1.0.0"])
def test_unmarked(release):
    assert False

@pytest.mark.compat("fixtures decode")
def test_no_release():
    assert False

@pytest.mark.compat("fixtures decode")
@pytest.mark.parametrize("case", ["a"])
def test_another_parameter(case):
    assert False
"""
    )
    result = _run(pytester)
    assert result.parseoutcomes() == {"failed": 3}
    assert "compatibility matrix" not in result.stdout.str()


def test_the_suites_conftest_installs_the_gate_for_this_directory_and_every_release(
    pytestconfig: pytest.Config,
) -> None:
    gate = pytestconfig.pluginmanager.get_plugin("compat-matrix")
    assert isinstance(gate, MatrixGate)
    assert gate.root == HERE
    assert list(gate.releases()) == release_versions()


def test_the_suites_conftest_hook_itself_installs_that_gate(pytester: pytest.Pytester) -> None:
    # The same as above, with the hook called inside the test: the session's own call happens
    # at configure time, before any test, where a mutation run cannot attribute it to one.
    config = pytester.parseconfig()
    pytest_configure(config)
    gate = config.pluginmanager.get_plugin("compat-matrix")
    assert isinstance(gate, MatrixGate)
    assert (gate.root, list(gate.releases())) == (HERE, release_versions())
