"""Field types and which type changes keep the wire format and the JSON mapping.

One rule for named types: an enum or a message is wire- and JSON-compatible only
with itself. Enums are varints, so enum -> int32 or enum -> another enum parses,
and message A -> message B parses too when the field numbers line up; but the
values then mean something else, and buf's WIRE rules reject all of them. The
review follows buf here, the same way for enums and messages. The one exception
is a map and its ``repeated XEntry`` twin, whose encodings are identical.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from google.protobuf import descriptor_pb2 as dpb


@dataclass(frozen=True)
class FieldType:
    """A field's type, comparable across the two sides (``shown`` is only for display)."""

    kind: str  # scalar name ("int32", "string", ...), "enum" or "message"
    ref: str = ""  # match key of the enum or message
    entry: tuple[FieldType, FieldType] | None = None  # (key, value) for a map field
    shown: str = field(default="", compare=False)

    def __str__(self) -> str:
        if self.entry is not None:
            return f"map<{self.entry[0]}, {self.entry[1]}>"
        return self.shown or self.kind


_T = dpb.FieldDescriptorProto
SCALARS: dict[int, str] = {
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

# Wire encodings of the integer scalars, and the values each type holds. Within one
# encoding, every value a type holds is written the same way whatever the type (a
# negative int32 is sign-extended to 64 bits, as int64 writes it), and a reader
# recovers each value its own type holds; others are truncated or change sign (an
# int32 -3 reads as uint32 4294967293, a uint32 4294967295 as int32 -1).
_INTEGERS: dict[str, tuple[str, int, int]] = {
    "bool": ("varint", 0, 1),
    "int32": ("varint", -(2**31), 2**31 - 1),
    "uint32": ("varint", 0, 2**32 - 1),
    "int64": ("varint", -(2**63), 2**63 - 1),
    "uint64": ("varint", 0, 2**64 - 1),
    "sint32": ("zigzag varint", -(2**31), 2**31 - 1),
    "sint64": ("zigzag varint", -(2**63), 2**63 - 1),
    "fixed32": ("4 bytes", 0, 2**32 - 1),
    "sfixed32": ("4 bytes", -(2**31), 2**31 - 1),
    "fixed64": ("8 bytes", 0, 2**64 - 1),
    "sfixed64": ("8 bytes", -(2**63), 2**63 - 1),
}


def _widens(base: str, head: str) -> bool:
    """True when ``head`` is written like ``base`` and holds every value ``base`` holds."""
    if base not in _INTEGERS or head not in _INTEGERS:
        return False
    (b_encoding, b_low, b_high), (h_encoding, h_low, h_high) = _INTEGERS[base], _INTEGERS[head]
    return b_encoding == h_encoding and h_low <= b_low and b_high <= h_high


# Scalar changes that keep every value written with the base type (base -> head): the
# integer widenings, and string -> bytes (every string is valid bytes, but a proto3
# parser rejects bytes that are not UTF-8 in a string field, so not back).
WIDENINGS: frozenset[tuple[str, str]] = frozenset(
    {(b, h) for b in _INTEGERS for h in _INTEGERS if b != h and _widens(b, h)} | {("string", "bytes")}
)
# Integer types that share an encoding but not their values: buf's WIRE rules accept
# a change between them, the review does not (values out of the head's range change).
SAME_ENCODING: tuple[tuple[str, tuple[str, ...]], ...] = tuple(
    (encoding, tuple(name for name, (e, _, _) in _INTEGERS.items() if e == encoding))
    for encoding in dict.fromkeys(e for e, _, _ in _INTEGERS.values())
)

# What the proto3 JSON mapping writes for each scalar. Signed and unsigned integers
# differ: one side's parser rejects the other's negative or too large values.
JSON_FORMS: dict[str, str] = {
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


def _compatible(base: FieldType, head: FieldType, scalars: Callable[[str, str], bool]) -> bool:
    """Equal types, maps entry by entry, named types only with themselves, else ``scalars``."""
    if base == head:
        return True
    if base.entry is not None or head.entry is not None:
        if base.entry is None or head.entry is None:
            return False
        return all(_compatible(b, h, scalars) for b, h in zip(base.entry, head.entry, strict=True))
    if {base.kind, head.kind} & {"enum", "message"}:
        return False  # named types match only themselves (see the module docstring)
    return scalars(base.kind, head.kind)


def _wire_scalars(base: str, head: str) -> bool:
    return (base, head) in WIDENINGS


def _json_scalars(base: str, head: str) -> bool:
    form = JSON_FORMS.get(base)
    return form is not None and form == JSON_FORMS.get(head)


def wire_compatible(base: FieldType, head: FieldType) -> bool:
    """True when every value written with ``base`` parses as the same value with ``head``.

    The integer widenings (int32 -> int64, uint32 -> int64 or uint64, bool -> any varint
    integer, sint32 -> sint64) and string -> bytes. Values only the head's type holds are
    then truncated by the base's readers, as a new enum value is unknown to them; a
    change of sign (int32 <-> uint32, fixed32 <-> sfixed32) or a narrowing misreads
    values the base wrote, and breaks the wire.
    """
    return _compatible(base, head, _wire_scalars)


def json_compatible(base: FieldType, head: FieldType) -> bool:
    """True when ProtoJSON written with ``base`` parses as ``head`` to the same value, and back."""
    return _compatible(base, head, _json_scalars)
