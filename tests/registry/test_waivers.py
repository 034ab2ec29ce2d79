"""Waivers excuse one element's change: never a sibling, never past their date, never unused in silence."""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest
from google.protobuf import descriptor_pb2 as dpb

from registry.breaking import FILE, WIRE_JSON, BreakingCheck, _excuse, check_waivers
from registry.elements import _enum_value_name, finding_element
from registry.layout import RepoLayout
from registry.lint import Finding
from registry.waivers import Waiver, WaiverError, load_waivers

from ..conftest import ROOT
from .schemas import Compile, proto

COMMON = "proto/chat/v1/common.proto"
STOCK = "chat.v1.Item.stock"
RETYPED = Finding(
    COMMON, 12, 3, "FIELD_SAME_TYPE", 'Field "3" with name "stock" on message "Item" changed type.'
)
DELTA = Finding(
    COMMON, 14, 3, "FIELD_SAME_TYPE", 'Field "4" with name "delta" on message "Item" changed type.'
)
ELEMENTS = {RETYPED: STOCK, DELTA: "chat.v1.Item.delta"}


def test_a_waiver_covers_its_element_in_every_check_and_for_every_rule_by_default() -> None:
    waiver = Waiver(STOCK, "never filled in")

    assert waiver.covers(STOCK, "FIELD_SAME_TYPE", "1.0.0")
    assert waiver.covers(STOCK, "FIELD_WIRE_JSON_COMPATIBLE_TYPE", "base")
    assert waiver.covers(STOCK, "LIMIT_TIGHTENED", "base")


@pytest.mark.parametrize(
    ("element", "rule", "against"),
    [
        ("chat.v1.Item.delta", "FIELD_SAME_TYPE", "1.0.0"),  # a sibling
        ("chat.v1.Item", "FIELD_SAME_TYPE", "1.0.0"),  # the parent
        ("chat.v1.Item.stock.unit", "FIELD_SAME_TYPE", "1.0.0"),  # below it
        (STOCK, "FIELD_NO_DELETE", "1.0.0"),  # another rule
        (STOCK, "FIELD_SAME_TYPE", "1.1.0"),  # another release
        (STOCK, "FIELD_SAME_TYPE", "base"),  # the base
    ],
    ids=["sibling", "parent", "child", "other-rule", "other-release", "base"],
)
def test_a_scoped_waiver_excuses_nothing_outside_its_scope(element: str, rule: str, against: str) -> None:
    waiver = Waiver(STOCK, "never filled in", rule="FIELD_SAME_TYPE", against="1.0.0")

    assert not waiver.covers(element, rule, against)


def test_a_waiver_for_one_field_does_not_excuse_a_later_retype_of_its_sibling() -> None:
    check = _excuse(
        BreakingCheck("base", "base main", FILE), [RETYPED, DELTA], [Waiver(STOCK, "r")], ELEMENTS.__getitem__
    )

    assert check.findings == [DELTA]
    assert [finding for finding, _ in check.waived] == [RETYPED]


def test_an_expired_waiver_excuses_nothing() -> None:
    waiver = Waiver(STOCK, "r", expires=datetime.date(2020, 1, 1))

    check = _excuse(
        BreakingCheck("1.0.0", "release 1.0.0", WIRE_JSON), [RETYPED], [waiver], ELEMENTS.__getitem__
    )

    assert check.findings == [RETYPED]


# --- which element a buf finding is about, read from real buf output ------------------------


@pytest.mark.parametrize(
    ("message", "element"),
    [
        ('Previously present field "3" with name "p" on message "M" was deleted.', "demo.v1.M.p"),
        (
            'Field "2" with name "n" on message "M.Inner" changed type from "int32" to "uint32".',
            "demo.v1.M.Inner.n",
        ),
        ('Previously present enum value "1" on enum "E" was deleted.', "demo.v1.E.E_A"),
        (
            'Previously present enum value "1" on enum "E" was deleted without reserving the name "E_A".',
            "demo.v1.E.E_A",
        ),
        ('Previously present RPC "Put" on service "S" was deleted.', "demo.v1.S.Put"),
        ('Previously present oneof "o" on message "M" was deleted.', "demo.v1.M.o"),
        ('Previously present message "Gone" was deleted from file.', "demo.v1.Gone"),
    ],
)
def test_the_element_of_a_finding_is_read_from_buf_s_sentence(
    compile_files: Compile, message: str, element: str
) -> None:
    # The schema checked against: the one that still holds what the head deleted.
    base = compile_files({"demo/v1/demo.proto": proto("enum E {\n  E_UNSPECIFIED = 0;\n  E_A = 1;\n}")})
    finding = Finding("proto/demo/v1/demo.proto", 3, 1, "ANY", message)

    assert finding_element(finding, "proto", base) == element


