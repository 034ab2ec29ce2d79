"""Breaking checks: which findings fail, which a waiver excuses, and which retire a field properly."""

from __future__ import annotations

from pathlib import Path

import pytest
from google.protobuf import descriptor_pb2

from registry.breaking import (
    CLIENTS,
    FILE,
    WIRE_JSON,
    BreakingCheck,
    _buf_breaking,
    _excuse,
    _retired_properly,
    check_base,
    check_clients,
    check_releases,
)
from registry.buf import BufError, run_buf
from registry.diff import Change, diff_schemas
from registry.layout import RepoLayout
from registry.lint import Finding
from registry.waivers import Waiver

from ..conftest import copy_repo

COMMON = "proto/chat/v1/common.proto"
DELETED = 'Previously present field "4" with name "nickname" on message "{message}" was deleted.'


NICKNAME = "chat.v1.User.nickname"


def _nickname(finding: Finding) -> str:
    return NICKNAME


def _deleted(message: str = "User", rule: str = "FIELD_NO_DELETE") -> Finding:
    return Finding(COMMON, 7, 1, rule, DELETED.format(message=message))


def _image(
    *, deprecated: bool = True, reserved: tuple[int, int] | None = (4, 5), name_reserved: bool = True
) -> tuple[descriptor_pb2.FileDescriptorSet, descriptor_pb2.FileDescriptorSet]:
    """A base where User (and User.Inner) has field 4 ``nickname``, and a head where it is deleted."""
    base, head = descriptor_pb2.FileDescriptorSet(), descriptor_pb2.FileDescriptorSet()
    for image, present in ((base, True), (head, False)):
        file = image.file.add(name="chat/v1/common.proto", package="chat.v1")
        user = file.message_type.add(name="User")
        inner = user.nested_type.add(name="Inner")
        for message in (user, inner):
            message.field.add(name="user_id", number=1)
            if present:
                field = message.field.add(name="nickname", number=4)
                field.options.deprecated = deprecated
            else:
                if reserved is not None:
                    message.reserved_range.add(start=reserved[0], end=reserved[1])
                if name_reserved:
                    message.reserved_name.append("nickname")
    return base, head


@pytest.mark.parametrize("message", ["User", "User.Inner"])
def test_a_deprecated_field_deleted_with_number_and_name_reserved_is_retired_properly(message: str) -> None:
    reason = _retired_properly(_deleted(message), *_image())
    assert reason == (
        f"field {message}.nickname (4) was deprecated and is now deleted with its number and name reserved"
    )


@pytest.mark.parametrize(
    ("finding", "image"),
    [
        (_deleted(), _image(deprecated=False)),
        (_deleted(), _image(reserved=None)),
        (_deleted(), _image(reserved=(5, 6))),
        (_deleted(), _image(reserved=(3, 4))),
        (_deleted(), _image(name_reserved=False)),
        (_deleted(rule="FIELD_SAME_TYPE"), _image()),
        (_deleted(message="Nope"), _image()),
        (Finding(COMMON, 7, 1, "FIELD_NO_DELETE", "something else was deleted"), _image()),
        (
            Finding("proto/chat/v1/other.proto", 7, 1, "FIELD_NO_DELETE", DELETED.format(message="User")),
            _image(),
        ),
    ],
    ids=[
        "not-deprecated",
        "number-free",
        "other-number-reserved",
        "range-ends-before-it",
        "name-free",
        "other-rule",
        "unknown-message",
        "unparsed-message",
        "other-file",
    ],
)
def test_anything_short_of_the_documented_retirement_is_not_excused(
    finding: Finding, image: tuple[descriptor_pb2.FileDescriptorSet, descriptor_pb2.FileDescriptorSet]
) -> None:
    assert _retired_properly(finding, *image) is None


def test_a_field_missing_from_the_base_is_not_a_retirement() -> None:
    base, head = _image()
    del base.file[0].message_type[0].field[1]  # User had no field 4 in the base
    assert _retired_properly(_deleted(), base, head) is None


