"""Which schema element a buf breaking finding is about: what a waiver names.

buf's findings carry a file, a line and a sentence; a deletion points at the parent
that lost the element, a deleted file has no path at all. The element is read from
the sentence's quoted names (``field "3" with name "avatar_url" on message "User"``
is ``chat.v1.User.avatar_url``), qualified with the package of the finding's file;
otherwise it is the innermost element whose source span holds the finding's place.
A deleted file is its path below the module (``chat/v1/old.proto``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from google.protobuf import descriptor_pb2 as dpb

from registry.lint import Finding

_FIELD = re.compile(r'[Ff]ield "\d+" with name "(?P<name>\w+)" on message "(?P<parent>[\w.]+)"')
_ENUM_VALUE = re.compile(r'[Ee]num value "(?P<number>-?\d+)" on enum "(?P<parent>[\w.]+)"')
_MEMBER = re.compile(
    r'(?:RPC|[Oo]neof|[Ee]xtension) "(?P<name>\w+)" on (?:service|message) "(?P<parent>[\w.]+)"'
)
_TYPE = re.compile(r'(?:[Mm]essage|[Ee]num|[Ss]ervice|[Ee]xtension) "(?P<name>[\w.]+)"')
_FILE = re.compile(r'[Ff]ile "(?P<file>[^"]+)"')
_RESERVED_NAME = re.compile(r'reserving the name "(?P<name>\w+)"')


def _qualify(package: str, name: str) -> str:
    return f"{package}.{name}" if package else name


def _enum_value_name(images: tuple[dpb.FileDescriptorSet, ...], enum: str, number: int) -> str | None:
    """The first name of ``number`` in the enum called ``enum`` (full name), on either side."""
    for image in images:
        for file in image.file:
            for name, found in _enums(file):
                if name == enum:
                    value = next((v.name for v in found.value if v.number == number), None)
                    if value is not None:
                        return value
    return None


def _enums(file: dpb.FileDescriptorProto) -> Iterator[tuple[str, dpb.EnumDescriptorProto]]:
    def walk(
        messages: list[dpb.DescriptorProto], prefix: str
    ) -> Iterator[tuple[str, dpb.EnumDescriptorProto]]:
        for message in messages:
            name = _qualify(prefix, message.name)
            yield from ((f"{name}.{enum.name}", enum) for enum in message.enum_type)
            yield from walk(list(message.nested_type), name)

    yield from ((_qualify(file.package, enum.name), enum) for enum in file.enum_type)
    yield from walk(list(file.message_type), file.package)


def _spans(file: dpb.FileDescriptorProto) -> Iterator[tuple[tuple[int, int, int, int], str]]:
    """(start line, start column, end line, end column) -> full name, for every named element."""
    names: dict[tuple[int, ...], str] = {}

    def message(path: tuple[int, ...], proto: dpb.DescriptorProto, name: str) -> None:
        names[path] = name
        for i, fld in enumerate(proto.field):
            names[(*path, 2, i)] = f"{name}.{fld.name}"
        for i, oneof in enumerate(proto.oneof_decl):
            names[(*path, 8, i)] = f"{name}.{oneof.name}"
        for i, nested in enumerate(proto.nested_type):
            message((*path, 3, i), nested, f"{name}.{nested.name}")
        for i, enum in enumerate(proto.enum_type):
            enumeration((*path, 4, i), enum, f"{name}.{enum.name}")

    def enumeration(path: tuple[int, ...], proto: dpb.EnumDescriptorProto, name: str) -> None:
        names[path] = name
        for i, value in enumerate(proto.value):
            names[(*path, 2, i)] = f"{name}.{value.name}"

    for i, proto in enumerate(file.message_type):
        message((4, i), proto, _qualify(file.package, proto.name))
    for i, enum in enumerate(file.enum_type):
        enumeration((5, i), enum, _qualify(file.package, enum.name))
    for i, service in enumerate(file.service):
        names[(6, i)] = _qualify(file.package, service.name)
        for j, method in enumerate(service.method):
            names[(6, i, 2, j)] = f"{names[(6, i)]}.{method.name}"
    for location in file.source_code_info.location:
        name = names.get(tuple(location.path))
        if name is not None and location.span:
            span = list(location.span)
            end = (span[2], span[3]) if len(span) == 4 else (span[0], span[2])
            yield (span[0] + 1, span[1] + 1, end[0] + 1, end[1] + 1), name


def _innermost(file: dpb.FileDescriptorProto, line: int, column: int) -> str | None:
    best: tuple[int, str] | None = None
    for (l1, c1, l2, c2), name in _spans(file):
        if (l1, c1) <= (line, column) <= (l2, c2) and (best is None or len(name) > best[0]):
            best = (len(name), name)
    return best[1] if best else None


def finding_element(
    finding: Finding,
    module_dir: str,
    head: dpb.FileDescriptorSet,
    against: dpb.FileDescriptorSet | None = None,
) -> str:
    """The full name of the element ``finding`` is about, or the path of the file (below the module)."""
    path = finding.path.removeprefix(f"{module_dir}/")
    file_match = _FILE.search(finding.message)
    if not finding.path and file_match is not None:
        return file_match["file"]
    file = next((f for f in head.file if f.name == path), None)
    package = file.package if file is not None else ""
    images = tuple(image for image in (against, head) if image is not None)
    if (found := _FIELD.search(finding.message)) is not None:
        return f"{_qualify(package, found['parent'])}.{found['name']}"
    if (found := _ENUM_VALUE.search(finding.message)) is not None:
        enum = _qualify(package, found["parent"])
        reserved = _RESERVED_NAME.search(finding.message)
        name = reserved["name"] if reserved else _enum_value_name(images, enum, int(found["number"]))
        return f"{enum}.{name}" if name else enum
    if (found := _MEMBER.search(finding.message)) is not None:
        return f"{_qualify(package, found['parent'])}.{found['name']}"
    if (found := _TYPE.search(finding.message)) is not None:
        return _qualify(package, found["name"])
    if file is not None:
        inner = _innermost(file, finding.line, finding.column)
        if inner is not None:
            return inner
    return path or (file_match["file"] if file_match else "")
