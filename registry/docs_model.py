"""The API reference's view of a schema image: services, methods, messages, fields and enums with comments.

Read from a ``FileDescriptorSet`` that carries source info (every image of this repository
does), so the reference shows exactly the comments buf lint requires.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum

from google.protobuf import descriptor_pb2

# Paths into FileDescriptorProto / DescriptorProto / ServiceDescriptorProto / EnumDescriptorProto.
_MESSAGE, _ENUM, _SERVICE = 4, 5, 6
_FIELD, _NESTED_MESSAGE, _NESTED_ENUM = 2, 3, 4
_METHOD, _ENUM_VALUE = 2, 2
_LABELS = ("Required.", "Optional.", "Output only.")
_SCALARS = {
    value: name.removeprefix("TYPE_").lower()
    for name, value in descriptor_pb2.FieldDescriptorProto.Type.items()
    if name not in ("TYPE_MESSAGE", "TYPE_ENUM", "TYPE_GROUP")
}


class StreamingKind(StrEnum):
    """How many messages each side of a method sends."""

    UNARY = "unary"
    SERVER = "server streaming"
    CLIENT = "client streaming"
    BIDI = "bidirectional streaming"


@dataclass(frozen=True)
class Field:
    """One field of a message, as the reference shows it."""

    name: str
    json_name: str
    number: int
    type_name: str  # `string`, `repeated chat.v1.File`, `map<string, string>`
    link: str | None  # full name of the message or enum type, when it is one
    comment: str
    behaviour: str  # `Required.`, `Optional.`, `Output only.` or empty
    oneof: str | None
    deprecated: bool


@dataclass(frozen=True)
class EnumValue:
    """One value of an enum."""

    name: str
    number: int
    comment: str


@dataclass(frozen=True)
class Enum:
    """An enum and its values."""

    full_name: str
    comment: str
    values: tuple[EnumValue, ...]


@dataclass(frozen=True)
class Message:
    """A message and its fields."""

    full_name: str
    comment: str
    fields: tuple[Field, ...]
    deprecated: bool


@dataclass(frozen=True)
class Method:
    """One RPC."""

    name: str
    comment: str
    input: str
    output: str
    kind: StreamingKind
    read_only: bool


@dataclass(frozen=True)
class Service:
    """A service and its methods."""

    full_name: str
    comment: str
    methods: tuple[Method, ...]

    @property
    def name(self) -> str:
        """The service's short name (``MessageService``)."""
        return self.full_name.rsplit(".", 1)[-1]


@dataclass(frozen=True)
class Schema:
    """Everything of one schema version the reference documents (the schema's own files only)."""

    package_comment: str
    services: tuple[Service, ...]
    messages: tuple[Message, ...]
    enums: tuple[Enum, ...]

    def type_names(self) -> frozenset[str]:
        """Full names of every message and enum documented (link targets)."""
        return frozenset(m.full_name for m in self.messages) | frozenset(e.full_name for e in self.enums)


def behaviour_label(comment: str) -> str:
    """The googleapis behaviour label a field comment carries (``Required.``...), or empty."""
    for label in _LABELS:
        if re.search(rf"(^|\s){re.escape(label)}(\s|$)", comment):
            return label
    return ""


def streaming_kind(method: descriptor_pb2.MethodDescriptorProto) -> StreamingKind:
    """The method's streaming kind from its descriptor."""
    if method.client_streaming and method.server_streaming:
        return StreamingKind.BIDI
    if method.client_streaming:
        return StreamingKind.CLIENT
    if method.server_streaming:
        return StreamingKind.SERVER
    return StreamingKind.UNARY


def _clean(comment: str) -> str:
    """A comment as written: without the space protoc keeps after each ``//``."""
    return "\n".join(line.removeprefix(" ") for line in comment.strip("\n").splitlines()).strip()


class _Comments:
    """Leading comments of one file by element path."""

    def __init__(self, file: descriptor_pb2.FileDescriptorProto) -> None:
        self._by_path = {
            tuple(location.path): _clean(location.leading_comments)
            for location in file.source_code_info.location
            if location.leading_comments
        }
        detached = [
            _clean(comment)
            for location in file.source_code_info.location
            if tuple(location.path) == (2,)  # the `package` statement
            for comment in [location.leading_comments, *location.leading_detached_comments]
            if comment
        ]
        self.package = "\n\n".join(detached)

    def at(self, *path: int) -> str:
        return self._by_path.get(path, "")


