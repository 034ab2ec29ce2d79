"""Converters between the SDK's two targets, generated from the descriptors: upb does the wire work.

For each dataclass, a reader (a ``_pb2`` message in, the dataclass out) and a writer
(the dataclass in, filling a ``_pb2`` message) are generated the first time they are
needed, as Python source compiled once. The bytes are parsed and written by upb, the
protobuf runtime's C code, so the dataclass target pays for building objects, not for
decoding varints in Python.

What comes out equals what betterproto2 builds from the same bytes (Timestamps in whole
microseconds, Durations rounded to the nearest one, the well-known types unwrapped into
``datetime``, ``timedelta`` and Optional scalars, unknown enum values kept): the
targets-agree tests check it. Where betterproto2 0.10 is wrong, the writers follow the
protobuf runtime instead: a singular ``-0.0`` is kept, negative and huge Durations are
written exactly, and a oneof with two members set is refused rather than sent twice.
"""

from __future__ import annotations

import datetime
import importlib
import keyword
from collections.abc import Callable
from functools import cache, partial
from typing import Any

import betterproto2
from google.protobuf import descriptor_pool
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass

import chat_sdk.schema
from chat_sdk._generated.message_pool import default_message_pool

_URL_PREFIX = "type.googleapis.com/"
_TIMESTAMP = _URL_PREFIX + "google.protobuf.Timestamp"
_DURATION = _URL_PREFIX + "google.protobuf.Duration"
_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)
_MICROS = 1_000_000


@cache
def import_standard_target() -> None:
    """Register every ``_pb2`` module of the schema in protobuf's default pool."""
    for file in chat_sdk.schema.file_descriptor_set().file:
        if file.package.startswith("chat."):
            importlib.import_module(file.name.removesuffix(".proto").replace("/", ".") + "_pb2")


@cache
def standard_class(cls: type[betterproto2.Message]) -> type[Message]:
    """The ``_pb2`` class of the same message as the dataclass ``cls``."""
    import_standard_target()
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


class _EnumMembers(dict[int, Any]):
    """An enum's members by value, a dict lookup; a value the enum lacks is built by the enum itself.

    betterproto2's enums keep values they do not know (a newer schema's), so the slow path
    of ``cls(value)`` is the same one betterproto2's own parser takes.
    """

    # Unknown values are kept once built: a packed field of millions of -1s then holds one
    # object, not millions of them (1.8 GiB for 64 MiB of input). Bounded, so values from
    # many messages cannot grow an enum's table without limit.
    UNKNOWN_KEPT = 1024

    def __init__(self, enum: Any) -> None:
        super().__init__((member.value, member) for member in enum)
        self._enum = enum
        self._size = len(self) + self.UNKNOWN_KEPT

    def __missing__(self, value: int) -> Any:
        member = self._enum(value)
        if len(self) < self._size:
            self[value] = member
        return member


def _compile(source: str, name: str, namespace: dict[str, Any]) -> Callable[..., Any]:
    exec(compile(source, name, "exec"), namespace)
    function: Callable[..., Any] = namespace["generated"]
    return function


def _attribute(target: str, name: str) -> str:
    return f"getattr({target}, {name!r})" if keyword.iskeyword(name) else f"{target}.{name}"


def _url(cls: Any) -> str:
    return default_message_pool.type_to_url.get(cls, "")


# Reading: a upb message in, a dataclass out.


# Timestamps from 1970 to 2038 are built by ``datetime.fromtimestamp`` from a float, in C,
# at about two thirds the cost of the exact arithmetic, and with the same result: below
# 2**31 seconds a double resolves 2**-22 s (0.24 µs) or better, so ``seconds + micros / 1e6``
# lies within 0.12 µs of the true instant, and ``fromtimestamp`` rounds to the nearest
# microsecond. Other seconds take the exact arithmetic (test_dataclass_codec checks both).
_FLOAT_EXACT_SECONDS = 2**31
_TIMESTAMP_INLINE = (
    "(_fts(t + s.nanos // 1000 / 1e6, _UTC) if 0 <= (t := (s := {v}).seconds) < _FLOAT_EXACT"
    " else _EPOCH + _TD(0, t, s.nanos // 1000))"
)


