"""docs/review-rules.md is generated from the rules table, and every kind the engine reports is in it."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from registry.diff import RULES, deliberate_differences
from registry.layout import RepoLayout
from registry.rules_doc import render_rules


def test_the_rules_document_matches_the_code(repo: RepoLayout) -> None:
    assert repo.review_rules.read_text() == render_rules(), "run `python -m registry rules --write`"


def test_rules_check_fails_on_a_stale_document(scratch_repo: RepoLayout) -> None:
    scratch_repo.review_rules.parent.mkdir(parents=True, exist_ok=True)
    scratch_repo.review_rules.write_text(render_rules().replace("| `field_added` |", "| `field_appended` |"))
    command = [sys.executable, "-m", "registry", "rules", "--check"]

    stale = subprocess.run(command, cwd=scratch_repo.root, capture_output=True, text=True, check=False)
    subprocess.run([*command[:-1], "--write"], cwd=scratch_repo.root, check=True, capture_output=True)
    fresh = subprocess.run(command, cwd=scratch_repo.root, capture_output=True, text=True, check=False)

    assert stale.returncode == 1 and "rules --write" in stale.stderr
    assert fresh.returncode == 0, fresh.stderr


def _kinds_named_in(directory: Path) -> set[str]:
    """Every string literal passed as the first argument of ``rec.add`` in the engine's walkers."""
    kinds: set[str] = set()
    for path in directory.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "add" and node.args:
                first = node.args[0]
                if isinstance(first, ast.Constant) and isinstance(first.value, str):
                    kinds.add(first.value)
                elif isinstance(first, ast.JoinedStr):
                    kinds.add(ast.unparse(first))
    return kinds


def test_every_kind_a_walker_reports_has_a_rule(repo: RepoLayout) -> None:
    named = _kinds_named_in(repo.root / "registry" / "diff")
    literal = {kind for kind in named if not kind.startswith("f")}
    templated = named - literal

    assert literal <= RULES.keys(), literal - RULES.keys()
    assert len(templated) >= 3  # f"{what}_type_changed" and friends: checked by the recorder at run time
    for kind, rule in RULES.items():
        assert rule.kind == kind and rule.summary
        assert not rule.lenient or rule.differs, kind


def test_deliberate_differences_are_listed_with_their_reason() -> None:
    differences = deliberate_differences()

    assert ("field_map_shape_changed", "FIELD_WIRE_COMPATIBLE_TYPE") in {(k, b) for k, b, _ in differences}
    assert ("other_language_option_changed", "FILE_SAME_GO_PACKAGE") in {(k, b) for k, b, _ in differences}
    assert all(reason for _, _, reason in differences)
