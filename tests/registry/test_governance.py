"""Releases, transitive breaking checks, waivers and the review report, in scratch git repositories."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from registry.breaking import check_releases
from registry.codegen import generate
from registry.layout import RepoLayout
from registry.release import ReleaseRefused, cut_release
from registry.releases import list_releases

from .scratch import commit_all, edit, edit_regex, line_of, scratch_git_repo
from .vendored import VALIDATE, validate_proto

AVATAR = "  string avatar_url = 3;"
DEPRECATED_AVATAR = "  string avatar_url = 3 [deprecated = true];"
AVATAR_COMMENT = r"  // avatar_url is where.*?string avatar_url = 3[^;]*;\n"
NICKNAME = "  // nickname is what friends call the user. Optional.\n  string nickname = 4;\n}\n\n// File"


def _add_nickname(layout: RepoLayout) -> None:
    edit(layout, "common.proto", "}\n\n// File", NICKNAME)


def _registry(layout: RepoLayout, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "registry", *args],
        cwd=layout.root,
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.fixture(scope="module")
def released(tmp_path_factory: pytest.TempPathFactory) -> RepoLayout:
    """A scratch repository with 1.0.0 released and committed; tests copy it before editing."""
    layout = scratch_git_repo(tmp_path_factory.mktemp("released") / "repo")
    cut_release(layout, "1.0.0", date="2026-11-25")
    commit_all(layout, "release 1.0.0")
    return layout


@pytest.fixture
def repo_1_0(released: RepoLayout, tmp_path: Path) -> RepoLayout:
    """A private clone of the released repository, with ``main`` at the 1.0.0 release."""
    subprocess.run(["git", "clone", "-q", str(released.root), str(tmp_path / "clone")], check=True)
    return RepoLayout(tmp_path / "clone")


def test_a_release_records_image_record_changelog_and_version(released: RepoLayout) -> None:
    (release,) = list_releases(released)
    assert release.version == "1.0.0"
    assert release.record["sdk_version"] == "1.0.0"
    assert len(str(release.record["image_sha256"])) == 64
    assert "chat.v1.MessageService" in {
        f"{f.package}.{s.name}" for f in release.load().file for s in f.service
    }
    assert "## 1.0.0 (2026-11-25)" in released.changelog.read_text()
    assert '__version__ = "1.0.0"' in released.version_file.read_text()


def test_an_additive_change_makes_the_sdk_a_dev_version_of_the_next_minor(repo_1_0: RepoLayout) -> None:
    _add_nickname(repo_1_0)
    generate(repo_1_0)
    assert '__version__ = "1.1.0.dev0"' in repo_1_0.version_file.read_text()


def test_release_refuses_a_version_that_does_not_match_the_changes(repo_1_0: RepoLayout) -> None:
    _add_nickname(repo_1_0)
    generate(repo_1_0)
    with pytest.raises(ReleaseRefused, match=r"require a minor bump: release 1\.1\.0, not 2\.0\.0"):
        cut_release(repo_1_0, "2.0.0")
    with pytest.raises(ReleaseRefused, match="require a minor bump"):
        cut_release(repo_1_0, "1.0.1")
    plan = cut_release(repo_1_0, "1.1.0", date="2026-12-01")
    assert plan.bump.value == "minor"
    assert [r.version for r in list_releases(repo_1_0)] == ["1.0.0", "1.1.0"]
    assert "`chat.v1.User.nickname`" in repo_1_0.changelog.read_text()


def test_release_refuses_when_nothing_changed(repo_1_0: RepoLayout) -> None:
    with pytest.raises(ReleaseRefused, match=r"has not changed since 1\.0\.0"):
        cut_release(repo_1_0, "1.0.1")


def test_release_refuses_stale_generated_code(repo_1_0: RepoLayout) -> None:
    _add_nickname(repo_1_0)
    with pytest.raises(ReleaseRefused, match=r"generated code: .*changed.*common_pb2\.py"):
        cut_release(repo_1_0, "1.1.0")


def test_release_refuses_lint_failures(repo_1_0: RepoLayout) -> None:
    edit(repo_1_0, "common.proto", "}\n\n// File", "  string undocumented = 4;\n}\n\n// File")
    generate(repo_1_0)
    with pytest.raises(ReleaseRefused, match=r"lint: proto/chat/v1/common\.proto:.*COMMENT_FIELD"):
        cut_release(repo_1_0, "1.1.0")


def test_release_refuses_malformed_versions(repo_1_0: RepoLayout) -> None:
    _add_nickname(repo_1_0)
    generate(repo_1_0)
    with pytest.raises(ReleaseRefused, match=r"not a X\.Y\.Z version"):
        cut_release(repo_1_0, "v1.1")


def test_a_type_change_fails_with_file_line_and_rule(repo_1_0: RepoLayout) -> None:
    edit(repo_1_0, "common.proto", AVATAR, "  int64 avatar_url = 3;")
    result = _registry(repo_1_0, "breaking")
    assert result.returncode == 1
    line = line_of(repo_1_0, "common.proto", "int64 avatar_url")
    assert "WIRE_JSON against release 1.0.0: FAILED" in result.stdout
    # One line for the one change, with both rules and both checks it fails.
    assert (
        f"proto/chat/v1/common.proto:{line}:3: chat.v1.User.avatar_url: FIELD_WIRE_JSON_COMPATIBLE_TYPE, "
        "FIELD_SAME_TYPE (against release 1.0.0, git origin/main)"
    ) in result.stdout


def test_github_actions_annotations_name_file_line_and_rule(repo_1_0: RepoLayout) -> None:
    edit(repo_1_0, "common.proto", AVATAR, "  int64 avatar_url = 3;")
    result = _registry(repo_1_0, "breaking", "--error-format", "github-actions")
    line = line_of(repo_1_0, "common.proto", "int64 avatar_url")
    assert (
        f"::error file=proto/chat/v1/common.proto,line={line},col=3,title=chat.v1.User.avatar_url: "
        "FIELD_WIRE_JSON_COMPATIBLE_TYPE, FIELD_SAME_TYPE::"
    ) in result.stdout


def test_deprecate_then_delete_with_reserve_is_the_safe_way(repo_1_0: RepoLayout) -> None:
    edit(repo_1_0, "common.proto", AVATAR, DEPRECATED_AVATAR)
    assert _registry(repo_1_0, "breaking").returncode == 0
    commit_all(repo_1_0, "deprecate avatar_url")

    edit_regex(repo_1_0, "common.proto", AVATAR_COMMENT, '  reserved 3;\n  reserved "avatar_url";\n')
    result = _registry(repo_1_0, "breaking", "--base", "main")

    assert result.returncode == 0, result.stdout
    assert "WIRE_JSON against release 1.0.0: passed" in result.stdout
    assert "permitted: proto/chat/v1/common.proto" in result.stdout
    assert "deprecated and is now deleted with its number and name reserved" in result.stdout


def test_delete_without_deprecation_fails_source_compatibility(repo_1_0: RepoLayout) -> None:
    edit_regex(repo_1_0, "common.proto", AVATAR_COMMENT, '  reserved 3;\n  reserved "avatar_url";\n')
    result = _registry(repo_1_0, "breaking")
    assert result.returncode == 1
    assert "WIRE_JSON against release 1.0.0: passed" in result.stdout
    assert "FIELD_NO_DELETE" in result.stdout


def test_an_unreserved_delete_fails_the_wire_check(repo_1_0: RepoLayout) -> None:
    edit_regex(repo_1_0, "common.proto", AVATAR_COMMENT, "")
    result = _registry(repo_1_0, "breaking")
    assert result.returncode == 1
    assert "FIELD_NO_DELETE_UNLESS_NUMBER_RESERVED" in result.stdout


def test_a_removed_rpc_passes_wire_checks_but_fails_source_checks(repo_1_0: RepoLayout) -> None:
    edit_regex(repo_1_0, "plugin_service.proto", r"  // ListPlugins .*?\n  }\n", "")
    result = _registry(repo_1_0, "breaking")
    assert result.returncode == 1
    assert "WIRE_JSON against release 1.0.0: passed" in result.stdout
    assert "RPC_NO_DELETE" in result.stdout


def test_a_waiver_with_a_reason_lets_an_intentional_break_through(repo_1_0: RepoLayout) -> None:
    edit(repo_1_0, "common.proto", AVATAR, "  int64 avatar_url = 3;")
    repo_1_0.waivers.write_text(
        '[[waiver]]\nelement = "chat.v1.User.avatar_url"\n'
        'reason = "avatar_url was never filled in by any server"\n'
    )
    result = _registry(repo_1_0, "breaking")
    assert result.returncode == 0, result.stdout
    assert "waived: proto/chat/v1/common.proto" in result.stdout
    report = _registry(repo_1_0, "review").stdout
    assert "waived, `proto/chat/v1/common.proto" in report
    assert "avatar_url was never filled in by any server" in report


def test_one_line_per_change_names_every_check_it_fails_and_the_next_step(repo_1_0: RepoLayout) -> None:
    edit_regex(repo_1_0, "common.proto", AVATAR_COMMENT, "")

    result = _registry(repo_1_0, "breaking")

    assert result.returncode == 1
    [line] = [row for row in result.stdout.splitlines() if ": chat.v1.User.avatar_url: " in row]
    assert "FIELD_NO_DELETE_UNLESS_NUMBER_RESERVED" in line and "FIELD_NO_DELETE" in line
    assert "(against release 1.0.0, git " in line
    assert "next: reserve its number and name in the message" in result.stdout
    assert 'waive it: [[waiver]] element = "chat.v1.User.avatar_url"' in result.stdout


def test_an_unused_waiver_fails_the_check_with_its_line(repo_1_0: RepoLayout) -> None:
    repo_1_0.waivers.write_text('# none yet\n\n[[waiver]]\nelement = "chat.v1.User.gone"\nreason = "typo"\n')

    result = _registry(repo_1_0, "breaking")

    assert result.returncode == 1
    assert "WAIVERS against waivers.toml: FAILED, 1 finding(s)" in result.stdout
    assert "waivers.toml:3: waiver for element chat.v1.User.gone excuses no finding" in result.stdout


def test_a_waiver_without_a_reason_is_refused(repo_1_0: RepoLayout) -> None:
    repo_1_0.waivers.write_text('[[waiver]]\nelement = "chat.v1.User.avatar_url"\n')
    result = _registry(repo_1_0, "breaking")
    assert result.returncode == 2
    assert "waiver 1 lacks reason" in result.stderr


def test_every_release_is_checked_not_only_the_latest(repo_1_0: RepoLayout) -> None:
    # 1.1.0 drops avatar_url without reserving it, on purpose and waived ...
    edit_regex(repo_1_0, "common.proto", AVATAR_COMMENT, "")
    repo_1_0.waivers.write_text(
        '[[waiver]]\nelement = "chat.v1.User.avatar_url"\nagainst = "1.0.0"\n'
        'reason = "avatar_url is gone for good"\n'
    )
    generate(repo_1_0)
    cut_release(repo_1_0, "2.0.0")
    repo_1_0.waivers.unlink()
    # ... so reusing number 3 with another type is fine against 1.1.0 but not against 1.0.0.
    _add_nickname(repo_1_0)
    edit(repo_1_0, "common.proto", "string nickname = 4;", "int64 avatar_count = 3;")

    results = {check.against: check for check in check_releases(repo_1_0)}

    assert results["2.0.0"].passed
    assert not results["1.0.0"].passed
    assert {f.rule for f in results["1.0.0"].findings} >= {"FIELD_WIRE_JSON_COMPATIBLE_TYPE"}


def test_review_json_lists_each_change_with_its_effect_and_the_bump(repo_1_0: RepoLayout) -> None:
    _add_nickname(repo_1_0)
    edit(repo_1_0, "common.proto", AVATAR, DEPRECATED_AVATAR)
    edit(repo_1_0, "common.proto", "// sha256 is the SHA-256 digest", "// sha256 is the SHA-256 hash")

    report = json.loads(_registry(repo_1_0, "review", "--base", "1.0.0", "--format", "json").stdout)

    assert report["base"] == "release 1.0.0"
    assert report["bump"] == "minor"
    assert report["next_release"] == "1.1.0"
    assert report["sdk_version"] == "1.1.0.dev0"
    assert report["passed"] is True
    kinds = {(c["element"], c["kind"]): c for c in report["changes"]}
    assert set(kinds) == {
        ("chat.v1.User.nickname", "field_added"),
        ("chat.v1.User.avatar_url", "field_deprecated"),
        ("chat.v1.File.sha256", "comment_changed"),
    }
    nickname = kinds[("chat.v1.User.nickname", "field_added")]
    assert nickname["file"] == "proto/chat/v1/common.proto"
    assert nickname["line"] == line_of(repo_1_0, "common.proto", "string nickname")
    assert not (nickname["wire_breaking"] or nickname["json_breaking"] or nickname["source_breaking"])
    assert report["lint"] == []
    assert {b["against"] for b in report["breaking"]} == {"release 1.0.0"}
    assert any("chat_sdk.v1.User.nickname" in line for line in report["sdk_api"])


def test_review_markdown_reads_without_the_diff(repo_1_0: RepoLayout) -> None:
    _add_nickname(repo_1_0)
    edit(repo_1_0, "common.proto", AVATAR, "  bytes avatar_url = 3;")

    report = _registry(repo_1_0, "review").stdout

    assert report.startswith("# Schema review: git origin/main → working tree")
    assert "**Required bump:** major." in report
    assert "### `proto/chat/v1/common.proto`" in report
    assert "| `chat.v1.User.nickname` |" in report
    assert "JSON-breaking" in report
    assert "- added attribute `chat_sdk.v1.User.nickname`" in report
    assert "❌" in report


def test_an_edited_release_image_is_refused(repo_1_0: RepoLayout) -> None:
    (release,) = list_releases(repo_1_0)
    release.image.write_bytes(release.image.read_bytes() + b"\n\x00")
    result = _registry(repo_1_0, "breaking")
    assert result.returncode == 2
    assert "release 1.0.0: schema.binpb no longer matches the digest" in result.stderr


def _limit_avatar_url(layout: RepoLayout, max_len: int) -> None:
    """Vendor validate.proto into the scratch module (if absent) and bound `User.avatar_url`."""
    target = layout.proto_dir / VALIDATE
    if not target.is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(validate_proto()[VALIDATE])
    common = layout.proto_dir / "chat" / "v1" / "common.proto"
    if VALIDATE not in common.read_text():
        edit(layout, "common.proto", "package chat.v1;", f'package chat.v1;\n\nimport "{VALIDATE}";')
    edit_regex(
        layout,
        "common.proto",
        r"string avatar_url = 3[^;]*;",
        f"string avatar_url = 3 [(buf.validate.field).string.max_len = {max_len}];",
    )


def test_a_tightened_limit_fails_the_breaking_check_in_plain_words(repo_1_0: RepoLayout) -> None:
    _limit_avatar_url(repo_1_0, 2048)

    result = _registry(repo_1_0, "breaking")
    report = json.loads(_registry(repo_1_0, "review", "--format", "json").stdout)

    assert result.returncode == 1, result.stdout
    assert "CLIENTS against git origin/main: FAILED, 1 finding(s)" in result.stdout
    assert "LIMIT_TIGHTENED" in result.stdout
    [change] = [c for c in report["changes"] if c["kind"] == "limit_tightened"]
    assert change["element"] == "chat.v1.User.avatar_url"
    assert change["client_breaking"] and report["bump"] == "major"
    plain = "clients that send `avatar_url` longer than 2048 characters are now refused with INVALID_ARGUMENT"
    assert plain in change["detail"]


def test_a_waived_tightened_limit_passes(repo_1_0: RepoLayout) -> None:
    _limit_avatar_url(repo_1_0, 2048)
    repo_1_0.waivers.write_text(
        '[[waiver]]\nrule = "LIMIT_TIGHTENED"\nelement = "chat.v1.User.avatar_url"\n'
        'reason = "no server ever stored an avatar URL longer than 2048 characters"\n'
    )

    result = _registry(repo_1_0, "breaking")

    assert result.returncode == 0, result.stdout
    assert "waived: proto/chat/v1/common.proto" in result.stdout


def test_a_loosened_limit_passes_and_needs_a_minor_release(repo_1_0: RepoLayout) -> None:
    _limit_avatar_url(repo_1_0, 2048)
    commit_all(repo_1_0, "bound avatar_url")
    _limit_avatar_url(repo_1_0, 4096)

    result = _registry(repo_1_0, "breaking", "--base", "main")
    report = json.loads(_registry(repo_1_0, "review", "--base", "main", "--format", "json").stdout)

    assert result.returncode == 0, result.stdout
    assert "CLIENTS against git main: passed" in result.stdout
    assert [c["kind"] for c in report["changes"]] == ["limit_loosened"]
    assert report["bump"] == "minor"
    assert "from 2048 to 4096" in report["changes"][0]["detail"]
