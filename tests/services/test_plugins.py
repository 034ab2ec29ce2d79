"""PluginService: entry-point discovery, worker processes, timeouts, crashes and the event stream."""

from __future__ import annotations

import asyncio
import datetime
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from google.protobuf.duration_pb2 import Duration
from grpclib.const import Status

from chat.v1 import plugin_service_grpc, plugin_service_pb2
from chat_sdk import v1
from chat_services.lifecycle import Lifecycle
from chat_services.plugin.builtins import CALCULATOR, WORD_COUNT
from chat_services.plugin.events import PluginEventHub
from chat_services.plugin.registry import InstalledPlugin, PluginRegistry
from chat_services.plugin.runner import PluginRunner
from chat_services.plugin.service import PluginService
from chat_services.server import App

from . import plugin_fixtures
from .clients import channel, expect_status
from .harness import serve

Invoke = plugin_service_pb2.InvokePluginRequest
EventType = plugin_service_pb2.PluginEventType


def _children() -> list[int]:
    """Process IDs of this process's live children (the plugin workers)."""
    children = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        if int(fields[1]) == os.getpid() and fields[0] != "Z":
            children.append(int(entry.name))
    return children


@asynccontextmanager
async def plugin_server(lifecycle: Lifecycle | None = None) -> AsyncIterator[int]:
    """A PluginService with the test plugins and two built-ins, on 127.0.0.1."""
    module = plugin_fixtures.__name__
    registry = PluginRegistry(
        [InstalledPlugin(spec, f"{module}:{name}") for name, spec in _FIXTURES.items()]
        + [
            InstalledPlugin(WORD_COUNT, "chat_services.plugin.builtins:WORD_COUNT"),
            InstalledPlugin(CALCULATOR, "chat_services.plugin.builtins:CALCULATOR"),
        ]
    )
    lifecycle = lifecycle or Lifecycle()
    service = PluginService(
        registry, PluginRunner(), PluginEventHub(), lifecycle, default_timeout=10.0, max_timeout=60.0
    )
    async with serve([service], lifecycle=lifecycle) as port:
        yield port


_FIXTURES = {
    "CRASHER": plugin_fixtures.CRASHER,
    "RAISER": plugin_fixtures.RAISER,
    "HANGER": plugin_fixtures.HANGER,
    "GARBLER": plugin_fixtures.GARBLER,
    "ECHO": plugin_fixtures.ECHO,
}


async def test_the_built_in_plugins_are_discovered_through_entry_points(app: App) -> None:
    async with channel(app.port) as opened:
        stub = v1.PluginServiceStub(opened, timeout=10)
        listed = await stub.list_plugins(v1.ListPluginsRequest())
        assert [p.name for p in listed.plugins] == ["calculator", "summarize", "word_count"]
        by_name = {p.name: p for p in listed.plugins}
        assert by_name["summarize"].argument_names == ["text", "max_sentences"]
        assert by_name["calculator"].version == "1.0.0" and by_name["calculator"].description
        assert listed.page is not None and listed.page.next_page_token == ""

        walked, token = [], ""
        while True:
            page = await stub.list_plugins(
                v1.ListPluginsRequest(page=v1.PageRequest(page_size=1, page_token=token))
            )
            walked += [p.name for p in page.plugins]
            assert page.page is not None
            if not (token := page.page.next_page_token):
                break
        assert walked == ["calculator", "summarize", "word_count"]
        await expect_status(
            stub.list_plugins(v1.ListPluginsRequest(page=v1.PageRequest(page_token="bogus"))),
            Status.INVALID_ARGUMENT,
            "page.page_token",
        )


async def test_the_built_in_plugins_run_through_both_targets(app: App) -> None:
    async with channel(app.port) as opened:
        counted = await v1.PluginServiceStub(opened, timeout=30).invoke_plugin(
            v1.InvokePluginRequest(plugin_name="word_count", arguments={"text": "one two three"})
        )
        assert counted.output.startswith("3 words") and counted.data["words"] == "3"
        assert counted.invocation_id and counted.elapsed is not None
        assert datetime.timedelta(0) < counted.elapsed < datetime.timedelta(seconds=30)

        stub = plugin_service_grpc.PluginServiceStub(opened)
        product = await stub.InvokePlugin(
            Invoke(plugin_name="calculator", arguments={"expression": "6 * (3 + 4)"})
        )
        assert product.data["result"] == "42"
        text = "Retries back off. Retries use jitter. Bread is tasty. Retries are bounded by deadlines."
        summary = await stub.InvokePlugin(
            Invoke(plugin_name="summarize", arguments={"text": text, "max_sentences": "2"})
        )
        assert summary.data["sentences"] == "2" and "Bread" not in summary.output


