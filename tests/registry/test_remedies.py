"""Breaking findings folded into one line per change, naming every check it fails and the next step."""

from __future__ import annotations

from registry.breaking import FILE, WIRE_JSON, BreakingCheck
from registry.lint import Finding
from registry.remedies import ToFix, changes_to_fix, github_annotation, next_step

COMMON = "proto/chat/v1/common.proto"
DELETED = 'Previously present field "3" with name "avatar_url" on message "User" was deleted.'
AVATAR = "chat.v1.User.avatar_url"


def _check(against: str, label: str, rules: str, *found: tuple[Finding, str]) -> BreakingCheck:
    check = BreakingCheck(against, label, rules)
    for finding, element in found:
        check.findings.append(finding)
        check.elements[finding] = element
    return check


def test_one_change_failing_three_rules_against_three_checks_is_one_line() -> None:
    number = Finding(COMMON, 7, 1, "FIELD_NO_DELETE_UNLESS_NUMBER_RESERVED", DELETED)
    name = Finding(COMMON, 7, 1, "FIELD_NO_DELETE_UNLESS_NAME_RESERVED", DELETED)
    source = Finding(COMMON, 7, 1, "FIELD_NO_DELETE", DELETED)
    retyped = Finding(
        COMMON, 9, 3, "FIELD_SAME_TYPE", 'Field "4" with name "bio" on message "User" changed type.'
    )
    checks = [
        _check("1.0.0", "release 1.0.0", WIRE_JSON, (number, AVATAR), (name, AVATAR)),
        _check("1.1.0", "release 1.1.0", WIRE_JSON, (number, AVATAR), (name, AVATAR)),
        _check("base", "base main", FILE, (source, AVATAR), (retyped, "chat.v1.User.bio")),
    ]

    avatar, bio = changes_to_fix(checks)

    assert avatar == ToFix(
        AVATAR,
        COMMON,
        7,
        1,
        ("FIELD_NO_DELETE_UNLESS_NUMBER_RESERVED", "FIELD_NO_DELETE_UNLESS_NAME_RESERVED", "FIELD_NO_DELETE"),
        ("release 1.0.0", "release 1.1.0", "base main"),
        DELETED,
    )
    assert avatar.step.startswith("reserve its number and name in the message")
    assert avatar.step.endswith(f'waive it: [[waiver]] element = "{AVATAR}" reason = "..."')
    assert (bio.element, bio.against) == ("chat.v1.User.bio", ("base main",))


def test_a_passing_check_has_nothing_to_fix() -> None:
    assert changes_to_fix([BreakingCheck("1.0.0", "release 1.0.0", WIRE_JSON)]) == []


def test_each_kind_of_break_gets_its_own_next_step() -> None:
    assert next_step(("FIELD_NO_DELETE",)).startswith("deprecate it first")
    assert next_step(("ENUM_VALUE_NO_DELETE_UNLESS_NAME_RESERVED",)).startswith("reserve its number and name")
    assert next_step(("RESERVED_MESSAGE_NO_DELETE",)).startswith("put the reservation back")
    assert next_step(("FILE_SAME_PACKAGE",)).startswith("keep the package: make it in a new package version")
    assert "chat.v2" in next_step(("RPC_NO_DELETE",)) and "deprecated = true" in next_step(("RPC_NO_DELETE",))
    assert next_step(("FIELD_SAME_TYPE",)).startswith("revert it; add a new field")
    assert next_step(("LIMIT_TIGHTENED",)).startswith("keep the old limit")
    assert next_step(("HTTP_ROUTE_CHANGED",)).startswith("keep the old route")
    assert next_step(("WAIVER_UNUSED",)) == "edit waivers.toml as the finding says"


def test_a_waivers_finding_does_not_suggest_another_waiver() -> None:
    item = ToFix(
        "waivers.toml:3", "waivers.toml", 3, 1, ("WAIVER_UNUSED",), ("waivers.toml",), "excuses nothing"
    )

    assert "[[waiver]]" not in item.step


def test_the_github_annotation_names_file_line_element_rules_checks_and_next_step() -> None:
    item = ToFix(AVATAR, COMMON, 7, 3, ("FIELD_SAME_TYPE",), ("release 1.0.0", "base main"), "changed\ntype")

    assert github_annotation(item) == (
        f"::error file={COMMON},line=7,col=3,title={AVATAR}: FIELD_SAME_TYPE::changed type "
        f"(against release 1.0.0, base main). Next: {item.step}"
    )


def test_every_element_of_one_check_gets_its_line() -> None:
    retyped = Finding(COMMON, 9, 3, "FIELD_SAME_TYPE", "changed type")
    renamed = Finding(COMMON, 11, 3, "FIELD_SAME_NAME", "changed name")
    check = _check("base", "base main", FILE, (retyped, "chat.v1.User.bio"), (renamed, "chat.v1.User.name"))

    assert [item.element for item in changes_to_fix([check])] == ["chat.v1.User.bio", "chat.v1.User.name"]


def test_a_change_without_rules_is_reverted() -> None:
    assert next_step(()) == next_step(("FIELD_SAME_TYPE",))


def test_the_annotation_lists_every_rule() -> None:
    item = ToFix(
        AVATAR, COMMON, 7, 3, ("FIELD_SAME_TYPE", "FIELD_WIRE_JSON_COMPATIBLE_TYPE"), ("base main",), "x"
    )

    assert f"title={AVATAR}: FIELD_SAME_TYPE, FIELD_WIRE_JSON_COMPATIBLE_TYPE::" in github_annotation(item)


def test_a_change_reads_as_one_line_and_its_next_step() -> None:
    item = ToFix(
        AVATAR, COMMON, 7, 3, ("FIELD_SAME_TYPE", "FIELD_WIRE_JSON_COMPATIBLE_TYPE"), ("r 1", "b"), "x"
    )

    assert str(item) == (
        f"{COMMON}:7:3: {AVATAR}: FIELD_SAME_TYPE, FIELD_WIRE_JSON_COMPATIBLE_TYPE (against r 1, b): x\n"
        f"    next: {item.step}"
    )
