"""HTTP request parts (path, query, JSON body) to a request message (replies: :mod:`chat_gateway.protojson`).

Everything goes through protobuf's ``json_format`` with ``ignore_unknown_fields=False``:
the schema decides what is valid, and a violation becomes :class:`BadRequest` naming
the field, before any gRPC call is made.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message
from google.rpc import error_details_pb2

from chat_gateway.errors import BadRequest, GatewayError, bounded
from chat_gateway.schema import Rpc

_NESTED_FIELD = re.compile(r"Failed to parse (\S+) field: ")
_UNKNOWN_FIELD = re.compile(r'has no field named "([^"]*)"')
_PATH_SEGMENT = re.compile(r"([A-Za-z0-9_]+)(\[[0-9]+\])?(?:\.|$)")
_LOCATION = re.compile(r' at "?([A-Za-z0-9_]+(?:\.[A-Za-z0-9_]+|\[[0-9]+\])*)"?\.*$')


def in_json_names(error: GatewayError, request: Descriptor) -> GatewayError:
    """``error`` with the field paths of its ``google.rpc.BadRequest`` in ProtoJSON names.

    The services name fields as the schema does (``after_sequence``, ``files[2].file_id``);
    the gateway's clients read lowerCamel ones. A segment that is not a plain name or
    list item (a map key) ends the rewriting: the rest is kept as the service wrote it.
    """
    for detail in error.details:
        if isinstance(detail, error_details_pb2.BadRequest):
            for violation in detail.field_violations:
                violation.field = _rewrite_path(request, violation.field)
    return error


def _rewrite_path(request: Descriptor, path: str) -> str:
    parts: list[str] = []
    message: Descriptor | None = request
    position = 0
    while position < len(path) and (segment := _PATH_SEGMENT.match(path, position)):
        field = _field(message, segment.group(1))
        if field is None:
            break
        parts.append(field.json_name + (segment.group(2) or ""))
        message = field.message_type
        position = segment.end()
    rest = path[position:]
    return bounded(".".join(parts) + ("." if parts and rest else "") + rest)


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
        if variable.parameter not in path_params:
            continue  # not an HTTP route (GraphQL, WebSocket frames): the body carries the field
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
        field, description = _describe(rpc.request_descriptor, str(error))
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
        path: list[str] = []  # the JSON names so far: errors name fields as ProtoJSON does
        for position, name in enumerate(names):
            field = _field(message, name)
            if field is None:
                raise BadRequest(bounded(".".join([*path, name])), "no such field")
            path.append(field.json_name)
            where = ".".join(path)
            if position < len(names) - 1:
                if field.message_type is None or field.is_repeated:
                    raise BadRequest(where, "only singular message fields can be nested in a query")
                target = target.setdefault(field.json_name, {})
                message = field.message_type
                continue
            if field.message_type is not None and not _is_well_known_scalar(field.message_type):
                raise BadRequest(where, "a message field cannot be set from the query")
            converted = _query_value(field, value, where)
            if field.is_repeated:
                target.setdefault(field.json_name, []).append(converted)
            elif field.json_name in target:
                raise BadRequest(where, "given more than once")
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


def _query_value(field: FieldDescriptor, value: str, where: str) -> Any:
    """A query string as the JSON value ProtoJSON expects (bools are the one type it takes unquoted only)."""
    if field.type == FieldDescriptor.TYPE_BOOL:
        if value in ("true", "false"):
            return value == "true"
        raise BadRequest(where, "expected true or false")
    return value


def _describe(request: Descriptor, message: str) -> tuple[str, str]:
    """The ProtoJSON field path and a description written here of a ``json_format.ParseError``.

    protobuf names the field two ways: a chain of ``Failed to parse X field:`` prefixes,
    and for some errors a trailing ``at Type.path`` (the more precise: it has indexes).
    Its own words (``invalid literal for int()``...) are Python's, so the description
    says instead what the field expects.
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
    unknown = _UNKNOWN_FIELD.search(rest)
    if unknown:
        names = [*names, unknown.group(1)]
    json_names, field, indexed = _resolve(request, names)
    if unknown or field is None:
        return bounded(".".join(json_names)), "unknown field"
    return bounded(".".join(json_names)), _expected(field, indexed)


def _resolve(request: Descriptor, names: list[str]) -> tuple[list[str], FieldDescriptor | None, bool]:
    """``names`` (proto or JSON, ``x[i]`` for items) as JSON names; the last field; whether it is an item."""
    resolved: list[str] = []
    message: Descriptor | None = request
    field: FieldDescriptor | None = None
    indexed = False
    for name in names:
        bare, bracket, index = name.partition("[")
        field = _field(message, bare)
        if field is None:
            resolved.append(name)
            message = None
            continue
        resolved.append(field.json_name + bracket + index)
        indexed = bool(bracket)
        message = field.message_type
    return resolved, field, indexed


_SCALARS = {
    FieldDescriptor.TYPE_STRING: "a string",
    FieldDescriptor.TYPE_BYTES: "base64 text",
    FieldDescriptor.TYPE_BOOL: "true or false",
    FieldDescriptor.TYPE_INT32: "a 32-bit integer",
    FieldDescriptor.TYPE_SINT32: "a 32-bit integer",
    FieldDescriptor.TYPE_SFIXED32: "a 32-bit integer",
    FieldDescriptor.TYPE_UINT32: "an unsigned 32-bit integer",
    FieldDescriptor.TYPE_FIXED32: "an unsigned 32-bit integer",
    FieldDescriptor.TYPE_INT64: "a 64-bit integer (a number or a decimal string)",
    FieldDescriptor.TYPE_SINT64: "a 64-bit integer (a number or a decimal string)",
    FieldDescriptor.TYPE_SFIXED64: "a 64-bit integer (a number or a decimal string)",
    FieldDescriptor.TYPE_UINT64: "an unsigned 64-bit integer (a number or a decimal string)",
    FieldDescriptor.TYPE_FIXED64: "an unsigned 64-bit integer (a number or a decimal string)",
    FieldDescriptor.TYPE_FLOAT: "a number",
    FieldDescriptor.TYPE_DOUBLE: "a number",
}
_WELL_KNOWN = {
    "google.protobuf.Timestamp": 'an RFC 3339 timestamp ("2026-01-02T03:04:05Z")',
    "google.protobuf.Duration": 'a duration in seconds with an "s" suffix ("1.5s")',
}


def _expected(field: FieldDescriptor, item: bool) -> str:
    """What ``field`` (or one item of it) takes, in the gateway's words."""
    return bounded("expected " + _kind(field, item))


def _kind(field: FieldDescriptor, item: bool) -> str:
    if field.message_type is not None and field.message_type.GetOptions().map_entry:
        return f"an object whose values are each {_kind(field.message_type.fields_by_name['value'], True)}"
    if field.is_repeated and not item:
        return f"a list whose items are each {_kind(field, True)}"
    if field.message_type is not None:
        return _WELL_KNOWN.get(field.message_type.full_name, "an object")
    if field.enum_type is not None:
        return "one of " + ", ".join(value.name for value in field.enum_type.values)
    return _SCALARS.get(field.type, "a value of another type")
