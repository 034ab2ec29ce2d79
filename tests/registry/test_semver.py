"""Versions: the bump each change needs, the next version, and the development version between releases."""

from __future__ import annotations

import pytest

from registry.diff import Change
from registry.semver import Bump, change_bump, dev_version, next_version, parse_version, required_bump


def change(kind: str, *, wire: bool = False, json: bool = False, source: bool = False) -> Change:
    """A change of ``kind`` with the given effects (element, file and detail do not matter here)."""
    return Change(f"chat.v1.X.{kind}", kind, "chat/v1/common.proto", 1, "head", wire, json, source, kind)


@pytest.mark.parametrize(
    ("kind", "effects", "bump"),
    [
        ("field_type_changed", {"wire": True}, Bump.MAJOR),
        ("field_json_name_changed", {"json": True}, Bump.MAJOR),
        ("method_removed", {"source": True}, Bump.MAJOR),
        ("field_added", {"source": True}, Bump.MAJOR),  # anything breaking is major, whatever its kind
        ("field_added", {}, Bump.MINOR),
        ("message_added", {}, Bump.MINOR),
        ("field_deprecated", {}, Bump.MINOR),
        ("field_undeprecated", {}, Bump.MINOR),
        ("comment_changed", {}, Bump.PATCH),
        ("option_changed", {}, Bump.PATCH),
        ("reserved_added", {}, Bump.PATCH),  # ends in "_added", but only documents a retirement
        ("field_renamed_safely", {}, Bump.PATCH),
    ],
)
def test_each_change_needs_the_bump_of_its_strongest_effect(
    kind: str, effects: dict[str, bool], bump: Bump
) -> None:
    assert change_bump(change(kind, **effects)) is bump


def test_a_release_needs_the_strongest_bump_of_its_changes() -> None:
    assert required_bump([]) is Bump.NONE
    assert required_bump([change("comment_changed")]) is Bump.PATCH
    assert required_bump([change("comment_changed"), change("field_added")]) is Bump.MINOR
    assert (
        required_bump([change("field_added"), change("x", wire=True), change("comment_changed")])
        is Bump.MAJOR
    )


def test_bumps_are_ordered_none_patch_minor_major() -> None:
    assert [bump.rank for bump in (Bump.NONE, Bump.PATCH, Bump.MINOR, Bump.MAJOR)] == [0, 1, 2, 3]
    assert Bump.highest([Bump.PATCH, Bump.MAJOR, Bump.MINOR]) is Bump.MAJOR
    assert Bump.highest([Bump.PATCH, Bump.MINOR]) is Bump.MINOR
    assert Bump.highest([]) is Bump.NONE


@pytest.mark.parametrize(
    "version", ["1.0", "1.0.0.0", "v1.0.0", "01.0.0", "1.02.0", "1.0.0-rc1", "", "a.b.c"]
)
def test_only_plain_x_y_z_versions_are_accepted(version: str) -> None:
    with pytest.raises(ValueError, match=r"^not a X\.Y\.Z version: "):
        parse_version(version)


def test_versions_parse_to_numbers() -> None:
    assert parse_version("0.0.0") == (0, 0, 0)
    assert parse_version("10.20.30") == (10, 20, 30)


@pytest.mark.parametrize(
    ("current", "bump", "expected"),
    [
        ("1.2.3", Bump.MAJOR, "2.0.0"),
        ("1.2.3", Bump.MINOR, "1.3.0"),
        ("1.2.3", Bump.PATCH, "1.2.4"),
        ("1.2.3", Bump.NONE, "1.2.3"),
        ("0.9.9", Bump.MAJOR, "1.0.0"),
    ],
)
def test_the_next_version_follows_the_bump(current: str, bump: Bump, expected: str) -> None:
    assert next_version(current, bump) == expected


def test_between_releases_the_sdk_is_a_dev_version_of_the_next_one() -> None:
    assert dev_version(None, Bump.MAJOR) == "1.0.0.dev0"
    assert dev_version(None, Bump.NONE) == "1.0.0.dev0"
    assert dev_version("1.0.0", Bump.MINOR) == "1.1.0.dev0"
    assert dev_version("1.0.0", Bump.MAJOR) == "2.0.0.dev0"
    assert dev_version("1.0.0", Bump.PATCH) == "1.0.1.dev0"
    assert dev_version("1.0.0", Bump.NONE) == "1.0.0"
    with pytest.raises(ValueError, match=r"not a X\.Y\.Z version"):
        dev_version("one", Bump.NONE)
