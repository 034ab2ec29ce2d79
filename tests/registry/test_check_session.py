"""`nox -s check`, the schema pull request job, verifies every generated file, not only the SDK."""

from __future__ import annotations

import ast

from ..conftest import ROOT


def _runs(session: str) -> list[list[str]]:
    """The string arguments of every ``session.run(...)`` in the nox session ``session``."""
    tree = ast.parse((ROOT / "noxfile.py").read_text())
    function = next(f for f in tree.body if isinstance(f, ast.FunctionDef) and f.name == session)
    runs = []
    for node in ast.walk(function):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "run"
            and isinstance(node.func.value, ast.Name)
            and node.func.value.id == "session"
        ):
            runs.append(
                [
                    arg.value
                    for arg in node.args
                    if isinstance(arg, ast.Constant) and isinstance(arg.value, str)
                ]
            )
    return runs


def test_the_check_session_runs_every_drift_check() -> None:
    runs = [" ".join(args) for args in _runs("check")]

    # The SDK targets, image and versions; the gateway's OpenAPI document; the review rules table.
    assert "python -m registry generate --check" in runs
    assert any(run.startswith("chat-gateway openapi --output") and run.endswith("--check") for run in runs)
    assert "python -m registry rules --check" in runs


def test_the_openapi_session_and_the_check_write_and_compare_the_same_command() -> None:
    [written] = [args for args in _runs("openapi") if args[:2] == ["chat-gateway", "openapi"]]
    [checked] = [args for args in _runs("check") if args[:2] == ["chat-gateway", "openapi"]]

    assert checked == [*written, "--check"]
