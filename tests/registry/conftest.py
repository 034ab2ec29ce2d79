"""Fixtures of the registry tests: scratch schemas compiled by buf, once per session."""

from __future__ import annotations

import pytest

from .schemas import Compile, make_compiler


@pytest.fixture(scope="session")
def compile_files(tmp_path_factory: pytest.TempPathFactory) -> Compile:
    """Compile {path below proto/: source} with buf; each distinct input once per session."""
    return make_compiler(tmp_path_factory)
