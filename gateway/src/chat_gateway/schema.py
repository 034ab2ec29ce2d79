"""The RPCs the gateway serves, read from the schema image shipped in the SDK wheel.

Every method of every ``chat.*`` service that carries a ``google.api.http`` option
becomes one :class:`Rpc`: its route, its streaming kind, its ``_pb2`` message classes
and its comment. Adding an RPC with a route to the schema adds it here, with no
gateway code to touch.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from dataclasses import dataclass
from enum import Enum
from functools import cache
from typing import cast

from google.api import annotations_pb2, http_pb2
from google.protobuf import descriptor_pb2, descriptor_pool
from google.protobuf.descriptor import Descriptor
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass

import chat_sdk.schema
from chat_gateway.comments import Comments
from chat_gateway.templates import PathTemplate

SCHEMA_PACKAGE_PREFIX = "chat."
VERBS = ("get", "put", "post", "delete", "patch")


class Kind(Enum):
    """How an RPC streams, which decides how HTTP carries it."""

    UNARY = "unary"
    SERVER_STREAM = "server_stream"  # Server-Sent Events
    CLIENT_STREAM = "client_stream"  # a JSON array body
    BIDI_STREAM = "bidi_stream"  # a WebSocket

    @classmethod
    def of(cls, method: descriptor_pb2.MethodDescriptorProto) -> Kind:
        """The kind of a method, from its streaming flags."""
        if method.client_streaming and method.server_streaming:
            return cls.BIDI_STREAM
        if method.client_streaming:
            return cls.CLIENT_STREAM
        if method.server_streaming:
            return cls.SERVER_STREAM
        return cls.UNARY


@dataclass(frozen=True)
class Rpc:
    """One RPC and its HTTP route."""

    service: str  # full name, e.g. chat.v1.MessageService
    name: str  # e.g. GetMessage
    kind: Kind
    verb: str  # lower case HTTP method
    template: PathTemplate
    body: str  # "" (no body), "*" (the whole request) or a top-level field name
    request: type[Message]
    response: type[Message]
    comment: str
    read_only: bool

    @property
    def grpc_path(self) -> str:
        """The gRPC method path, e.g. ``/chat.v1.MessageService/GetMessage``."""
        return f"/{self.service}/{self.name}"

    @property
    def request_descriptor(self) -> Descriptor:
        """The descriptor of the request message."""
        return descriptor_of(self.request)

    @property
    def response_descriptor(self) -> Descriptor:
        """The descriptor of the response message."""
        return descriptor_of(self.response)

    @property
    def operation_id(self) -> str:
        """A unique, stable name for the route (OpenAPI's operationId)."""
        return f"{self.service.rsplit('.', 1)[-1]}_{self.name}"


def _import_standard_target(files: list[descriptor_pb2.FileDescriptorProto]) -> None:
    """Import the ``_pb2`` module of every schema file, registering it in the default pool."""
    for file in files:
        if file.package.startswith(SCHEMA_PACKAGE_PREFIX):
            importlib.import_module(file.name.removesuffix(".proto").replace("/", ".") + "_pb2")


def http_rule(method: descriptor_pb2.MethodDescriptorProto) -> http_pb2.HttpRule | None:
    """The method's ``google.api.http`` option, or None when it has none."""
    # The image may have been parsed before annotations_pb2 was imported, leaving the
    # option as an unknown field: parse the options again with the extension known.
    options = descriptor_pb2.MethodOptions.FromString(method.options.SerializeToString())
    if not options.HasExtension(annotations_pb2.http):
        return None
    return options.Extensions[annotations_pb2.http]


def _route_of(rule: http_pb2.HttpRule) -> tuple[str, str]:
    pattern = rule.WhichOneof("pattern")
    if pattern is None or pattern == "custom":
        raise ValueError("a google.api.http rule needs one of get, put, post, delete or patch")
    return pattern, getattr(rule, pattern)


def descriptor_of(message: type[Message]) -> Descriptor:
    """The descriptor of a ``_pb2`` message class (typed: the runtime's is the upb one)."""
    return cast(Descriptor, message.DESCRIPTOR)


def message_class(full_name: str) -> type[Message]:
    """The ``_pb2`` class of a message of the schema, by full name (without a leading dot)."""
    return GetMessageClass(descriptor_pool.Default().FindMessageTypeByName(full_name))


@cache
def comments() -> Comments:
    """The leading comments of every element of the schema, by full name."""
    return Comments(chat_sdk.schema.file_descriptor_set())


@cache
def rpcs() -> tuple[Rpc, ...]:
    """Every RPC of the schema that has an HTTP route, in schema order."""
    files = list(chat_sdk.schema.file_descriptor_set().file)
    _import_standard_target(files)
    return tuple(walk(files))


def walk(files: list[descriptor_pb2.FileDescriptorProto]) -> Iterator[Rpc]:
    """Every routed RPC of ``files`` (whose ``_pb2`` modules are imported)."""
    notes = comments()
    for file in files:
        if not file.package.startswith(SCHEMA_PACKAGE_PREFIX):
            continue
        for service in file.service:
            service_name = f"{file.package}.{service.name}"
            for method in service.method:
                rule = http_rule(method)
                if rule is None:
                    continue
                verb, path = _route_of(rule)
                request = message_class(method.input_type.lstrip("."))
                yield Rpc(
                    service=service_name,
                    name=method.name,
                    kind=Kind.of(method),
                    verb=verb,
                    template=PathTemplate.parse(path, descriptor_of(request)),
                    body=rule.body,
                    request=request,
                    response=message_class(method.output_type.lstrip(".")),
                    comment=notes.of(f"{service_name}.{method.name}"),
                    read_only=method.options.idempotency_level
                    == descriptor_pb2.MethodOptions.NO_SIDE_EFFECTS,
                )
