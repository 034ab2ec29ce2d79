"""The gateway on a real socket of 127.0.0.1, in the test's event loop, in front of real chat-services."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import cast

import uvicorn
from grpclib._typing import IServable
from grpclib.protocol import H2Protocol
from grpclib.server import Server

from chat_gateway import GatewayConfig, UpstreamAddress, app_factory
from chat_services.connections import close_connections
from tests.services.clients import until


@asynccontextmanager
async def running_gateway(upstream_port: int, **overrides: object) -> AsyncIterator[str]:
    """Serve the gateway on an ephemeral port in front of ``upstream_port``; yield its base URL."""
    config = GatewayConfig(upstream=UpstreamAddress("127.0.0.1", upstream_port), port=0, **overrides)  # type: ignore[arg-type]
    app = app_factory(config.upstream, config)
    server = uvicorn.Server(
        uvicorn.Config(
            app, host="127.0.0.1", port=0, log_level="warning", ws_max_size=config.body_limit, lifespan="on"
        )
    )
    serving = asyncio.create_task(server.serve())
    try:
        await until(lambda: server.started or serving.done())
        if serving.done():
            serving.result()
        port = server.servers[0].sockets[0].getsockname()[1]
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(serving, 30)


class _ClosingServer(Server):
    """grpclib's ``Server``, which leaves its clients' connections open when it closes: this one
    closes them. A connection of the gateway's grpcio channel can outlive the gateway (grpcio
    closes its socket on its own thread): left open, its transport outlived the test's event
    loop and failed a later test with a ResourceWarning."""

    def __init__(self, handlers: list[IServable]) -> None:
        super().__init__(handlers)
        self.protocols: list[H2Protocol] = []

    def _protocol_factory(self) -> H2Protocol:
        protocol = super()._protocol_factory()
        self.protocols.append(protocol)
        return protocol


@asynccontextmanager
async def scripted_services(*services: IServable) -> AsyncIterator[int]:
    """Serve ``services`` (stand-ins for chat-services) on a free port of 127.0.0.1; yield the port.

    On exit the server stops and every connection to it is closed.
    """
    server = _ClosingServer(list(services))
    await server.start("127.0.0.1", 0)
    listening = cast(asyncio.Server, server._server)  # grpclib keeps its asyncio server private
    try:
        yield int(listening.sockets[0].getsockname()[1])
    finally:
        server.close()
        await server.wait_closed()
        close_connections(server.protocols)
