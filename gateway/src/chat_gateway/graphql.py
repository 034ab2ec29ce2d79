"""GraphQL over the schema: reads as queries, writes as mutations, types generated from the descriptors.

``getMessage(request: {messageId: "m-1", includeUser: true}) { message { content author { displayName } } }``:
each RPC marked ``idempotency_level = NO_SIDE_EFFECTS`` becomes a query field named after it,
taking its request as one input object and returning its response type. Object and input
types are built from the messages at start-up, so a new read-only RPC appears without
gateway code. Calls go through a per-request DataLoader keyed by the request's bytes:
identical requests in one query (``a: getMessage(...) b: getMessage(...)``, or the same
conversation listed under several aliases) cost one upstream call, and distinct ones are
sent together rather than one after another.

Every other unary RPC becomes a mutation field taking its request the same way
(``editMessage(request: {...})``), and every client-streaming RPC a mutation taking the
list of its requests (``sendMessages(requests: [{message: {...}}])``). Mutations run one
after another, as GraphQL specifies, and are never deduplicated.
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass
from typing import Any

import strawberry
from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor, EnumDescriptor, FieldDescriptor
from google.protobuf.message import Message
from graphql import GraphQLError
from starlette.requests import HTTPConnection
from strawberry.dataloader import DataLoader
from strawberry.extensions import (
    DisableIntrospection,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    QueryDepthLimiter,
    SchemaExtension,
)
from strawberry.fastapi import BaseContext, GraphQLRouter
from strawberry.types import ExecutionContext, Info

from chat_gateway.errors import GatewayError, status_body
from chat_gateway.rest import caller_of, forwarded_metadata
from chat_gateway.schema import Kind, Rpc, comments, descriptor_of, rpcs
from chat_gateway.transcode import build_request
from chat_gateway.upstream import Upstream, upstream_errors

_STRING_TYPES = {"google.protobuf.Timestamp", "google.protobuf.Duration"}  # RFC 3339 / "1.5s" strings
_INT32 = {FieldDescriptor.TYPE_INT32, FieldDescriptor.TYPE_SINT32, FieldDescriptor.TYPE_SFIXED32}
_FLOATS = {FieldDescriptor.TYPE_FLOAT, FieldDescriptor.TYPE_DOUBLE}

LoaderKey = tuple[str, bytes]


class TypeFactory:
    """GraphQL object, input and enum types of protobuf messages, built once per message."""

    def __init__(self) -> None:
        self.notes = comments()
        self._objects: dict[str, type] = {}
        self._inputs: dict[str, type] = {}
        self._enums: dict[str, type[enum.Enum]] = {}

    @staticmethod
    def _name(full_name: str, suffix: str = "") -> str:
        return full_name.removeprefix("chat.v1.").replace(".", "_") + suffix

    def object_type(self, message: Descriptor) -> type:
        """The output type of a message."""
        return self._build(message, self._objects, "", strawberry.type, input_side=False)

    def input_type(self, message: Descriptor) -> type:
        """The input type of a message (every field optional, as in proto3)."""
        return self._build(message, self._inputs, "Input", strawberry.input, input_side=True)

    def _build(
        self, message: Descriptor, cache: dict[str, type], suffix: str, decorate: Any, *, input_side: bool
    ) -> type:
        if message.full_name in cache:
            return cache[message.full_name]
        annotations = {
            field.name: self._field_type(field, input_side=input_side) | None for field in message.fields
        }
        namespace: dict[str, Any] = {"__annotations__": annotations}
        for field in message.fields:
            namespace[field.name] = strawberry.field(
                default=None, description=self.notes.of(field.full_name) or None
            )
        cls = type(self._name(message.full_name, suffix), (), namespace)
        built: type = decorate(cls, description=self.notes.of(message.full_name) or None)
        cache[message.full_name] = built
        return built

    def _field_type(self, field: FieldDescriptor, *, input_side: bool) -> Any:
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            entry = (
                self.object_type(field.message_type)
                if not input_side
                else self.input_type(field.message_type)
            )
            return list[entry]  # type: ignore[valid-type]
        single = self._single_type(field, input_side=input_side)
        return list[single] if field.is_repeated else single  # type: ignore[valid-type]

    def _single_type(self, field: FieldDescriptor, *, input_side: bool) -> Any:
        if field.message_type is not None:
            if field.message_type.full_name in _STRING_TYPES:
                return str
            return self.input_type(field.message_type) if input_side else self.object_type(field.message_type)
        if field.enum_type is not None:
            return self.enum_type(field.enum_type)
        if field.type == FieldDescriptor.TYPE_BOOL:
            return bool
        if field.type in _INT32:
            return int
        if field.type in _FLOATS:
            return float
        return str  # strings, bytes (base64), and 64-bit or unsigned integers (GraphQL's Int is 32-bit)

    def enum_type(self, descriptor: EnumDescriptor) -> type[enum.Enum]:
        """The GraphQL enum of a protobuf enum, values named as in the schema."""
        if descriptor.full_name not in self._enums:
            members = {value.name: value.name for value in descriptor.values}
            python_enum = enum.Enum(self._name(descriptor.full_name), members)  # type: ignore[misc]
            self._enums[descriptor.full_name] = strawberry.enum(
                python_enum, description=self.notes.of(descriptor.full_name) or None
            )
        return self._enums[descriptor.full_name]

    def to_object(self, message: Message) -> Any:
        """A protobuf message as an instance of its output type."""
        return self._from_json(
            descriptor_of(type(message)), json_format.MessageToDict(message, preserving_proto_field_name=True)
        )

    def _from_json(self, descriptor: Descriptor, data: dict[str, Any]) -> Any:
        values: dict[str, Any] = {}
        for field in descriptor.fields:
            if field.name not in data:
                continue
            raw = data[field.name]
            if field.message_type is not None and field.message_type.GetOptions().map_entry:
                entry = self.object_type(field.message_type)
                values[field.name] = [entry(key=key, value=value) for key, value in sorted(raw.items())]
            elif field.is_repeated:
                values[field.name] = [self._value(field, item) for item in raw]
            else:
                values[field.name] = self._value(field, raw)
        return self.object_type(descriptor)(**values)

    def _value(self, field: FieldDescriptor, raw: Any) -> Any:
        if field.message_type is not None and field.message_type.full_name not in _STRING_TYPES:
            return self._from_json(field.message_type, raw)
        if field.enum_type is not None:
            return self.enum_type(field.enum_type)[raw]
        return raw


def _input_to_json(descriptor: Descriptor, value: Any) -> dict[str, Any]:
    """An input object as a ProtoJSON document (proto field names, unset fields left out)."""
    document: dict[str, Any] = {}
    for field in descriptor.fields:
        item = getattr(value, field.name, None)
        if item is None:
            continue
        document[field.name] = _input_value(field, item)
    return document


def _input_value(field: FieldDescriptor, item: Any) -> Any:
    if field.message_type is not None and field.message_type.GetOptions().map_entry:
        return {entry.key: entry.value for entry in item}
    if field.is_repeated:
        return [_single_input(field, element) for element in item]
    return _single_input(field, item)


def _single_input(field: FieldDescriptor, item: Any) -> Any:
    if field.message_type is not None and field.message_type.full_name not in _STRING_TYPES:
        return _input_to_json(field.message_type, item)
    if isinstance(item, enum.Enum):
        return item.value
    return item


class Calls(BaseContext):
    """The upstream calls of one GraphQL request, deduplicated and sent together by a DataLoader."""

    def __init__(
        self, upstream: Upstream, by_name: dict[str, Rpc], metadata: dict[str, str], caller: str
    ) -> None:
        super().__init__()
        self.upstream = upstream
        self.by_name = by_name
        self.metadata = metadata
        self.caller = caller
        self.loader: DataLoader[LoaderKey, Message] = DataLoader(load_fn=self._load)

    async def _load(self, keys: list[LoaderKey]) -> list[Message | BaseException]:
        async def one(key: LoaderKey) -> Message:
            rpc = self.by_name[key[0]]
            return await self.upstream.unary(rpc, rpc.request.FromString(key[1]), self.metadata, self.caller)

        return list(await asyncio.gather(*(one(key) for key in keys), return_exceptions=True))


def _request_of(rpc: Rpc, value: Any, index: int | None = None) -> Message:
    """The request message of an input object, refused as REST refuses it (field path, plain words)."""
    return build_request(
        rpc, {}, (), _input_to_json(rpc.request_descriptor, value), index=index, body_rule="*"
    )


def _query_field(rpc: Rpc, factory: TypeFactory) -> Any:
    request_input = factory.input_type(rpc.request_descriptor)
    response_type = factory.object_type(rpc.response_descriptor)

    async def resolve(info: Info[Calls, None], request: Any) -> Any:
        message = _request_of(rpc, request)
        key = (rpc.operation_id, message.SerializeToString(deterministic=True))
        return factory.to_object(await info.context.loader.load(key))

    resolve.__annotations__ = {"info": Info[Calls, None], "request": request_input, "return": response_type}
    return strawberry.field(resolver=resolve, description=rpc.comment or None)


def _mutation_field(rpc: Rpc, factory: TypeFactory) -> Any:
    """A write: a unary RPC takes ``request``, a client-streaming one ``requests`` (sent in order)."""
    request_input = factory.input_type(rpc.request_descriptor)
    response_type = factory.object_type(rpc.response_descriptor)

    async def unary(info: Info[Calls, None], request: Any) -> Any:
        calls = info.context
        reply = await calls.upstream.unary(rpc, _request_of(rpc, request), calls.metadata, calls.caller)
        return factory.to_object(reply)

    async def streamed(info: Info[Calls, None], requests: list[Any]) -> Any:
        calls = info.context
        messages = [_request_of(rpc, value, index) for index, value in enumerate(requests)]
        reply = await calls.upstream.client_stream(rpc, messages, calls.metadata, calls.caller)
        return factory.to_object(reply)

    if rpc.kind is Kind.UNARY:
        resolve: Any = unary
        resolve.__annotations__ = {
            "info": Info[Calls, None],
            "request": request_input,
            "return": response_type,
        }
    else:
        resolve = streamed
        resolve.__annotations__ = {
            "info": Info[Calls, None],
            "requests": list[request_input],  # type: ignore[valid-type]
            "return": response_type,
        }
    return strawberry.mutation(resolver=resolve, description=rpc.comment or None)


def _subscription_field(rpc: Rpc, factory: TypeFactory) -> Any:
    """A server stream: one event per reply; unsubscribing (or closing the socket) cancels the call."""
    request_input = factory.input_type(rpc.request_descriptor)
    response_type = factory.object_type(rpc.response_descriptor)

    async def resolve(info: Info[Calls, None], request: Any) -> AsyncGenerator[Any, None]:
        calls = info.context
        message = _request_of(rpc, request)
        # A request the service's rules refuse fails the first read, before any event.
        async with calls.upstream.open(rpc, calls.metadata, calls.caller) as stream:
            with upstream_errors():
                await stream.send_message(message, end=True)
            while True:
                with upstream_errors():
                    reply = await stream.recv_message()
                if reply is None:
                    return
                yield factory.to_object(reply)

    resolve.__annotations__ = {
        "info": Info[Calls, None],
        "request": request_input,
        "return": AsyncGenerator[response_type, None],  # type: ignore[valid-type]
    }
    return strawberry.subscription(resolver=resolve, description=rpc.comment or None)


@dataclass(frozen=True)
class GraphQLLimits:
    """What one GraphQL document may ask: nesting of selections, aliases, tokens; and introspection."""

    max_depth: int = 8
    max_aliases: int = 15
    max_tokens: int = 2000
    introspection: bool = True

    def extensions(self) -> list[Callable[[], SchemaExtension]]:
        """strawberry's own extensions enforcing these limits (checked before any resolver runs)."""
        found: list[Callable[[], SchemaExtension]] = [
            lambda: MaxTokensLimiter(max_token_count=self.max_tokens),
            lambda: MaxAliasesLimiter(max_alias_count=self.max_aliases),
            lambda: QueryDepthLimiter(max_depth=self.max_depth),
        ]
        if not self.introspection:
            found.append(DisableIntrospection)
        return found