def read_timestamp(value: Any) -> datetime.datetime:
    """betterproto2's ``Timestamp.to_datetime``: whole microseconds, truncated."""
    seconds: int = value.seconds
    if 0 <= seconds < _FLOAT_EXACT_SECONDS:
        return datetime.datetime.fromtimestamp(seconds + value.nanos // 1000 / 1e6, datetime.UTC)
    return _EPOCH + datetime.timedelta(0, seconds, value.nanos // 1000)


def read_duration(value: Any) -> datetime.timedelta:
    """betterproto2's ``Duration.to_timedelta``: the nearest microsecond, ties to even."""
    return datetime.timedelta(0, value.seconds, value.nanos / 1e3)


def unknown_fields(message: Message) -> bytes:
    """The unknown fields of ``message`` itself, as upb keeps them: raw, in the order read.

    Fields of numbers the schema lacks, known numbers sent with another wire type, and
    groups are all unknown to upb; those of the messages inside stay with them.
    """
    known = [field.name for field, _ in message.ListFields()]
    if known:
        rest = type(message)()
        rest.CopyFrom(message)
        for name in known:
            rest.ClearField(name)
        message = rest
    data: bytes = message.SerializeToString()
    return data


def _build_reader(cls: type[betterproto2.Message], keep_unknown: bool = False) -> Callable[[Message], Any]:
    """The reader of ``cls``; ``keep_unknown``: each message keeps its unknown fields (slower)."""
    descriptor: Any = standard_class(cls).DESCRIPTOR
    meta = _metadata(cls)
    namespace: dict[str, Any] = {
        "_new": object.__new__,
        "_cls": cls,
        "_R": READERS_KEEPING_UNKNOWN if keep_unknown else READERS,
        "_unknown": unknown_fields,
        "_EPOCH": _EPOCH,
        "_TD": datetime.timedelta,
        "_fts": datetime.datetime.fromtimestamp,
        "_UTC": datetime.UTC,
        "_FLOAT_EXACT": _FLOAT_EXACT_SECONDS,
        "_read_timestamp": read_timestamp,
        "_read_duration": read_duration,
    }
    items = []
    for index, (name, field_meta) in enumerate(meta.meta_by_field_name.items()):
        field: FieldDescriptor = descriptor.fields_by_number[field_meta.number]
        value = _attribute("m", field.name)
        if field_meta.proto_type == betterproto2.TYPE_MAP:
            value_meta = _metadata(meta.cls_by_field[name]).meta_by_field_name["value"]
            convert = _value_reader(value_meta, meta.cls_by_field.get(f"{name}.value"), namespace, index)
            expression = (
                f"{{k: {convert('v')} for k, v in {value}.items()}}"
                if convert("v") != "v"
                else f"dict({value})"
            )
        elif field.is_repeated:
            convert = _value_reader(field_meta, meta.cls_by_field.get(name), namespace, index)
            if convert("x") == "x":
                expression = f"list({value})"
            elif field_meta.proto_type == betterproto2.TYPE_MESSAGE and not field_meta.unwrap:
                expression = f"list(map(_R[_C{index}], {value}))"  # map() skips a comprehension's frame
            else:
                expression = f"[{convert('x')} for x in {value}]"
        elif field.has_presence:
            convert = _value_reader(field_meta, meta.cls_by_field.get(name), namespace, index)
            inline = _inline_unwrapped(field_meta)
            if inline is not None:  # reads the sub-message once
                expression = f"({inline.format(v=value)} if h({field.name!r}) else None)"
            else:
                expression = f"({convert(value)} if h({field.name!r}) else None)"
        else:
            expression = _value_reader(field_meta, meta.cls_by_field.get(name), namespace, index)(value)
        # Attributes set one by one, in the order of the dataclass's own __init__, keep the
        # instance's values inline (CPython shares the class's keys): no dict per message,
        # about 40% less memory per page of messages, and less work for the collector.
        items.append(f"    o.{name} = {expression}")
    source = "\n".join(
        [
            "def generated(m):",
            *(["    h = m.HasField"] if any(" h(" in item for item in items) else []),
            "    o = _new(_cls)",
            *items,
            f"    o._unknown_fields = {'_unknown(m)' if keep_unknown else repr(b'')}",
            "    return o",
        ]
    )
    return _compile(source, f"<chat_sdk reader of {cls.__qualname__}>", namespace)


def _message_value(field_meta: Any, value_cls: Any) -> tuple[str, Any]:
    """What a message-typed value is to the converters, and its class.

    ``timestamp`` and ``duration`` (unwrapped into ``datetime``/``timedelta``, converted
    inline), ``wrapped`` (another unwrapped type, through its ``to_wrapped``/``from_wrapped``)
    or ``message`` (a dataclass of its own).
    """
    if not field_meta.unwrap:
        return "message", value_cls
    wrapper = field_meta.unwrap()
    return {_TIMESTAMP: "timestamp", _DURATION: "duration"}.get(_url(wrapper), "wrapped"), wrapper


def _inline_unwrapped(field_meta: Any) -> str | None:
    """A Timestamp or Duration read inline (``{v}`` evaluated once: the sub-message is named ``s``)."""
    if field_meta.proto_type != betterproto2.TYPE_MESSAGE:
        return None
    kind, _ = _message_value(field_meta, None)
    if kind == "timestamp":
        return _TIMESTAMP_INLINE
    if kind == "duration":
        return "_TD(0, (s := {v}).seconds, s.nanos / 1e3)"
    return None


def _value_reader(
    field_meta: Any, value_cls: Any, namespace: dict[str, Any], index: int
) -> Callable[..., str]:
    """How to turn one upb value (named by the expression it gets) into the dataclass value."""
    kind = field_meta.proto_type
    if kind == betterproto2.TYPE_ENUM:
        namespace[f"_E{index}"] = _EnumMembers(value_cls)
        return lambda v: f"_E{index}[{v}]"
    if kind != betterproto2.TYPE_MESSAGE:
        return lambda v: v
    return _by_shape(field_meta, value_cls, namespace, index, _READ)


# Source templates per shape of a message value (see _by_shape).
_READ = {
    "timestamp": "_read_timestamp({0})",
    "duration": "_read_duration({0})",
    "wrapped": "_R[{C}]({0}).to_wrapped()",
    "message": "_R[{C}]({0})",
}
_WRITE = {
    "timestamp": "_write_timestamp({0}, {1})",
    "duration": "_write_duration({0}, {1})",
    "wrapped": "_W[{C}]({C}.from_wrapped({0}), s := {1}); s.SetInParent()",
    "message": "_W[{C}]({0}, s := {1}); s.SetInParent()",
}
_AS_FIELDS = {
    "timestamp": "_timestamp({0})",
    "duration": "_duration({0})",
    "wrapped": "_F[{C}]({C}.from_wrapped({0}))",
    "message": "_F[{C}]({0})",
}


def _by_shape(
    field_meta: Any, value_cls: Any, namespace: dict[str, Any], index: int, templates: dict[str, str]
) -> Callable[..., str]:
    """The template for a message value's shape, filled with the expressions it is given.

    ``{0}``, ``{1}``... are the expressions; ``{C}`` names the value's class, which is
    bound in ``namespace`` as ``_C<index>``.
    """
    shape, namespace[f"_C{index}"] = _message_value(field_meta, value_cls)
    template = templates[shape]
    return lambda *expressions: template.format(*expressions, C=f"_C{index}")


# Writing: a dataclass in, filling a fresh upb message.


def write_timestamp(value: datetime.datetime, into: Any) -> None:
    """Fill the Timestamp ``into`` from ``value`` (see :func:`timestamp_fields`)."""
    _set_fields(into, timestamp_fields(value))


def write_duration(value: datetime.timedelta, into: Any) -> None:
    """Fill the Duration ``into`` from ``value`` (see :func:`duration_fields`)."""
    _set_fields(into, duration_fields(value))


def _set_fields(into: Any, fields: dict[str, int]) -> None:
    if fields["seconds"] or fields["nanos"]:
        into.seconds, into.nanos = fields["seconds"], fields["nanos"]
    else:
        into.SetInParent()  # the epoch, or zero: set, though every field is zero


def _build_writer(cls: type[betterproto2.Message]) -> Callable[[Any, Message], None]:
    descriptor: Any = standard_class(cls).DESCRIPTOR
    meta = _metadata(cls)
    namespace: dict[str, Any] = {
        "_W": WRITERS,
        "_write_timestamp": write_timestamp,
        "_write_duration": write_duration,
    }
    lines = ["def generated(o, m):", *_oneof_checks(cls, descriptor)]
    for index, (name, field_meta) in enumerate(meta.meta_by_field_name.items()):
        field: FieldDescriptor = descriptor.fields_by_number[field_meta.number]
        target = _attribute("m", field.name)
        lines.append(f"    v = o.{name}")
        kind = field_meta.proto_type
        if kind == betterproto2.TYPE_MAP:
            value_meta = _metadata(meta.cls_by_field[name]).meta_by_field_name["value"]
            if value_meta.proto_type == betterproto2.TYPE_MESSAGE:
                wrap = _value_writer(value_meta, meta.cls_by_field.get(f"{name}.value"), namespace, index)
                lines += [
                    "    if v:",
                    f"        t = {target}",
                    "        for k, x in v.items():",
                    f"            {wrap('x', 't[k]')}",
                ]
            else:
                lines += ["    if v:", f"        {target}.update(v)"]
        elif field.is_repeated:
            if kind == betterproto2.TYPE_MESSAGE:
                wrap = _value_writer(field_meta, meta.cls_by_field.get(name), namespace, index)
                lines += [
                    "    if v:",
                    f"        add = {target}.add",
                    "        for x in v:",
                    f"            {wrap('x', 'add()')}",
                ]
            else:
                lines += ["    if v:", f"        {target}.extend(v)"]
        elif kind == betterproto2.TYPE_MESSAGE:
            wrap = _value_writer(field_meta, meta.cls_by_field.get(name), namespace, index)
            lines += ["    if v is not None:", f"        {wrap('v', target)}"]
        else:
            # Floats are handed over even when zero: upb keeps a -0.0, as proto3 asks.
            keep = "v is not None" if field.has_presence or field.cpp_type in _FLOATS else "v"
            assign = f"setattr(m, {field.name!r}, v)" if keyword.iskeyword(field.name) else f"{target} = v"
            lines += [f"    if {keep}:", f"        {assign}"]
    lines += ["    if o._unknown_fields:", "        m.MergeFromString(o._unknown_fields)"]
    return _compile("\n".join(lines), f"<chat_sdk writer of {cls.__qualname__}>", namespace)


_FLOATS = (FieldDescriptor.CPPTYPE_FLOAT, FieldDescriptor.CPPTYPE_DOUBLE)


def _oneof_checks(cls: type[betterproto2.Message], descriptor: Descriptor) -> list[str]:
    """Lines refusing a dataclass with two members of one oneof set (betterproto2 would send both)."""
    lines = []
    for oneof in descriptor.oneofs:
        if len(oneof.fields) < 2:
            continue
        names = [_dataclass_name(cls, field.number) for field in oneof.fields]
        count = " + ".join(f"(o.{name} is not None)" for name in names)
        message = (
            f"{cls.__qualname__}: more than one member of oneof {oneof.name} is set ({', '.join(names)})"
        )
        lines += [f"    if {count} > 1:", f"        raise ValueError({message!r})"]
    return lines


def _dataclass_name(cls: type[betterproto2.Message], number: int) -> str:
    name: str = _metadata(cls).field_name_by_number[number]
    return name


def _value_writer(
    field_meta: Any, value_cls: Any, namespace: dict[str, Any], index: int
) -> Callable[..., str]:
    """How to write one dataclass message value (``v``) into a upb sub-message (``into``)."""
    return _by_shape(field_meta, value_cls, namespace, index, _WRITE)


# Writing, fast path: the dataclass as keyword arguments of the ``_pb2`` constructor, nested
# messages as dicts. upb builds the whole tree in one call, which costs about half of
# setting the same fields one by one (each sub-message touched from Python is materialized
# on its own). A message with unknown fields anywhere inside takes the writer above.


class NestedUnknownFields(Exception):
    """A message on the fast path carries unknown fields: the caller falls back to the writer."""


def timestamp_fields(value: datetime.datetime) -> dict[str, int]:
    """A ``datetime`` as a Timestamp's fields (betterproto2's ``from_datetime``, in integers)."""
    if value.tzinfo is None:
        raise ValueError("datetime must be timezone aware")
    offset = value - _EPOCH
    return {"seconds": offset.days * 86_400 + offset.seconds, "nanos": offset.microseconds * 1000}


def duration_fields(value: datetime.timedelta) -> dict[str, int]:
    """A ``timedelta`` as a Duration's fields, exactly: seconds and nanos share the sign.

    betterproto2 0.10 gives a negative Duration's nanos the wrong sign and goes through
    floats for large ones; this is the protobuf runtime's ``FromTimedelta`` in integers.
    """
    micros = (value.days * 86_400 + value.seconds) * _MICROS + value.microseconds
    seconds, rest = divmod(abs(micros), _MICROS)
    sign = -1 if micros < 0 else 1
    return {"seconds": sign * seconds, "nanos": sign * rest * 1000}


def _build_fields(cls: type[betterproto2.Message]) -> Callable[[Any], dict[str, Any]]:
    descriptor: Any = standard_class(cls).DESCRIPTOR
    meta = _metadata(cls)
    namespace: dict[str, Any] = {
        "_F": FIELDS,
        "_Unknown": NestedUnknownFields,
        "_timestamp": timestamp_fields,
        "_duration": duration_fields,
    }
    items = []
    for index, (name, field_meta) in enumerate(meta.meta_by_field_name.items()):
        field: FieldDescriptor = descriptor.fields_by_number[field_meta.number]
        value = f"o.{name}"
        if field_meta.proto_type == betterproto2.TYPE_MAP:
            value_meta = _metadata(meta.cls_by_field[name]).meta_by_field_name["value"]
            if value_meta.proto_type == betterproto2.TYPE_MESSAGE:
                convert = _value_fields(value_meta, meta.cls_by_field.get(f"{name}.value"), namespace, index)
                value = f"{{k: {convert('x')} for k, x in {value}.items()}}"
        elif field_meta.proto_type == betterproto2.TYPE_MESSAGE:
            convert = _value_fields(field_meta, meta.cls_by_field.get(name), namespace, index)
            if field.is_repeated:
                value = f"[{convert('x')} for x in {value}]"
            else:
                value = f"(None if (v := {value}) is None else {convert('v')})"
        items.append(f"        {field.name!r}: {value},")
    source = "\n".join(
        [
            "def generated(o):",
            "    if o._unknown_fields:",
            "        raise _Unknown",
            *_oneof_checks(cls, descriptor),
            "    return {",
            *items,
            "    }",
        ]
    )
    return _compile(source, f"<chat_sdk fields of {cls.__qualname__}>", namespace)


def _value_fields(
    field_meta: Any, value_cls: Any, namespace: dict[str, Any], index: int
) -> Callable[..., str]:
    """How to turn one dataclass message value into the dict upb's constructor takes for it."""
    return _by_shape(field_meta, value_cls, namespace, index, _AS_FIELDS)


READERS = _Compiled(_build_reader)
# For bytes with unknown fields somewhere inside (a newer schema's, a wrong wire type, a group).
READERS_KEEPING_UNKNOWN = _Compiled(partial(_build_reader, keep_unknown=True))
WRITERS = _Compiled(_build_writer)
FIELDS = _Compiled(_build_fields)