def test_a_deleted_file_is_named_by_its_path(compile_files: Compile) -> None:
    schema = compile_files({"demo/v1/demo.proto": proto("message M {}")})
    finding = Finding("", 1, 1, "FILE_NO_DELETE", 'Previously present file "demo/v1/old.proto" was deleted.')

    assert finding_element(finding, "proto", schema) == "demo/v1/old.proto"


def test_a_deleted_file_can_be_waived_by_its_path(compile_files: Compile) -> None:
    schema = compile_files({"demo/v1/demo.proto": proto("message M {}")})
    gone = Finding("", 1, 1, "FILE_NO_DELETE", 'Previously present file "demo/v1/old.proto" was deleted.')
    waiver = Waiver("demo/v1/old.proto", "merged into demo.proto before any client used it")

    check = _excuse(
        BreakingCheck("base", "base main", FILE),
        [gone],
        [waiver],
        lambda f: finding_element(f, "proto", schema),
    )

    assert check.passed and check.waived == [(gone, waiver)]


def test_a_finding_that_names_no_element_is_about_its_file(compile_files: Compile) -> None:
    schema = compile_files({"demo/v1/demo.proto": proto("message M {}")})
    finding = Finding(
        "proto/demo/v1/demo.proto", 3, 1, "FILE_SAME_GO_PACKAGE", 'File option "go_package" changed.'
    )

    assert finding_element(finding, "proto", schema) == "demo/v1/demo.proto"


def test_an_enum_value_the_schema_does_not_hold_is_named_by_its_enum(compile_files: Compile) -> None:
    schema = compile_files({"demo/v1/demo.proto": proto("enum E {\n  E_UNSPECIFIED = 0;\n}")})
    finding = Finding(
        "proto/demo/v1/demo.proto", 3, 1, "ENUM_VALUE_NO_DELETE", 'enum value "7" on enum "E" was deleted.'
    )

    assert finding_element(finding, "proto", schema) == "demo.v1.E"


def test_an_element_of_a_file_without_package_has_no_leading_dot(compile_files: Compile) -> None:
    schema = compile_files({"root.proto": 'syntax = "proto3";\n\nmessage M {\n  string a = 1;\n}\n'})
    finding = Finding(
        "proto/root.proto", 4, 3, "FIELD_SAME_TYPE", 'Field "1" with name "a" on message "M" changed type.'
    )

    assert finding_element(finding, "proto", schema) == "M.a"


def test_a_reserved_name_in_buf_s_sentence_names_the_value_no_schema_holds(compile_files: Compile) -> None:
    schema = compile_files({"demo/v1/demo.proto": proto("enum E {\n  E_UNSPECIFIED = 0;\n}")})
    message = 'enum value "1" on enum "E" was deleted without reserving the name "E_A".'
    finding = Finding("proto/demo/v1/demo.proto", 3, 1, "ENUM_VALUE_NO_DELETE_UNLESS_NAME_RESERVED", message)

    assert finding_element(finding, "proto", schema) == "demo.v1.E.E_A"


def test_a_finding_in_a_file_the_schema_does_not_hold_has_no_package(compile_files: Compile) -> None:
    schema = compile_files({"demo/v1/demo.proto": proto("message M {}")})
    finding = Finding(
        "proto/gone.proto", 4, 3, "FIELD_SAME_TYPE", 'Field "1" with name "a" on message "M" changed.'
    )

    assert finding_element(finding, "proto", schema) == "M.a"