def test_findings_are_split_into_failing_waived_and_permitted() -> None:
    base, head = _image()
    retyped = Finding(COMMON, 3, 3, "FIELD_SAME_TYPE", "changed type")
    renamed = Finding(COMMON, 5, 3, "FIELD_SAME_NAME", "changed name")
    waiver = Waiver("chat.v1.User.user_id", "never used", against="base")
    elements = {retyped: "chat.v1.User.user_id", renamed: "chat.v1.User.name", _deleted(): NICKNAME}
    check = _excuse(
        BreakingCheck("base", "base main", FILE),
        [retyped, renamed, _deleted()],
        [waiver],
        elements.__getitem__,
        base,
        head,
    )
    assert check.findings == [renamed]
    assert check.waived == [(retyped, waiver)]
    assert [finding for finding, _ in check.permitted] == [_deleted()]
    assert not check.passed
    assert BreakingCheck("base", "base main", FILE).passed


def test_without_the_base_and_head_a_deletion_is_never_permitted() -> None:
    check = _excuse(BreakingCheck("1.0.0", "release 1.0.0", WIRE_JSON), [_deleted()], [], _nickname)
    assert check.findings == [_deleted()] and check.permitted == []


def test_a_waiver_for_another_release_does_not_excuse_this_one() -> None:
    waiver = Waiver(NICKNAME, "gone", against="1.1.0")
    check = _excuse(BreakingCheck("1.0.0", "release 1.0.0", WIRE_JSON), [_deleted()], [waiver], _nickname)
    assert check.findings == [_deleted()] and check.waived == []


def test_the_working_schema_passes_wire_checks_against_every_release_oldest_first(repo: RepoLayout) -> None:
    checks = check_releases(repo)
    assert [(c.against, c.label, c.rules) for c in checks][:2] == [
        ("1.0.0", "release 1.0.0", WIRE_JSON),
        ("1.1.0", "release 1.1.0", WIRE_JSON),
    ]
    assert all(check.passed for check in checks)


def test_a_retyped_field_fails_the_source_check_against_the_base(tmp_path: Path) -> None:
    layout = copy_repo(tmp_path / "repo", with_generated=False)
    base = descriptor_pb2.FileDescriptorSet.FromString(
        (layout.releases_dir / "1.1.0" / "schema.binpb").read_bytes()
    )
    proto = layout.proto_dir / "chat" / "v1" / "common.proto"
    proto.write_text(proto.read_text().replace("string avatar_url = 3;", "int64 avatar_url = 3;"))
    check = check_base(layout, "base main", base, base)
    assert (check.against, check.label, check.rules) == ("base", "base main", FILE)
    assert {f.rule for f in check.findings} >= {"FIELD_SAME_TYPE"}
    assert all(f.path == COMMON for f in check.findings)


