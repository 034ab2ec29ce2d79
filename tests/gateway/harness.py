"""The gateway on a real socket of 127.0.0.1, in the test's event loop, in front of real chat-services."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import uvicorn

from chat_gateway import GatewayConfig, UpstreamAddress, app_factory
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