def _field_name(rpc: Rpc) -> str:
    return rpc.name[0].lower() + rpc.name[1:]


class _Schema(strawberry.Schema):
    """strawberry's schema, with the gateway's own errors in the one error shape and not logged.

    A GatewayError (a refused request, an upstream status) is the caller's business: it
    gets ``extensions.status``, the google.rpc.Status REST answers with, and no traceback
    in the log per request. Other errors are logged as strawberry does.
    """

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        unexpected = []
        for error in errors:
            cause = error.original_error
            if isinstance(cause, GatewayError):
                status = status_body(cause.status, cause.message, cause.details)
                error.extensions = {**(error.extensions or {}), "status": status}
            else:
                unexpected.append(error)
        super().process_errors(unexpected, execution_context)


def build_schema(
    read_rpcs: list[Rpc],
    limits: GraphQLLimits | None = None,
    write_rpcs: list[Rpc] | None = None,
    stream_rpcs: list[Rpc] | None = None,
) -> strawberry.Schema:
    """A schema whose Query has one field per read-only unary RPC, Mutation one per write,
    and Subscription one per server stream."""
    factory = TypeFactory()
    reads = {_field_name(rpc): _query_field(rpc, factory) for rpc in read_rpcs}
    query = strawberry.type(type("Query", (), reads), description="Reads of the chat.v1 API.")
    writes = {_field_name(rpc): _mutation_field(rpc, factory) for rpc in write_rpcs or []}
    streams = {_field_name(rpc): _subscription_field(rpc, factory) for rpc in stream_rpcs or []}
    return _Schema(
        query=query,
        mutation=_root("Mutation", writes, "Writes of the chat.v1 API."),
        subscription=_root("Subscription", streams, "Streams of the chat.v1 API."),
        extensions=(limits or GraphQLLimits()).extensions(),
    )


