"""The OpenAPI 3.1 document of the gateway, generated from the schema: routes, ProtoJSON schemas, comments."""

from __future__ import annotations

from typing import Any

from buf.validate import validate_pb2
from google.protobuf.descriptor import Descriptor, EnumDescriptor, FieldDescriptor

from chat_gateway import limits
from chat_gateway.schema import Kind, Rpc, comments

OPENAPI_VERSION = "3.1.0"
STATUS_SCHEMA = "google.rpc.Status"

_INTEGER_32 = {
    FieldDescriptor.TYPE_INT32: "int32",
    FieldDescriptor.TYPE_SINT32: "int32",
    FieldDescriptor.TYPE_SFIXED32: "int32",
    FieldDescriptor.TYPE_UINT32: "uint32",
    FieldDescriptor.TYPE_FIXED32: "uint32",
}
_INTEGER_64 = {
    FieldDescriptor.TYPE_INT64: "int64",
    FieldDescriptor.TYPE_SINT64: "int64",
    FieldDescriptor.TYPE_SFIXED64: "int64",
    FieldDescriptor.TYPE_UINT64: "uint64",
    FieldDescriptor.TYPE_FIXED64: "uint64",
}
# Well-known types with a JSON form of their own.
_WELL_KNOWN: dict[str, dict[str, Any]] = {
    "google.protobuf.Timestamp": {"type": "string", "format": "date-time"},
    "google.protobuf.Duration": {"type": "string", "pattern": r"^-?[0-9]+(\.[0-9]{1,9})?s$"},
}
_STATUS = {
    "type": "object",
    "description": "Status is the one error body of every route (google.rpc.Status): code is the gRPC "
    "status code, mapped to HTTP as google/rpc/code.proto says; message is bounded text; details are "
    "ProtoJSON Any messages. A request refused before any call carries a google.rpc.BadRequest whose "
    "field is the ProtoJSON path (lowerCamel names, [i] for items and for the elements of a streamed "
    "body) and whose description says what the field expects. A body over the limit is HTTP 413; a "
    "refusal to come back later (a caller's stream share, a full upstream pool) carries a Retry-After "
    "header and a google.rpc.RetryInfo.",
    "properties": {
        "code": {"type": "integer", "format": "int32"},
        "message": {"type": "string"},
        "details": {
            "type": "array",
            "items": {"type": "object", "properties": {"@type": {"type": "string"}}},
        },
    },
}


def openapi_document(rpcs: tuple[Rpc, ...]) -> dict[str, Any]:
    """The whole document for ``rpcs``."""
    builder = _Builder()
    paths: dict[str, dict[str, Any]] = {}
    for rpc in rpcs:
        paths.setdefault(rpc.template.openapi_path, {})[_openapi_verb(rpc)] = builder.operation(rpc)
    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "chat.v1 gateway",
            "version": "v1",
            "description": "REST/JSON over the chat.v1 gRPC API, generated from the schema's google.api.http "
            "routes. Bodies are ProtoJSON. Server streams are Server-Sent Events (`message` events, then "
            "`end`, or one `error` event carrying a Status; a call refused before its first reply, for its "
            "request, credentials or permissions, is an HTTP error before the stream starts). Client "
            "streams take a JSON array of requests (or NDJSON with Content-Type application/x-ndjson). "
            "Bidirectional streams are WebSockets with one JSON object per text frame.",
        },
        "paths": dict(sorted(paths.items())),
        "components": {"schemas": dict(sorted(builder.schemas.items()))},
    }


def _openapi_verb(rpc: Rpc) -> str:
    return rpc.verb


def _summary(comment: str) -> str:
    return comment.split(". ", 1)[0].rstrip(".")


