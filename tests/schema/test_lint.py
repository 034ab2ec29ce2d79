"""Lint and format violations in the module are reported with file, line and rule."""

from __future__ import annotations

import subprocess
import sys

from registry.layout import RepoLayout
from registry.lint import Finding, format_diff, lint_findings, unformatted_files


def _insert_after(path: str, layout: RepoLayout, anchor: str, new_line: str) -> int:
    """Insert ``new_line`` after the first line starting with ``anchor``; return its 1-based number."""
    proto = layout.root / path
    lines = proto.read_text().splitlines()
    index = next(i for i, line in enumerate(lines) if line.startswith(anchor)) + 1
    lines.insert(index, new_line)
    proto.write_text("\n".join(lines) + "\n")
    return index + 1


def test_the_module_is_lint_and_format_clean(repo: RepoLayout) -> None:
    assert lint_findings(repo) == []
    assert format_diff(repo) == ""


def test_an_undocumented_field_is_reported_with_file_line_and_rule(scratch_repo: RepoLayout) -> None:
    line = _insert_after(
        "proto/chat/v1/common.proto", scratch_repo, "message User", "  string nickname = 99;"
    )

    findings = lint_findings(scratch_repo)

    assert (
        Finding(
            "proto/chat/v1/common.proto",
            line,
            3,
            "COMMENT_FIELD",
            'Field "nickname" should have a non-empty comment for documentation.',
        )
        in findings
    )


def test_a_badly_named_enum_value_is_reported(scratch_repo: RepoLayout) -> None:
    proto = scratch_repo.root / "proto/chat/v1/message_service.proto"
    proto.write_text(proto.read_text().replace("PRESENCE_STATE_JOINED = 1", "JOINED = 1", 1))

    rules = {(f.path, f.rule) for f in lint_findings(scratch_repo)}

    assert ("proto/chat/v1/message_service.proto", "ENUM_VALUE_PREFIX") in rules


def test_a_syntax_error_is_a_compile_finding(scratch_repo: RepoLayout) -> None:
    line = _insert_after("proto/chat/v1/rag_service.proto", scratch_repo, "message Vector", "  float = ;")
    findings = lint_findings(scratch_repo)
    assert findings
    places = {(f.path, f.line, f.rule) for f in findings}
    assert places == {("proto/chat/v1/rag_service.proto", line, "COMPILE")}


def test_a_format_violation_names_the_file(scratch_repo: RepoLayout) -> None:
    proto = scratch_repo.root / "proto/chat/v1/ai_service.proto"
    proto.write_text(proto.read_text().replace("syntax = ", "syntax   =   ", 1))

    diff = format_diff(scratch_repo)

    assert unformatted_files(diff) == ["proto/chat/v1/ai_service.proto"]


def test_the_lint_command_prints_file_line_rule_and_fails(scratch_repo: RepoLayout) -> None:
    line = _insert_after("proto/chat/v1/common.proto", scratch_repo, "message File", "  int64 checksum = 98;")
    result = subprocess.run(
        [sys.executable, "-m", "registry", "lint"],
        cwd=scratch_repo.root,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    assert f"proto/chat/v1/common.proto:{line}:3: COMMENT_FIELD:" in result.stderr
