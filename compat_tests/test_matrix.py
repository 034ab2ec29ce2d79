"""The matrix gate: a failed, skipped or empty cell is reported, and only an all-green matrix passes."""

from __future__ import annotations

from compat_tests.matrix import COLUMNS, FAILED, PASSED, SKIPPED, cell, cells, gaps, render

RELEASES = ["1.0.0", "1.1.0"]


def _all(value: str) -> dict[tuple[str, str], list[str]]:
    return {(release, column): [PASSED, value] for release in RELEASES for column in COLUMNS}


def test_a_cell_passes_only_when_every_test_of_it_passed() -> None:
    assert cell([PASSED, PASSED]) == "pass"
    assert cell([PASSED, FAILED, PASSED]) == "FAIL"
    assert cell([FAILED]) == "FAIL"
    assert cell([]) == "-"
    assert cell(None) == "-"


def test_a_skipped_test_leaves_its_cell_unproven_unless_another_failed() -> None:
    assert cell([PASSED, SKIPPED]) == "skip"
    assert cell([SKIPPED]) == "skip"
    assert cell([SKIPPED, FAILED]) == "FAIL"
    assert cell([FAILED, SKIPPED]) == "FAIL"


def test_an_all_green_matrix_has_no_gaps() -> None:
    outcomes = _all(PASSED)
    assert gaps(outcomes, RELEASES) == []
    assert cells(outcomes, RELEASES) == {release: ["pass"] * len(COLUMNS) for release in RELEASES}


def test_a_failed_cell_is_a_gap_naming_release_and_column() -> None:
    outcomes = _all(PASSED)
    outcomes[("1.1.0", "forward compatible")] = [PASSED, FAILED]
    assert gaps(outcomes, RELEASES) == ["release 1.1.0: forward compatible failed"]


def test_a_skipped_cell_is_a_gap_naming_release_and_column() -> None:
    outcomes = _all(PASSED)
    outcomes[("1.0.0", "TypeScript")] = [SKIPPED, PASSED]
    assert gaps(outcomes, RELEASES) == [
        "release 1.0.0: TypeScript skipped a test (or one is expected to fail)"
    ]


def test_a_column_that_lost_its_tests_is_a_gap_for_every_release() -> None:
    outcomes = {key: value for key, value in _all(PASSED).items() if key[1] != "targets agree"}
    assert gaps(outcomes, RELEASES) == [
        "release 1.0.0: targets agree has no test that ran",
        "release 1.1.0: targets agree has no test that ran",
    ]
    assert cells(outcomes, RELEASES)["1.0.0"][COLUMNS.index("targets agree")] == "-"


def test_a_release_with_no_results_at_all_is_all_gaps() -> None:
    outcomes = {key: value for key, value in _all(PASSED).items() if key[0] == "1.0.0"}
    assert len(gaps(outcomes, RELEASES)) == len(COLUMNS)
    assert all(problem.startswith("release 1.1.0: ") for problem in gaps(outcomes, RELEASES))


def test_the_rendered_matrix_has_a_header_and_a_row_per_release() -> None:
    outcomes = _all(PASSED)
    outcomes[("1.0.0", "fixtures decode")] = [FAILED]
    header, first, second = render(outcomes, RELEASES)
    width = max(len(column) for column in COLUMNS)
    assert header == "release  " + " | ".join(column.center(width) for column in COLUMNS)
    assert first == "1.0.0    " + " | ".join(
        v.center(width) for v in ["FAIL"] + ["pass"] * (len(COLUMNS) - 1)
    )
    assert second.startswith("1.1.0    ") and second.count("pass") == len(COLUMNS)
