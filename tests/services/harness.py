"""Serving handlers on a real socket of 127.0.0.1, the way the production server does."""

from __future__ import annotations

from collections.abc import AsyncIterator, Collection
from contextlib import asynccontextmanager

from grpclib._typing import IServable
from grpclib.encoding.proto import ProtoStatusDetailsCodec
from grpclib.events import RecvRequest, listen

from chat_services.boundary import BoundedProtoCodec
from chat_services.config import DEFAULT_MAX_MESSAGE_BYTES, ServiceConfig
from chat_services.connections import GuardedServer
from chat_services.hygiene import TransportLimits
from chat_services.lifecycle import Lifecycle


@asynccontextmanager
async def serve(
    handlers: Collection[IServable],
    *,
    lifecycle: Lifecycle | None = None,
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
) -> AsyncIterator[int]:
    """Serve ``handlers`` on an ephemeral port of 127.0.0.1 with the production codec and events."""
    server = GuardedServer(
        list(handlers),
        codec=BoundedProtoCodec(max_message_bytes),
        status_details_codec=ProtoStatusDetailsCodec(),
        limits=TransportLimits.from_config(ServiceConfig(max_message_bytes=max_message_bytes)),
    )
    listen(server, RecvRequest, (lifecycle or Lifecycle()).on_request)
    await server.start("127.0.0.1", 0)
    try:
        yield server.port
    finally:
        server.close()
        await server.wait_closed()
