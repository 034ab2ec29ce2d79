"""The release-by-check matrix of the compatibility suite, and the gate it is.

Every compatibility test names its column with ``@pytest.mark.compat("column")`` and
takes a ``release`` parameter; a cell passes only when every test of it passed. When
the whole suite runs, every release must fill every column: a failed cell ("FAIL")
or an empty one ("-": its tests are gone, or never ran for that release) fails the run.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

COLUMNS = (
    "fixtures decode",
    "fixtures re-encode",
    "forward compatible",
    "targets agree",
    "old client, new server",
    "new client, old server",
    "TypeScript",
)
PASS, FAIL, EMPTY = "pass", "FAIL", "-"

Outcomes = Mapping[tuple[str, str], Sequence[bool]]  # (release, column) -> each test passed?


def cell(outcomes: Sequence[bool] | None) -> str:
    """One cell: "pass" when its tests all passed, "FAIL" when one failed, "-" when none ran."""
    if not outcomes:
        return EMPTY
    return PASS if all(outcomes) else FAIL


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
            elif value == EMPTY:
                problems.append(f"release {release}: {column} has no test that ran")
    return problems
