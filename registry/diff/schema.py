"""One side of a comparison: a compiled schema indexed by the names elements are matched by."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from google.protobuf import descriptor_pb2 as dpb
from google.protobuf import descriptor_pool, message_factory
from google.protobuf.message import DecodeError, Message

from registry.diff.types import SCALARS, FieldType

# Vendored third-party packages: used to resolve names, never compared.
_THIRD_PARTY = ("google", "buf")

P = TypeVar(
    "P", dpb.DescriptorProto, dpb.EnumDescriptorProto, dpb.ServiceDescriptorProto, dpb.FieldDescriptorProto
)


@dataclass(frozen=True)
class Def(Generic[P]):
    """A message, enum, service or extension, and where it is defined."""

    proto: P
    name: str  # full name as written on this side
    file: str
    path: tuple[int, ...]  # source_code_info path
    parent: str | None  # match key of the enclosing message, if nested


@dataclass(frozen=True)
class At:
    """Where an element is on one side: its name, file and source path."""

    name: str
    file: str
    path: tuple[int, ...]


def is_ours(package: str) -> bool:
    """True for the registry's own packages, False for vendored and well-known ones."""
    return package.split(".", 1)[0] not in _THIRD_PARTY


def qualify(package: str, name: str) -> str:
    """``package.name``, or ``name`` in the root package."""
    return f"{package}.{name}" if package else name


class OptionReader:
    """Reads options with every custom option the schema itself declares (``buf.validate``, ``google.api``).

    The image holds the imported files, so a pool built from it knows their
    extensions; without such imports, extensions stay unknown bytes.
    """

    def __init__(self, image: dpb.FileDescriptorSet) -> None:
        self._pool = descriptor_pool.DescriptorPool()
        self._ok = True
        try:
            for file in image.file:
                self._pool.Add(file)
        except (TypeError, ValueError):
            self._ok = False  # an image this pool cannot hold: fall back to the standard options

    @property
    def pool(self) -> descriptor_pool.DescriptorPool | None:
        """The pool holding every file of the image, or None when the image did not fit one."""
        return self._pool if self._ok else None

    def fields(self, options: Message) -> dict[str, object]:
        """Option name (``(full.name)`` for an extension) -> value, for every option set."""
        parsed = self._parse(options)
        return {
            (f"({fd.full_name})" if fd.is_extension else fd.name): value for fd, value in parsed.ListFields()
        }

    def extension(self, options: Message, name: str) -> Message | None:
        """The value of the message-typed extension ``name`` in ``options``, or None when unset."""
        value = self.fields(options).get(f"({name})")
        return value if isinstance(value, Message) else None

    def _parse(self, options: Message) -> Message:
        if not self._ok:
            return _standard_only(options)
        try:
            descriptor = self._pool.FindMessageTypeByName(options.DESCRIPTOR.full_name)
        except KeyError:
            return _standard_only(options)  # descriptor.proto is not imported: no custom options
        try:
            return message_factory.GetMessageClass(descriptor).FromString(options.SerializeToString())
        except DecodeError:
            return _standard_only(options)


# descriptor.proto alone, in a pool of its own: options parsed with it know no extension,
# whatever the process has imported (a generated module registers its extensions in the
# default pool, and the image, not the process, must decide what the review sees).
_STANDARD = descriptor_pool.DescriptorPool()
_STANDARD.Add(dpb.FileDescriptorProto.FromString(dpb.DESCRIPTOR.serialized_pb))


def _standard_only(options: Message) -> Message:
    """``options`` with every extension left as unknown bytes."""
    descriptor = _STANDARD.FindMessageTypeByName(options.DESCRIPTOR.full_name)
    return message_factory.GetMessageClass(descriptor).FromString(options.SerializeToString())