@pytest.mark.parametrize(
    ("request_", "status", "field"),
    [
        (Invoke(plugin_name="nope"), Status.NOT_FOUND, "plugin_name"),
        (Invoke(), Status.INVALID_ARGUMENT, "plugin_name"),
        (Invoke(plugin_name="word_count", arguments={"txt": "a"}), Status.INVALID_ARGUMENT, "arguments[txt]"),
        (Invoke(plugin_name="word_count"), Status.INVALID_ARGUMENT, "arguments[text]"),
        (
            Invoke(plugin_name="calculator", arguments={"expression": "__import__('os').getpid()"}),
            Status.INVALID_ARGUMENT,
            "arguments[expression]",
        ),
        (
            Invoke(plugin_name="calculator", arguments={"expression": "1/0"}),
            Status.INVALID_ARGUMENT,
            "arguments[expression]",
        ),
        (
            Invoke(plugin_name="calculator", arguments={"expression": "9**999999"}),
            Status.INVALID_ARGUMENT,
            "arguments[expression]",
        ),
        (Invoke(plugin_name="word_count", timeout=Duration()), Status.INVALID_ARGUMENT, "timeout"),
        (Invoke(plugin_name="word_count", timeout=Duration(seconds=-1)), Status.INVALID_ARGUMENT, "timeout"),
        (Invoke(plugin_name="word_count", timeout=Duration(seconds=61)), Status.INVALID_ARGUMENT, "timeout"),
    ],
)
async def test_a_bad_invocation_gets_a_clear_status(
    app: App, request_: plugin_service_pb2.InvokePluginRequest, status: Status, field: str
) -> None:
    async with channel(app.port) as opened:
        stub = plugin_service_grpc.PluginServiceStub(opened)
        await expect_status(stub.InvokePlugin(request_, timeout=30), status, field)


async def test_misbehaving_plugins_are_errors_and_the_server_keeps_serving() -> None:
    async with plugin_server() as port, channel(port) as opened:
        stub = plugin_service_grpc.PluginServiceStub(opened)
        crashed = await expect_status(
            stub.InvokePlugin(Invoke(plugin_name="crasher"), timeout=30), Status.INTERNAL
        )
        assert "exit code 3" in (crashed.message or "") and "about to crash" in (crashed.message or "")
        raised = await expect_status(
            stub.InvokePlugin(Invoke(plugin_name="raiser"), timeout=30), Status.INTERNAL
        )
        assert "ValueError: the plugin's own bug" in (raised.message or "")
        await expect_status(stub.InvokePlugin(Invoke(plugin_name="garbler"), timeout=30), Status.INTERNAL)
        echoed = await stub.InvokePlugin(
            Invoke(plugin_name="echo", arguments={"text": "still here"}), timeout=30
        )
        assert echoed.output == "still here"
        assert int(echoed.data["pid"]) != os.getpid()  # it ran in a worker process


async def test_a_hanging_plugin_times_out_and_its_worker_is_killed() -> None:
    async with plugin_server() as port, channel(port) as opened:
        stub = plugin_service_grpc.PluginServiceStub(opened)
        slow = Invoke(plugin_name="hanger", timeout=Duration(nanos=500_000_000))
        error = await expect_status(stub.InvokePlugin(slow, timeout=30), Status.DEADLINE_EXCEEDED, None)
        assert "0.5 s" in (error.message or "")
        await asyncio.wait_for(_until(lambda: not _children()), 5)
        echoed = await stub.InvokePlugin(Invoke(plugin_name="echo", arguments={"text": "next"}), timeout=30)
        assert echoed.output == "next"


async def test_a_cancelled_invocation_kills_its_worker() -> None:
    async with plugin_server() as port, channel(port) as opened:
        stub = plugin_service_grpc.PluginServiceStub(opened)
        async with stub.InvokePlugin.open(timeout=30) as call:
            await call.send_message(Invoke(plugin_name="hanger"), end=True)
            await asyncio.wait_for(_until(lambda: bool(_children())), 10)
            await call.cancel()
        await asyncio.wait_for(_until(lambda: not _children()), 5)


