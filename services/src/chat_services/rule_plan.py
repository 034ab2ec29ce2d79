"""A per-message-type plan of the standard buf.validate rules, checked in plain Python.

protovalidate 1.1 evaluates every rule, even ``string.max_len``, as a CEL program with
cel-python's tree-walking interpreter: about 5 ms for a one-field request on the
reference machine, 25 times the cost of a whole unary call. Valid requests are the
common case, so the boundary first asks this plan whether a message passes; only a
message that fails (or a type whose rules the plan does not know) goes to
protovalidate, which then names the violations.

The plan knows only the standard rules the chat.v1 schema uses; any other rule set on
a type (CEL expressions, patterns, ``in`` lists, ``ignore``...) makes ``compile_plan``
return ``None`` and protovalidate checks every message of that type. A differential
test (tests/services/test_rule_plan.py) holds the plan's verdict to protovalidate's.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from buf.validate import validate_pb2
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

Check = Callable[[Any], bool]
"""Whether one value (a field, an item of a repeated field, a map key or value) passes."""

_KNOWN = {
    "string": {"min_len", "max_len", "max_bytes"},
    "int32": {"gte"},
    "int64": {"gte"},
    "float": {"finite"},
    "duration": {"gt", "lte"},
    "enum": {"defined_only", "not_in"},
    "repeated": {"min_items", "max_items", "items"},
    "map": {"max_pairs", "keys", "values"},
}


class UnsupportedRule(Exception):
    """A rule this plan does not implement; protovalidate must check the type."""


class MessagePlan:
    """The checks of one message type: its fields' rules, required oneofs and submessages."""

    def __init__(self) -> None:
        self.checks: list[Callable[[Message], bool]] = []

    def passes(self, message: Message) -> bool:
        """Whether ``message`` satisfies every rule of its type, nested messages included."""
        return all(check(message) for check in self.checks)


def compile_plan(descriptor: Descriptor) -> MessagePlan | None:
    """The plan for ``descriptor``, or ``None`` when a rule it (transitively) carries is unknown."""
    try:
        return _compile(descriptor, {})
    except UnsupportedRule:
        return None


def _compile(descriptor: Descriptor, plans: dict[str, MessagePlan]) -> MessagePlan:
    if descriptor.full_name in plans:  # recursive types share one plan
        return plans[descriptor.full_name]
    plan = plans[descriptor.full_name] = MessagePlan()
    options = descriptor.GetOptions()
    if options.HasExtension(validate_pb2.message) and options.Extensions[validate_pb2.message].ListFields():
        raise UnsupportedRule(f"message rules on {descriptor.full_name}")
    for oneof in descriptor.oneofs:
        rules = oneof.GetOptions().Extensions[validate_pb2.oneof]
        if rules.required:
            plan.checks.append(_oneof_is_set(oneof.name))
    for field in descriptor.fields:
        plan.checks.extend(_field_checks(field, plans))
    return plan


def _oneof_is_set(name: str) -> Callable[[Message], bool]:
    return lambda message: message.WhichOneof(name) is not None


def _field_checks(field: FieldDescriptor, plans: dict[str, MessagePlan]) -> list[Callable[[Message], bool]]:
    checks: list[Callable[[Message], bool]] = []
    rules = field.GetOptions().Extensions[validate_pb2.field]
    name = field.name
    is_map = field.message_type is not None and field.message_type.GetOptions().map_entry
    if rules.ListFields():
        unknown = {f.name for f, _ in rules.ListFields()} - {"required", "string", "int32", "int64", "float"}
        unknown -= {"duration", "enum", "repeated", "map"}
        if unknown:
            raise UnsupportedRule(f"{field.full_name}: {sorted(unknown)}")
        if rules.required:
            checks.append(_is_set(field))
        kind = rules.WhichOneof("type")
        if kind == "repeated":
            checks.append(_repeated(name, rules.repeated, field))
        elif kind == "map":
            checks.append(_map(name, rules.map, field))
        elif kind is not None:
            value_check = _scalar(kind, getattr(rules, kind), field)
            if field.has_presence:
                checks.append(lambda m: not m.HasField(name) or value_check(getattr(m, name)))
            else:
                checks.append(lambda m: value_check(getattr(m, name)))
    if field.message_type is None:
        return checks
    if is_map:
        value_field = field.message_type.fields_by_name["value"]
        if value_field.message_type is not None:
            sub = _compile(value_field.message_type, plans)
            checks.append(lambda m: all(sub.passes(v) for v in getattr(m, name).values()))
    elif field.is_repeated:
        sub = _compile(field.message_type, plans)
        checks.append(lambda m: all(sub.passes(item) for item in getattr(m, name)))
    else:
        sub = _compile(field.message_type, plans)
        checks.append(lambda m: not m.HasField(name) or sub.passes(getattr(m, name)))
    return checks


