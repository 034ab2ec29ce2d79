"""The benchmark's gateway column: chat-gateway serve as the runner starts it, in front of chat-services."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from chat_bench.servers import ServerProcess
from chat_bench.transports import GATEWAY_COMMAND, GATEWAY_HOOK, GatewayTransport, Pb2Transport

from chat.v1 import message_service_pb2 as pb
from chat_services.server import App
from tests.services.conftest import app, backend, database  # noqa: F401 - the services fixture, shared


@pytest.fixture
async def gateway(app: App, tmp_path: Path) -> AsyncIterator[GatewayTransport]:  # noqa: F811 - the fixture above
    """The gateway process started by the runner's command, and a GatewayTransport to it."""
    assert GATEWAY_COMMAND is not None and GATEWAY_HOOK is GatewayTransport
    server = ServerProcess("gateway", GATEWAY_COMMAND(app.port), tmp_path / "gateway.log")
    cpus = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else set()
    port = await server.start(cpus)
    assert port > 0
    client = GatewayTransport("127.0.0.1", port)
    try:
        yield client
    finally:
        await client.close()
        server.stop()


async def test_gateway_transport_makes_every_call_kind(app: App, gateway: GatewayTransport) -> None:  # noqa: F811
    """send, page, get, stream and complete each go through the gateway and reach the services."""
    await gateway.send("gw-bench", ["first", "second", "third"], "gw-key")
    assert await gateway.page("gw-bench", 2) == 2
    assert await gateway.page("gw-bench", 50) == 3
    assert await gateway.stream("gw-bench") == 3

    direct = Pb2Transport("127.0.0.1", app.port)
    try:
        listed = await direct.messages.ListMessages(pb.ListMessagesRequest(conversation_id="gw-bench"))
    finally:
        await direct.close()
    assert listed is not None
    assert [m.content for m in listed.messages] == ["first", "second", "third"]
    await gateway.get(listed.messages[0].id)

    assert await gateway.complete("gw-bench", "Summarise the conversation.") > 0


async def test_gateway_transport_raises_on_a_failed_call(gateway: GatewayTransport) -> None:
    """A NOT_FOUND from the services is an error of the benchmark call, not a silent success."""
    with pytest.raises(RuntimeError, match="HTTP 404"):
        await gateway.get("no-such-message")
