"""Converting between the SDK's two targets without betterproto2's pure-Python wire codec.

For each dataclass, a reader (a ``_pb2`` message in, the dataclass out) and a writer
(the dataclass in, filling a ``_pb2`` message) are generated from the two classes'
descriptors the first time they are needed, as Python source compiled once. The bytes
are then parsed and written by upb, the protobuf runtime's C code: the dataclass client
pays for building objects, not for decoding varints in Python.

The result equals what betterproto2 parses from the same bytes, known differences
included (Timestamps in whole microseconds, the well-known types unwrapped into
``datetime``, ``timedelta`` and Optional scalars): the targets-agree tests check it.
Unknown fields are kept: bytes that carry any are handed to betterproto2 whole.
"""

from __future__ import annotations

import datetime
import importlib
import keyword
from collections.abc import Callable
from functools import cache
from typing import Any, TypeVar

import betterproto2
from google.protobuf import descriptor_pool
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass

import chat_sdk.schema
from chat_sdk._generated.message_pool import default_message_pool

B = TypeVar("B", bound=betterproto2.Message)
_URL_PREFIX = "type.googleapis.com/"


@cache
def _import_standard_target() -> None:
    """Register every ``_pb2`` module of the schema in protobuf's default pool."""
    for file in chat_sdk.schema.file_descriptor_set().file:
        if file.package.startswith("chat."):
            importlib.import_module(file.name.removesuffix(".proto").replace("/", ".") + "_pb2")


@cache
def standard_class(cls: type[betterproto2.Message]) -> type[Message]:
    """The ``_pb2`` class of the same message as the dataclass ``cls``."""
    _import_standard_target()
    url = default_message_pool.type_to_url.get(cls)
    if url is None:
        raise TypeError(f"{cls.__qualname__} is not a message of the chat schema")
    return GetMessageClass(descriptor_pool.Default().FindMessageTypeByName(url.removeprefix(_URL_PREFIX)))


def _metadata(cls: Any) -> Any:
    """betterproto2's per-class field metadata (``ProtoClassMetadata``)."""
    return cls._betterproto


class _Compiled(dict[type, Callable[..., Any]]):
    """Readers or writers by dataclass, compiled on first use (recursive types resolve lazily)."""

    def __init__(self, build: Callable[[type], Callable[..., Any]]) -> None:
        super().__init__()
        self._build = build

    def __missing__(self, cls: type) -> Callable[..., Any]:
        function = self._build(cls)
        self[cls] = function
        return function


def _attribute(name: str) -> str:
    return f"getattr(m, {name!r})" if keyword.iskeyword(name) else f"m.{name}"


def _build_reader(cls: type[betterproto2.Message]) -> Callable[[Message], Any]:
    descriptor: Any = standard_class(cls).DESCRIPTOR
    meta = _metadata(cls)
    namespace: dict[str, Any] = {
        "_new": object.__new__,
        "_cls": cls,
        "_R": READERS,
    }
    items = []
    for index, (name, field_meta) in enumerate(meta.meta_by_field_name.items()):
        field: FieldDescriptor = descriptor.fields_by_number[field_meta.number]
        value = _attribute(field.name)
        kind = field_meta.proto_type
        if kind == betterproto2.TYPE_MAP:
            entry = meta.cls_by_field[name]
            value_meta = _metadata(entry).meta_by_field_name["value"]
            convert = _value_reader(value_meta, meta.cls_by_field.get(f"{name}.value"), namespace, index)
            expression = (
                f"{{k: {convert('v')} for k, v in {value}.items()}}"
                if convert("v") != "v"
                else f"dict({value})"
            )
        elif field.is_repeated:
            convert = _value_reader(field_meta, meta.cls_by_field[name], namespace, index)
            expression = f"[{convert('x')} for x in {value}]" if convert("x") != "x" else f"list({value})"
        else:
            convert = _value_reader(field_meta, meta.cls_by_field[name], namespace, index)
            expression = convert(value)
            if field.has_presence:
                expression = f"({expression} if m.HasField({field.name!r}) else None)"
        items.append(f"        {name!r}: {expression},")
    source = "\n".join(
        [
            "def read(m):",
            "    o = _new(_cls)",
            "    o.__dict__ = {",
            *items,
            "        '_unknown_fields': b'',",
            "    }",
            "    return o",
        ]
    )
    exec(compile(source, f"<chat_sdk reader of {cls.__qualname__}>", "exec"), namespace)
    reader: Callable[[Message], Any] = namespace["read"]
    return reader


