"""Cutting a release: the version it must carry, and everything it records, fixtures included."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from google.protobuf import descriptor_pb2, json_format
from google.protobuf.message_factory import GetMessageClass

from registry.breaking import BreakingCheck
from registry.diff import Change
from registry.fixtures import corpus_digest, pool_of
from registry.layout import RepoLayout
from registry.lint import Finding
from registry.release import (
    CHANGELOG_HEADER,
    ReleasePlan,
    ReleaseRefused,
    _check_version,
    _prepend_changelog,
    changelog_entry,
    cut_release,
)
from registry.releases import Release, list_releases
from registry.semver import Bump
from registry.waivers import Waiver

from .scratch import scratch_git_repo


@pytest.fixture(scope="module")
def first_release(tmp_path_factory: pytest.TempPathFactory) -> RepoLayout:
    """A scratch repository in which 1.0.0 has just been cut."""
    layout = scratch_git_repo(tmp_path_factory.mktemp("first") / "repo")
    cut_release(layout, "1.0.0", date="2026-11-25")
    return layout


def test_a_release_cut_writes_golden_fixtures_that_decode_in_its_schema(first_release: RepoLayout) -> None:
    (release,) = list_releases(first_release)
    directory = first_release.fixtures_dir / "1.0.0"
    schema = release.load()
    pool = pool_of(schema)
    messages = {
        f"{file.package}.{message.name}"
        for file in schema.file
        if file.package.startswith("chat.")
        for message in file.message_type
    }
    assert {path.name for path in directory.glob("*.json")} == {f"{name}.json" for name in messages}
    for path in sorted(directory.glob("*.json")):
        document = json.loads(path.read_text())
        cls = GetMessageClass(pool.FindMessageTypeByName(document["message"]))
        assert {"empty", "max", "min", "large"} <= set(document["cases"]), path.name
        for case, encoded in document["cases"].items():
            from_binary = cls.FromString(base64.b64decode(encoded["binary"]))
            assert from_binary == json_format.ParseDict(encoded["json"], cls()), f"{path.name}:{case}"
    assert release.record["fixtures_sha256"] == corpus_digest(directory)


def test_a_release_records_its_image_version_and_history(first_release: RepoLayout) -> None:
    (release,) = list_releases(first_release)
    release.verify()
    assert release.record == {
        "version": "1.0.0",
        "date": "2026-11-25",
        "sdk_version": "1.0.0",
        "previous": None,
        "bump": "major",
        "image_sha256": release.record["image_sha256"],
        "fixtures_sha256": release.record["fixtures_sha256"],
        "waivers": [],
    }
    assert '__version__ = "1.0.0"' in first_release.version_file.read_text()
    changelog = first_release.changelog.read_text()
    assert changelog.startswith(CHANGELOG_HEADER + "\n## 1.0.0 (2026-11-25)\n")
    assert "- `chat.v1.MessageService`: GetMessage, " in changelog


def test_a_second_cut_of_the_same_version_is_refused(first_release: RepoLayout) -> None:
    with pytest.raises(ReleaseRefused, match="nothing to release"):
        cut_release(first_release, "1.0.1")


def _release(version: str) -> Release:
    return Release(version, Path("/nonexistent") / version)


@pytest.mark.parametrize(
    ("version", "previous", "bump", "refusal"),
    [
        ("1.0.0", None, Bump.MAJOR, None),
        ("2.0.0", None, Bump.MAJOR, None),
        ("0.1.0", None, Bump.MAJOR, "the first release must be a major version such as 1.0.0, not 0.1.0"),
        ("0.0.0", None, Bump.MAJOR, "the first release must be a major version such as 1.0.0, not 0.0.0"),
        ("1.1.0", None, Bump.MAJOR, "the first release must be a major version such as 1.0.0, not 1.1.0"),
        ("1.0.1", None, Bump.MAJOR, "the first release must be a major version such as 1.0.0, not 1.0.1"),
        ("v1", None, Bump.MAJOR, "not a X.Y.Z version: 'v1'"),
        ("1.1.0", "1.0.0", Bump.MINOR, None),
        ("1.0.1", "1.0.0", Bump.PATCH, None),
        ("2.0.0", "1.0.0", Bump.MAJOR, None),
        ("1.0.1", "1.0.0", Bump.NONE, "the schema has not changed since 1.0.0: nothing to release"),
        (
            "1.0.1",
            "1.0.0",
            Bump.MINOR,
            "the changes since 1.0.0 require a minor bump: release 1.1.0, not 1.0.1",
        ),
        (
            "1.1.0",
            "1.0.0",
            Bump.MAJOR,
            "the changes since 1.0.0 require a major bump: release 2.0.0, not 1.1.0",
        ),
    ],
)
def test_the_version_must_be_the_bump_the_changes_require(
    version: str, previous: str | None, bump: Bump, refusal: str | None
) -> None:
    last = _release(previous) if previous else None
    if refusal is None:
        _check_version(version, last, bump)
    else:
        with pytest.raises(ReleaseRefused) as raised:
            _check_version(version, last, bump)
        assert str(raised.value) == refusal


def _change(
    kind: str, *, wire: bool = False, json: bool = False, source: bool = False, clients: bool = False
) -> Change:
    element = f"chat.v1.{kind}"
    detail = f"{kind} detail"
    return Change(element, kind, "chat/v1/common.proto", 1, "head", wire, json, source, detail, clients)


def test_the_changelog_groups_changes_by_effect_in_a_fixed_order() -> None:
    plan = ReleasePlan(
        version="2.0.0",
        previous="1.0.0",
        bump=Bump.MAJOR,
        changes=[
            _change("comment_changed"),
            _change("field_deprecated"),
            _change("field_added"),
            _change("limit_tightened", clients=True),
            _change("method_removed", source=True),
            _change("field_json_name_changed", json=True),
            _change("field_type_changed", wire=True),
        ],
        checks=[],
        services=[],
    )
    assert changelog_entry(plan, "2026-11-28") == (
        "## 2.0.0 (2026-11-28)\n\nA major release after 1.0.0: 7 change(s).\n\n"
        "### Breaking (wire or JSON)\n\n"
        "- `chat.v1.field_json_name_changed`: field_json_name_changed detail\n"
        "- `chat.v1.field_type_changed`: field_type_changed detail\n\n"
        "### Breaking for generated code\n\n- `chat.v1.method_removed`: method_removed detail\n\n"
        "### Breaking for clients (limits, HTTP routes)\n\n"
        "- `chat.v1.limit_tightened`: limit_tightened detail\n\n"
        "### Added\n\n- `chat.v1.field_added`: field_added detail\n\n"
        "### Deprecated\n\n- `chat.v1.field_deprecated`: field_deprecated detail\n\n"
        "### Changed\n\n- `chat.v1.comment_changed`: comment_changed detail\n"
    )


def test_the_first_changelog_entry_lists_the_services() -> None:
    plan = ReleasePlan("1.0.0", None, Bump.MAJOR, [], [], ["`chat.v1.A`: Get", "`chat.v1.B`: Put"])
    assert changelog_entry(plan, "2026-11-25") == (
        "## 1.0.0 (2026-11-25)\n\n"
        "First release of the schema and of the `chatplatform-schema-sdk` wheel, with these services:\n\n"
        "- `chat.v1.A`: Get\n- `chat.v1.B`: Put\n"
    )


def test_the_image_of_a_release_is_exactly_what_buf_builds(first_release: RepoLayout) -> None:
    (release,) = list_releases(first_release)
    image = descriptor_pb2.FileDescriptorSet.FromString(release.image.read_bytes())
    assert image == descriptor_pb2.FileDescriptorSet.FromString(first_release.image.read_bytes())


def test_changelog_entries_go_newest_first_under_one_header(tmp_path: Path) -> None:
    layout = RepoLayout(tmp_path)
    _prepend_changelog(layout, "## 1.0.0 (2026-11-25)\n\nfirst\n")
    _prepend_changelog(layout, "## 1.1.0 (2026-11-28)\n\nsecond\n")
    assert layout.changelog.read_text() == (
        CHANGELOG_HEADER + "\n## 1.1.0 (2026-11-28)\n\nsecond\n\n## 1.0.0 (2026-11-25)\n\nfirst\n"
    )


def test_the_changelog_lists_waived_breaks_with_their_reason() -> None:
    finding = Finding("proto/chat/v1/common.proto", 17, 3, "FIELD_SAME_TYPE", "changed type")
    check = BreakingCheck("1.0.0", "release 1.0.0", "WIRE_JSON")
    check.waived.append((finding, Waiver("chat.v1.User.avatar_url", "never filled in")))
    plan = ReleasePlan("2.0.0", "1.1.0", Bump.MAJOR, [], [check], [])
    assert changelog_entry(plan, "2026-11-28") == (
        "## 2.0.0 (2026-11-28)\n\nA major release after 1.1.0: 0 change(s).\n\n"
        "### Waived breaking changes\n\n"
        "- `chat.v1.User.avatar_url`: FIELD_SAME_TYPE in proto/chat/v1/common.proto:17 "
        "against release 1.0.0: never filled in\n"
    )