def test_an_enum_value_is_named_only_by_a_schema_that_holds_it(compile_files: Compile) -> None:
    without = compile_files({"demo/v1/demo.proto": proto("message M {}")})
    holding = compile_files({"demo/v1/demo.proto": proto("enum E {\n  E_UNSPECIFIED = 0;\n  E_A = 1;\n}")})
    unreadable = dpb.FileDescriptorSet(
        file=[dpb.FileDescriptorProto(name="x.proto", dependency=["missing.proto"])]
    )

    assert _enum_value_name(holding, "demo.v1.E", 1) == "E_A"
    assert _enum_value_name(holding, "demo.v1.E", 7) is None
    assert _enum_value_name(without, "demo.v1.E", 1) is None
    assert _enum_value_name(unreadable, "demo.v1.E", 1) is None


def test_a_deleted_file_without_its_name_in_the_sentence_is_named_by_nothing(compile_files: Compile) -> None:
    schema = compile_files({"demo/v1/demo.proto": proto("message M {}")})

    assert finding_element(Finding("", 1, 1, "FILE_NO_DELETE", "a file was deleted."), "proto", schema) == ""


# --- waivers.toml ------------------------------------------------------------------------


def _layout_with(tmp_path: Path, text: str) -> RepoLayout:
    layout = RepoLayout(tmp_path)
    layout.waivers.write_text(text)
    return layout


def test_no_waivers_file_means_no_waivers(tmp_path: Path) -> None:
    assert load_waivers(RepoLayout(tmp_path)) == []


