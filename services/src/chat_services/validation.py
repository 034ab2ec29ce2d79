"""Every request against the buf.validate rules its schema declares, before any handler runs.

The limits live in proto/chat/v1/*.proto as ``(buf.validate.field)`` options;
:class:`RequestValidator` enforces them with protovalidate. A fast plan of the
standard rules (:mod:`chat_services.rule_plan`) clears valid messages without
running cel-python; a message it refuses goes to protovalidate, whose violations
become one INVALID_ARGUMENT with a ``google.rpc.BadRequest`` naming each field.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import cast

import protovalidate
from buf.validate import validate_pb2
from google.protobuf.descriptor import Descriptor
from google.protobuf.message import Message
from grpclib.exceptions import GRPCError

from chat_services.errors import bad_request
from chat_services.rule_plan import MessagePlan, compile_plan

MAX_REPORTED = 10
"""Violations named per status: a request breaking thousands of rules gets a bounded answer."""
MAX_KEY_CHARS = 32
"""A map key in a field path is cut to this many characters: keys are client values."""


class RequestValidator:
    """Checks parsed requests against their rules; compiled once per message type, then reused."""

    def __init__(self) -> None:
        self._protovalidate = protovalidate.Validator()  # type: ignore[no-untyped-call]
        self._plans: dict[str, MessagePlan | None] = {}

    def check(self, message: Message) -> None:
        """Return if ``message`` satisfies its rules; raise INVALID_ARGUMENT naming each violation."""
        name = message.DESCRIPTOR.full_name
        if name not in self._plans:
            self._plans[name] = compile_plan(cast(Descriptor, message.DESCRIPTOR))
        plan = self._plans[name]
        if plan is not None and plan.passes(message):
            return
        violations = self._protovalidate.collect_violations(_bounded_copy(message))
        if not violations:
            return
        found = [(field_path(v.proto.field), v.proto.message) for v in violations]
        raise invalid_request(name, found)


def invalid_request(message_name: str, violations: Sequence[tuple[str, str]]) -> GRPCError:
    """INVALID_ARGUMENT for ``violations`` (field path, description), at most ``MAX_REPORTED`` of them."""
    reported = list(violations[:MAX_REPORTED])
    summary = "; ".join(f"{field}: {description}" for field, description in reported)
    more = len(violations) - len(reported)
    if more:
        summary += f"; and {more} more"
    return bad_request(f"invalid {message_name}: {summary}", reported)


def field_path(path: validate_pb2.FieldPath) -> str:
    """``files[2].file_id`` or ``arguments["k…"]`` for a protovalidate field path, keys cut short."""
    parts: list[str] = []
    for element in path.elements:
        part = element.field_name
        subscript = element.WhichOneof("subscript")
        if subscript == "index":
            part += f"[{element.index}]"
        elif subscript == "string_key":
            key = element.string_key
            if len(key) > MAX_KEY_CHARS:
                key = key[:MAX_KEY_CHARS] + "…"
            part += f"[{key!r}]"
        elif subscript is not None:
            part += f"[{getattr(element, subscript)}]"
        parts.append(part)
    return ".".join(parts)


def _bounded_copy(message: Message) -> Message:
    """A copy of ``message`` with each over-long list or map cut to one past its limit.

    protovalidate converts a whole repeated field to CEL values before it counts it:
    a 4 MiB request of two million empty strings would hold the event loop for
    seconds. One item past the limit still breaks ``max_items`` the same way, and
    copying field by field never touches the items past the cut.
    """
    copy = type(message)()
    for field, value in message.ListFields():
        rules = field.GetOptions().Extensions[validate_pb2.field]
        target = getattr(copy, field.name)
        entry = field.message_type
        if entry is not None and entry.GetOptions().map_entry:
            keep = rules.map.max_pairs + 1 if rules.map.HasField("max_pairs") else len(value)
            nested = entry.fields_by_name["value"].message_type is not None
            for key in itertools.islice(value, keep):
                if nested:
                    target[key].CopyFrom(_bounded_copy(value[key]))
                else:
                    target[key] = value[key]
        elif field.is_repeated:
            keep = rules.repeated.max_items + 1 if rules.repeated.HasField("max_items") else len(value)
            if entry is None:
                target.extend(value[:keep])
            else:
                target.extend(_bounded_copy(item) for item in value[:keep])
        elif entry is not None:
            target.CopyFrom(_bounded_copy(value))
        else:
            setattr(copy, field.name, value)
    return copy
