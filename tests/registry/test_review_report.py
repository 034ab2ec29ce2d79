"""The review report: every change, check and lint finding, in Markdown, JSON and a summary.

The rich review below exercises every branch of the report; its rendering is compared
with reviewed golden files (tests/registry/golden/), so a wording or layout change shows
up as a diff a reviewer reads. Regenerate them with ``CHAT_UPDATE_GOLDEN=1`` and review.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from registry.breaking import BreakingCheck
from registry.diff import Change
from registry.lint import Finding
from registry.review import Review, effect, sdk_api_change
from registry.semver import Bump
from registry.waivers import Waiver

GOLDEN = Path(__file__).parent / "golden"
FILE = "chat/v1/common.proto"


def change(
    element: str,
    kind: str,
    *,
    side: str = "head",
    wire: bool = False,
    json_: bool = False,
    source: bool = False,
) -> Change:
    return Change(f"chat.v1.{element}", kind, FILE, 7, side, wire, json_, source, f"{kind.replace('_', ' ')}")  # type: ignore[arg-type]


CHANGES = [
    change("User.avatar_url", "field_type_changed", wire=True, json_=True, source=True),
    change("User.display_name", "field_json_name_changed", json_=True),
    change("User.legacy", "field_removed", side="base", source=True),
    change("User.nickname", "field_added"),
    change("User", "comment_changed"),
]
RETYPED = Finding("proto/chat/v1/common.proto", 17, 3, "FIELD_WIRE_JSON_COMPATIBLE_TYPE", "changed type")
DELETED = Finding("proto/chat/v1/common.proto", 9, 1, "FIELD_NO_DELETE", "deleted legacy")
RENAMED = Finding("proto/chat/v1/common.proto", 12, 3, "FIELD_SAME_JSON_NAME", "changed json name")


def failing_review() -> Review:
    return Review(
        base="main",
        head="working tree",
        previous_release="1.1.0",
        bump=Bump.MAJOR,
        release_bump=Bump.MAJOR,
        sdk_version="2.0.0.dev0",
        module_dir="proto",
        changes=CHANGES,
        lint=[Finding("proto/chat/v1/common.proto", 3, 1, "COMMENT_FIELD", "Field has no comment.")],
        breaking=[
            BreakingCheck(
                "1.1.0",
                "release 1.1.0",
                "WIRE_JSON",
                findings=[RETYPED],
                elements={RETYPED: "chat.v1.User.avatar_url"},
            ),
            BreakingCheck(
                "base",
                "base main",
                "FILE",
                waived=[(RENAMED, Waiver("chat.v1.User.name", "no client reads JSON"))],
                permitted=[(DELETED, "retired properly")],
            ),
        ],
        packages={FILE: "chat.v1"},
    )


def passing_review() -> Review:
    return Review("main", "working tree", None, Bump.NONE, Bump.NONE, "1.0.0.dev0", "proto")


def _golden(name: str, text: str) -> str:
    path = GOLDEN / name
    if os.environ.get("CHAT_UPDATE_GOLDEN"):
        path.write_text(text)
    return path.read_text()


@pytest.mark.parametrize("review", [failing_review, passing_review], ids=["failing", "passing"])
def test_the_markdown_report_reads_as_reviewed(review: Callable[[], Review]) -> None:
    rendered = review().to_markdown()
    assert rendered == _golden(f"review-{review.__name__}.md", rendered)


@pytest.mark.parametrize("review", [failing_review, passing_review], ids=["failing", "passing"])
def test_the_json_report_holds_every_fact(review: Callable[[], Review]) -> None:
    rendered = json.dumps(review().to_json(), indent=1, ensure_ascii=False) + "\n"
    assert rendered == _golden(f"review-{review.__name__}.json", rendered)


def test_the_summary_gives_verdict_counts_and_versions() -> None:
    assert failing_review().summary() == (
        "schema review main -> working tree: FAILS (2 finding(s) to fix)\n"
        "  changes: 1 wire-breaking, 2 JSON-breaking, 2 source-breaking, 2 safe\n"
        "  required bump: major; next release 2.0.0; SDK version 2.0.0.dev0"
    )
    assert passing_review().summary() == (
        "schema review main -> working tree: passes\n"
        "  changes: no changes\n"
        "  required bump: none; next release 1.0.0; SDK version 1.0.0.dev0"
    )


def test_a_review_passes_only_without_lint_findings_and_unexcused_breaks() -> None:
    review = failing_review()
    assert not review.passed
    review.lint = []
    assert not review.passed
    review.breaking = review.breaking[1:]  # only waived and permitted findings remain
    assert review.passed


def test_the_next_release_follows_the_bump_since_the_previous_one() -> None:
    review = failing_review()
    review.release_bump = Bump.MINOR
    assert review.next_release == "1.2.0"
    assert passing_review().next_release == "1.0.0"


@pytest.mark.parametrize(
    ("kind", "flags", "expected"),
    [
        ("field_type_changed", {"wire": True}, "wire-breaking"),
        ("field_type_changed", {"wire": True, "json_": True, "source": True}, "wire-breaking"),
        ("field_json_name_changed", {"json_": True, "source": True}, "JSON-breaking"),
        ("method_removed", {"source": True}, "source-breaking"),
        ("field_added", {}, "safe"),
    ],
)
def test_the_effect_is_the_strongest_one(kind: str, flags: dict[str, bool], expected: str) -> None:
    assert (
        effect(
            change(
                "X.y",
                kind,
                wire=flags.get("wire", False),
                json_=flags.get("json_", False),
                source=flags.get("source", False),
            )
        )
        == expected
    )


@pytest.mark.parametrize(
    ("element", "kind", "expected"),
    [
        ("ChatEvent", "message_added", "added class `chat_sdk.v1.ChatEvent`"),
        ("User.Inner", "message_removed", "removed class `chat_sdk.v1.UserInner`"),
        ("User", "message_comment_changed", None),
        ("User.nick_name", "field_added", "added attribute `chat_sdk.v1.User.nick_name` (field added)"),
        ("User.age", "field_removed", "removed attribute `chat_sdk.v1.User.age` (field removed)"),
        ("User.age", "field_type_changed", "changed attribute `chat_sdk.v1.User.age` (field type changed)"),
        ("User.age", "field_deprecated", None),
        ("User.age", "field_json_name_changed", None),
        ("User.age", "field_number_changed", None),
        ("Role.ROLE_ADMIN", "enum_value_added", "added member `chat_sdk.v1.Role.ADMIN`"),
        (
            "PresenceState.PRESENCE_STATE_AWAY",
            "enum_value_removed",
            "removed member `chat_sdk.v1.PresenceState.AWAY`",
        ),
        ("Role", "enum_added", "added enum `chat_sdk.v1.Role`"),
        ("Role", "enum_comment_changed", None),
        (
            "ChatService",
            "service_added",
            "added classes `chat_sdk.v1.ChatServiceStub` and `chat_sdk.v1.ChatServiceBase`",
        ),
        ("ChatService", "service_comment_changed", None),
        (
            "MessageService.GetMessage",
            "method_removed",
            "removed method `chat_sdk.v1.MessageServiceStub.get_message` and "
            "`MessageServiceBase.get_message` "
            "(method removed)",
        ),
        (
            "MessageService.StreamHTTPMessages",
            "method_streaming_changed",
            "changed method `chat_sdk.v1.MessageServiceStub.stream_http_messages` and "
            "`MessageServiceBase.stream_http_messages` (method streaming changed)",
        ),
        ("MessageService.GetMessage", "method_option_changed", None),
    ],
)
def test_each_change_is_named_as_the_sdk_shows_it(element: str, kind: str, expected: str | None) -> None:
    assert sdk_api_change(change(element, kind), "chat.v1") == expected


def test_a_package_without_a_dot_maps_below_the_sdk_package() -> None:
    found = Change("chat.User", "message_added", FILE, 1, "head", False, False, False, "")
    assert sdk_api_change(found, "chat") == "added class `chat_sdk._generated.chat.User`"


@pytest.mark.parametrize(
    ("element", "kind", "expected"),
    [
        ("User.Profile.age", "field_added", "added attribute `chat_sdk.v1.UserProfile.age` (field added)"),
        ("User.Role.ROLE_ADMIN", "enum_value_added", "added member `chat_sdk.v1.UserRole.ADMIN`"),
        ("User.Role", "enum_removed", "removed enum `chat_sdk.v1.UserRole`"),
        ("ROLE_ADMIN", "enum_value_added", "added member `chat_sdk.v1..ROLE_ADMIN`"),  # no owner: no prefix
    ],
)
def test_nested_elements_are_named_by_their_owners(element: str, kind: str, expected: str) -> None:
    assert sdk_api_change(change(element, kind), "chat.v1") == expected


def test_a_package_without_a_public_module_is_named_in_the_generated_tree() -> None:
    found = Change("chat.v1.beta.User", "message_added", FILE, 1, "head", False, False, False, "")
    assert sdk_api_change(found, "chat.v1.beta") == "added class `chat_sdk._generated.chat.v1.beta.User`"


def test_a_change_in_a_file_of_unknown_package_is_named_from_its_full_name() -> None:
    review = passing_review()
    review.changes = [change("User", "message_added")]
    assert review.api_changes() == ["added class `chat_sdk._generated.ChatV1User`"]


def test_a_check_of_unknown_rules_is_listed_without_a_meaning() -> None:
    review = passing_review()
    review.breaking = [BreakingCheck("1.0.0", "release 1.0.0", "WIRE")]
    assert "- Against release 1.0.0, WIRE (): passed." in review.to_markdown().splitlines()


def test_a_finding_the_review_judges_safe_says_why_buf_is_stricter() -> None:
    # buf's FILE rules guard Java's generated code too; this registry ships no Java SDK.
    java = Finding("proto/chat/v1/common.proto", 5, 1, "FILE_SAME_JAVA_PACKAGE", "java_package changed")
    review = passing_review()
    elements = {java: "proto/chat/v1/common.proto", RETYPED: "chat.v1.User.avatar_url"}
    review.breaking = [
        BreakingCheck("base", "base main", "FILE", findings=[java, RETYPED], elements=elements)
    ]
    lines = review.to_markdown().splitlines()
    [noted] = [line for line in lines if "FILE_SAME_JAVA_PACKAGE" in line]
    assert noted.startswith(
        "- `proto/chat/v1/common.proto:5` `proto/chat/v1/common.proto`: FILE_SAME_JAVA_PACKAGE, "
        "against base main: java_package changed (stricter than the review, which judges it safe: "
    )
    assert "an option only other languages read breaks no SDK it ships" in noted
    assert noted.endswith(")  ")
    assert (
        "- `proto/chat/v1/common.proto:17` `chat.v1.User.avatar_url`: FIELD_WIRE_JSON_COMPATIBLE_TYPE, "
        "against base main: changed type  "
    ) in lines


def test_a_change_failing_two_checks_is_one_line_naming_both_rules_and_both_checks() -> None:
    source = Finding(RETYPED.path, RETYPED.line, RETYPED.column, "FIELD_SAME_TYPE", "changed type")
    review = passing_review()
    review.breaking = [
        BreakingCheck(
            "1.1.0", "release 1.1.0", "WIRE_JSON", findings=[RETYPED], elements={RETYPED: "chat.v1.User.a"}
        ),
        BreakingCheck("base", "base main", "FILE", findings=[source], elements={source: "chat.v1.User.a"}),
    ]

    [line] = [row for row in review.to_markdown().splitlines() if "`chat.v1.User.a`" in row]

    assert (
        "FIELD_WIRE_JSON_COMPATIBLE_TYPE, FIELD_SAME_TYPE, against release 1.1.0, base main: "
        f"{RETYPED.message}" in line
    )
