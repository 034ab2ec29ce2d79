"""The dataclass target's wire codec: upb parses and writes, the betterproto2 API stays as it is.

:func:`install` gives each dataclass of a schema package its own ``parse``,
``FromString``, ``__bytes__`` and ``SerializeToString``, which go through the ``_pb2``
twin of the class and the converters of :mod:`chat_sdk._convert`. Everything that
encodes or decodes a dataclass takes this path with no change on the caller's side:
``bytes(message)``, ``Message.parse(data)``, pickling, and grpclib's protobuf codec in
the stubs and servers (it calls ``SerializeToString`` and ``FromString``).

Bytes that carry unknown fields (a newer schema's) are parsed by betterproto2's own
parser, which keeps them for re-encoding; nested messages then come back here. Bytes
that are not a valid message raise :class:`MessageDecodeError` (a ``ValueError``):
betterproto2 accepted truncated input silently.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import partial
from typing import Any, TypeVar

import betterproto2
from google.protobuf.message import DecodeError
from google.protobuf.unknown_fields import UnknownFieldSet

from chat_sdk._convert import FIELDS, READERS, WRITERS, NestedUnknownFields, _Compiled, standard_class
from chat_sdk._generated.message_pool import default_message_pool

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
    read = READERS[cls]
    name = cls.__qualname__

    def decode(data: bytes) -> Any:
        try:
            return from_string(data)
        except DecodeError as error:
            raise MessageDecodeError(f"the bytes are not a valid {name}: {error}") from None

    if _has_nested_messages(cls):

        def parse(data: bytes) -> B:
            message = decode(data)
            # Unknown fields anywhere inside: once upb drops them, the canonical encoding is
            # shorter than the input. So is a non-canonical input (a message field sent in
            # two parts, which protobuf merges): a second parse, kept whole, tells them apart.
            message.DiscardUnknownFields()
            known = message.ByteSize()
            if known != len(data) and decode(data).ByteSize() != known:
                return betterproto2_parse(cls, data)
            result: B = read(message)
            return result

    else:

        def parse(data: bytes) -> B:
            message = decode(data)
            if len(UnknownFieldSet(message)):
                return betterproto2_parse(cls, data)
            result: B = read(message)
            return result

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


def _parser_of(cls: type[B]) -> Callable[[bytes], B]:
    return _build_parser(cls) if _in_schema(cls) else partial(betterproto2_parse, cls)


def _serializer_of(cls: type[betterproto2.Message]) -> Callable[[betterproto2.Message], bytes]:
    return _build_serializer(cls) if _in_schema(cls) else betterproto2_bytes


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