class _Builder:
    def __init__(self) -> None:
        self.schemas: dict[str, dict[str, Any]] = {STATUS_SCHEMA: _STATUS}
        self.notes = comments()

    def operation(self, rpc: Rpc) -> dict[str, Any]:
        request = rpc.request_descriptor
        operation: dict[str, Any] = {
            "operationId": rpc.operation_id,
            "tags": [rpc.service.rsplit(".", 1)[-1]],
            "summary": _summary(rpc.comment),
            "description": rpc.comment,
            "parameters": self._parameters(rpc, request),
            "responses": {
                **self._success(rpc),
                "default": {
                    "description": "An error.",
                    "content": {"application/json": {"schema": _ref(STATUS_SCHEMA)}},
                },
            },
        }
        if rpc.body and rpc.kind is not Kind.BIDI_STREAM:
            operation["requestBody"] = self._body(rpc, request)
        return operation

    def _parameters(self, rpc: Rpc, request: Descriptor) -> list[dict[str, Any]]:
        parameters = [
            {
                "name": variable.field_path,
                "in": "path",
                "required": True,
                "description": self.notes.of(f"{request.full_name}.{variable.field_path}"),
                "schema": {"type": "string", **_path_keywords(variable.field)},
            }
            for variable in rpc.template.variables
        ]
        if rpc.body or rpc.kind is Kind.BIDI_STREAM:
            return parameters
        bound = rpc.template.bound_fields()
        for field in request.fields:
            if field.name in bound:
                continue
            if field.message_type is None or field.message_type.full_name in _WELL_KNOWN:
                parameters.append(self._query(field.json_name, field))
            elif not field.is_repeated:
                for nested in field.message_type.fields:
                    if nested.message_type is None:
                        parameters.append(self._query(f"{field.json_name}.{nested.json_name}", nested))
        return parameters

    def _query(self, name: str, field: FieldDescriptor) -> dict[str, Any]:
        return {
            "name": name,
            "in": "query",
            "required": False,
            "description": self.notes.of(field.full_name),
            "schema": self.field_schema(field),
        }

    def _body(self, rpc: Rpc, request: Descriptor) -> dict[str, Any]:
        schema = (
            self.message_schema(request)
            if rpc.body == "*"
            else self.field_schema(request.fields_by_name[rpc.body])
        )
        if rpc.kind is Kind.CLIENT_STREAM:
            return {
                "required": True,
                "description": "The stream of requests: a JSON array, or NDJSON (application/x-ndjson).",
                "content": {
                    "application/json": {"schema": {"type": "array", "items": schema}},
                    "application/x-ndjson": {"schema": schema},
                },
            }
        return {"required": True, "content": {"application/json": {"schema": schema}}}

    def _success(self, rpc: Rpc) -> dict[str, Any]:
        reply = self.message_schema(rpc.response_descriptor)
        if rpc.kind is Kind.SERVER_STREAM:
            return {
                "200": {
                    "description": "Server-Sent Events: each `message` event's data is one reply; "
                    "`end` closes a finished stream; `error` carries a Status.",
                    "content": {
                        "text/event-stream": {"schema": {"type": "string"}, "x-event-data-schema": reply}
                    },
                }
            }
        if rpc.kind is Kind.BIDI_STREAM:
            return {
                "101": {
                    "description": "WebSocket: send one request object per text frame, receive one reply per "
                    'frame; a frame `{"error": Status}` reports a refused request or the end of the call.',
                    "content": {"application/json": {"schema": reply}},
                }
            }
        return {"200": {"description": "The reply.", "content": {"application/json": {"schema": reply}}}}

    def message_schema(self, message: Descriptor) -> dict[str, Any]:
        """A $ref to the message's schema, adding it (and what it uses) to the components."""
        if message.full_name in _WELL_KNOWN:
            return dict(_WELL_KNOWN[message.full_name])
        if message.full_name not in self.schemas:
            schema: dict[str, Any] = {"type": "object", "properties": {}, "additionalProperties": False}
            self.schemas[message.full_name] = schema
            description = self.notes.of(message.full_name)
            if description:
                schema["description"] = description
            for field in message.fields:
                schema["properties"][field.json_name] = self.field_schema(field)
            required = [field.json_name for field in message.fields if limits.is_required(field)]
            if required:
                schema["required"] = required
        return _ref(message.full_name)

    def field_schema(self, field: FieldDescriptor) -> dict[str, Any]:
        """The JSON schema of a field's ProtoJSON value, with its buf.validate limits and comment."""
        rules = limits.rules_of(field) or validate_pb2.FieldRules()
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            value = self._single(field.message_type.fields_by_name["value"], rules.map.values)
            schema: dict[str, Any] = {"type": "object", "additionalProperties": value}
            schema.update(limits.map_keywords(rules.map))
        elif field.is_repeated:
            schema = {"type": "array", "items": self._single(field, rules.repeated.items)}
            schema.update(limits.list_keywords(rules.repeated))
        else:
            schema = self._single(field, rules)
        description = self.notes.of(field.full_name)
        if description:
            schema = (
                {**schema, "description": description}
                if "$ref" not in schema
                else {
                    "allOf": [schema],
                    "description": description,
                }
            )
        return schema

    def _single(self, field: FieldDescriptor, rules: validate_pb2.FieldRules) -> dict[str, Any]:
        schema = self._single_type(field)
        keywords = limits.value_keywords(rules)
        return {**schema, **keywords} if keywords and "$ref" not in schema else schema

    def _single_type(self, field: FieldDescriptor) -> dict[str, Any]:
        kind = field.type
        if field.message_type is not None:
            return self.message_schema(field.message_type)
        if field.enum_type is not None:
            return self._enum(field.enum_type)
        if kind == FieldDescriptor.TYPE_STRING:
            return {"type": "string"}
        if kind == FieldDescriptor.TYPE_BYTES:
            return {"type": "string", "contentEncoding": "base64"}
        if kind == FieldDescriptor.TYPE_BOOL:
            return {"type": "boolean"}
        if kind in _INTEGER_32:
            return {"type": "integer", "format": _INTEGER_32[kind]}
        if kind in _INTEGER_64:
            return {"type": "string", "format": _INTEGER_64[kind], "pattern": "^-?[0-9]+$"}
        return {"type": "number", "format": "float" if kind == FieldDescriptor.TYPE_FLOAT else "double"}

    def _enum(self, enum: EnumDescriptor) -> dict[str, Any]:
        if enum.full_name not in self.schemas:
            schema: dict[str, Any] = {"type": "string", "enum": [value.name for value in enum.values]}
            description = self.notes.of(enum.full_name)
            if description:
                schema["description"] = description
            self.schemas[enum.full_name] = schema
        return _ref(enum.full_name)


def _path_keywords(field: FieldDescriptor) -> dict[str, Any]:
    """The limits of the field a path variable fills."""
    rules = limits.rules_of(field)
    return limits.value_keywords(rules) if rules is not None else {}


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}
