"""The matrix gate: a failed cell or an empty one is reported, and only an all-green matrix passes."""

from __future__ import annotations

from compat_tests.matrix import COLUMNS, cell, cells, gaps, render

RELEASES = ["1.0.0", "1.1.0"]


def _all(value: bool) -> dict[tuple[str, str], list[bool]]:
    return {(release, column): [True, value] for release in RELEASES for column in COLUMNS}


def test_a_cell_passes_only_when_every_test_of_it_passed() -> None:
    assert cell([True, True]) == "pass"
    assert cell([True, False, True]) == "FAIL"
    assert cell([False]) == "FAIL"
    assert cell([]) == "-"
    assert cell(None) == "-"


def test_an_all_green_matrix_has_no_gaps() -> None:
    outcomes = _all(True)
    assert gaps(outcomes, RELEASES) == []
    assert cells(outcomes, RELEASES) == {release: ["pass"] * len(COLUMNS) for release in RELEASES}


def test_a_failed_cell_is_a_gap_naming_release_and_column() -> None:
    outcomes = _all(True)
    outcomes[("1.1.0", "forward compatible")] = [True, False]
    assert gaps(outcomes, RELEASES) == ["release 1.1.0: forward compatible failed"]


def test_a_column_that_lost_its_tests_is_a_gap_for_every_release() -> None:
    outcomes = {key: value for key, value in _all(True).items() if key[1] != "targets agree"}
    assert gaps(outcomes, RELEASES) == [
        "release 1.0.0: targets agree has no test that ran",
        "release 1.1.0: targets agree has no test that ran",
    ]
    assert cells(outcomes, RELEASES)["1.0.0"][COLUMNS.index("targets agree")] == "-"


def test_a_release_with_no_results_at_all_is_all_gaps() -> None:
    outcomes = {key: value for key, value in _all(True).items() if key[0] == "1.0.0"}
    assert len(gaps(outcomes, RELEASES)) == len(COLUMNS)
    assert all(problem.startswith("release 1.1.0: ") for problem in gaps(outcomes, RELEASES))


def test_the_rendered_matrix_has_a_header_and_a_row_per_release() -> None:
    outcomes = _all(True)
    outcomes[("1.0.0", "fixtures decode")] = [False]
    header, first, second = render(outcomes, RELEASES)
    width = max(len(column) for column in COLUMNS)
    assert header == "release  " + " | ".join(column.center(width) for column in COLUMNS)
    assert first == "1.0.0    " + " | ".join(
        v.center(width) for v in ["FAIL"] + ["pass"] * (len(COLUMNS) - 1)
    )
    assert second.startswith("1.1.0    ") and second.count("pass") == len(COLUMNS)
