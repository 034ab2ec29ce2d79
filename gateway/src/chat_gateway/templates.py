"""``google.api.http`` path templates, compiled to Starlette route paths.

Supported: literal segments, ``{field}`` and ``{field=*}`` (one segment), ``{field=**}``
(the rest of the path), nested field paths (``{message.conversation_id}``) and a trailing
custom verb (``/v1/messages:send``). A variable must name a singular string or integer
field of the request; anything else is refused when the gateway starts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from google.protobuf.descriptor import Descriptor, FieldDescriptor

_VARIABLE = re.compile(r"\{([a-z_][a-z0-9_.]*)(?:=([^}]*))?\}")
_SCALAR_TYPES = frozenset(
    {
        FieldDescriptor.TYPE_STRING,
        FieldDescriptor.TYPE_INT32,
        FieldDescriptor.TYPE_INT64,
        FieldDescriptor.TYPE_UINT32,
        FieldDescriptor.TYPE_UINT64,
        FieldDescriptor.TYPE_SINT32,
        FieldDescriptor.TYPE_SINT64,
    }
)


@dataclass(frozen=True)
class Variable:
    """A path variable: the request field it fills and its Starlette parameter name."""

    field_path: str  # e.g. message.conversation_id
    parameter: str  # e.g. message__conversation_id
    json_path: tuple[str, ...]  # lowerCamel names, e.g. ("message", "conversationId")
    field: FieldDescriptor  # the request field it fills (conversation_id of the message field)


@dataclass(frozen=True)
class PathTemplate:
    """A compiled path template."""

    template: str  # as written in the schema
    route_path: str  # Starlette's syntax
    openapi_path: str  # OpenAPI's syntax
    variables: tuple[Variable, ...]

    @classmethod
    def parse(cls, template: str, request: Descriptor) -> PathTemplate:
        """Compile ``template`` for a method whose request message is ``request``."""
        if not template.startswith("/"):
            raise ValueError(f"path template {template!r} must start with /")
        variables: list[Variable] = []
        route_parts: list[str] = []
        openapi_parts: list[str] = []
        position = 0
        for match in _VARIABLE.finditer(template):
            literal = template[position : match.start()]
            route_parts.append(literal)
            openapi_parts.append(literal)
            field_path, pattern = match.group(1), match.group(2) or "*"
            json_path, field = _resolve(field_path, request)
            variable = Variable(field_path, field_path.replace(".", "__"), json_path, field)
            variables.append(variable)
            if pattern == "*":
                route_parts.append("{" + variable.parameter + "}")
            elif pattern == "**":
                route_parts.append("{" + variable.parameter + ":path}")
            else:
                raise ValueError(f"path template {template!r}: only * and ** variable patterns are supported")
            openapi_parts.append("{" + field_path + "}")
            position = match.end()
        route_parts.append(template[position:])
        openapi_parts.append(template[position:])
        if "{" in template[position:] or "}" in template[position:]:
            raise ValueError(f"path template {template!r} has a malformed variable")
        return cls(template, "".join(route_parts), "".join(openapi_parts), tuple(variables))

    def bound_fields(self) -> frozenset[str]:
        """The top-level request fields a path variable binds."""
        return frozenset(variable.field_path.split(".", 1)[0] for variable in self.variables)


def _resolve(field_path: str, request: Descriptor) -> tuple[tuple[str, ...], FieldDescriptor]:
    """The lowerCamel JSON path of ``field_path`` in ``request``, and the field it ends on."""
    message: Descriptor | None = request
    names: list[str] = []
    field: FieldDescriptor | None = None
    for name in field_path.split("."):
        if message is None:
            raise ValueError(f"path variable {field_path!r} goes through a non-message field")
        field = message.fields_by_name.get(name)
        if field is None:
            raise ValueError(f"path variable {field_path!r} names no field of {request.full_name}")
        names.append(field.json_name)
        message = field.message_type
    if field is None or field.is_repeated or field.type not in _SCALAR_TYPES:
        raise ValueError(f"path variable {field_path!r} must be a singular string or integer field")
    return tuple(names), field