def _root(name: str, fields: dict[str, Any], description: str) -> type | None:
    """A root type with ``fields``, or None when there are none (GraphQL forbids an empty type)."""
    return strawberry.type(type(name, (), fields), description=description) if fields else None


def read_only_rpcs() -> list[Rpc]:
    """The RPCs GraphQL serves as queries: unary and marked NO_SIDE_EFFECTS."""
    return [rpc for rpc in rpcs() if rpc.kind is Kind.UNARY and rpc.read_only]


def stream_rpcs() -> list[Rpc]:
    """The RPCs GraphQL serves as subscriptions: the server-streaming ones."""
    return [rpc for rpc in rpcs() if rpc.kind is Kind.SERVER_STREAM]


def write_rpcs() -> list[Rpc]:
    """The RPCs GraphQL serves as mutations: the other unary ones, and the client-streaming ones."""
    return [
        rpc
        for rpc in rpcs()
        if (rpc.kind is Kind.UNARY and not rpc.read_only) or rpc.kind is Kind.CLIENT_STREAM
    ]


def graphql_router(upstream: Upstream, limits: GraphQLLimits | None = None) -> GraphQLRouter[Calls, None]:
    """The ``/graphql`` endpoint (with GraphiQL in a browser when introspection is on)."""
    settings = limits or GraphQLLimits()
    read = read_only_rpcs()
    by_name = {rpc.operation_id: rpc for rpc in read}

    async def context(connection: HTTPConnection) -> Calls:  # a request, or the subscriptions' WebSocket
        return Calls(upstream, by_name, forwarded_metadata(connection.headers), caller_of(connection))

    return GraphQLRouter(
        build_schema(read, settings, write_rpcs(), stream_rpcs()),
        context_getter=context,
        graphql_ide="graphiql" if settings.introspection else None,
    )
