"""Waivers excuse exactly the findings they name: one rule, one file, one phrase, one release."""

from __future__ import annotations

from pathlib import Path

import pytest

from registry.layout import RepoLayout
from registry.lint import Finding
from registry.waivers import Waiver, WaiverError, load_waivers

COMMON = "proto/chat/v1/common.proto"
RETYPED = Finding(COMMON, 12, 3, "FIELD_SAME_TYPE", 'Field "3" with name "avatar_url" changed type.')


def _waiver(**overrides: str) -> Waiver:
    fields = {"rule": "FIELD_SAME_TYPE", "path": COMMON, "reason": "never filled in"} | overrides
    return Waiver(**fields)


def test_a_waiver_covers_its_rule_in_its_file_against_any_release_by_default() -> None:
    assert _waiver().covers(RETYPED, "1.0.0")
    assert _waiver().covers(RETYPED, "base")


@pytest.mark.parametrize(
    "overrides",
    [
        {"rule": "FIELD_NO_DELETE"},
        {"path": "proto/chat/v1/message_service.proto"},
        {"match": 'name "nickname"'},
        {"against": "1.1.0"},
        {"against": "base"},
    ],
    ids=["other-rule", "other-file", "other-phrase", "other-release", "only-the-base"],
)
def test_a_waiver_excuses_nothing_outside_its_scope(overrides: dict[str, str]) -> None:
    assert not _waiver(**overrides).covers(RETYPED, "1.0.0")


def test_a_waiver_scoped_to_one_release_excuses_that_release_only() -> None:
    waiver = _waiver(against="1.0.0", match='name "avatar_url"')
    assert waiver.covers(RETYPED, "1.0.0")
    assert not waiver.covers(RETYPED, "1.1.0")
    assert not waiver.covers(RETYPED, "base")


def _layout_with(tmp_path: Path, text: str) -> RepoLayout:
    layout = RepoLayout(tmp_path)
    layout.waivers.write_text(text)
    return layout


def test_no_waivers_file_means_no_waivers(tmp_path: Path) -> None:
    assert load_waivers(RepoLayout(tmp_path)) == []


def test_waivers_are_read_with_their_scope(tmp_path: Path) -> None:
    layout = _layout_with(
        tmp_path,
        '[[waiver]]\nrule = "FIELD_SAME_TYPE"\npath = "proto/chat/v1/common.proto"\nreason = "r1"\n\n'
        '[[waiver]]\nrule = "FIELD_NO_DELETE"\npath = "proto/chat/v1/common.proto"\nreason = "r2"\n'
        'match = "nickname"\nagainst = "1.0.0"\n',
    )
    assert load_waivers(layout) == [
        Waiver("FIELD_SAME_TYPE", COMMON, "r1"),
        Waiver("FIELD_NO_DELETE", COMMON, "r2", match="nickname", against="1.0.0"),
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[[waiver]\n", "waivers.toml: "),
        ('[[waiver]]\nrule = "R"\npath = "p"\n', "waivers.toml: waiver 1 lacks reason"),
        ('[[waiver]]\nrule = "R"\npath = "p"\nreason = "  "\n', "waivers.toml: waiver 1 lacks reason"),
        ('[[waiver]]\nreason = "why"\n', "waivers.toml: waiver 1 lacks rule, path"),
        (
            '[[waiver]]\nrule = "R"\npath = "p"\nreason = "r"\n\n[[waiver]]\nrule = "R"\npath = "p"\n'
            'reason = "r"\nuntil = "2.0.0"\n',
            "waivers.toml: waiver 2 has unknown keys ['until']",
        ),
    ],
    ids=["malformed", "no-reason", "blank-reason", "no-rule-or-path", "unknown-key"],
)
def test_a_malformed_waiver_file_is_refused_saying_where(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(WaiverError) as raised:
        load_waivers(_layout_with(tmp_path, text))
    assert str(raised.value).startswith(message), str(raised.value)


def test_a_waivers_file_without_waivers_means_no_waivers(tmp_path: Path) -> None:
    assert load_waivers(_layout_with(tmp_path, "# nothing waived yet\n")) == []
