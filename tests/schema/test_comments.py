"""The README's comment rules, checked on every element of the schema's own files (package chat.*).

buf's COMMENTS rules only ask that a comment exists. The README asks more: the first
sentence starts with the element's name (``// SendMessages stores ...``), and every
field's comment carries exactly one behaviour label, ``Required.``, ``Optional.`` or
``Output only.``. Vendored files (other packages) keep their own conventions.
"""

from __future__ import annotations

import re
from pathlib import Path

from google.protobuf import descriptor_pb2

from registry.buf import run_buf
from registry.layout import RepoLayout

LABELS = ("Required.", "Optional.", "Output only.")
# Field numbers of the descriptor messages, as SourceCodeInfo paths use them.
FILE_MESSAGE, FILE_ENUM, FILE_SERVICE = 4, 5, 6
MESSAGE_FIELD, MESSAGE_NESTED, MESSAGE_ENUM = 2, 3, 4
ENUM_VALUE, SERVICE_METHOD = 2, 2


def build_image(layout: RepoLayout, into: Path) -> descriptor_pb2.FileDescriptorSet:
    """The module as ``buf build`` compiles it, comments included."""
    image = into / "image.binpb"
    run_buf(["build", "--as-file-descriptor-set", "--output", str(image)], cwd=layout.root)
    return descriptor_pb2.FileDescriptorSet.FromString(image.read_bytes())


def comment_problems(image: descriptor_pb2.FileDescriptorSet) -> list[str]:
    """Every element of a chat.* file whose leading comment breaks a rule, as ``file: kind name: why``."""
    problems: list[str] = []
    for file in image.file:
        if file.package.startswith("chat."):
            problems += _FileComments(file).problems()
    return problems


class _FileComments:
    """The comment rules applied to one file's elements, in declaration order."""

    def __init__(self, file: descriptor_pb2.FileDescriptorProto) -> None:
        self.file = file
        self.comments = {tuple(loc.path): loc.leading_comments for loc in file.source_code_info.location}
        self.found: list[str] = []

    def problems(self) -> list[str]:
        for i, message in enumerate(self.file.message_type):
            self.message(message, [FILE_MESSAGE, i])
        for i, enum in enumerate(self.file.enum_type):
            self.enum(enum, [FILE_ENUM, i])
        for i, service in enumerate(self.file.service):
            self.check([FILE_SERVICE, i], "service", service.name)
            for j, method in enumerate(service.method):
                self.check([FILE_SERVICE, i, SERVICE_METHOD, j], "rpc", method.name)
        return self.found

    def check(self, path: list[int], kind: str, name: str, *, field: bool = False) -> None:
        text = " ".join(self.comments.get(tuple(path), "").split())
        where = f"{self.file.name}: {kind} {name}"
        if not text:
            self.found.append(f"{where}: no leading comment")
            return
        if not re.match(re.escape(name) + r"(?![\w])", text):
            self.found.append(f"{where}: the first sentence does not start with {name!r}")
        labels = [label for label in LABELS if label in text]
        if field and len(labels) != 1:
            self.found.append(f"{where}: needs exactly one of {', '.join(LABELS)} (has {labels or 'none'})")

    def message(self, proto: descriptor_pb2.DescriptorProto, path: list[int]) -> None:
        if proto.options.map_entry:
            return  # written by the compiler for a map field: nothing to comment
        self.check(path, "message", proto.name)
        for i, field in enumerate(proto.field):
            self.check([*path, MESSAGE_FIELD, i], "field", field.name, field=True)
        for i, nested in enumerate(proto.nested_type):
            self.message(nested, [*path, MESSAGE_NESTED, i])
        for i, enum in enumerate(proto.enum_type):
            self.enum(enum, [*path, MESSAGE_ENUM, i])

    def enum(self, proto: descriptor_pb2.EnumDescriptorProto, path: list[int]) -> None:
        self.check(path, "enum", proto.name)
        for i, value in enumerate(proto.value):
            self.check([*path, ENUM_VALUE, i], "enum value", value.name)


def test_every_element_follows_the_comment_rules(repo: RepoLayout, tmp_path: Path) -> None:
    image = build_image(repo, tmp_path)
    assert any(file.package.startswith("chat.") for file in image.file)
    assert comment_problems(image) == []


def test_the_rules_catch_a_missing_comment_a_wrong_name_and_a_missing_or_second_label(
    scratch_repo: RepoLayout, tmp_path: Path
) -> None:
    proto = scratch_repo.proto_dir / "chat" / "v1" / "common.proto"
    text = proto.read_text()
    planted = {
        "  // avatar_url is where the user's picture is served. Output only.\n": (
            "  // avatar_url is where the user's picture is served. Output only. Optional.\n"
        ),
        "// User is ": "// A user is ",
    }
    for old, new in planted.items():
        assert old in text, old
        text = text.replace(old, new, 1)
    proto.write_text(text)
    problems = comment_problems(build_image(scratch_repo, tmp_path))
    assert (
        "chat/v1/common.proto: field avatar_url: needs exactly one of Required., Optional., Output only. "
        "(has ['Optional.', 'Output only.'])" in problems
    )
    assert "chat/v1/common.proto: message User: the first sentence does not start with 'User'" in problems
    assert len(problems) == 2, problems


def test_a_field_without_a_label_or_comment_is_reported(tmp_path: Path) -> None:
    image = descriptor_pb2.FileDescriptorSet()
    file = image.file.add(name="chat/v1/x.proto", package="chat.v1")
    file.message_type.add(name="Thing").field.add(name="size", number=1)
    file.enum_type.add(name="Kind").value.add(name="KIND_UNSPECIFIED", number=0)
    file.service.add(name="ThingService").method.add(name="GetThing")
    location = file.source_code_info.location
    location.add(path=[FILE_MESSAGE, 0], leading_comments=" Thing is a thing.\n")
    location.add(path=[FILE_MESSAGE, 0, MESSAGE_FIELD, 0], leading_comments=" size is its size in bytes.\n")
    vendored = image.file.add(name="buf/validate/validate.proto", package="buf.validate")
    vendored.message_type.add(name="Uncommented")
    assert comment_problems(image) == [
        "chat/v1/x.proto: field size: needs exactly one of Required., Optional., Output only. (has none)",
        "chat/v1/x.proto: enum Kind: no leading comment",
        "chat/v1/x.proto: enum value KIND_UNSPECIFIED: no leading comment",
        "chat/v1/x.proto: service ThingService: no leading comment",
        "chat/v1/x.proto: rpc GetThing: no leading comment",
    ]