async def test_the_client_deadline_bounds_the_plugin_run() -> None:
    async with plugin_server() as port, channel(port) as opened:
        stub = v1.PluginServiceStub(opened)
        with pytest.raises(asyncio.TimeoutError):
            await stub.invoke_plugin(v1.InvokePluginRequest(plugin_name="hanger"), timeout=0.7)
        await asyncio.wait_for(_until(lambda: not _children()), 5)


async def _subscribe(
    stub: plugin_service_grpc.PluginServiceStub, request: plugin_service_pb2.StreamPluginEventsRequest
) -> object:
    stream = stub.StreamPluginEvents.open(timeout=30)
    await stream.__aenter__()
    await stream.send_message(request, end=True)
    await asyncio.wait_for(stream.recv_initial_metadata(), 5)  # subscribed once headers arrive
    return stream


async def _events(stream: object, count: int) -> list[plugin_service_pb2.PluginEvent]:
    replies = [await asyncio.wait_for(stream.recv_message(), 10) for _ in range(count)]  # type: ignore[attr-defined]
    return [reply.event for reply in replies if reply is not None]


async def test_subscribers_see_each_invocation_start_and_end() -> None:
    async with plugin_server() as port, channel(port) as opened:
        stub = plugin_service_grpc.PluginServiceStub(opened)
        everything = await _subscribe(stub, plugin_service_pb2.StreamPluginEventsRequest())
        failures = await _subscribe(
            stub,
            plugin_service_pb2.StreamPluginEventsRequest(
                types=[EventType.PLUGIN_EVENT_TYPE_INVOCATION_FAILED]
            ),
        )
        only_echo = await _subscribe(
            stub, plugin_service_pb2.StreamPluginEventsRequest(plugin_names=["echo"])
        )
        try:
            echoed = await stub.InvokePlugin(Invoke(plugin_name="echo", arguments={"text": "x"}), timeout=30)
            await expect_status(stub.InvokePlugin(Invoke(plugin_name="raiser"), timeout=30), Status.INTERNAL)

            seen = await _events(everything, 4)
            assert [(e.plugin_name, e.type) for e in seen] == [
                ("echo", EventType.PLUGIN_EVENT_TYPE_INVOCATION_STARTED),
                ("echo", EventType.PLUGIN_EVENT_TYPE_INVOCATION_SUCCEEDED),
                ("raiser", EventType.PLUGIN_EVENT_TYPE_INVOCATION_STARTED),
                ("raiser", EventType.PLUGIN_EVENT_TYPE_INVOCATION_FAILED),
            ]
            assert seen[0].invocation_id == seen[1].invocation_id == echoed.invocation_id
            assert seen[0].time.ToNanoseconds() <= seen[1].time.ToNanoseconds()
            assert len({e.event_id for e in seen}) == 4

            [failed] = await _events(failures, 1)
            assert failed.plugin_name == "raiser" and "the plugin's own bug" in failed.message
            echo_events = await _events(only_echo, 2)
            assert {e.plugin_name for e in echo_events} == {"echo"}
        finally:
            for stream in (everything, failures, only_echo):
                await stream.cancel()  # type: ignore[attr-defined]
                await stream.__aexit__(None, None, None)  # type: ignore[attr-defined]


async def test_an_unspecified_event_type_is_refused() -> None:
    async with plugin_server() as port, channel(port) as opened:
        stub = plugin_service_grpc.PluginServiceStub(opened)

        async def subscribe() -> None:
            async with stub.StreamPluginEvents.open(timeout=10) as stream:
                request = plugin_service_pb2.StreamPluginEventsRequest(
                    types=[EventType.PLUGIN_EVENT_TYPE_UNSPECIFIED]
                )
                await stream.send_message(request, end=True)
                await stream.recv_message()

        await expect_status(subscribe(), Status.INVALID_ARGUMENT, "types[0]")


async def test_draining_ends_event_streams_with_unavailable() -> None:
    lifecycle = Lifecycle()
    async with plugin_server(lifecycle) as port, channel(port) as opened:
        stub = v1.PluginServiceStub(opened, timeout=30)
        events = stub.stream_plugin_events(v1.StreamPluginEventsRequest())
        reading = asyncio.ensure_future(_drain(events))
        await asyncio.sleep(0.2)
        lifecycle.begin_draining()
        await expect_status(asyncio.wait_for(reading, 5), Status.UNAVAILABLE)


async def _drain(events: AsyncIterator[object]) -> list[object]:
    return [event async for event in events]


async def _until(condition: object) -> None:
    while not condition():  # type: ignore[operator]
        await asyncio.sleep(0.02)
