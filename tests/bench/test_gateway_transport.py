"""The benchmark's gateway column: chat-gateway serve as the runner starts it, in front of chat-services."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from chat_bench.report import criteria_rows, gateway_rows
from chat_bench.runner import BASELINE, Results, Settings, Shape
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


async def never_called(_transport: object, _index: int) -> None:
    """A shape's call, for results made by hand: nothing runs it."""


def results_with(latency_ratios: dict[str, float], throughput_ratios: list[float]) -> Results:
    """Results of one round per throughput ratio: the baseline at 1 ms and 100 calls/s, the gateway scaled."""
    shapes = [Shape(name, name, never_called, lambda _s: 1) for name in latency_ratios]
    results = Results(Settings(), ["pb2", BASELINE, "gateway"], shapes, pinned=False)
    for name, ratio in latency_ratios.items():
        results.latencies[(name, BASELINE)] = [[0.001]] * len(throughput_ratios)
        results.latencies[(name, "gateway")] = [[0.001 * ratio]] * len(throughput_ratios)
    results.c50[BASELINE] = [(0.01, 100.0)] * len(throughput_ratios)
    results.c50["gateway"] = [(0.01, 100.0 * ratio) for ratio in throughput_ratios]
    return results


def test_the_gateway_is_judged_by_its_own_targets() -> None:
    """≤ 1.3x the baseline's p50 in every shape and ≥ 0.7x its c=50 throughput, not the ADR's gRPC targets."""
    missed = gateway_rows(results_with({"a": 1.2, "b": 1.4}, [0.6, 0.65, 0.9]))
    assert [(row[0], row[3]) for row in missed] == [
        ("latency, gateway (p50, c=1)", "**FAIL**"),
        ("throughput, gateway (GetMessage, c=50)", "**FAIL**"),
    ]
    assert "worst b: 1.40x" in missed[0][2] and missed[1][2] == "0.65x (rounds 0.60-0.90)"
    met = gateway_rows(results_with({"a": 1.2, "b": 1.25}, [0.7, 0.8, 0.9]))
    assert [row[3] for row in met] == ["**pass**", "**pass**"]


def test_the_adrs_grpc_latency_rows_leave_the_gateway_out() -> None:
    """The ADR's "≥ 50% lower" is a promise of gRPC between services: no row judges the REST edge by it."""
    results = results_with({"a": 1.2}, [0.9])
    results.latencies[("a", "pb2")] = [[0.0004]]
    criteria = [row[0] for row in criteria_rows(results)]
    assert "latency, pb2 client (p50, c=1)" in criteria
    assert not [name for name in criteria if "gateway" in name]