def load_schema(image: descriptor_pb2.FileDescriptorSet) -> Schema:
    """The documented view of ``image``'s own files (well-known and vendored types are only referenced)."""
    own = [file for file in image.file if file.package.startswith("chat.")]
    maps = {
        name: nested
        for file in image.file
        for message in file.message_type
        for name, nested in _nested(f"{file.package}.{message.name}", message)
        if nested.options.map_entry
    }
    services: list[Service] = []
    messages: list[Message] = []
    enums: list[Enum] = []
    package_comment = ""
    for file in own:
        comments = _Comments(file)
        package_comment = package_comment or comments.package
        for index, service in enumerate(file.service):
            services.append(_service(file.package, service, comments, (_SERVICE, index)))
        for index, message in enumerate(file.message_type):
            _collect_message(
                f"{file.package}.{message.name}", message, comments, (_MESSAGE, index), maps, messages, enums
            )
        for index, enum in enumerate(file.enum_type):
            enums.append(_enum(f"{file.package}.{enum.name}", enum, comments, (_ENUM, index)))
    return Schema(
        package_comment,
        tuple(sorted(services, key=lambda s: s.full_name)),
        tuple(sorted(messages, key=lambda m: m.full_name)),
        tuple(sorted(enums, key=lambda e: e.full_name)),
    )


def _nested(
    full_name: str, message: descriptor_pb2.DescriptorProto
) -> Iterator[tuple[str, descriptor_pb2.DescriptorProto]]:
    """Every message nested in ``message``, at any depth, with its full name."""
    for nested in message.nested_type:
        name = f"{full_name}.{nested.name}"
        yield name, nested
        yield from _nested(name, nested)


def _service(
    package: str, service: descriptor_pb2.ServiceDescriptorProto, comments: _Comments, path: tuple[int, ...]
) -> Service:
    methods = tuple(
        Method(
            name=method.name,
            comment=comments.at(*path, _METHOD, index),
            input=method.input_type.lstrip("."),
            output=method.output_type.lstrip("."),
            kind=streaming_kind(method),
            read_only=method.options.idempotency_level == descriptor_pb2.MethodOptions.NO_SIDE_EFFECTS,
        )
        for index, method in enumerate(service.method)
    )
    return Service(f"{package}.{service.name}", comments.at(*path), methods)


def _collect_message(
    full_name: str,
    message: descriptor_pb2.DescriptorProto,
    comments: _Comments,
    path: tuple[int, ...],
    maps: dict[str, descriptor_pb2.DescriptorProto],
    messages: list[Message],
    enums: list[Enum],
) -> None:
    fields = tuple(
        _field(message, field, comments.at(*path, _FIELD, index), maps)
        for index, field in enumerate(message.field)
    )
    messages.append(Message(full_name, comments.at(*path), fields, message.options.deprecated))
    for index, nested in enumerate(message.nested_type):
        if not nested.options.map_entry:
            nested_path = (*path, _NESTED_MESSAGE, index)
            _collect_message(
                f"{full_name}.{nested.name}", nested, comments, nested_path, maps, messages, enums
            )
    for index, enum in enumerate(message.enum_type):
        enums.append(_enum(f"{full_name}.{enum.name}", enum, comments, (*path, _NESTED_ENUM, index)))


def _type_of(field: descriptor_pb2.FieldDescriptorProto) -> tuple[str, str | None]:
    if field.type in _SCALARS:
        return _SCALARS[field.type], None
    name = field.type_name.lstrip(".")
    return name, name


def _field(
    message: descriptor_pb2.DescriptorProto,
    field: descriptor_pb2.FieldDescriptorProto,
    comment: str,
    maps: dict[str, descriptor_pb2.DescriptorProto],
) -> Field:
    type_name, link = _type_of(field)
    entry = maps.get(field.type_name.lstrip("."))
    if entry is not None:
        key, _ = _type_of(entry.field[0])
        value, link = _type_of(entry.field[1])
        type_name = f"map<{key}, {value}>"
    elif field.label == descriptor_pb2.FieldDescriptorProto.LABEL_REPEATED:
        type_name = f"repeated {type_name}"
    elif field.proto3_optional:
        type_name = f"optional {type_name}"
    oneof = None
    if field.HasField("oneof_index") and not field.proto3_optional:
        oneof = message.oneof_decl[field.oneof_index].name
    return Field(
        name=field.name,
        json_name=field.json_name or field.name,
        number=field.number,
        type_name=type_name,
        link=link,
        comment=comment,
        behaviour=behaviour_label(comment),
        oneof=oneof,
        deprecated=field.options.deprecated,
    )


def _enum(
    full_name: str, enum: descriptor_pb2.EnumDescriptorProto, comments: _Comments, path: tuple[int, ...]
) -> Enum:
    values = tuple(
        EnumValue(value.name, value.number, comments.at(*path, _ENUM_VALUE, index))
        for index, value in enumerate(enum.value)
    )
    return Enum(full_name, comments.at(*path), values)