def test_waivers_are_read_with_their_scope_date_and_line(tmp_path: Path) -> None:
    layout = _layout_with(
        tmp_path,
        f'\n# intentional breaks\n[[waiver]]\nelement = "{STOCK}"\nreason = "r1"\n\n'
        f'[[waiver]]\nelement = "chat/v1/old.proto"\nrule = "FILE_NO_DELETE"\nagainst = "base"\n'
        'expires = 2027-06-30\nreason = "r2"\n',
    )

    assert load_waivers(layout) == [
        Waiver(STOCK, "r1", line=3),
        Waiver(
            "chat/v1/old.proto",
            "r2",
            rule="FILE_NO_DELETE",
            against="base",
            expires=datetime.date(2027, 6, 30),
            line=7,
        ),
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[[waiver]\n", "waivers.toml: "),
        ('[[waiver]]\nelement = "a.B"\n', "waivers.toml:1: waiver 1 lacks reason"),
        ('[[waiver]]\nelement = "a.B"\nreason = "  "\n', "waivers.toml:1: waiver 1 lacks reason"),
        ('[[waiver]]\nreason = "why"\n', "waivers.toml:1: waiver 1 lacks element"),
        ('[[waiver]]\nrule = "FIELD_SAME_TYPE"\n', "waivers.toml:1: waiver 1 lacks element, reason"),
        (
            '[[waiver]]\nelement = "a.B"\nreason = "r"\n\n'
            '[[waiver]]\nelement = "a.B"\nreason = "r"\nmatch = "x"\n',
            "waivers.toml:5: waiver 2 has unknown keys ['match'] (known: against, element, expires, reason, "
            "rule)",
        ),
        (
            '[[waiver]]\nelement = "a.B"\nreason = "r"\nrule = "FIELD_SAME_TYP"\n',
            "waivers.toml:1: waiver 1: rule",
        ),
        (
            '[[waiver]]\nelement = "a.B"\nreason = "r"\nexpires = "soon"\n',
            "waivers.toml:1: waiver 1: expires",
        ),
        ('[[waivers]]\nelement = "a.B"\nreason = "r"\n', "waivers.toml: unknown tables ['waivers']"),
    ],
    ids=[
        "malformed",
        "no-reason",
        "blank-reason",
        "no-element",
        "no-element-nor-reason",
        "unknown-key",
        "unknown-rule",
        "bad-date",
        "typo",
    ],
)
def test_a_malformed_waiver_file_is_refused_saying_where(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(WaiverError) as raised:
        load_waivers(_layout_with(tmp_path, text))
    assert str(raised.value).startswith(message), str(raised.value)


def test_a_rule_of_the_review_s_own_client_checks_is_known(tmp_path: Path) -> None:
    layout = _layout_with(tmp_path, '[[waiver]]\nelement = "a.B"\nrule = "LIMIT_TIGHTENED"\nreason = "r"\n')

    assert [w.rule for w in load_waivers(layout)] == ["LIMIT_TIGHTENED"]


def test_unused_expired_and_misdirected_waivers_fail_with_their_line(tmp_path: Path) -> None:
    layout = _layout_with(
        tmp_path,
        f'[[waiver]]\nelement = "{STOCK}"\nreason = "used"\n\n'
        '[[waiver]]\nelement = "chat.v1.Item.gone"\nreason = "matches nothing"\n\n'
        f'[[waiver]]\nelement = "{STOCK}"\nagainst = "9.9.9"\nreason = "no such release"\n\n'
        f'[[waiver]]\nelement = "{STOCK}"\nexpires = 2026-01-31\nreason = "too old"\n',
    )
    [used, *_] = load_waivers(layout)
    check = BreakingCheck("base", "base main", FILE, waived=[(RETYPED, used)])

    audit = check_waivers(layout, [check], today=datetime.date(2026, 2, 1))

    assert [(f.path, f.line, f.column, f.rule) for f in audit.findings] == [
        ("waivers.toml", 5, 1, "WAIVER_UNUSED"),
        ("waivers.toml", 9, 1, "WAIVER_UNKNOWN_RELEASE"),
        ("waivers.toml", 14, 1, "WAIVER_EXPIRED"),
    ]
    assert (audit.against, audit.label, audit.rules, audit.passed) == (
        "waivers",
        "waivers.toml",
        "WAIVERS",
        False,
    )
    assert [f.message for f in audit.findings] == [
        "waivers.toml:5: waiver for element chat.v1.Item.gone excuses no finding: delete it",
        "waivers.toml:9: waiver for element chat.v1.Item.stock, against 9.9.9 names release 9.9.9, "
        "which does not exist",
        "waivers.toml:14: waiver for element chat.v1.Item.stock expired on 2026-01-31: "
        "fix the break or renew it",
    ]


def test_a_used_waiver_for_the_base_that_has_not_expired_passes(tmp_path: Path) -> None:
    layout = _layout_with(
        tmp_path, f'[[waiver]]\nelement = "{STOCK}"\nagainst = "base"\nexpires = 2030-01-01\nreason = "r"\n'
    )
    [waiver] = load_waivers(layout)
    check = BreakingCheck("base", "base main", FILE, waived=[(RETYPED, waiver)])

    assert check_waivers(layout, [check], today=datetime.date(2030, 1, 1)).passed
    assert not check_waivers(layout, [check], today=datetime.date(2030, 1, 2)).passed


def test_a_waiver_says_its_whole_scope() -> None:
    waiver = Waiver(STOCK, "r", rule="FIELD_SAME_TYPE", against="1.0.0", line=7)

    assert (
        str(waiver)
        == "waivers.toml:7: waiver for element chat.v1.Item.stock, rule FIELD_SAME_TYPE, against 1.0.0"
    )
    assert str(Waiver(STOCK, "r", line=2)) == "waivers.toml:2: waiver for element chat.v1.Item.stock"


def test_a_release_may_be_written_with_a_v(tmp_path: Path) -> None:
    layout = _layout_with(tmp_path, '[[waiver]]\nelement = "a.B"\nagainst = "v1.0.0"\nreason = "r"\n')

    assert [w.against for w in load_waivers(layout)] == ["1.0.0"]


def test_waivers_written_as_an_inline_array_have_no_header_line(tmp_path: Path) -> None:
    layout = _layout_with(tmp_path, 'waiver = [{ element = "a.B", reason = "r" }]\n')

    assert [(w.element, w.line) for w in load_waivers(layout)] == [("a.B", 0)]


def test_a_waivers_file_without_waivers_means_no_waivers(tmp_path: Path) -> None:
    assert load_waivers(_layout_with(tmp_path, "# nothing waived yet\n")) == []


def test_the_readme_s_waivers_example_is_a_valid_waivers_file(tmp_path: Path) -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("### Waivers") :]
    example = section[section.index("```toml\n") + len("```toml\n") : section.index("```\n", 1)]

    waivers = load_waivers(_layout_with(tmp_path, example))

    assert [(w.element, w.rule, w.against, w.line) for w in waivers] == [
        ("chat.v1.User.avatar_url", "", "", 1),
        ("chat.v1.File.name", "LIMIT_TIGHTENED", "base", 5),
        ("chat/v1/legacy.proto", "", "", 12),
    ]
    assert waivers[1].expires == datetime.date(2027, 6, 30)
