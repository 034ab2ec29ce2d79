"""The compatibility suite's matrix: rows are releases, columns are checks, printed after the run.

Each compatibility test names its check with ``@pytest.mark.compat("column")`` and
takes a ``release`` parameter; a cell passes only when every test of it passed. When
the whole suite ran (``compat_tests`` or a parent directory was collected, nothing
deselected), the matrix is a gate: any cell that is not "pass" fails the run
(``compat_tests/matrix.py``'s ``MatrixGate``).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from compat_tests.matrix import install
from compat_tests.releases import release_versions

HERE = Path(__file__).resolve().parent


def pytest_configure(config: pytest.Config) -> None:
    install(config, HERE, release_versions)
