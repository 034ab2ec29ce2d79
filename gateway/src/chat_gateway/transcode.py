"""HTTP request parts (path, query, JSON body) to a request message, and messages to ProtoJSON.

Everything goes through protobuf's ``json_format`` with ``ignore_unknown_fields=False``:
the schema decides what is valid, and a violation becomes :class:`BadRequest` naming
the field, before any gRPC call is made.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from chat_gateway.errors import BadRequest
from chat_gateway.schema import Rpc

MAX_DESCRIPTION = 200  # characters of a parser message echoed back: client values are never echoed unbounded
_NESTED_FIELD = re.compile(r"Failed to parse (\S+) field: ")
_UNKNOWN_FIELD = re.compile(r'has no field named "([^"]*)"')
_LOCATION = re.compile(r' at "?([A-Za-z0-9_]+(?:\.[A-Za-z0-9_]+|\[[0-9]+\])*)"?\.*$')


def to_json(message: Message) -> dict[str, Any]:
    """A message as ProtoJSON: lowerCamel names, enums as names, int64 as strings, RFC 3339 times."""
    return json_format.MessageToDict(message)


def parse_body(raw: bytes) -> Any:
    """Decode a JSON body; an empty body is an empty object."""
    if not raw.strip():
        return {}
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise BadRequest("", f"the body is not valid JSON: {_bounded(str(error))}") from None


def parse_ndjson(raw: bytes) -> list[Any]:
    """Decode newline-delimited JSON: one request object a line, blank lines skipped."""
    values = []
    for number, line in enumerate(raw.splitlines(), start=1):
        if line.strip():
            try:
                values.append(json.loads(line))
            except (UnicodeDecodeError, json.JSONDecodeError) as error:
                raise BadRequest("", f"line {number} is not valid JSON: {_bounded(str(error))}") from None
    return values


def build_request(
    rpc: Rpc,
    path_params: Mapping[str, str],
    query: Iterable[tuple[str, str]],
    body: Any,
    *,
    index: int | None = None,
    body_rule: str | None = None,
) -> Message:
    """The request message of ``rpc`` from its path variables, query parameters and JSON body.

    ``index`` names the element of a client-streaming array in error messages;
    ``body_rule`` overrides the route's ``body`` (a WebSocket frame is a whole request).
    """
    where = "" if index is None else f"[{index}]"
    rule = rpc.body if body_rule is None else body_rule
    document: dict[str, Any]
    if rule == "*":
        if not isinstance(body, dict):
            raise BadRequest(where, "the body must be a JSON object")
        document = dict(body)
    elif rule:
        document = {_json_name(rpc.request_descriptor, rule): body}
    else:
        document = {}
    if rule != "*":
        _merge_query(document, rpc, query)
    elif any(True for _ in query):
        raise BadRequest("", "this route takes every field in the body, none in the query")
    for variable in rpc.template.variables:
        target = document
        for name in variable.json_path[:-1]:
            child = target.setdefault(name, {})
            if not isinstance(child, dict):
                raise BadRequest(".".join(variable.json_path), "conflicts with the path")
            target = child
        target[variable.json_path[-1]] = path_params[variable.parameter]
    message = rpc.request()
    try:
        json_format.ParseDict(document, message, ignore_unknown_fields=False)
    except json_format.ParseError as error:
        field, description = _describe(str(error))
        raise BadRequest(where + ("." if where and field else "") + field, description) from None
    return message


def _json_name(message: Descriptor, name: str) -> str:
    return message.fields_by_name[name].json_name


def _merge_query(document: dict[str, Any], rpc: Rpc, query: Iterable[tuple[str, str]]) -> None:
    """Fill ``document`` from query parameters: ``page.pageSize=10``, repeated keys for lists."""
    for key, value in query:
        target = document
        message: Descriptor | None = rpc.request_descriptor
        names = key.split(".")
        for position, name in enumerate(names):
            field = _field(message, name)
            if field is None:
                raise BadRequest(_bounded(key), "no such field")
            if position < len(names) - 1:
                if field.message_type is None or field.is_repeated:
                    raise BadRequest(_bounded(key), "only singular message fields can be nested in a query")
                target = target.setdefault(field.json_name, {})
                message = field.message_type
                continue
            if field.message_type is not None and not _is_well_known_scalar(field.message_type):
                raise BadRequest(_bounded(key), "a message field cannot be set from the query")
            converted = _query_value(field, value)
            if field.is_repeated:
                target.setdefault(field.json_name, []).append(converted)
            elif field.json_name in target:
                raise BadRequest(_bounded(key), "given more than once")
            else:
                target[field.json_name] = converted


def _field(message: Descriptor | None, name: str) -> FieldDescriptor | None:
    if message is None:
        return None
    for field in message.fields:
        if name in (field.name, field.json_name):
            return field
    return None


def _is_well_known_scalar(message: Descriptor) -> bool:
    return message.full_name in ("google.protobuf.Timestamp", "google.protobuf.Duration")


def _query_value(field: FieldDescriptor, value: str) -> Any:
    """A query string as the JSON value ProtoJSON expects (bools are the one type it takes unquoted only)."""
    if field.type == FieldDescriptor.TYPE_BOOL:
        if value in ("true", "false"):
            return value == "true"
        raise BadRequest(field.json_name, "expected true or false")
    return value


def _describe(message: str) -> tuple[str, str]:
    """The field path and a bounded description of a ``json_format.ParseError``.

    protobuf names the field two ways: a chain of ``Failed to parse X field:`` prefixes,
    and for some errors a trailing ``at Type.path`` (the more precise: it has indexes).
    """
    chain: list[str] = []
    position = 0
    while match := _NESTED_FIELD.match(message, position):
        chain.append(match.group(1))
        position = match.end()
    rest = message[position:].split("\n", 1)[0]
    names = chain
    located = _LOCATION.search(rest)
    if located:
        path = [name for name in located.group(1).split(".")[1:] if name]
        names = path if path or not chain else chain
        rest = rest[: located.start()]
    unknown = _UNKNOWN_FIELD.search(rest)
    if unknown:
        names = [*names, unknown.group(1)]
        rest = "unknown field"
    return _bounded(".".join(names)), _bounded(rest.rstrip(". "))


def _bounded(text: str) -> str:
    return text if len(text) <= MAX_DESCRIPTION else text[: MAX_DESCRIPTION - 1] + "…"
