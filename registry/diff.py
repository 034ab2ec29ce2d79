"""Comparing two compiled schemas: every change, where it is, and whom it breaks.

Both sides are ``FileDescriptorSet`` images (``buf build --as-file-descriptor-set``).
Only our own files are compared (those whose package is not ``google.*``); the
imported well-known types are used to resolve type names and nothing else.

Each :class:`Change` carries three verdicts, following protobuf's documented
compatibility rules for proto3:

* ``wire_breaking``: data written by one side's code is misread by the other's
  binary parser, or a number becomes free for reuse.
* ``json_breaking``: the same for the proto3 JSON mapping (field and enum value
  names, and each type's JSON representation).
* ``source_breaking``: code generated from the base schema no longer compiles or
  behaves the same against the head schema (names, types, imports).

Elements are matched across the two sides by full name; fields and enum values by
name and number together, then by name alone (a changed number), then by number
alone (a rename). A message, enum or service renamed shows up as removed plus
added. When a file's package changes, its types are matched under their new
names, so the one ``package_changed`` change stands for all of them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Generic, Literal, TypeVar

from google.protobuf import descriptor_pb2 as dpb
from google.protobuf.message import Message

Side = Literal["head", "base"]

# (wire, json, source) breaking
_Breaks = tuple[bool, bool, bool]
_SAFE: _Breaks = (False, False, False)
_WIRE: _Breaks = (True, False, False)
_JSON: _Breaks = (False, True, False)
_SOURCE: _Breaks = (False, False, True)
_JSON_SOURCE: _Breaks = (False, True, True)
_ALL: _Breaks = (True, True, True)


@dataclass(frozen=True)
class Change:
    """One difference between the base and the head schema."""

    element: str  # full proto name (``chat.v1.Message.content``), or the file path
    kind: str  # snake_case, e.g. ``field_type_changed``
    file: str  # the proto file holding the element, as named in the descriptor
    line: int  # 1-based line of the element in ``file`` on ``side``
    side: Side  # "base" for removed elements, else "head"
    wire_breaking: bool
    json_breaking: bool
    source_breaking: bool
    detail: str  # one sentence for a reviewer

    @property
    def safe(self) -> bool:
        """True when the change breaks neither the wire format, JSON, nor generated code."""
        return not (self.wire_breaking or self.json_breaking or self.source_breaking)

    @property
    def breaks(self) -> tuple[str, ...]:
        """The names of what the change breaks: a subset of ``("wire", "json", "source")``."""
        flags = (self.wire_breaking, self.json_breaking, self.source_breaking)
        return tuple(name for name, flag in zip(("wire", "json", "source"), flags, strict=True) if flag)

    def __str__(self) -> str:
        verdict = f"breaks {', '.join(self.breaks)}" if self.breaks else "safe"
        return f"{self.file}:{self.line}: {self.kind}: {self.detail} [{verdict}]"


def load_image(path: Path) -> dpb.FileDescriptorSet:
    """Read a ``buf build`` image (a serialized ``FileDescriptorSet``) from ``path``."""
    return dpb.FileDescriptorSet.FromString(path.read_bytes())


def diff_schemas(base: dpb.FileDescriptorSet, head: dpb.FileDescriptorSet) -> list[Change]:
    """Every change from ``base`` to ``head`` in our own files, sorted by file, line and element."""
    rename = _package_renames(base, head)
    differ = _Differ(_Schema(base, rename), _Schema(head, {}))
    differ.run()
    return sorted(differ.changes, key=lambda c: (c.file, c.line, c.element, c.kind, c.side))


# --- the two sides, indexed ---------------------------------------------------------

_P = TypeVar("_P", dpb.DescriptorProto, dpb.EnumDescriptorProto, dpb.ServiceDescriptorProto)


@dataclass(frozen=True)
class _Def(Generic[_P]):
    """A message, enum or service, and where it is defined."""

    proto: _P
    name: str  # full name as written on this side
    file: str
    path: tuple[int, ...]  # source_code_info path
    parent: str | None  # match key of the enclosing message, if nested


@dataclass(frozen=True)
class _Type:
    """A field's type, comparable across the two sides (``shown`` is only for messages)."""

    kind: str  # scalar name ("int32", "string", ...), "enum" or "message"
    ref: str = ""  # match key of the enum or message
    entry: tuple[_Type, _Type] | None = None  # (key, value) for a map field
    shown: str = field(default="", compare=False)

    def __str__(self) -> str:
        if self.entry is not None:
            return f"map<{self.entry[0]}, {self.entry[1]}>"
        return self.shown or self.kind


def _is_ours(package: str) -> bool:
    return package != "google" and not package.startswith("google.")


def _qualify(package: str, name: str) -> str:
    return f"{package}.{name}" if package else name


