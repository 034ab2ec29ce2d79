"""The fast plan of standard rules agrees with protovalidate on every request type.

The boundary trusts the plan's "valid" without asking protovalidate, so the two must
never disagree: hypothesis builds requests whose values sit at, just inside and just past
each declared limit, and both must give the same verdict.
"""

from __future__ import annotations

import importlib
import math
from typing import Any, cast

import protovalidate
import pytest
from buf.validate import validate_pb2
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message
from hypothesis import given, settings
from hypothesis import strategies as st

from chat_services import rule_plan
from chat_services.rule_plan import UnsupportedRule, compile_plan

from ..sdk.samples import pb2_module_name
from .test_validation import STUBS_DESCRIPTORS

PROTOVALIDATE = protovalidate.Validator()  # type: ignore[no-untyped-call]


def _near(limit: int) -> st.SearchStrategy[int]:
    return st.sampled_from(sorted({0, 1, max(limit - 1, 0), limit, limit + 1}))


def _text(length: int, draw: Any) -> str:
    char: str = draw(st.sampled_from(["x", "é", "😀"]))
    return char * length


def _scalar(field: FieldDescriptor, rules: validate_pb2.FieldRules, draw: Any) -> Any:
    if field.type == field.TYPE_STRING:
        limit = rules.string.max_len or rules.string.max_bytes or 8
        if rules.string.max_bytes:  # whole characters of 1, 2 or 4 bytes, up to one past the byte limit
            char = draw(st.sampled_from(["x", "é", "😀"]))
            return char * (limit // len(char.encode()) + draw(st.integers(0, 1)))
        return _text(draw(_near(limit)), draw)
    if field.type in (field.TYPE_INT32, field.TYPE_INT64):
        return draw(st.sampled_from([-1, 0, 1, 2**31 - 1]))
    if field.type == field.TYPE_FLOAT:
        return draw(st.sampled_from([0.0, -1.0, 1.0, math.nan, math.inf]))
    if field.type == field.TYPE_ENUM:
        return draw(st.sampled_from([0, 1, 3, 4, 99]))
    if field.type == field.TYPE_BOOL:
        return draw(st.booleans())
    return None


def _fill(message: Message, draw: Any, depth: int = 0) -> None:
    descriptor = cast(Descriptor, message.DESCRIPTOR)
    if descriptor.full_name == "google.protobuf.Duration":
        message.seconds = draw(st.sampled_from([-1, 0, 1, 60, 61]))  # type: ignore[attr-defined]
        message.nanos = draw(st.sampled_from([0, 1])) if message.seconds >= 0 else 0  # type: ignore[attr-defined]
        return
    for field in descriptor.fields:
        if field.containing_oneof is not None and message.WhichOneof(field.containing_oneof.name):
            continue
        if not draw(st.booleans()):
            continue
        rules = field.GetOptions().Extensions[validate_pb2.field]
        value = getattr(message, field.name)
        entry = field.message_type
        if entry is not None and entry.GetOptions().map_entry:
            for i in range(draw(_near(rules.map.max_pairs or 2))):
                key_length = draw(_near(rules.map.keys.string.max_len or 4))
                key = f"{i:0{key_length}d}"[:key_length] if key_length else ("" if i == 0 else f"{i}")
                value[key] = _scalar(entry.fields_by_name["value"], rules.map.values, draw)
        elif field.is_repeated:
            count = draw(_near(rules.repeated.max_items or 2))
            for _ in range(count):
                if entry is not None:
                    if depth < 2:
                        _fill(value.add(), draw, depth + 1)
                else:
                    value.append(_scalar(field, rules.repeated.items, draw))
        elif entry is not None:
            if depth < 3:
                value.SetInParent()
                _fill(value, draw, depth + 1)
        else:
            setattr(message, field.name, _scalar(field, rules, draw))


@pytest.mark.parametrize("name", sorted(STUBS_DESCRIPTORS))
@settings(max_examples=10, deadline=None, database=None)
@given(data=st.data())
def test_the_plan_and_protovalidate_agree(name: str, data: st.DataObject) -> None:
    descriptor = STUBS_DESCRIPTORS[name]
    plan = compile_plan(descriptor)
    assert plan is not None, f"{name} carries a rule the plan does not know: it would always be slow"
    message: Message = getattr(
        importlib.import_module(pb2_module_name(descriptor.file.name)), descriptor.name
    )()
    _fill(message, data.draw)
    violations = PROTOVALIDATE.collect_violations(message)
    assert plan.passes(message) == (not violations), (message, [v.proto for v in violations])


def test_a_rule_the_plan_does_not_know_is_refused_so_protovalidate_checks_the_type() -> None:
    field = STUBS_DESCRIPTORS["chat.v1.GetMessageRequest"].fields_by_name["message_id"]
    with pytest.raises(UnsupportedRule):
        rule_plan._scalar("string", validate_pb2.StringRules(pattern="^m-"), field)