def test_buf_failing_for_another_reason_is_an_error_not_a_pass(repo: RepoLayout, tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.binpb"
    garbage.write_bytes(b"not an image")
    with pytest.raises(BufError, match="buf breaking failed with exit code"):
        _buf_breaking(repo, garbage, WIRE_JSON)


def _build(layout: RepoLayout, into: Path) -> descriptor_pb2.FileDescriptorSet:
    run_buf(["build", "--as-file-descriptor-set", "--output", str(into)], cwd=layout.root)
    return descriptor_pb2.FileDescriptorSet.FromString(into.read_bytes())


def _edit(layout: RepoLayout, file: str, old: str, new: str) -> None:
    proto = layout.proto_dir / "chat" / "v1" / file
    text = proto.read_text()
    assert old in text, old
    proto.write_text(text.replace(old, new, 1))


def test_a_removed_rpc_passes_the_wire_checks_but_not_the_source_check(tmp_path: Path) -> None:
    layout = copy_repo(tmp_path / "repo", with_generated=False)
    base = _build(layout, tmp_path / "base.binpb")
    _edit(
        layout,
        "message_service.proto",
        "  rpc EditMessage(EditMessageRequest) returns (EditMessageResponse) {\n"
        "    option (google.api.http) = {\n"
        '      patch: "/v1/messages/{message_id}"\n'
        '      body: "*"\n'
        "    };\n"
        "  }\n",
        "",
    )
    assert all(check.passed for check in check_releases(layout)), "WIRE_JSON says nothing about services"
    source = check_base(layout, "base main", base, base)
    assert [f.rule for f in source.findings] == ["RPC_NO_DELETE"]


def test_one_waiver_of_the_element_excuses_its_change_in_both_checks(tmp_path: Path) -> None:
    layout = copy_repo(tmp_path / "repo", with_generated=False)
    base = _build(layout, tmp_path / "base.binpb")
    _edit(layout, "common.proto", "  string avatar_url = 3;", "  int64 avatar_url = 3;")
    head = _build(layout, tmp_path / "head.binpb")
    layout.waivers.write_text('[[waiver]]\nelement = "chat.v1.User.avatar_url"\nreason = "never filled in"\n')
    for check in [*check_releases(layout), check_base(layout, "base main", base, head)]:
        assert check.passed, check.findings
        assert {f.rule for f, _ in check.waived} <= {"FIELD_WIRE_JSON_COMPATIBLE_TYPE", "FIELD_SAME_TYPE"}
        assert check.waived and all(w.reason == "never filled in" for _, w in check.waived)


def test_the_source_check_permits_a_field_deprecated_in_the_base_and_now_retired(tmp_path: Path) -> None:
    layout = copy_repo(tmp_path / "repo", with_generated=False)
    _edit(layout, "common.proto", "  string avatar_url = 3;", "  string avatar_url = 3 [deprecated = true];")
    base = _build(layout, tmp_path / "base.binpb")
    _edit(
        layout,
        "common.proto",
        "  // avatar_url is where the user's picture is served. Output only.\n"
        "  // Format: absolute https URL; empty means the user has no picture.\n"
        "  string avatar_url = 3 [deprecated = true];\n",
        '  reserved 3;\n  reserved "avatar_url";\n',
    )
    head = _build(layout, tmp_path / "head.binpb")
    check = check_base(layout, "base main", base, head)
    assert check.passed, check.findings
    assert [(f.rule, reason) for f, reason in check.permitted] == [
        (
            "FIELD_NO_DELETE",
            "field User.avatar_url (3) was deprecated and is now deleted with its number and name reserved",
        )
    ]


def test_a_message_gone_from_the_head_is_not_a_retirement() -> None:
    base, head = _image()
    del head.file[0].message_type[:]
    assert _retired_properly(_deleted(), base, head) is None


def test_with_only_one_side_known_a_deletion_is_never_permitted() -> None:
    base, head = _image()
    for sides in ((base, None), (None, head)):
        check = _excuse(BreakingCheck("base", "base main", FILE), [_deleted()], [], _nickname, *sides)
        assert check.findings == [_deleted()] and check.permitted == []


def test_a_tightened_limit_and_a_changed_route_fail_the_clients_check_and_a_loosened_limit_does_not(
    tmp_path: Path,
) -> None:
    layout = copy_repo(tmp_path / "repo", with_generated=False)
    base = _build(layout, tmp_path / "base.binpb")
    _edit(
        layout,
        "common.proto",
        "string name = 2 [(buf.validate.field).string.max_len = 255];",
        "string name = 2 [(buf.validate.field).string.max_len = 100];",
    )
    _edit(
        layout,
        "common.proto",
        "string url = 5 [(buf.validate.field).string.max_len = 2048];",
        "string url = 5 [(buf.validate.field).string.max_len = 4096];",
    )
    _edit(
        layout,
        "message_service.proto",
        'patch: "/v1/messages/{message_id}"',
        'put: "/v1/messages/{message_id}"',
    )
    changes = diff_schemas(base, _build(layout, tmp_path / "head.binpb"))
    assert {c.kind for c in changes} >= {"limit_tightened", "limit_loosened", "http_route_changed"}
    check = check_clients(layout, "base main", changes)
    assert (check.against, check.label, check.rules, check.passed) == ("base", "base main", CLIENTS, False)
    assert [(f.rule, f.path, f.column) for f in check.findings] == [
        ("LIMIT_TIGHTENED", COMMON, 1),
        ("HTTP_ROUTE_CHANGED", "proto/chat/v1/message_service.proto", 1),
    ]
    limit, route = check.findings
    assert limit.message.startswith("chat.v1.File.name: ") and "255" in limit.message
    assert route.message.startswith("chat.v1.MessageService.EditMessage: ")
    lines = (layout.proto_dir / "chat" / "v1" / "common.proto").read_text().splitlines()
    assert "string name = 2" in lines[limit.line - 1]


def _client_change(kind: str, element: str, line: int, *, breaking: bool = True) -> Change:
    return Change(
        element, kind, "chat/v1/common.proto", line, "head", False, False, False, f"{kind} here", breaking
    )


def test_a_waiver_excuses_a_clients_finding_and_only_the_one_it_names(tmp_path: Path) -> None:
    layout = RepoLayout(tmp_path)
    layout.waivers.write_text(
        '[[waiver]]\nrule = "LIMIT_TIGHTENED"\nelement = "chat.v1.File.name"\n'
        'reason = "no client sends names that long"\n'
    )
    named = _client_change("limit_tightened", "chat.v1.File.name", 32)
    other = _client_change("limit_tightened", "chat.v1.File.url", 41)
    check = check_clients(layout, "base main", [named, other])
    excused = Finding(COMMON, 32, 1, "LIMIT_TIGHTENED", "chat.v1.File.name: limit_tightened here")
    assert [(finding, waiver.reason) for finding, waiver in check.waived] == [
        (excused, "no client sends names that long")
    ]
    assert check.findings == [
        Finding(COMMON, 41, 1, "LIMIT_TIGHTENED", "chat.v1.File.url: limit_tightened here")
    ]


def test_no_client_breaking_change_passes_the_clients_check(tmp_path: Path) -> None:
    loosened = _client_change("limit_loosened", "chat.v1.File.url", 41, breaking=False)
    check = check_clients(RepoLayout(tmp_path), "base main", [loosened])
    assert check.passed and not (check.findings or check.waived or check.permitted)


def test_a_deleted_enum_value_is_named_from_the_schema_it_was_deleted_from(tmp_path: Path) -> None:
    layout = copy_repo(tmp_path / "repo", with_generated=False)
    base = _build(layout, tmp_path / "base.binpb")
    _edit(
        layout,
        "message_service.proto",
        "  // PRESENCE_STATE_LEFT means the user left, or their chat stream ended.\n"
        "  PRESENCE_STATE_LEFT = 2;\n",
        '  reserved "PRESENCE_STATE_LEFT";\n',
    )
    head = _build(layout, tmp_path / "head.binpb")

    # buf names the deleted value by its number only: the name comes from the release or the base.
    checks = [*check_releases(layout), check_base(layout, "base main", base, head)]

    found = [(c.against, f.rule, c.elements[f]) for c in checks for f in c.findings if "ENUM_VALUE" in f.rule]
    assert {against for against, _, _ in found} == {c.against for c in checks}
    assert {rule for _, rule, _ in found} == {
        "ENUM_VALUE_NO_DELETE",
        "ENUM_VALUE_NO_DELETE_UNLESS_NUMBER_RESERVED",
    }
    assert {element for _, _, element in found} == {"chat.v1.PresenceState.PRESENCE_STATE_LEFT"}


def test_a_deleted_message_is_named_as_the_base_held_it(tmp_path: Path) -> None:
    layout = RepoLayout(tmp_path)
    (tmp_path / "buf.yaml").write_text("version: v2\nmodules:\n  - path: proto\n")
    source = layout.proto_dir / "demo" / "v1" / "demo.proto"
    source.parent.mkdir(parents=True)
    source.write_text('syntax = "proto3";\n\npackage demo.v1;\n\nmessage M {}\n\nmessage N {}\n')
    base = _build(layout, tmp_path / "base.binpb")
    source.write_text('syntax = "proto3";\n\npackage demo.v1;\n\nmessage M {}\n')

    check = check_base(layout, "base main", base, _build(layout, tmp_path / "head.binpb"))

    assert list(check.elements.values()) == ["demo.v1.N"]
