"""Request data templated per call, in the spirit of ghz: ``{{.RequestNumber}}``, ``{{.UUID}}``...

The data is ProtoJSON text: one object, or for streaming requests an array of objects
(cycled to the requested message count). Placeholders are replaced in the text
before it is parsed, so they work inside strings and as bare numbers:

========================  ====================================================
``{{.RequestNumber}}``    the call's number in the run, from 0
``{{.MessageNumber}}``    the message's number within its call's stream, from 0
``{{.UUID}}``             a random UUID4 (hex with dashes)
``{{.TimestampUnix}}``    seconds since the epoch
``{{randomString N}}``    N random letters and digits (N <= 4096)
``{{randomInt A B}}``     a random integer in [A, B)
========================  ====================================================
"""

from __future__ import annotations

import json
import random
import re
import string
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from google.protobuf import json_format
from google.protobuf.message import Message

_PLACEHOLDER = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")
_ALPHABET = string.ascii_letters + string.digits
MAX_RANDOM_STRING = 4096


@dataclass(frozen=True)
class _Field:
    """One compiled placeholder: renders its text from the call and message numbers."""

    render: Callable[[int, int], str]


def _compile(expression: str) -> _Field:
    words = expression.split()
    match words:
        case [".RequestNumber"]:
            return _Field(lambda request, _message: str(request))
        case [".MessageNumber"]:
            return _Field(lambda _request, message: str(message))
        case [".UUID"]:
            return _Field(lambda _r, _m: str(uuid.uuid4()))
        case [".TimestampUnix"]:
            return _Field(lambda _r, _m: str(int(time.time())))
        case ["randomString", size] if size.isdigit() and 0 < int(size) <= MAX_RANDOM_STRING:
            count = int(size)
            return _Field(lambda _r, _m: "".join(random.choices(_ALPHABET, k=count)))
        case ["randomInt", low, high] if _is_int(low) and _is_int(high) and int(low) < int(high):
            bounds = (int(low), int(high) - 1)
            return _Field(lambda _r, _m: str(random.randint(*bounds)))
    shown = expression if len(expression) <= 40 else expression[:40] + "..."
    raise ValueError(
        f"unknown template {{{{{shown}}}}}; known: .RequestNumber, .MessageNumber, .UUID,"
        f" .TimestampUnix, randomString N (N <= {MAX_RANDOM_STRING}), randomInt A B (A < B)"
    )


def _is_int(text: str) -> bool:
    return text.lstrip("-").isdigit()


class RequestTemplate:
    """ProtoJSON request data, checked once and rendered into messages for each call."""

    def __init__(self, text: str, message_type: type[Message]) -> None:
        self.message_type = message_type
        self._parts = _PLACEHOLDER.split(text)
        # Odd parts are placeholder expressions: compile them now, so a typo fails before the run.
        self._fields = [_compile(expression) for expression in self._parts[1::2]]
        # Parse once up front: malformed JSON or unknown fields fail here, with a clear message.
        first = self._parse(self._render(0, 0))
        self._fixed: list[Message] | None = None if self._fields else first

    def _render(self, request: int, message: int) -> str:
        parts = list(self._parts)
        for index, field in enumerate(self._fields):
            parts[2 * index + 1] = field.render(request, message)
        return "".join(parts)

    def _parse(self, text: str) -> list[Message]:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise ValueError(f"request data is not JSON: {error}") from None
        items = data if isinstance(data, list) else [data]
        if not items or not all(isinstance(item, dict) for item in items):
            raise ValueError("request data must be a JSON object or a non-empty array of objects")
        messages = []
        for item in items:
            message = self.message_type()
            try:
                json_format.ParseDict(item, message)
            except json_format.ParseError as error:
                reason = str(error)[:200]  # the parser quotes the data: keep the message bounded
                raise ValueError(
                    f"request data does not fit {message.DESCRIPTOR.full_name}: {reason}"
                ) from None
            messages.append(message)
        return messages

    def messages(self, request: int, count: int) -> list[Message]:
        """The ``count`` request messages of call number ``request`` (the data's objects, cycled).

        With placeholders, each message is rendered anew, so ``{{.UUID}}`` differs per message.
        """
        if self._fixed is not None:
            return [self._fixed[i % len(self._fixed)] for i in range(count)]
        out = []
        for number in range(count):
            rendered = self._parse(self._render(request, number))
            out.append(rendered[number % len(rendered)])
        return out
