"""The dataclass target's wire codec: native code parses and writes, the betterproto2 API stays as it is.

:func:`install` gives each dataclass of a schema package its own ``parse``,
``FromString``, ``__bytes__`` and ``SerializeToString``. Everything that encodes or
decodes a dataclass takes this path with no change on the caller's side: ``bytes(message)``,
``Message.parse(data)``, pickling, and grpclib's protobuf codec in the stubs and servers
(it calls ``SerializeToString`` and ``FromString``).

Two layers do the work. The C codec (:mod:`chat_sdk._native`) reads and writes the
common case straight between bytes and dataclasses. What it declines goes to the
Python path over upb: the ``_pb2`` twin of the class parses or writes the bytes and
the converters of :mod:`chat_sdk._convert` turn it into the dataclass or back. Both
give the same result; the second also serves a wheel built without the extension.

Unknown fields are what upb says they are: fields of numbers the schema lacks (a newer
schema's), known numbers sent with another wire type, and groups. Each message keeps its
own, raw, in ``_unknown_fields`` for re-encoding, as upb does; betterproto2's parser,
which read some of them as values, never runs for a schema class. Bytes that are not a
valid message, or hold a Timestamp or Duration that ``datetime`` cannot, raise
:class:`MessageDecodeError` (a ``ValueError``) and nothing else, on either path:
betterproto2 accepted truncated input silently.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import partial
from typing import Any, TypeVar

import betterproto2
from google.protobuf.message import DecodeError
from google.protobuf.unknown_fields import UnknownFieldSet

from chat_sdk._convert import (
    FIELDS,
    READERS,
    READERS_KEEPING_UNKNOWN,
    WRITERS,
    NestedUnknownFields,
    _Compiled,
    standard_class,
)
from chat_sdk._generated.message_pool import default_message_pool
from chat_sdk._native import Plans

B = TypeVar("B", bound=betterproto2.Message)
_SCHEMA_PREFIX = "type.googleapis.com/chat."

_betterproto2_parse: Callable[[type[Any], bytes], Any] = betterproto2.Message.__dict__["parse"].__func__
_betterproto2_bytes: Callable[[Any], bytes] = betterproto2.Message.__bytes__


class MessageDecodeError(DecodeError, ValueError):
    """Bytes that are not a valid encoding of the message they were parsed as."""


def betterproto2_parse(cls: type[B], data: bytes) -> B:
    """Parse with betterproto2's own pure-Python parser (kept for unknown fields and for comparisons)."""
    result: B = _betterproto2_parse(cls, data)
    return result


def betterproto2_bytes(message: betterproto2.Message) -> bytes:
    """Encode with betterproto2's own pure-Python encoder (kept for comparisons)."""
    return _betterproto2_bytes(message)


def _has_nested_messages(cls: type[betterproto2.Message]) -> bool:
    """Whether a message of ``cls`` can hold other messages that keep unknown fields of their own."""
    fields: dict[str, Any] = getattr(cls, "_betterproto").meta_by_field_name  # noqa: B009 (a classproperty)
    return any(
        meta.proto_type in (betterproto2.TYPE_MESSAGE, betterproto2.TYPE_MAP) and not meta.unwrap
        for meta in fields.values()
    )


def _build_parser(cls: type[B]) -> Callable[[bytes], B]:
    from_string = standard_class(cls).FromString
    name = cls.__qualname__

    def decode(data: bytes) -> Any:
        try:
            return from_string(data)
        except DecodeError as error:
            raise MessageDecodeError(f"the bytes are not a valid {name}: {error}") from None

    def converted(readers: dict[type, Callable[[Any], Any]]) -> Callable[[Any], B]:
        read = readers[cls]

        def convert(message: Any) -> B:
            try:
                result: B = read(message)
            except OverflowError as error:  # a Timestamp or Duration past what datetime holds
                raise MessageDecodeError(f"the bytes are not a valid {name}: {error}") from None
            return result

        return convert

    read, read_keeping_unknown = converted(READERS), converted(READERS_KEEPING_UNKNOWN)

    if _has_nested_messages(cls):

        def parse(data: bytes) -> B:
            message = decode(data)
            # Unknown fields anywhere inside: dropping them shortens the encoding. (The input's
            # own length tells nothing: overlong or short varints can make up for them.)
            whole = message.ByteSize()
            message.DiscardUnknownFields()
            if message.ByteSize() != whole:
                return read_keeping_unknown(decode(data))
            return read(message)

    else:

        def parse(data: bytes) -> B:
            message = decode(data)
            if len(UnknownFieldSet(message)):
                return read_keeping_unknown(message)
            return read(message)

    return parse


def _build_serializer(cls: type[betterproto2.Message]) -> Callable[[betterproto2.Message], bytes]:
    new = standard_class(cls)
    fields = FIELDS[cls]
    write = WRITERS[cls]

    def serialize(message: betterproto2.Message) -> bytes:
        try:
            standard = new(**fields(message))
        except NestedUnknownFields:  # rare: bytes of a newer schema, parsed and re-sent
            standard = new()
            write(message, standard)
        data: bytes = standard.SerializeToString()
        return data

    return serialize


def _in_schema(cls: type) -> bool:
    """Whether ``cls`` is a dataclass of the schema (a subclass, say, is not)."""
    return default_message_pool.type_to_url.get(cls, "").startswith(_SCHEMA_PREFIX)


# The Python path over upb, per schema class: what the C codec declines, and all of it without the C codec.
UPB_PARSERS = _Compiled(_build_parser)
UPB_SERIALIZERS = _Compiled(_build_serializer)
PLANS = Plans(UPB_PARSERS.__getitem__, UPB_SERIALIZERS.__getitem__)


def _parser_of(cls: type[B]) -> Callable[[bytes], B]:
    if not _in_schema(cls):
        return partial(betterproto2_parse, cls)
    plan = PLANS[cls]
    return UPB_PARSERS[cls] if plan is None else plan.parse


def _serializer_of(cls: type[betterproto2.Message]) -> Callable[[betterproto2.Message], bytes]:
    if not _in_schema(cls):
        return betterproto2_bytes
    plan = PLANS[cls]
    return UPB_SERIALIZERS[cls] if plan is None else plan.serialize


# Built on first use, per class; classes outside the schema keep betterproto2's codec.
PARSERS = _Compiled(_parser_of)
SERIALIZERS = _Compiled(_serializer_of)


def _parse(cls: type[B], data: bytes) -> B:
    result: B = PARSERS[cls](data)
    return result


def _bytes(self: betterproto2.Message) -> bytes:
    data: bytes = SERIALIZERS[type(self)](self)
    return data


# Named as the methods they replace: pickle finds ``cls.parse`` by the function's name.
_parse.__name__ = _parse.__qualname__ = "parse"
_parse.__doc__ = betterproto2.Message.parse.__doc__
_bytes.__name__ = _bytes.__qualname__ = "__bytes__"
_bytes.__doc__ = betterproto2.Message.__bytes__.__doc__


def install(namespace: Iterable[object]) -> None:
    """Give every schema dataclass among ``namespace`` the upb codec (see the module's docstring)."""
    for cls in namespace:
        if isinstance(cls, type) and issubclass(cls, betterproto2.Message) and _in_schema(cls):
            cls.parse = classmethod(_parse)  # type: ignore[assignment,method-assign]
            cls.FromString = classmethod(_parse)  # type: ignore[assignment,method-assign]
            cls.__bytes__ = _bytes  # type: ignore[method-assign]
            cls.SerializeToString = _bytes  # type: ignore[method-assign]