class Schema:
    """One side's files, types and source locations, keyed by the names used for matching."""

    def __init__(self, image: dpb.FileDescriptorSet, rename: Mapping[str, str]) -> None:
        self.rename = rename
        self.options = OptionReader(image)
        self.files: dict[str, dpb.FileDescriptorProto] = {}
        self.ours: set[str] = set()
        self.messages: dict[str, Def[dpb.DescriptorProto]] = {}
        self.enums: dict[str, Def[dpb.EnumDescriptorProto]] = {}
        self.services: dict[str, Def[dpb.ServiceDescriptorProto]] = {}
        self.extensions: list[Def[dpb.FieldDescriptorProto]] = []
        self._locations: dict[str, dict[tuple[int, ...], dpb.SourceCodeInfo.Location]] = {}
        for file in image.file:
            self.files[file.name] = file
            if is_ours(file.package):
                self.ours.add(file.name)
            locations: dict[tuple[int, ...], dpb.SourceCodeInfo.Location] = {}
            for location in file.source_code_info.location:
                locations.setdefault(tuple(location.path), location)
            self._locations[file.name] = locations
            for i, message in enumerate(file.message_type):
                self._add_message(file.name, message, qualify(file.package, message.name), (4, i), None)
            for i, enum in enumerate(file.enum_type):
                name = qualify(file.package, enum.name)
                self.enums[self.key(name)] = Def(enum, name, file.name, (5, i), None)
            for i, service in enumerate(file.service):
                name = qualify(file.package, service.name)
                self.services[self.key(name)] = Def(service, name, file.name, (6, i), None)
            for i, ext in enumerate(file.extension):
                self.extensions.append(Def(ext, qualify(file.package, ext.name), file.name, (7, i), None))

    def _add_message(
        self, file: str, message: dpb.DescriptorProto, name: str, path: tuple[int, ...], parent: str | None
    ) -> None:
        key = self.key(name)
        self.messages[key] = Def(message, name, file, path, parent)
        for j, nested in enumerate(message.nested_type):
            self._add_message(file, nested, f"{name}.{nested.name}", (*path, 3, j), key)
        for j, enum in enumerate(message.enum_type):
            self.enums[self.key(f"{name}.{enum.name}")] = Def(
                enum, f"{name}.{enum.name}", file, (*path, 4, j), key
            )
        for j, ext in enumerate(message.extension):
            self.extensions.append(Def(ext, f"{name}.{ext.name}", file, (*path, 6, j), key))

    def key(self, full_name: str) -> str:
        """The name an element is matched by: base names follow a package rename."""
        return self.rename.get(full_name, full_name)

    def type_key(self, type_name: str) -> str:
        """The match key of a field's or method's (fully qualified, dotted) type name."""
        return self.key(type_name.removeprefix("."))

    def location(self, file: str, path: Sequence[int]) -> dpb.SourceCodeInfo.Location | None:
        """The source location of the element at ``path`` of ``file``, if recorded."""
        return self._locations.get(file, {}).get(tuple(path))

    def line(self, file: str, path: Sequence[int]) -> int:
        """1-based line of the element at ``path``; 1 without source info."""
        location = self.location(file, path)
        return location.span[0] + 1 if location is not None and location.span else 1

    def comments(self, file: str, path: Sequence[int]) -> tuple[str, str]:
        """The leading and trailing comments of the element at ``path``."""
        location = self.location(file, path)
        if location is None:
            return ("", "")
        return (location.leading_comments.strip(), location.trailing_comments.strip())

    def has_presence(self, full_name: str, fld: dpb.FieldDescriptorProto) -> bool:
        """Whether the field named ``full_name`` tracks presence, as the protobuf runtime resolves it.

        The runtime applies the file's syntax or edition and every ``features.field_presence``
        that applies; without a pool, proto3's rules are assumed.
        """
        pool = self.options.pool
        if pool is not None:
            try:
                return bool(pool.FindFieldByName(full_name).has_presence)
            except KeyError:
                pass
        if fld.label == dpb.FieldDescriptorProto.LABEL_REPEATED:
            return False
        return fld.proto3_optional or fld.HasField("oneof_index") or fld.type == fld.TYPE_MESSAGE

    def default(self, full_name: str, fld: dpb.FieldDescriptorProto) -> object:
        """The value an unset field ``full_name`` reads (without a pool: its declared default, as text)."""
        pool = self.options.pool
        if pool is not None and fld.label != dpb.FieldDescriptorProto.LABEL_REPEATED:
            try:
                value: object = pool.FindFieldByName(full_name).default_value
                return value
            except KeyError:
                pass
        return fld.default_value

    def enum_closed(self, full_name: str) -> bool | None:
        """Whether the enum named ``full_name`` is closed (None when no pool can tell)."""
        pool = self.options.pool
        if pool is None:
            return None
        try:
            return bool(pool.FindEnumTypeByName(full_name).is_closed)
        except KeyError:
            return None

    def field_type(self, fld: dpb.FieldDescriptorProto) -> FieldType:
        """The type of ``fld``, with map fields resolved to their key and value types."""
        if fld.type == dpb.FieldDescriptorProto.TYPE_ENUM:
            return FieldType("enum", self.type_key(fld.type_name), shown=fld.type_name.removeprefix("."))
        if fld.type in (dpb.FieldDescriptorProto.TYPE_MESSAGE, dpb.FieldDescriptorProto.TYPE_GROUP):
            key = self.type_key(fld.type_name)
            entry = self.messages.get(key)
            if (
                entry is not None
                and entry.proto.options.map_entry
                and fld.label == dpb.FieldDescriptorProto.LABEL_REPEATED
            ):
                fields = {f.name: f for f in entry.proto.field}
                return FieldType(
                    "map", entry=(self.field_type(fields["key"]), self.field_type(fields["value"]))
                )
            return FieldType("message", key, shown=fld.type_name.removeprefix("."))
        return FieldType(SCALARS[fld.type])

    def entry_shape(self, fld: dpb.FieldDescriptorProto) -> FieldType | None:
        """A ``repeated XEntry`` field as the map it encodes like (key = 1, value = 2), else None."""
        if (
            fld.label != dpb.FieldDescriptorProto.LABEL_REPEATED
            or fld.type != dpb.FieldDescriptorProto.TYPE_MESSAGE
        ):
            return None
        message = self.messages.get(self.type_key(fld.type_name))
        if message is None or message.proto.options.map_entry:
            return None
        fields = {f.number: f for f in message.proto.field}
        if set(fields) != {1, 2} or any(
            f.label == dpb.FieldDescriptorProto.LABEL_REPEATED for f in fields.values()
        ):
            return None
        return FieldType("map", entry=(self.field_type(fields[1]), self.field_type(fields[2])))


