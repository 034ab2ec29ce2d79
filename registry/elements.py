"""Which schema element a buf breaking finding is about: what a waiver names.

buf's findings carry a file, a line and a sentence; a deletion points at the parent
that lost the element, a deleted file has no path at all. The element is read from
the sentence's quoted names (``field "3" with name "avatar_url" on message "User"``
is ``chat.v1.User.avatar_url``), qualified with the package the finding's file had in
the schema checked against (a deleted message keeps its old full name); a
deleted enum value's name is looked up by its number. A finding that names no element
(a file option, the package) is about its file, named by its path below the module
(``chat/v1/common.proto``), as a deleted file is.
"""

from __future__ import annotations

import re

from google.protobuf import descriptor_pb2 as dpb

from registry.diff.schema import OptionReader
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


def _enum_value_name(image: dpb.FileDescriptorSet, enum: str, number: int) -> str | None:
    """The first name of ``number`` in the enum called ``enum`` (full name) of ``image``."""
    pool = OptionReader(image).pool
    if pool is None:
        return None  # an image no pool can hold names nothing
    try:
        value = pool.FindEnumTypeByName(enum).values_by_number.get(number)
    except KeyError:
        return None
    return str(value.name) if value is not None else None


def finding_element(finding: Finding, module_dir: str, against: dpb.FileDescriptorSet) -> str:
    """The full name of the element ``finding`` is about, or the path of the file (below the module).

    Every finding is about an element of ``against``, the schema checked against: its
    files give the package, its enums the name of a value buf names by number only.
    """
    if not finding.path:  # a deleted file
        deleted = _FILE.search(finding.message)
        return deleted["file"] if deleted else ""
    path = finding.path.removeprefix(f"{module_dir}/")
    package = next((f.package for f in against.file if f.name == path), "")
    if (found := _FIELD.search(finding.message) or _MEMBER.search(finding.message)) is not None:
        return f"{_qualify(package, found['parent'])}.{found['name']}"
    if (found := _ENUM_VALUE.search(finding.message)) is not None:
        enum = _qualify(package, found["parent"])
        reserved = _RESERVED_NAME.search(finding.message)
        name = reserved["name"] if reserved else _enum_value_name(against, enum, int(found["number"]))
        return f"{enum}.{name}" if name else enum
    if (found := _TYPE.search(finding.message)) is not None:
        return _qualify(package, found["name"])
    return path  # a finding about the file itself (its options, its package)