class _Schema:
    """One side's files, types and source locations, keyed by the names used for matching."""

    def __init__(self, image: dpb.FileDescriptorSet, rename: Mapping[str, str]) -> None:
        self.rename = rename
        self.files: dict[str, dpb.FileDescriptorProto] = {}
        self.ours: set[str] = set()
        self.messages: dict[str, _Def[dpb.DescriptorProto]] = {}
        self.enums: dict[str, _Def[dpb.EnumDescriptorProto]] = {}
        self.services: dict[str, _Def[dpb.ServiceDescriptorProto]] = {}
        self._locations: dict[str, dict[tuple[int, ...], dpb.SourceCodeInfo.Location]] = {}
        for file in image.file:
            self.files[file.name] = file
            if _is_ours(file.package):
                self.ours.add(file.name)
            locations: dict[tuple[int, ...], dpb.SourceCodeInfo.Location] = {}
            for location in file.source_code_info.location:
                locations.setdefault(tuple(location.path), location)
            self._locations[file.name] = locations
            for i, message in enumerate(file.message_type):
                self._add_message(file.name, message, _qualify(file.package, message.name), (4, i), None)
            for i, enum in enumerate(file.enum_type):
                self._add_enum(file.name, enum, _qualify(file.package, enum.name), (5, i), None)
            for i, service in enumerate(file.service):
                name = _qualify(file.package, service.name)
                self.services[self.key(name)] = _Def(service, name, file.name, (6, i), None)

    def _add_message(
        self, file: str, message: dpb.DescriptorProto, name: str, path: tuple[int, ...], parent: str | None
    ) -> None:
        key = self.key(name)
        self.messages[key] = _Def(message, name, file, path, parent)
        for j, nested in enumerate(message.nested_type):
            self._add_message(file, nested, f"{name}.{nested.name}", (*path, 3, j), key)
        for j, enum in enumerate(message.enum_type):
            self._add_enum(file, enum, f"{name}.{enum.name}", (*path, 4, j), key)

    def _add_enum(
        self, file: str, enum: dpb.EnumDescriptorProto, name: str, path: tuple[int, ...], parent: str | None
    ) -> None:
        self.enums[self.key(name)] = _Def(enum, name, file, path, parent)

    def key(self, full_name: str) -> str:
        """The name an element is matched by: base names follow a package rename."""
        return self.rename.get(full_name, full_name)

    def type_key(self, type_name: str) -> str:
        """The match key of a field's or method's (fully qualified, dotted) type name."""
        return self.key(type_name.removeprefix("."))

    def location(self, file: str, path: Sequence[int]) -> dpb.SourceCodeInfo.Location | None:
        return self._locations.get(file, {}).get(tuple(path))

    def line(self, file: str, path: Sequence[int]) -> int:
        """1-based line of the element at ``path``; 1 without source info."""
        location = self.location(file, path)
        return location.span[0] + 1 if location is not None and location.span else 1

    def comments(self, file: str, path: Sequence[int]) -> tuple[str, str]:
        location = self.location(file, path)
        if location is None:
            return ("", "")
        return (location.leading_comments.strip(), location.trailing_comments.strip())

    def field_type(self, fld: dpb.FieldDescriptorProto) -> _Type:
        """The type of ``fld``, with map fields resolved to their key and value types."""
        if fld.type == dpb.FieldDescriptorProto.TYPE_ENUM:
            return _Type("enum", self.type_key(fld.type_name), shown=fld.type_name.removeprefix("."))
        if fld.type in (dpb.FieldDescriptorProto.TYPE_MESSAGE, dpb.FieldDescriptorProto.TYPE_GROUP):
            key = self.type_key(fld.type_name)
            entry = self.messages.get(key)
            if (
                entry is not None
                and entry.proto.options.map_entry
                and fld.label == dpb.FieldDescriptorProto.LABEL_REPEATED
            ):
                fields = {f.name: f for f in entry.proto.field}
                return _Type("map", entry=(self.field_type(fields["key"]), self.field_type(fields["value"])))
            return _Type("message", key, shown=fld.type_name.removeprefix("."))
        return _Type(_SCALARS[fld.type])


def _type_names(file: dpb.FileDescriptorProto) -> list[str]:
    """Full names of every message, enum and service defined in ``file``."""
    names: list[str] = []

    def walk(messages: Iterable[dpb.DescriptorProto], prefix: str) -> None:
        for message in messages:
            name = _qualify(prefix, message.name)
            names.append(name)
            names.extend(f"{name}.{enum.name}" for enum in message.enum_type)
            walk(message.nested_type, name)

    walk(file.message_type, file.package)
    names.extend(_qualify(file.package, enum.name) for enum in file.enum_type)
    names.extend(_qualify(file.package, service.name) for service in file.service)
    return names