def _is_set(field: FieldDescriptor) -> Callable[[Message], bool]:
    name = field.name
    if field.has_presence:
        return lambda m: m.HasField(name)
    if field.is_repeated:
        return lambda m: len(getattr(m, name)) > 0
    default = field.default_value
    return lambda m: getattr(m, name) != default


def _known(kind: str, rules: Message) -> list[str]:
    names = [f.name for f, _ in rules.ListFields()]
    unknown = set(names) - _KNOWN[kind]
    if unknown:
        raise UnsupportedRule(f"{kind} rules {sorted(unknown)}")
    return names


def _scalar(kind: str, rules: Any, field: FieldDescriptor, *, for_items: bool = False) -> Check:
    """One check for one value under ``<kind>`` rules (string, int32, int64, float, duration, enum)."""
    names = _known(kind, rules)
    checks: list[Check] = []
    if kind == "string":
        if "min_len" in names:
            fewest_chars: int = rules.min_len
            checks.append(lambda v: len(v) >= fewest_chars)
        if "max_len" in names:
            most_chars: int = rules.max_len
            checks.append(lambda v: len(v) <= most_chars)
        if "max_bytes" in names:
            most_bytes: int = rules.max_bytes
            # A str of n characters takes at most 4n bytes of UTF-8: encode only when it may matter.
            checks.append(lambda v: len(v) * 4 <= most_bytes or len(v.encode()) <= most_bytes)
    elif kind in ("int32", "int64"):
        if "gte" in names:
            least: int = rules.gte
            checks.append(lambda v: v >= least)
    elif kind == "float":
        if rules.finite:
            checks.append(math.isfinite)
    elif kind == "duration":
        # cel-python holds durations as timedelta: whole microseconds, so 1 ns is not above 0 s.
        if "gt" in names:
            above = rules.gt.ToMicroseconds()
            checks.append(lambda v: v.ToMicroseconds() > above)
        if "lte" in names:
            most = rules.lte.ToMicroseconds()
            checks.append(lambda v: v.ToMicroseconds() <= most)
    elif kind == "enum":
        # protovalidate-python 1.1.2 applies defined_only to enum fields but not to the items of a
        # repeated enum (it has no CEL form there): the plan must not be stricter than protovalidate,
        # so for items the handler checks it (PluginService.StreamPluginEvents).
        if rules.defined_only and not for_items:
            if field.enum_type is None:
                raise TypeError(f"{field.full_name}: enum rules on a field that is not an enum")
            defined = frozenset(field.enum_type.values_by_number)
            checks.append(lambda v: v in defined)
        if "not_in" in names:
            excluded = frozenset(rules.not_in)
            checks.append(lambda v: v not in excluded)
    else:
        raise UnsupportedRule(f"{kind} rules")
    return lambda value: all(check(value) for check in checks)


def _item_check(rules: validate_pb2.FieldRules, field: FieldDescriptor) -> Check:
    """The check of one item, key or value, from its nested ``FieldRules``."""
    unknown = {f.name for f, _ in rules.ListFields()} - {"string", "int32", "int64", "float", "enum"}
    if unknown:
        raise UnsupportedRule(f"item rules {sorted(unknown)}")
    kind = rules.WhichOneof("type")
    if kind is None:
        return lambda value: True
    return _scalar(kind, getattr(rules, kind), field, for_items=True)


def _repeated(
    name: str, rules: validate_pb2.RepeatedRules, field: FieldDescriptor
) -> Callable[[Message], bool]:
    names = _known("repeated", rules)
    least = rules.min_items if "min_items" in names else 0
    most = rules.max_items if "max_items" in names else math.inf
    item = _item_check(rules.items, field) if "items" in names else None

    def check(message: Message) -> bool:
        values = getattr(message, name)
        if not least <= len(values) <= most:
            return False
        return item is None or all(item(value) for value in values)

    return check


def _map(name: str, rules: validate_pb2.MapRules, field: FieldDescriptor) -> Callable[[Message], bool]:
    names = _known("map", rules)
    most = rules.max_pairs if "max_pairs" in names else math.inf
    entry = field.message_type
    if entry is None:
        raise TypeError(f"{field.full_name}: map rules on a field that is not a map")
    key = _item_check(rules.keys, entry.fields_by_name["key"]) if "keys" in names else None
    value = _item_check(rules.values, entry.fields_by_name["value"]) if "values" in names else None

    def check(message: Message) -> bool:
        pairs = getattr(message, name)
        if len(pairs) > most:
            return False
        return all((key is None or key(k)) and (value is None or value(v)) for k, v in pairs.items())

    return check
