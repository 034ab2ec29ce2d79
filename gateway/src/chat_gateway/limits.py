"""The schema's buf.validate rules as JSON Schema keywords: REST clients see the limits the services enforce.

Only rules JSON Schema can state are translated: string lengths (``max_bytes`` as a
``maxLength`` no client can exceed, plus ``x-maxBytes`` with the exact UTF-8 bound),
patterns, bounds of numbers that ProtoJSON writes as JSON numbers, item and pair
counts, map keys and values, and ``required``. The rest (64-bit integers and durations,
which ProtoJSON writes as strings; enum exclusions; CEL rules) stays with the field's
comment, which states every limit in words, and with the services, which enforce them.
"""

from __future__ import annotations

from typing import Any

from buf.validate import validate_pb2
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

# Rule kinds whose values ProtoJSON writes as JSON numbers (64-bit integers are strings).
_NUMBERS = ("int32", "uint32", "sint32", "fixed32", "sfixed32", "float", "double")
_BOUNDS = {"gte": "minimum", "gt": "exclusiveMinimum", "lte": "maximum", "lt": "exclusiveMaximum"}


def rules_of(field: FieldDescriptor) -> validate_pb2.FieldRules | None:
    """The field's ``(buf.validate.field)`` rules, or None when it declares none."""
    options = field.GetOptions()
    if not options.HasExtension(validate_pb2.field):
        return None
    rules: validate_pb2.FieldRules = options.Extensions[validate_pb2.field]
    return rules


def is_required(field: FieldDescriptor) -> bool:
    """Whether the field carries ``(buf.validate.field).required``."""
    rules = rules_of(field)
    return rules is not None and rules.required


def value_keywords(rules: validate_pb2.FieldRules) -> dict[str, Any]:
    """Keywords for one value (a singular field, a list item, a map key or value)."""
    kind = rules.WhichOneof("type")
    if kind == "string":
        return _string_keywords(rules.string)
    if kind in _NUMBERS:
        return _number_keywords(getattr(rules, kind))
    return {}


def list_keywords(rules: validate_pb2.RepeatedRules) -> dict[str, Any]:
    """``minItems`` and ``maxItems`` of a repeated field."""
    return _present(rules, {"min_items": "minItems", "max_items": "maxItems"})


def map_keywords(rules: validate_pb2.MapRules) -> dict[str, Any]:
    """``minProperties``, ``maxProperties`` and the keys' ``propertyNames`` of a map field."""
    found = _present(rules, {"min_pairs": "minProperties", "max_pairs": "maxProperties"})
    keys = value_keywords(rules.keys)
    if keys:
        found["propertyNames"] = keys
    return found


def _present(rules: Message, keywords: dict[str, str]) -> dict[str, Any]:
    """Each rule of ``keywords`` that ``rules`` sets, under its JSON Schema keyword."""
    return {keyword: getattr(rules, name) for name, keyword in keywords.items() if rules.HasField(name)}


def _string_keywords(rules: validate_pb2.StringRules) -> dict[str, Any]:
    found = _present(rules, {"min_len": "minLength"})
    longest = rules.max_len if rules.HasField("max_len") else None
    if rules.HasField("max_bytes"):
        found["x-maxBytes"] = rules.max_bytes
        # A string of N UTF-8 bytes has at most N characters: a bound JSON Schema can state.
        longest = rules.max_bytes if longest is None else min(longest, rules.max_bytes)
    if longest is not None:
        found["maxLength"] = longest
    if rules.HasField("pattern"):
        found["pattern"] = rules.pattern
    return found


def _number_keywords(rules: Message) -> dict[str, Any]:
    return _present(rules, _BOUNDS)