def _package_renames(base: dpb.FileDescriptorSet, head: dpb.FileDescriptorSet) -> dict[str, str]:
    """Base full name -> head full name of the types of every file whose package changed."""
    head_packages = {file.name: file.package for file in head.file}
    rename: dict[str, str] = {}
    for file in base.file:
        new = head_packages.get(file.name)
        if new is None or new == file.package or not _is_ours(file.package):
            continue
        for name in _type_names(file):
            relative = name[len(file.package) + 1 :] if file.package else name
            rename[name] = _qualify(new, relative)
    return rename


# --- field types: wire and JSON compatibility -----------------------------------------

_T = dpb.FieldDescriptorProto
_SCALARS: dict[int, str] = {
    _T.TYPE_DOUBLE: "double",
    _T.TYPE_FLOAT: "float",
    _T.TYPE_INT64: "int64",
    _T.TYPE_UINT64: "uint64",
    _T.TYPE_INT32: "int32",
    _T.TYPE_FIXED64: "fixed64",
    _T.TYPE_FIXED32: "fixed32",
    _T.TYPE_BOOL: "bool",
    _T.TYPE_STRING: "string",
    _T.TYPE_BYTES: "bytes",
    _T.TYPE_UINT32: "uint32",
    _T.TYPE_SFIXED32: "sfixed32",
    _T.TYPE_SFIXED64: "sfixed64",
    _T.TYPE_SINT32: "sint32",
    _T.TYPE_SINT64: "sint64",
}

# Types whose encodings the other parses (values out of range are truncated).
_WIRE_GROUPS: tuple[frozenset[str], ...] = (
    frozenset({"int32", "uint32", "int64", "uint64", "bool"}),
    frozenset({"sint32", "sint64"}),
    frozenset({"fixed32", "sfixed32"}),
    frozenset({"fixed64", "sfixed64"}),
    frozenset({"string", "bytes"}),  # as long as the bytes are valid UTF-8
    frozenset({"message", "bytes"}),  # as long as the bytes are an encoded message
)
# Enums are varints: compatible with these, and with each other.
_ENUM_WIRE = frozenset({"int32", "uint32", "int64", "uint64", "enum"})

# What the proto3 JSON mapping writes for each scalar. Signed and unsigned integers
# differ: one side's parser rejects the other's negative or too large values.
_JSON_FORMS: dict[str, str] = {
    "int32": "signed number",
    "sint32": "signed number",
    "sfixed32": "signed number",
    "uint32": "unsigned number",
    "fixed32": "unsigned number",
    "int64": "signed decimal string",
    "sint64": "signed decimal string",
    "sfixed64": "signed decimal string",
    "uint64": "unsigned decimal string",
    "fixed64": "unsigned decimal string",
    "float": "floating-point number",
    "double": "floating-point number",
    "bool": "boolean",
    "string": "string",
    "bytes": "base64 string",
}


def _wire_compatible(base: _Type, head: _Type) -> bool:
    if base == head:
        return True
    if base.entry is not None or head.entry is not None:
        if base.entry is None or head.entry is None:
            return False
        return all(_wire_compatible(b, h) for b, h in zip(base.entry, head.entry, strict=True))
    if "enum" in (base.kind, head.kind):
        return base.kind in _ENUM_WIRE and head.kind in _ENUM_WIRE
    if base.kind == head.kind == "message":
        return False  # another message type: its fields are read as this one's, treat as breaking
    return any(base.kind in group and head.kind in group for group in _WIRE_GROUPS)


def _json_compatible(base: _Type, head: _Type) -> bool:
    if base == head:
        return True
    if base.entry is not None or head.entry is not None:
        if base.entry is None or head.entry is None:
            return False
        return all(_json_compatible(b, h) for b, h in zip(base.entry, head.entry, strict=True))
    form = _JSON_FORMS.get(base.kind)
    return form is not None and form == _JSON_FORMS.get(head.kind)


# --- pairing fields and enum values ---------------------------------------------------


def _pair(
    base: Sequence[tuple[str, int]], head: Sequence[tuple[str, int]]
) -> tuple[list[tuple[int, int]], list[int], list[int]]:
    """Match (name, number) items: both equal, then same name, then same number.

    Returns the matched index pairs, and the unmatched base and head indexes.
    """
    pairs: list[tuple[int, int]] = []
    left_base, left_head = list(range(len(base))), list(range(len(head)))
    matchers: tuple[Callable[[tuple[str, int], tuple[str, int]], bool], ...] = (
        lambda b, h: b == h,
        lambda b, h: b[0] == h[0],
        lambda b, h: b[1] == h[1],
    )
    for matches in matchers:
        for i in list(left_base):
            for j in left_head:
                if matches(base[i], head[j]):
                    pairs.append((i, j))
                    left_base.remove(i)
                    left_head.remove(j)
                    break
    return pairs, left_base, left_head


