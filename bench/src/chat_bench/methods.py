"""chat.v1 methods by full name, resolved from the schema image the SDK wheel ships."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from google.protobuf.descriptor import MethodDescriptor
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass
from grpclib.const import Cardinality

import chat_sdk.schema


@dataclass(frozen=True)
class Method:
    """One RPC: its path, its call kind, and the runtime (upb) classes of its messages."""

    path: str  # /chat.v1.MessageService/GetMessage
    cardinality: Cardinality
    request_type: type[Message]
    reply_type: type[Message]

    @property
    def client_streaming(self) -> bool:
        """Whether the client sends a stream of requests."""
        return self.cardinality in (Cardinality.STREAM_UNARY, Cardinality.STREAM_STREAM)

    @property
    def server_streaming(self) -> bool:
        """Whether the server answers with a stream of replies."""
        return self.cardinality in (Cardinality.UNARY_STREAM, Cardinality.STREAM_STREAM)


@cache
def _pool() -> object:
    return chat_sdk.schema.descriptor_pool()


def resolve(name: str) -> Method:
    """The method named ``chat.v1.MessageService/GetMessage`` (a leading ``/`` or a ``.`` works too).

    Raises ``ValueError`` naming what was not found, and the methods of the service
    when the service exists.
    """
    cleaned = name.strip().lstrip("/")
    service_name, sep, method_name = cleaned.rpartition("/")
    if not sep:
        service_name, sep, method_name = cleaned.rpartition(".")
    if not sep or not service_name or not method_name:
        raise ValueError(f"method {_short(name)} is not package.Service/Method")
    pool = _pool()
    try:
        service = pool.FindServiceByName(service_name)  # type: ignore[attr-defined]
    except KeyError:
        raise ValueError(f"no service {_short(service_name)} in the chat schema") from None
    descriptor: MethodDescriptor | None = service.methods_by_name.get(method_name)
    if descriptor is None:
        known = ", ".join(sorted(service.methods_by_name))
        raise ValueError(f"{service.full_name} has no method {_short(method_name)}; it has {known}")
    cardinality = {
        (False, False): Cardinality.UNARY_UNARY,
        (False, True): Cardinality.UNARY_STREAM,
        (True, False): Cardinality.STREAM_UNARY,
        (True, True): Cardinality.STREAM_STREAM,
    }[(descriptor.client_streaming, descriptor.server_streaming)]
    return Method(
        path=f"/{service.full_name}/{descriptor.name}",
        cardinality=cardinality,
        request_type=GetMessageClass(descriptor.input_type),
        reply_type=GetMessageClass(descriptor.output_type),
    )


def _short(text: str, limit: int = 80) -> str:
    """``text`` quoted and cut to ``limit`` characters, so errors never echo unbounded input."""
    return repr(text if len(text) <= limit else text[:limit] + "...")
