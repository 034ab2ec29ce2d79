"""Plans for the C codec (``chat_sdk._fastwire``): each dataclass's fields, as the C code reads them.

A plan lists a class's fields in the dataclass's own order: number, protobuf type,
attribute name, repeated or with presence, which oneof, what a message or enum value
is made of, and the value of an absent field (taken from an empty ``_pb2`` message,
so it is what the upb path reads). The C code parses and writes the common case and
declines everything else to the fallbacks it is given, the Python path over upb.

Classes with a wrapped well-known type other than Timestamp and Duration get no plan
(the schema has none today): they keep the Python path, and a plan holding one of
them as a field calls that path for it. Maps are read in C; a map with entries is
written by the Python path, since upb writes entries in an order only upb knows.
Without the extension (a wheel built with ``CHAT_SDK_PURE_PYTHON=1``) there are no
plans at all.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import betterproto2
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message_factory import GetMessageClass

from chat_sdk._convert import _EnumMembers, _message_value, _metadata, standard_class

try:
    from chat_sdk import _fastwire
except ImportError:  # a pure-Python build: the upb path serves every class
    _fastwire = None  # type: ignore[assignment]

AVAILABLE = _fastwire is not None

Fallback = Callable[[type[Any]], Callable[[Any], Any]]


class Unplannable(Exception):
    """A class the C codec does not take (a wrapped well-known type other than Timestamp and Duration)."""


class Plans(dict[type, Any]):
    """The plan of each dataclass (``None``: the Python path), built on first use.

    A plan is registered before its fields are filled in, so a message that holds
    itself, directly or through others, refers to its own plan.
    """

    def __init__(self, parse_fallback: Fallback, serialize_fallback: Fallback) -> None:
        super().__init__()
        self._parse_fallback = parse_fallback
        self._serialize_fallback = serialize_fallback

    def __missing__(self, cls: type) -> Any:
        if _fastwire is None:
            self[cls] = None
            return None
        plan = _fastwire.Plan(cls, self._parse_fallback(cls), self._serialize_fallback(cls))
        self[cls] = plan
        try:
            fields, oneofs = self._fields(cls)
        except Unplannable:
            self[cls] = None
            return None
        plan.fill(fields, oneofs)
        return plan

    def _fields(self, cls: type[betterproto2.Message]) -> tuple[tuple[tuple[Any, ...], ...], int]:
        descriptor: Any = standard_class(cls).DESCRIPTOR
        meta = _metadata(cls)
        oneofs = [oneof for oneof in descriptor.oneofs if len(oneof.fields) > 1]
        fields = []
        for name, field_meta in meta.meta_by_field_name.items():
            field: Any = descriptor.fields_by_number[field_meta.number]  # a FieldDescriptor
            oneof = field.containing_oneof
            group = oneofs.index(oneof) if oneof in oneofs else -1
            if field_meta.proto_type == betterproto2.TYPE_MAP:
                entry_meta = _metadata(meta.cls_by_field[name]).meta_by_field_name
                key, value = (
                    self._spec(field.message_type.fields_by_name[part], part, entry_meta[part], value_cls, -1)
                    for part, value_cls in (("key", None), ("value", meta.cls_by_field.get(f"{name}.value")))
                )
                entry = (key, value)
                fields.append(
                    (field.number, _fastwire.MAP, name, _fastwire.REPEATED, group, entry, None, None)
                )
            else:
                fields.append(self._spec(field, name, field_meta, meta.cls_by_field.get(name), group))
        return tuple(fields), len(oneofs)

    def _spec(self, field: Any, name: str, field_meta: Any, value_cls: Any, group: int) -> tuple[Any, ...]:
        """One field as the C code takes it: (number, kind, name, flags, oneof, sub, fallback, absent)."""
        kind: int = field.type
        sub: Any = None
        fallback: Any = None
        if kind == FieldDescriptor.TYPE_MESSAGE:
            shape, value_cls = _message_value(field_meta, value_cls)
            if shape == "wrapped":
                raise Unplannable(name)
            if shape == "timestamp":
                kind = _fastwire.TIMESTAMP
            elif shape == "duration":
                kind = _fastwire.DURATION
            else:
                sub = self[value_cls]
                if sub is None:
                    fallback = (self._parse_fallback(value_cls), self._serialize_fallback(value_cls))
        elif kind == FieldDescriptor.TYPE_ENUM:
            sub = _EnumMembers(value_cls)
        repeated = field.is_repeated
        flags = (_fastwire.REPEATED if repeated else 0) | (_fastwire.PRESENCE if field.has_presence else 0)
        absent = None
        if not repeated and not field.has_presence:  # what upb reads for the field when it is not sent
            absent = getattr(GetMessageClass(field.containing_type)(), field.name)
            if kind == FieldDescriptor.TYPE_ENUM:
                absent = sub[absent]
        return (field.number, kind, name, flags, group, sub, fallback, absent)