def _in_ranges(number: int, ranges: Iterable[tuple[int, int]]) -> bool:
    """Whether ``number`` lies in one of the half-open ``ranges``."""
    return any(start <= number < end for start, end in ranges)


def _subtract(ranges: Iterable[tuple[int, int]], minus: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    """The parts of the half-open ``ranges`` not covered by ``minus``."""
    result = list(ranges)
    for cut_start, cut_end in minus:
        pieces: list[tuple[int, int]] = []
        for start, end in result:
            if cut_end <= start or end <= cut_start:
                pieces.append((start, end))
                continue
            if start < cut_start:
                pieces.append((start, cut_start))
            if cut_end < end:
                pieces.append((cut_end, end))
        result = pieces
    return result


def _message_reserved(message: dpb.DescriptorProto) -> list[tuple[int, int]]:
    return [(r.start, r.end) for r in message.reserved_range]  # end is exclusive


def _enum_reserved(enum: dpb.EnumDescriptorProto) -> list[tuple[int, int]]:
    return [(r.start, r.end + 1) for r in enum.reserved_range]  # end is inclusive


def _changed_options(base: Message, head: Message, ignore: Iterable[str] = ("deprecated",)) -> list[str]:
    """Names of the options that differ; custom options unknown here count as one."""
    skip = set(ignore)

    def known(options: Message) -> dict[str, object]:
        return {
            (f"({fd.full_name})" if fd.is_extension else fd.name): value
            for fd, value in options.ListFields()
            if fd.name not in skip
        }

    before, after = known(base), known(head)
    names = sorted(name for name in before.keys() | after.keys() if before.get(name) != after.get(name))
    if names:
        return names

    def stripped(options: Message) -> bytes:
        copy = type(options)()
        copy.CopyFrom(options)
        for name in skip:
            if name in copy.DESCRIPTOR.fields_by_name:
                copy.ClearField(name)
        return copy.SerializeToString(deterministic=True)

    return ["custom options"] if stripped(base) != stripped(head) else []


def _deprecated(options: Message) -> bool:
    return any(fd.name == "deprecated" and bool(value) for fd, value in options.ListFields())


_STREAMING = {
    (False, False): "unary",
    (True, False): "client streaming",
    (False, True): "server streaming",
    (True, True): "bidirectional streaming",
}


# --- the comparison -------------------------------------------------------------------


@dataclass(frozen=True)
class _At:
    """Where an element is on one side: its name, file and source path."""

    name: str
    file: str
    path: tuple[int, ...]


class _Differ:
    """Walks both sides and collects :class:`Change` records."""

    def __init__(self, base: _Schema, head: _Schema) -> None:
        self.base = base
        self.head = head
        self.changes: list[Change] = []

    def run(self) -> None:
        self._files()
        self._messages()
        self._enums()
        self._services()

    # recording

    def _add(self, kind: str, at: _At, side: Side, breaks: _Breaks, detail: str) -> None:
        schema = self.head if side == "head" else self.base
        wire, json, source = breaks
        self.changes.append(
            Change(at.name, kind, at.file, schema.line(at.file, at.path), side, wire, json, source, detail)
        )

    def _decoration(self, what: str, label: str, before: _At, after: _At, b: Message, h: Message) -> None:
        """Deprecation, other options and comments of an element on both sides."""
        was, now = _deprecated(b), _deprecated(h)
        if was != now:
            kind = f"{what}_deprecated" if now else f"{what}_undeprecated"
            self._add(kind, after, "head", _SAFE, f"{label} {'marked' if now else 'no longer'} deprecated")
        ignore: tuple[str, ...] = ("deprecated", "map_entry")
        if isinstance(b, dpb.MethodOptions) and isinstance(h, dpb.MethodOptions):
            ignore += ("idempotency_level",)
            if b.idempotency_level != h.idempotency_level:
                levels = dpb.MethodOptions.IdempotencyLevel
                detail = (
                    f"{label} changed idempotency_level from {levels.Name(b.idempotency_level)} to "
                    f"{levels.Name(h.idempotency_level)}: clients may retry it or send it as a GET "
                    "differently (buf's RPC_SAME_IDEMPOTENCY_LEVEL)"
                )
                self._add("method_idempotency_changed", after, "head", _WIRE, detail)
        options = _changed_options(b, h, ignore)
        if options:
            names = ", ".join(options)
            self._add("option_changed", after, "head", _SAFE, f"options of {label} changed: {names}")
        if self.base.comments(before.file, before.path) != self.head.comments(after.file, after.path):
            self._add("comment_changed", after, "head", _SAFE, f"comments of {label} changed")

    # files

    def _files(self) -> None:
        base, head = self.base, self.head
        for name in sorted(head.ours - base.files.keys()):
            self._add("file_added", _At(name, name, (2,)), "head", _SAFE, f"file `{name}` added")
        for name in sorted(base.ours - head.files.keys()):
            self._add("file_removed", _At(name, name, (2,)), "base", _SOURCE, f"file `{name}` removed")
        for name in sorted(base.ours & head.ours):
            before, after = base.files[name], head.files[name]
            at = _At(name, name, (2,))
            if before.package != after.package:
                detail = (
                    f"package changed from `{before.package}` to `{after.package}`; "
                    "every type in the file gets a new full name"
                )
                self._add("package_changed", at, "head", _ALL, detail)
            self._decoration("file", f"file `{name}`", at, at, before.options, after.options)

    # messages and fields

    def _messages(self) -> None:
        base, head = self.base, self.head
        for key, after in head.messages.items():
            if after.file not in head.ours or after.proto.options.map_entry:
                continue
            before = base.messages.get(key)
            at = _At(after.name, after.file, after.path)
            if before is None:
                if after.parent is None or after.parent in base.messages:
                    self._add("message_added", at, "head", _SAFE, f"message `{after.name}` added")
                continue
            self._moved("message", before, after)
            self._decoration(
                "message",
                f"message `{after.name}`",
                _At(before.name, before.file, before.path),
                at,
                before.proto.options,
                after.proto.options,
            )
            self._message_body(before, after)
        for key, gone in base.messages.items():
            if gone.file not in base.ours or gone.proto.options.map_entry or key in head.messages:
                continue
            if gone.parent is None or gone.parent in head.messages:
                at = _At(gone.name, gone.file, gone.path)
                self._add("message_removed", at, "base", _SOURCE, f"message `{gone.name}` removed")

    def _moved(
        self,
        what: str,
        before: _Def[dpb.DescriptorProto] | _Def[dpb.EnumDescriptorProto] | _Def[dpb.ServiceDescriptorProto],
        after: _Def[dpb.DescriptorProto] | _Def[dpb.EnumDescriptorProto] | _Def[dpb.ServiceDescriptorProto],
    ) -> None:
        """A top-level type that moved to another file: generated imports change."""
        if after.parent is None and before.file != after.file:
            detail = f"{what} `{after.name}` moved from `{before.file}` to `{after.file}`"
            self._add(f"{what}_moved", _At(after.name, after.file, after.path), "head", _SOURCE, detail)

    def _message_body(self, before: _Def[dpb.DescriptorProto], after: _Def[dpb.DescriptorProto]) -> None:
        b, h = before.proto, after.proto
        b_oneofs, h_oneofs = _real_oneofs(b), _real_oneofs(h)
        for name, k in h_oneofs.items():
            at = _At(f"{after.name}.{name}", after.file, (*after.path, 8, k))
            if name not in b_oneofs:
                self._add("oneof_added", at, "head", _SAFE, f"oneof `{name}` added to `{after.name}`")
                continue
            i = b_oneofs[name]
            label = f"oneof `{name}`"
            was = _At(f"{before.name}.{name}", before.file, (*before.path, 8, i))
            self._decoration("oneof", label, was, at, b.oneof_decl[i].options, h.oneof_decl[k].options)
        for name, i in b_oneofs.items():
            if name not in h_oneofs:
                at = _At(f"{before.name}.{name}", before.file, (*before.path, 8, i))
                self._add(
                    "oneof_removed", at, "base", _SOURCE, f"oneof `{name}` removed from `{before.name}`"
                )

        pairs, removed, added = _pair(
            [(f.name, f.number) for f in b.field], [(f.name, f.number) for f in h.field]
        )
        for j in added:
            fld = h.field[j]
            presence = "optional " if fld.proto3_optional else ""
            at = _At(f"{after.name}.{fld.name}", after.file, (*after.path, 2, j))
            detail = f"{presence}field `{fld.name}` ({fld.number}, {self.head.field_type(fld)}) added"
            self._add("field_added", at, "head", _SAFE, detail)

        h_numbers, h_names = _message_reserved(h), set(h.reserved_name)
        for i in removed:
            fld = b.field[i]
            at = _At(f"{before.name}.{fld.name}", before.file, (*before.path, 2, i))
            number_kept = _in_ranges(fld.number, h_numbers)
            name_kept = fld.name in h_names
            if number_kept and name_kept:
                detail = f"field `{fld.name}` ({fld.number}) removed; its number and name are reserved"
                self._add("field_removed_reserved", at, "base", _SOURCE, detail)
            else:
                missing = " and ".join(
                    what for what, kept in (("number", number_kept), ("name", name_kept)) if not kept
                )
                detail = f"field `{fld.name}` ({fld.number}) removed without reserving its {missing}"
                self._add("field_removed_unreserved", at, "base", (not number_kept, True, True), detail)

        self._reserved_added(
            before,
            after,
            new_ranges=_subtract(_message_reserved(h), _message_reserved(b)),
            new_names=set(h.reserved_name) - set(b.reserved_name),
            removed=[(b.field[i].name, b.field[i].number) for i in removed],
            paths=(9, 10),
        )

        # Which matched fields share a oneof, on each side: moving fields in or out
        # of a oneof is only wire-safe when no field gains or loses a oneof sibling.
        b_oneof_of = [_oneof_name(b, b.field[i]) for i, _ in pairs]
        h_oneof_of = [_oneof_name(h, h.field[j]) for _, j in pairs]
        for p, (i, j) in enumerate(pairs):
            bf, hf = b.field[i], h.field[j]
            at = _At(f"{after.name}.{hf.name}", after.file, (*after.path, 2, j))
            was = _At(f"{before.name}.{bf.name}", before.file, (*before.path, 2, i))
            self._field(bf, hf, at, was)
            b_oneof, h_oneof = b_oneof_of[p], h_oneof_of[p]
            if b_oneof == h_oneof:
                continue
            b_siblings = {q for q, name in enumerate(b_oneof_of) if q != p and b_oneof and name == b_oneof}
            h_siblings = {q for q, name in enumerate(h_oneof_of) if q != p and h_oneof and name == h_oneof}
            gained = [h.field[pairs[q][1]].name for q in sorted(h_siblings - b_siblings)]
            lost = [b.field[pairs[q][0]].name for q in sorted(b_siblings - h_siblings)]
            self._oneof_move(hf, at, b_oneof, h_oneof, gained, lost)

    def _oneof_move(
        self,
        fld: dpb.FieldDescriptorProto,
        at: _At,
        b_oneof: str | None,
        h_oneof: str | None,
        gained: list[str],
        lost: list[str],
    ) -> None:
        """A field changed oneof; ``gained``/``lost``: matched fields it now does/no longer exclude."""
        label = f"field `{fld.name}` ({fld.number})"
        if b_oneof is None:
            kind, detail = "field_moved_into_oneof", f"{label} moved into oneof `{h_oneof}`"
        elif h_oneof is None:
            kind, detail = "field_moved_out_of_oneof", f"{label} moved out of oneof `{b_oneof}`"
        else:
            kind, detail = "field_oneof_changed", f"{label} moved from oneof `{b_oneof}` to `{h_oneof}`"
        if gained:
            others = ", ".join(f"`{name}`" for name in gained)
            detail += f", now exclusive with {others}: data that sets both loses one"
        if lost:
            others = ", ".join(f"`{name}`" for name in lost)
            detail += f", no longer exclusive with {others}: old readers keep only one of them"
        if not (gained or lost):
            # Binary-compatible by protobuf's own rules, but buf's WIRE rules reject
            # every oneof membership change (FIELD_SAME_ONEOF), and so does our check.
            detail += "; buf's wire rules reject any oneof change (FIELD_SAME_ONEOF)"
        self._add(kind, at, "head", _ALL, detail)

    def _field(self, bf: dpb.FieldDescriptorProto, hf: dpb.FieldDescriptorProto, at: _At, was: _At) -> None:
        label = f"field `{hf.name}` ({hf.number})"
        if bf.name != hf.name:
            same_json = bf.json_name == hf.json_name
            json_note = (
                f"its JSON name stays `{hf.json_name}`"
                if same_json
                else f"its JSON name changes from `{bf.json_name}` to `{hf.json_name}`"
            )
            detail = f"field {hf.number} renamed from `{bf.name}` to `{hf.name}`; {json_note}"
            # ProtoJSON parsers accept the proto field name as well as the JSON name,
            # so JSON that spells the old name no longer parses either way.
            self._add("field_renamed", at, "head", _JSON_SOURCE, detail)
        elif bf.json_name != hf.json_name:
            detail = f"{label} changed its JSON name from `{bf.json_name}` to `{hf.json_name}`"
            self._add("field_json_name_changed", at, "head", _JSON, detail)
        if bf.number != hf.number:
            detail = f"field `{hf.name}` changed number from {bf.number} to {hf.number}"
            self._add("field_number_changed", at, "head", _WIRE, detail)
        b_type, h_type = self.base.field_type(bf), self.head.field_type(hf)
        if b_type != h_type:
            breaks = (not _wire_compatible(b_type, h_type), not _json_compatible(b_type, h_type), True)
            detail = f"{label} changed type from {b_type} to {h_type}"
            self._add("field_type_changed", at, "head", breaks, detail)
        # A map field is repeated on the wire; to or from a map is a type change only.
        b_repeated = bf.label == dpb.FieldDescriptorProto.LABEL_REPEATED
        h_repeated = hf.label == dpb.FieldDescriptorProto.LABEL_REPEATED
        if b_repeated != h_repeated and b_type.entry is None and h_type.entry is None:
            shape = ("singular", "repeated") if h_repeated else ("repeated", "singular")
            detail = f"{label} changed from {shape[0]} to {shape[1]}"
            self._add("field_label_changed", at, "head", _ALL, detail)
        if bf.proto3_optional != hf.proto3_optional:
            change = "gained" if hf.proto3_optional else "lost"
            detail = f"{label} {change} explicit presence (`optional`): generated has-methods change"
            self._add("field_presence_changed", at, "head", _SOURCE, detail)
        self._decoration("field", label, was, at, bf.options, hf.options)

    def _reserved_added(
        self,
        before: _Def[dpb.DescriptorProto] | _Def[dpb.EnumDescriptorProto],
        after: _Def[dpb.DescriptorProto] | _Def[dpb.EnumDescriptorProto],
        *,
        new_ranges: list[tuple[int, int]],
        new_names: set[str],
        removed: list[tuple[str, int]],
        paths: tuple[int, int],
    ) -> None:
        """Report reservations that do not just cover an element removed in the same change."""
        removed_numbers = [number for _, number in removed]
        removed_names = {name for name, _ in removed}
        ranges = [r for r in new_ranges if not any(_in_ranges(n, [r]) for n in removed_numbers)]
        names = sorted(new_names - removed_names)
        if not ranges and not names:
            return
        shown = [str(s) if e == s + 1 else f"{s} to {e - 1}" for s, e in ranges] + [f'"{n}"' for n in names]
        if ranges:
            # Point at the reserved range that holds the first newly reserved number.
            first = next(
                k
                for k, (start, end) in enumerate(_reserved_pairs(after.proto))
                if start < ranges[0][1] and ranges[0][0] < end
            )
            path = (*after.path, paths[0], first)
        else:
            path = (*after.path, paths[1], list(after.proto.reserved_name).index(names[0]))
        detail = f"`{after.name}` now reserves {', '.join(shown)}"
        self._add("reserved_added", _At(after.name, after.file, path), "head", _SAFE, detail)

    # enums

    def _enums(self) -> None:
        base, head = self.base, self.head
        for key, after in head.enums.items():
            if after.file not in head.ours:
                continue
            before = base.enums.get(key)
            at = _At(after.name, after.file, after.path)
            if before is None:
                if after.parent is None or after.parent in base.messages:
                    self._add("enum_added", at, "head", _SAFE, f"enum `{after.name}` added")
                continue
            self._moved("enum", before, after)
            was = _At(before.name, before.file, before.path)
            label = f"enum `{after.name}`"
            self._decoration("enum", label, was, at, before.proto.options, after.proto.options)
            self._enum_body(before, after)
        for key, gone in base.enums.items():
            if gone.file not in base.ours or key in head.enums:
                continue
            if gone.parent is None or gone.parent in head.messages:
                at = _At(gone.name, gone.file, gone.path)
                self._add("enum_removed", at, "base", _SOURCE, f"enum `{gone.name}` removed")

    def _enum_body(self, before: _Def[dpb.EnumDescriptorProto], after: _Def[dpb.EnumDescriptorProto]) -> None:
        b, h = before.proto, after.proto
        pairs, removed, added = _pair(
            [(v.name, v.number) for v in b.value], [(v.name, v.number) for v in h.value]
        )
        for j in added:
            value = h.value[j]
            at = _At(f"{after.name}.{value.name}", after.file, (*after.path, 2, j))
            self._add(
                "enum_value_added", at, "head", _SAFE, f"enum value `{value.name}` ({value.number}) added"
            )
        h_numbers, h_names = _enum_reserved(h), set(h.reserved_name)
        for i in removed:
            value = b.value[i]
            at = _At(f"{before.name}.{value.name}", before.file, (*before.path, 2, i))
            number_kept = _in_ranges(value.number, h_numbers)
            name_kept = value.name in h_names
            if number_kept and name_kept:
                detail = (
                    f"enum value `{value.name}` ({value.number}) removed; its number and name are reserved"
                )
                self._add("enum_value_removed_reserved", at, "base", _SOURCE, detail)
            else:
                missing = " and ".join(
                    what for what, kept in (("number", number_kept), ("name", name_kept)) if not kept
                )
                detail = (
                    f"enum value `{value.name}` ({value.number}) removed without reserving its {missing}; "
                    "JSON holding its name no longer parses"
                )
                self._add("enum_value_removed_unreserved", at, "base", (not number_kept, True, True), detail)
        self._reserved_added(
            before,
            after,
            new_ranges=_subtract(_enum_reserved(h), _enum_reserved(b)),
            new_names=set(h.reserved_name) - set(b.reserved_name),
            removed=[(b.value[i].name, b.value[i].number) for i in removed],
            paths=(4, 5),
        )
        for i, j in pairs:
            bv, hv = b.value[i], h.value[j]
            at = _At(f"{after.name}.{hv.name}", after.file, (*after.path, 2, j))
            was = _At(f"{before.name}.{bv.name}", before.file, (*before.path, 2, i))
            if bv.name != hv.name:
                detail = f"enum value {hv.number} renamed from `{bv.name}` to `{hv.name}`"
                self._add("enum_value_renamed", at, "head", _JSON_SOURCE, detail)
            if bv.number != hv.number:
                detail = f"enum value `{hv.name}` changed number from {bv.number} to {hv.number}"
                self._add("enum_value_number_changed", at, "head", _WIRE, detail)
            label = f"enum value `{hv.name}` ({hv.number})"
            self._decoration("enum_value", label, was, at, bv.options, hv.options)

    # services and methods

    def _services(self) -> None:
        base, head = self.base, self.head
        for key, after in head.services.items():
            if after.file not in head.ours:
                continue
            before = base.services.get(key)
            at = _At(after.name, after.file, after.path)
            if before is None:
                self._add("service_added", at, "head", _SAFE, f"service `{after.name}` added")
                continue
            self._moved("service", before, after)
            was = _At(before.name, before.file, before.path)
            label = f"service `{after.name}`"
            self._decoration("service", label, was, at, before.proto.options, after.proto.options)
            self._methods(before, after)
        for key, gone in base.services.items():
            if gone.file not in base.ours or key in head.services:
                continue
            detail = f"service `{gone.name}` removed: its callers get UNIMPLEMENTED"
            self._add("service_removed", _At(gone.name, gone.file, gone.path), "base", _ALL, detail)

    def _methods(
        self, before: _Def[dpb.ServiceDescriptorProto], after: _Def[dpb.ServiceDescriptorProto]
    ) -> None:
        b_methods = {m.name: (i, m) for i, m in enumerate(before.proto.method)}
        h_methods = {m.name: (j, m) for j, m in enumerate(after.proto.method)}
        for name, (j, hm) in h_methods.items():
            at = _At(f"{after.name}.{name}", after.file, (*after.path, 2, j))
            if name not in b_methods:
                self._add("method_added", at, "head", _SAFE, f"method `{name}` added to `{after.name}`")
                continue
            i, bm = b_methods[name]
            was = _At(f"{before.name}.{name}", before.file, (*before.path, 2, i))
            label = f"method `{name}`"
            if self.base.type_key(bm.input_type) != self.head.type_key(hm.input_type):
                old, new = bm.input_type.removeprefix("."), hm.input_type.removeprefix(".")
                detail = f"{label} now takes `{new}` instead of `{old}`"
                self._add("method_input_changed", at, "head", _ALL, detail)
            if self.base.type_key(bm.output_type) != self.head.type_key(hm.output_type):
                old, new = bm.output_type.removeprefix("."), hm.output_type.removeprefix(".")
                detail = f"{label} now returns `{new}` instead of `{old}`"
                self._add("method_output_changed", at, "head", _ALL, detail)
            b_stream = (bm.client_streaming, bm.server_streaming)
            h_stream = (hm.client_streaming, hm.server_streaming)
            if b_stream != h_stream:
                detail = f"{label} changed from {_STREAMING[b_stream]} to {_STREAMING[h_stream]}"
                self._add("method_streaming_changed", at, "head", _ALL, detail)
            self._decoration("method", label, was, at, bm.options, hm.options)
        for name, (i, _) in b_methods.items():
            if name not in h_methods:
                at = _At(f"{before.name}.{name}", before.file, (*before.path, 2, i))
                detail = f"method `{name}` removed from `{before.name}`: its callers get UNIMPLEMENTED"
                self._add("method_removed", at, "base", _ALL, detail)


def _real_oneofs(message: dpb.DescriptorProto) -> dict[str, int]:
    """Oneof name -> index, leaving out the synthetic oneofs of proto3 ``optional`` fields."""
    synthetic = {f.oneof_index for f in message.field if f.proto3_optional}
    return {o.name: k for k, o in enumerate(message.oneof_decl) if k not in synthetic}


def _oneof_name(message: dpb.DescriptorProto, fld: dpb.FieldDescriptorProto) -> str | None:
    """The real oneof ``fld`` belongs to, if any."""
    if not fld.HasField("oneof_index") or fld.proto3_optional:
        return None
    return message.oneof_decl[fld.oneof_index].name


def _reserved_pairs(proto: dpb.DescriptorProto | dpb.EnumDescriptorProto) -> list[tuple[int, int]]:
    if isinstance(proto, dpb.DescriptorProto):
        return _message_reserved(proto)
    return _enum_reserved(proto)