def _value_reader(
    field_meta: Any, value_cls: Any, namespace: dict[str, Any], index: int
) -> Callable[[str], str]:
    """How to turn one upb value (named by the expression it gets) into the dataclass value."""
    kind = field_meta.proto_type
    if kind == betterproto2.TYPE_ENUM:
        namespace[f"_E{index}"] = value_cls
        return lambda v: f"_E{index}({v})"
    if kind == betterproto2.TYPE_MESSAGE:
        if field_meta.unwrap:
            wrapper = field_meta.unwrap()
            special = _UNWRAPPED.get(default_message_pool.type_to_url.get(wrapper, ""))
            if special is not None:
                namespace.update(_EPOCH=_EPOCH, _TD=datetime.timedelta)
                return lambda v: special.format(v=v)
            namespace[f"_C{index}"] = wrapper
            return lambda v: f"_R[_C{index}]({v}).to_wrapped()"
        namespace[f"_C{index}"] = value_cls
        return lambda v: f"_R[_C{index}]({v})"
    return lambda v: v


_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)
# The arithmetic of betterproto2's Timestamp.to_datetime and Duration.to_timedelta, inlined.
_UNWRAPPED = {
    _URL_PREFIX
    + "google.protobuf.Timestamp": "_EPOCH + _TD(seconds={v}.seconds, microseconds={v}.nanos // 1000)",
    _URL_PREFIX + "google.protobuf.Duration": "_TD(seconds={v}.seconds, microseconds={v}.nanos / 1e3)",
}


def _build_writer(cls: type[betterproto2.Message]) -> Callable[[Any, Message], None]:
    descriptor: Any = standard_class(cls).DESCRIPTOR
    meta = _metadata(cls)
    namespace: dict[str, Any] = {"_W": WRITERS}
    lines = ["def write(o, m):"]
    for index, (name, field_meta) in enumerate(meta.meta_by_field_name.items()):
        field: FieldDescriptor = descriptor.fields_by_number[field_meta.number]
        target = _attribute(field.name)
        lines.append(f"    v = o.{name}")
        kind = field_meta.proto_type
        if kind == betterproto2.TYPE_MAP:
            entry = meta.cls_by_field[name]
            value_meta = _metadata(entry).meta_by_field_name["value"]
            if value_meta.proto_type == betterproto2.TYPE_MESSAGE:
                wrap = _wrap(value_meta, meta.cls_by_field.get(f"{name}.value"), namespace, index)
                lines += ["    for k, x in v.items():", f"        {wrap('x', f'{target}[k]')}"]
            else:
                lines.append(f"    {target}.update(v)")
        elif field.is_repeated:
            if kind == betterproto2.TYPE_MESSAGE:
                wrap = _wrap(field_meta, meta.cls_by_field[name], namespace, index)
                lines += ["    for x in v:", f"        {wrap('x', f'{target}.add()')}"]
            else:
                lines.append(f"    {target}.extend(v)")
        elif kind == betterproto2.TYPE_MESSAGE:
            wrap = _wrap(field_meta, meta.cls_by_field[name], namespace, index)
            lines += [
                "    if v is not None:",
                f"        {target}.SetInParent()",
                f"        {wrap('v', target)}",
            ]
        else:
            assign = f"setattr(m, {field.name!r}, v)" if keyword.iskeyword(field.name) else f"{target} = v"
            lines += ["    if v is not None:", f"        {assign}"]
    lines += ["    if o._unknown_fields:", "        m.MergeFromString(o._unknown_fields)"]
    exec(compile("\n".join(lines), f"<chat_sdk writer of {cls.__qualname__}>", "exec"), namespace)
    writer: Callable[[Any, Message], None] = namespace["write"]
    return writer


def _wrap(
    field_meta: Any, value_cls: Any, namespace: dict[str, Any], index: int
) -> Callable[[str, str], str]:
    """How to write one dataclass message value into a upb sub-message."""
    if field_meta.unwrap:
        namespace[f"_U{index}"] = field_meta.unwrap()
        return lambda v, into: f"_W[_U{index}](_U{index}.from_wrapped({v}), {into})"
    namespace[f"_C{index}"] = value_cls
    return lambda v, into: f"_W[_C{index}]({v}, {into})"


READERS = _Compiled(_build_reader)
WRITERS = _Compiled(_build_writer)


def from_standard(message: Message, cls: type[B]) -> B:
    """The dataclass ``cls`` holding the known fields of the ``_pb2`` ``message`` (unknown ones are left)."""
    result: B = READERS[cls](message)
    return result


def to_standard(message: betterproto2.Message) -> Message:
    """The ``_pb2`` message holding what the dataclass ``message`` holds."""
    standard = standard_class(type(message))()
    WRITERS[type(message)](message, standard)
    return standard


def parse(data: bytes, cls: type[B]) -> B:
    """Parse ``data`` with upb into the dataclass ``cls``.

    Bytes that carry unknown fields (a newer schema's) go to betterproto2, which keeps
    them for re-encoding. They are found without walking the message in Python: once
    upb drops them, the canonical re-encoding is shorter than the input. A
    non-canonical encoding takes the same slower path, with the same result.
    """
    standard = standard_class(cls).FromString(data)
    standard.DiscardUnknownFields()
    if standard.ByteSize() != len(data):
        return cls.parse(data)
    return from_standard(standard, cls)


def serialize(message: betterproto2.Message) -> bytes:
    """Encode the dataclass ``message`` with upb."""
    return to_standard(message).SerializeToString()
