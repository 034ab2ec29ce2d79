"""buf lint and buf format report violations in the module with file and line."""

from __future__ import annotations

import re

from registry.buf import run_buf
from registry.layout import RepoLayout


def test_the_module_is_lint_and_format_clean(repo: RepoLayout) -> None:
    lint = run_buf(["lint"], cwd=repo.root, check=False)
    assert (lint.returncode, lint.stdout + lint.stderr) == (0, "")
    fmt = run_buf(["format", "--diff", "--exit-code"], cwd=repo.root, check=False)
    assert (fmt.returncode, fmt.stdout) == (0, "")


def test_an_undocumented_field_is_reported_with_file_line_and_rule(scratch_repo: RepoLayout) -> None:
    proto = scratch_repo.root / "proto/chat/v1/common.proto"
    lines = proto.read_text().splitlines()
    closing = next(i for i, line in enumerate(lines) if line.startswith("message User")) + 1
    lines.insert(closing, "  string nickname = 99;")
    proto.write_text("\n".join(lines) + "\n")

    result = run_buf(["lint"], cwd=scratch_repo.root, check=False)

    assert result.returncode != 0
    assert f"proto/chat/v1/common.proto:{closing + 1}:" in result.stdout
    assert "COMMENT_FIELD" in result.stdout


def test_a_badly_named_enum_value_is_reported(scratch_repo: RepoLayout) -> None:
    proto = scratch_repo.root / "proto/chat/v1/message_service.proto"
    text = proto.read_text()
    proto.write_text(text.replace("PRESENCE_STATE_JOINED", "JOINED", 1))

    result = run_buf(["lint"], cwd=scratch_repo.root, check=False)

    assert re.search(r"proto/chat/v1/message_service\.proto:\d+:\d+:.*ENUM_VALUE_PREFIX", result.stdout)


def test_a_format_violation_is_reported_as_a_diff_naming_the_file(scratch_repo: RepoLayout) -> None:
    proto = scratch_repo.root / "proto/chat/v1/ai_service.proto"
    proto.write_text(proto.read_text().replace("syntax = ", "syntax   =   ", 1))

    result = run_buf(["format", "--diff", "--exit-code"], cwd=scratch_repo.root, check=False)

    assert result.returncode != 0
    assert "proto/chat/v1/ai_service.proto" in result.stdout
    assert re.search(r"^@@ -\d+", result.stdout, re.MULTILINE)