def type_names(file: dpb.FileDescriptorProto) -> list[str]:
    """Full names of every message, enum, service and extension defined in ``file``."""
    names: list[str] = []

    def walk(messages: Iterable[dpb.DescriptorProto], prefix: str) -> None:
        for message in messages:
            name = qualify(prefix, message.name)
            names.append(name)
            names.extend(f"{name}.{enum.name}" for enum in message.enum_type)
            names.extend(f"{name}.{ext.name}" for ext in message.extension)
            walk(message.nested_type, name)

    walk(file.message_type, file.package)
    names.extend(qualify(file.package, enum.name) for enum in file.enum_type)
    names.extend(qualify(file.package, service.name) for service in file.service)
    names.extend(qualify(file.package, ext.name) for ext in file.extension)
    return names


def package_renames(base: dpb.FileDescriptorSet, head: dpb.FileDescriptorSet) -> dict[str, str]:
    """Base full name -> head full name of the types of every file whose package changed."""
    head_packages = {file.name: file.package for file in head.file}
    rename: dict[str, str] = {}
    for file in base.file:
        new = head_packages.get(file.name)
        if new is None or new == file.package or not is_ours(file.package):
            continue
        for name in type_names(file):
            relative = name[len(file.package) + 1 :] if file.package else name
            rename[name] = qualify(new, relative)
    return rename
