"""The leading comments of a schema's elements, by full name: the descriptions of the API docs."""

from __future__ import annotations

from collections.abc import Iterator

from google.protobuf import descriptor_pb2

# Field numbers of descriptor.proto that source_code_info paths are made of.
_FILE_MESSAGE, _FILE_ENUM, _FILE_SERVICE = 4, 5, 6
_MESSAGE_FIELD, _MESSAGE_NESTED, _MESSAGE_ENUM = 2, 3, 4
_ENUM_VALUE = 2
_SERVICE_METHOD = 2


class Comments:
    """Leading comments of every message, field, enum, enum value, service and method."""

    def __init__(self, image: descriptor_pb2.FileDescriptorSet) -> None:
        self._by_name: dict[str, str] = {}
        for file in image.file:
            leading = {
                tuple(location.path): location.leading_comments.strip()
                for location in file.source_code_info.location
                if location.leading_comments
            }
            for path, name in _names(file):
                if path in leading:
                    self._by_name[name] = " ".join(line.strip() for line in leading[path].splitlines())

    def of(self, full_name: str) -> str:
        """The comment of an element (full name without a leading dot), or "" when it has none."""
        return self._by_name.get(full_name, "")


def _names(file: descriptor_pb2.FileDescriptorProto) -> Iterator[tuple[tuple[int, ...], str]]:
    prefix = file.package
    for index, message in enumerate(file.message_type):
        yield from _message_names((_FILE_MESSAGE, index), f"{prefix}.{message.name}", message)
    for index, enum in enumerate(file.enum_type):
        yield from _enum_names((_FILE_ENUM, index), f"{prefix}.{enum.name}", enum)
    for index, service in enumerate(file.service):
        name = f"{prefix}.{service.name}"
        yield (_FILE_SERVICE, index), name
        for method_index, method in enumerate(service.method):
            yield (_FILE_SERVICE, index, _SERVICE_METHOD, method_index), f"{name}.{method.name}"


def _message_names(
    path: tuple[int, ...], name: str, message: descriptor_pb2.DescriptorProto
) -> Iterator[tuple[tuple[int, ...], str]]:
    yield path, name
    for index, field in enumerate(message.field):
        yield (*path, _MESSAGE_FIELD, index), f"{name}.{field.name}"
    for index, nested in enumerate(message.nested_type):
        yield from _message_names((*path, _MESSAGE_NESTED, index), f"{name}.{nested.name}", nested)
    for index, enum in enumerate(message.enum_type):
        yield from _enum_names((*path, _MESSAGE_ENUM, index), f"{name}.{enum.name}", enum)


def _enum_names(
    path: tuple[int, ...], name: str, enum: descriptor_pb2.EnumDescriptorProto
) -> Iterator[tuple[tuple[int, ...], str]]:
    yield path, name
    # Enum values are siblings of their enum in protobuf's naming scope.
    scope = name.rsplit(".", 1)[0]
    for index, value in enumerate(enum.value):
        yield (*path, _ENUM_VALUE, index), f"{scope}.{value.name}"
