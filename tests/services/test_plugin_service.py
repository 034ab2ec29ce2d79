"""PluginService over real sockets, with real worker processes, through both client targets.

The full server (``app``) shows entry-point discovery and the built-in plugins; a
PluginService built here with the misbehaving plugins of ``plugins_for_tests`` shows
crashes, hangs, timeouts, cancellation, the event stream and draining.
"""

from __future__ import annotations

import asyncio
import datetime
import os
import time
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import pytest
from google.protobuf.duration_pb2 import Duration
from grpclib.client import Stream
from grpclib.const import Status
from grpclib.exceptions import GRPCError

from chat.v1 import plugin_service_grpc, plugin_service_pb2
from chat.v1.common_pb2 import PageRequest
from chat_sdk import v1
from chat_services.fanout import LISTENER_QUEUE_LIMIT
from chat_services.lifecycle import Lifecycle
from chat_services.pagination import encode_token
from chat_services.plugin import events as domain
from chat_services.plugin.builtins import WORD_COUNT
from chat_services.plugin.registry import InstalledPlugin, PluginRegistry
from chat_services.plugin.runner import MAX_RESULT_BYTES, PluginRunner
from chat_services.plugin.service import PluginService
from chat_services.server import App

from . import plugins_for_tests as fixtures
from .clients import channel as connect
from .clients import expect_status, until, violated_fields
from .harness import serve

T = TypeVar("T")
Invoke = plugin_service_pb2.InvokePluginRequest
Subscribe = plugin_service_pb2.StreamPluginEventsRequest
EventStream = Stream[
    plugin_service_pb2.StreamPluginEventsRequest, plugin_service_pb2.StreamPluginEventsResponse
]
STARTED = plugin_service_pb2.PLUGIN_EVENT_TYPE_INVOCATION_STARTED
SUCCEEDED = plugin_service_pb2.PLUGIN_EVENT_TYPE_INVOCATION_SUCCEEDED
FAILED = plugin_service_pb2.PLUGIN_EVENT_TYPE_INVOCATION_FAILED
UNSPECIFIED = plugin_service_pb2.PLUGIN_EVENT_TYPE_UNSPECIFIED
BUILT_INS = ["calculator", "summarize", "word_count"]
SUMMARY_TEXT = (
    "Retries back off after failures. Retries use jitter between attempts. Bread is tasty! "
    "Retries are bounded by deadlines and retries stop."
)


# ---------------------------------------------------------------- helpers


async def _outcome(call: Awaitable[T]) -> T | GRPCError:
    """What ``call`` returns, or the ``GRPCError`` it fails with."""
    try:
        return await asyncio.wait_for(call, 30)
    except GRPCError as error:
        return error


def _exists(pid: int) -> bool:
    """True while ``pid`` is a process (a zombie not yet reaped counts: nobody waited for it)."""
    return Path(f"/proc/{pid}").exists()


def _plugin_workers() -> list[int]:
    """Process IDs of this process's children that are plugin workers (zombies included)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            command = (stat.parent / "cmdline").read_bytes()
        except (OSError, IndexError, ValueError):
            continue  # the process ended while being looked at
        if parent == os.getpid() and b"chat_services.plugin.worker" in command:
            found.append(int(stat.parent.name))
    return found


def _worker_pid(pid_file: Path) -> int | None:
    text = pid_file.read_text() if pid_file.exists() else ""
    return int(text) if text.strip() else None


async def _started_worker(pid_file: Path) -> int:
    """Wait until the plugin writing ``pid_file`` runs; its worker's process ID."""
    await until(lambda: _worker_pid(pid_file) is not None)
    pid = _worker_pid(pid_file)
    assert pid is not None and pid != os.getpid()
    return pid


@dataclass
class PluginServer:
    port: int
    service: PluginService
    lifecycle: Lifecycle


@asynccontextmanager
async def plugin_server(
    *, default_timeout: float = 10.0, max_timeout: float = 60.0, max_concurrent: int = 4
) -> AsyncIterator[PluginServer]:
    """A PluginService with the test plugins and word_count, served on 127.0.0.1."""
    registry = PluginRegistry(
        [InstalledPlugin(spec, f"{fixtures.MODULE}:{attribute}") for attribute, spec in fixtures.ALL.items()]
        + [InstalledPlugin(WORD_COUNT, "chat_services.plugin.builtins:WORD_COUNT")]
    )
    lifecycle = Lifecycle()
    service = PluginService(
        registry,
        PluginRunner(max_concurrent=max_concurrent),
        domain.PluginEventHub(),
        lifecycle,
        default_timeout=default_timeout,
        max_timeout=max_timeout,
    )
    try:
        async with serve([service], lifecycle=lifecycle) as port:
            yield PluginServer(port, service, lifecycle)
    finally:
        await service.runner.close()  # as the App does: no worker left exiting when the loop ends


@asynccontextmanager
async def _subscribed(
    stub: plugin_service_grpc.PluginServiceStub, request: Subscribe
) -> AsyncIterator[EventStream]:
    """An open StreamPluginEvents call, subscribed (its headers arrived); cancelled on exit."""
    async with stub.StreamPluginEvents.open(timeout=60) as stream:
        await stream.send_message(request, end=True)
        await asyncio.wait_for(stream.recv_initial_metadata(), 10)
        try:
            yield stream
        finally:
            if stream.trailing_metadata is None:  # still open: the server has not ended it
                await stream.cancel()


async def _next_events(stream: EventStream, count: int) -> list[plugin_service_pb2.PluginEvent]:
    events = []
    for _ in range(count):
        reply = await asyncio.wait_for(stream.recv_message(), 10)
        assert reply is not None, "the event stream ended early"
        events.append(reply.event)
    return events


async def _quiet(stream: EventStream, seconds: float = 0.3) -> None:
    """No further event arrives on ``stream`` for ``seconds``."""
    try:
        reply = await asyncio.wait_for(stream.recv_message(), seconds)
    except TimeoutError:
        return
    pytest.fail(f"unexpected event or end of stream: {reply}")


async def _stream_end(stream: EventStream) -> None:
    """The server ends ``stream`` (no further event); its status is raised as GRPCError if not OK."""
    assert await stream.recv_message() is None, "an event arrived instead of the end"
    await stream.recv_trailing_metadata()


def _kinds(events: list[plugin_service_pb2.PluginEvent]) -> list[tuple[str, int]]:
    return [(event.plugin_name, event.type) for event in events]


# ---------------------------------------------------------------- ListPlugins (full server)


async def test_list_plugins_returns_the_built_ins_discovered_through_entry_points(app: App) -> None:
    async with connect(app.port) as channel:
        listed = await v1.PluginServiceStub(channel, timeout=10).list_plugins(v1.ListPluginsRequest())
    assert [plugin.name for plugin in listed.plugins] == BUILT_INS
    by_name = {plugin.name: plugin for plugin in listed.plugins}
    assert by_name["calculator"].argument_names == ["expression"]
    assert by_name["summarize"].argument_names == ["text", "max_sentences"]
    assert by_name["word_count"].argument_names == ["text"]
    assert by_name["word_count"].display_name == "Word count"
    for plugin in listed.plugins:
        assert plugin.display_name and plugin.description
        assert plugin.version == "1.0.0"
    assert listed.page is not None, "page is always present"
    assert listed.page.next_page_token == ""


async def test_list_plugins_pages_one_plugin_at_a_time_with_tokens(app: App) -> None:
    async with connect(app.port) as channel:
        stub = plugin_service_grpc.PluginServiceStub(channel)
        walked: list[str] = []
        tokens: list[str] = []
        token = ""
        for _ in range(len(BUILT_INS) + 1):
            page = await stub.ListPlugins(
                plugin_service_pb2.ListPluginsRequest(page=PageRequest(page_size=1, page_token=token)),
                timeout=10,
            )
            assert len(page.plugins) == 1
            walked.append(page.plugins[0].name)
            assert list(page.plugins[0].argument_names), "every built-in takes arguments"
            token = page.page.next_page_token
            if not token:
                break
            tokens.append(token)
        assert walked == BUILT_INS
        assert len(set(tokens)) == len(BUILT_INS) - 1

        # Two at a time: a full page with a token, then the rest without one.
        first = await stub.ListPlugins(
            plugin_service_pb2.ListPluginsRequest(page=PageRequest(page_size=2)), timeout=10
        )
        assert [p.name for p in first.plugins] == BUILT_INS[:2] and first.page.next_page_token
        rest = await stub.ListPlugins(
            plugin_service_pb2.ListPluginsRequest(
                page=PageRequest(page_size=2, page_token=first.page.next_page_token)
            ),
            timeout=10,
        )
        assert [p.name for p in rest.plugins] == BUILT_INS[2:] and rest.page.next_page_token == ""

        # Above the maximum page size is capped, not refused.
        everything = await stub.ListPlugins(
            plugin_service_pb2.ListPluginsRequest(page=PageRequest(page_size=1_000_000)), timeout=10
        )
        assert [p.name for p in everything.plugins] == BUILT_INS
        assert everything.HasField("page") and everything.page.next_page_token == ""


@pytest.mark.parametrize(
    ("page", "field"),
    [
        pytest.param(v1.PageRequest(page_token="not a token!"), "page.page_token", id="garbage-token"),
        pytest.param(v1.PageRequest(page_token="e30"), "page.page_token", id="token-of-no-list"),
        pytest.param(
            v1.PageRequest(page_token=encode_token({"list": "messages", "after": "a"})),
            "page.page_token",
            id="token-of-another-list",
        ),
        pytest.param(v1.PageRequest(page_size=-1), "page.page_size", id="negative-size"),
    ],
)
async def test_list_plugins_refuses_a_bad_page_request(app: App, page: v1.PageRequest, field: str) -> None:
    async with connect(app.port) as channel:
        stub = v1.PluginServiceStub(channel, timeout=10)
        await expect_status(
            stub.list_plugins(v1.ListPluginsRequest(page=page)), Status.INVALID_ARGUMENT, field
        )


# ---------------------------------------------------------------- InvokePlugin: the built-ins


async def test_word_count_and_calculator_through_the_dataclass_target(app: App) -> None:
    async with connect(app.port) as channel:
        stub = v1.PluginServiceStub(channel, timeout=30)
        counted = await stub.invoke_plugin(
            v1.InvokePluginRequest(
                plugin_name="word_count",
                arguments={"text": "Hello, world!\nIt's here."},
                conversation_id="c" * 64,
                timeout=datetime.timedelta(seconds=60),  # exactly the maximum is allowed
            )
        )
        assert counted.output == "4 words, 24 characters, 2 lines"
        assert counted.data == {"words": "4", "characters": "24", "lines": "2"}
        assert 0 < len(counted.invocation_id) <= 64
        assert counted.elapsed is not None
        assert counted.elapsed > datetime.timedelta(0)

        product = await stub.invoke_plugin(
            v1.InvokePluginRequest(plugin_name="calculator", arguments={"expression": "6 * (3 + 4) / 4"})
        )
        assert product.output == "6 * (3 + 4) / 4 = 10.5"
        assert product.data == {"result": "10.5"}
        assert product.invocation_id and product.invocation_id != counted.invocation_id
        assert product.elapsed is not None and product.elapsed > datetime.timedelta(0)


async def test_calculator_and_summarize_through_the_standard_target(app: App) -> None:
    async with connect(app.port) as channel:
        stub = plugin_service_grpc.PluginServiceStub(channel)
        whole = await stub.InvokePlugin(
            Invoke(plugin_name="calculator", arguments={"expression": "2**10 - 24 // 5 % 3"}), timeout=30
        )
        assert whole.output == "2**10 - 24 // 5 % 3 = 1023" and dict(whole.data) == {"result": "1023"}
        assert whole.HasField("elapsed") and whole.elapsed.ToNanoseconds() > 0

        summary = await stub.InvokePlugin(
            Invoke(
                plugin_name="summarize",
                arguments={"text": SUMMARY_TEXT, "max_sentences": "2"},
                timeout=Duration(seconds=20),
            ),
            timeout=30,
        )
        assert summary.output == (
            "Retries back off after failures. Retries are bounded by deadlines and retries stop."
        )
        assert dict(summary.data) == {"sentences": "2", "of_sentences": "4"}
        assert summary.HasField("elapsed") and summary.elapsed.ToNanoseconds() > 0

        default = await stub.InvokePlugin(
            Invoke(plugin_name="summarize", arguments={"text": SUMMARY_TEXT, "max_sentences": ""}), timeout=30
        )
        assert dict(default.data) == {"sentences": "3", "of_sentences": "4"}
        assert "Bread" not in default.output
        assert len({whole.invocation_id, summary.invocation_id, default.invocation_id}) == 3


@pytest.mark.parametrize(
    ("request_", "status", "field", "text"),
    [
        pytest.param(
            Invoke(plugin_name="nope"), Status.NOT_FOUND, "plugin_name", "'nope'", id="unknown-plugin"
        ),
        pytest.param(Invoke(), Status.INVALID_ARGUMENT, "plugin_name", "at least 1", id="no-plugin-name"),
        pytest.param(
            Invoke(plugin_name="p" * 65),
            Status.INVALID_ARGUMENT,
            "plugin_name",
            "at most 64",
            id="long-plugin-name",
        ),
        pytest.param(
            Invoke(plugin_name="word_count", arguments={"text": "a", "txt": "a"}),
            Status.INVALID_ARGUMENT,
            "arguments[txt]",
            "it takes: text",
            id="unknown-argument-key",
        ),
        pytest.param(
            Invoke(plugin_name="word_count", arguments={"text": "a"}, conversation_id="c" * 65),
            Status.INVALID_ARGUMENT,
            "conversation_id",
            "at most 64",
            id="long-conversation-id",
        ),
        pytest.param(
            Invoke(plugin_name="word_count"),
            Status.INVALID_ARGUMENT,
            "arguments[text]",
            "required",
            id="no-text",
        ),
        pytest.param(
            Invoke(plugin_name="calculator", arguments={"expression": "1/0"}),
            Status.INVALID_ARGUMENT,
            "arguments[expression]",
            "division by zero",
            id="division-by-zero",
        ),
        pytest.param(
            Invoke(plugin_name="calculator", arguments={"expression": "__import__('os').system('true')"}),
            Status.INVALID_ARGUMENT,
            "arguments[expression]",
            "only numbers",
            id="import-call",
        ),
        pytest.param(
            Invoke(plugin_name="calculator", arguments={"expression": "(1).__class__.__bases__"}),
            Status.INVALID_ARGUMENT,
            "arguments[expression]",
            "only numbers",
            id="attribute-access",
        ),
        pytest.param(
            Invoke(plugin_name="calculator", arguments={"expression": "9**99999999"}),
            Status.INVALID_ARGUMENT,
            "arguments[expression]",
            "exponents are limited",
            id="huge-exponent",
        ),
        pytest.param(
            Invoke(plugin_name="summarize", arguments={"text": "A. B.", "max_sentences": "three"}),
            Status.INVALID_ARGUMENT,
            "arguments[max_sentences]",
            "'three'",
            id="summarize-bad-limit",
        ),
        pytest.param(
            Invoke(plugin_name="word_count", arguments={"text": "a"}, timeout=Duration()),
            Status.INVALID_ARGUMENT,
            "timeout",
            "greater than 0s",
            id="zero-timeout",
        ),
        pytest.param(
            Invoke(plugin_name="word_count", arguments={"text": "a"}, timeout=Duration(seconds=-1)),
            Status.INVALID_ARGUMENT,
            "timeout",
            "greater than 0s",
            id="negative-timeout",
        ),
        pytest.param(
            Invoke(plugin_name="word_count", arguments={"text": "a"}, timeout=Duration(nanos=-1)),
            Status.INVALID_ARGUMENT,
            "timeout",
            "greater than 0s",
            id="negative-nanosecond-timeout",
        ),
        pytest.param(
            Invoke(plugin_name="word_count", arguments={"text": "a"}, timeout=Duration(seconds=60, nanos=1)),
            Status.INVALID_ARGUMENT,
            "timeout",
            "at most 60 s",
            id="timeout-above-maximum",
        ),
    ],
)
async def test_a_bad_invocation_gets_a_clear_status(
    app: App, request_: plugin_service_pb2.InvokePluginRequest, status: Status, field: str, text: str
) -> None:
    async with connect(app.port) as channel:
        stub = plugin_service_grpc.PluginServiceStub(channel)
        error = await expect_status(stub.InvokePlugin(request_, timeout=30), status, field)
    assert text in (error.message or "")


async def test_bad_invocations_through_the_dataclass_target_carry_field_details(app: App) -> None:
    async with connect(app.port) as channel:
        stub = v1.PluginServiceStub(channel, timeout=30)
        unknown = await expect_status(
            stub.invoke_plugin(v1.InvokePluginRequest(plugin_name="word_count", arguments={"words": "x"})),
            Status.INVALID_ARGUMENT,
            "arguments[words]",
        )
        assert "'words'" in (unknown.message or "")
        await expect_status(
            stub.invoke_plugin(v1.InvokePluginRequest(plugin_name="absent")), Status.NOT_FOUND, "plugin_name"
        )
        await expect_status(
            stub.invoke_plugin(
                v1.InvokePluginRequest(
                    plugin_name="word_count", arguments={"text": "a"}, timeout=-datetime.timedelta(seconds=1)
                )
            ),
            Status.INVALID_ARGUMENT,
            "timeout",
        )
        refused = await expect_status(
            stub.invoke_plugin(
                v1.InvokePluginRequest(plugin_name="calculator", arguments={"expression": "__import__('os')"})
            ),
            Status.INVALID_ARGUMENT,
            "arguments[expression]",
        )
        assert "plugin 'calculator'" in (refused.message or "")


# ---------------------------------------------------------------- InvokePlugin: misbehaving plugins


async def test_a_hanging_plugin_times_out_and_its_worker_process_is_gone(tmp_path: Path) -> None:
    pid_file = tmp_path / "sleeper.pid"
    async with plugin_server() as server, connect(server.port) as channel:
        stub = plugin_service_grpc.PluginServiceStub(channel)
        error = await expect_status(
            stub.InvokePlugin(
                # 3 s: time for the worker to start and write its PID on a loaded 2-core machine
                # (with 1 s, CI once timed the plugin out before its worker had started).
                Invoke(
                    plugin_name="sleeper", arguments={"pid_file": str(pid_file)}, timeout=Duration(seconds=3)
                ),
                timeout=30,
            ),
            Status.DEADLINE_EXCEEDED,
        )
        assert "'sleeper'" in (error.message or "") and "3 s" in (error.message or "")
        pid = _worker_pid(pid_file)
        assert pid is not None and pid != os.getpid(), "the plugin ran in a worker process"
        assert not _exists(pid), "the worker was killed and reaped before the reply"

        # Later calls are not held up: the only worker is gone, so this one runs at once.
        doubled = await stub.InvokePlugin(Invoke(plugin_name="doubler", arguments={"n": "21"}), timeout=10)
        assert doubled.data["doubled"] == "42"


async def test_the_server_default_timeout_and_maximum_apply(tmp_path: Path) -> None:
    pid_file = tmp_path / "sleeper.pid"
    async with (
        plugin_server(default_timeout=0.5, max_timeout=2.0) as server,
        connect(server.port) as channel,
    ):
        stub = v1.PluginServiceStub(channel, timeout=30)
        error = await expect_status(
            stub.invoke_plugin(
                v1.InvokePluginRequest(plugin_name="sleeper", arguments={"pid_file": str(pid_file)})
            ),
            Status.DEADLINE_EXCEEDED,
        )
        assert "0.5 s" in (error.message or "")
        # Whether or not the worker got as far as writing its pid, it is reaped before the reply.
        assert _plugin_workers() == []
        above = await expect_status(
            stub.invoke_plugin(
                v1.InvokePluginRequest(plugin_name="sleeper", timeout=datetime.timedelta(seconds=2.5))
            ),
            Status.INVALID_ARGUMENT,
            "timeout",
        )
        assert "at most 2 s" in (above.message or "")


async def test_the_client_deadline_bounds_the_plugin_run(tmp_path: Path) -> None:
    pid_file = tmp_path / "sleeper.pid"
    async with plugin_server() as server, connect(server.port) as channel:
        stub = v1.PluginServiceStub(channel)
        with pytest.raises(TimeoutError):  # the client's deadline, well before the plugin's 30 s
            await stub.invoke_plugin(
                v1.InvokePluginRequest(
                    plugin_name="sleeper",
                    arguments={"pid_file": str(pid_file)},
                    timeout=datetime.timedelta(seconds=30),
                ),
                timeout=1.0,
            )
        pid = await _started_worker(pid_file)
        await until(lambda: not _exists(pid), 5)


async def test_a_crashing_plugin_is_internal_with_its_exit_code_and_the_server_keeps_serving(
    tmp_path: Path,
) -> None:
    pid_file = tmp_path / "crasher.pid"
    async with plugin_server() as server, connect(server.port) as channel:
        stub = v1.PluginServiceStub(channel, timeout=30)
        error = await expect_status(
            stub.invoke_plugin(
                v1.InvokePluginRequest(plugin_name="crasher", arguments={"pid_file": str(pid_file)})
            ),
            Status.INTERNAL,
        )
        message = error.message or ""
        assert f"exit code {fixtures.CRASH_EXIT_CODE}" in message and "'crasher'" in message
        assert fixtures.CRASH_LAST_WORDS in message, "the last line of its stderr explains the crash"
        pid = _worker_pid(pid_file)
        assert pid is not None and not _exists(pid)

        doubled = await stub.invoke_plugin(
            v1.InvokePluginRequest(plugin_name="doubler", arguments={"n": "-4", "note": "after a crash"})
        )
        assert doubled.output == "-4 doubled is -8 (after a crash)"
        assert int(doubled.data["pid"]) not in (os.getpid(), pid)


async def test_a_raising_plugin_is_internal_with_the_exception_text() -> None:
    async with plugin_server() as server, connect(server.port) as channel:
        stub = plugin_service_grpc.PluginServiceStub(channel)
        error = await expect_status(
            stub.InvokePlugin(Invoke(plugin_name="raiser"), timeout=30), Status.INTERNAL
        )
        assert f"RuntimeError: {fixtures.RAISED_TEXT}" in (error.message or "")
        assert violated_fields(error) == [], "not the caller's fault: no field is blamed"


async def test_a_plugin_that_prints_still_returns_its_result() -> None:
    async with plugin_server() as server, connect(server.port) as channel:
        stub = plugin_service_grpc.PluginServiceStub(channel)
        printed = await stub.InvokePlugin(Invoke(plugin_name="garbler"), timeout=30)
        assert printed.output == "fine, apart from the printing"
        counted = await stub.InvokePlugin(
            Invoke(plugin_name="word_count", arguments={"text": "ok"}), timeout=30
        )
        assert counted.data["words"] == "1"


async def test_a_plugins_own_argument_check_is_invalid_argument() -> None:
    async with plugin_server() as server, connect(server.port) as channel:
        stub = plugin_service_grpc.PluginServiceStub(channel)
        named = await expect_status(
            stub.InvokePlugin(Invoke(plugin_name="doubler", arguments={"n": "two"}), timeout=30),
            Status.INVALID_ARGUMENT,
            "arguments[n]",
        )
        assert "n must be a whole number, got 'two'" in (named.message or "")
        assert "plugin 'doubler'" in (named.message or "")
        await expect_status(
            stub.InvokePlugin(Invoke(plugin_name="doubler", arguments={"n": "whole"}), timeout=30),
            Status.INVALID_ARGUMENT,
            "arguments",
        )
        unknown = await expect_status(
            stub.InvokePlugin(Invoke(plugin_name="doubler", arguments={"m": "1"}), timeout=30),
            Status.INVALID_ARGUMENT,
            "arguments[m]",
        )
        assert "it takes: n, note" in (unknown.message or "")
        no_arguments = await expect_status(
            stub.InvokePlugin(Invoke(plugin_name="raiser", arguments={"x": "1"}), timeout=30),
            Status.INVALID_ARGUMENT,
            "arguments[x]",
        )
        assert "it takes: none" in (no_arguments.message or "")


async def test_cancelling_an_invocation_kills_its_worker(tmp_path: Path) -> None:
    pid_file = tmp_path / "sleeper.pid"
    async with plugin_server() as server, connect(server.port) as channel:
        stub = plugin_service_grpc.PluginServiceStub(channel)
        async with _subscribed(stub, Subscribe(plugin_names=["sleeper"])) as events:
            async with stub.InvokePlugin.open(timeout=30) as call:
                await call.send_message(
                    Invoke(plugin_name="sleeper", arguments={"pid_file": str(pid_file)}), end=True
                )
                pid = await _started_worker(pid_file)
                assert _exists(pid)
                await call.cancel()
            await until(lambda: not _exists(pid), 5)
            started, failed = await _next_events(events, 2)
            assert (started.type, failed.type) == (STARTED, FAILED)
            assert started.invocation_id == failed.invocation_id
            assert "cancelled" in failed.message
        doubled = await stub.InvokePlugin(Invoke(plugin_name="doubler", arguments={"n": "1"}), timeout=10)
        assert doubled.data["doubled"] == "2"


async def test_invocations_beyond_the_concurrency_limit_wait_for_a_slot(tmp_path: Path) -> None:
    pid_file = tmp_path / "sleeper.pid"
    async with plugin_server(max_concurrent=1) as server, connect(server.port) as channel:
        stub = plugin_service_grpc.PluginServiceStub(channel)
        hanging = asyncio.ensure_future(
            expect_status(
                stub.InvokePlugin(
                    Invoke(
                        plugin_name="sleeper",
                        arguments={"pid_file": str(pid_file)},
                        timeout=Duration(seconds=2),
                    ),
                    timeout=30,
                ),
                Status.DEADLINE_EXCEEDED,
            )
        )
        sleeper = await _started_worker(pid_file)
        doubled = await stub.InvokePlugin(Invoke(plugin_name="doubler", arguments={"n": "5"}), timeout=30)
        # The sleeper held the only slot until its worker was reaped: the doubler ran after that,
        # whichever of the two replies the client happens to read first.
        assert not _exists(sleeper), "the second run waited for the only slot"
        assert doubled.data["doubled"] == "10"
        await asyncio.wait_for(hanging, 10)


# ---------------------------------------------------------------- StreamPluginEvents


async def test_a_subscriber_sees_started_then_succeeded_for_an_invocation() -> None:
    async with plugin_server() as server, connect(server.port) as channel:
        stub = plugin_service_grpc.PluginServiceStub(channel)
        async with _subscribed(stub, Subscribe()) as events:
            assert server.service.events.subscriber_count == 1
            before_ns = time.time_ns()
            reply = await v1.PluginServiceStub(channel, timeout=30).invoke_plugin(
                v1.InvokePluginRequest(plugin_name="doubler", arguments={"n": "3"})
            )
            after_ns = time.time_ns()
            started, succeeded = await _next_events(events, 2)
            assert _kinds([started, succeeded]) == [("doubler", STARTED), ("doubler", SUCCEEDED)]
            assert started.invocation_id == succeeded.invocation_id == reply.invocation_id
            assert started.event_id and succeeded.event_id and started.event_id != succeeded.event_id
            assert before_ns - 10**9 <= started.time.ToNanoseconds() <= succeeded.time.ToNanoseconds()
            assert succeeded.time.ToNanoseconds() <= after_ns + 10**9
            assert started.message == "" and succeeded.message == ""
            assert int(succeeded.attributes["elapsed_ms"]) >= 0
            await _quiet(events)
        await until(lambda: server.service.events.subscriber_count == 0, 5)


async def test_a_failed_invocation_is_published_with_its_error_message() -> None:
    async with plugin_server() as server, connect(server.port) as channel:
        stub = plugin_service_grpc.PluginServiceStub(channel)
        async with _subscribed(stub, Subscribe()) as events:
            raised = await expect_status(
                stub.InvokePlugin(Invoke(plugin_name="raiser"), timeout=30), Status.INTERNAL
            )
            refused = await expect_status(
                stub.InvokePlugin(Invoke(plugin_name="doubler", arguments={"n": "x"}), timeout=30),
                Status.INVALID_ARGUMENT,
            )
            seen = await _next_events(events, 4)
            assert _kinds(seen) == [
                ("raiser", STARTED),
                ("raiser", FAILED),
                ("doubler", STARTED),
                ("doubler", FAILED),
            ]
            assert seen[1].message == raised.message and fixtures.RAISED_TEXT in seen[1].message
            assert seen[3].message == refused.message
            assert seen[0].invocation_id == seen[1].invocation_id != seen[2].invocation_id
            assert len({event.event_id for event in seen}) == 4


async def test_requests_refused_before_running_publish_no_events() -> None:
    async with plugin_server() as server, connect(server.port) as channel:
        stub = plugin_service_grpc.PluginServiceStub(channel)
        async with _subscribed(stub, Subscribe()) as events:
            await expect_status(stub.InvokePlugin(Invoke(plugin_name="nope"), timeout=10), Status.NOT_FOUND)
            await expect_status(
                stub.InvokePlugin(Invoke(plugin_name="doubler", arguments={"k": "1"}), timeout=10),
                Status.INVALID_ARGUMENT,
            )
            await expect_status(
                stub.InvokePlugin(Invoke(plugin_name="doubler", timeout=Duration(seconds=-5)), timeout=10),
                Status.INVALID_ARGUMENT,
            )
            reply = await stub.InvokePlugin(Invoke(plugin_name="doubler", arguments={"n": "0"}), timeout=30)
            first, second = await _next_events(events, 2)
            assert _kinds([first, second]) == [("doubler", STARTED), ("doubler", SUCCEEDED)]
            assert first.invocation_id == reply.invocation_id


async def test_subscriptions_filter_by_plugin_name_and_event_type() -> None:
    async with plugin_server() as server, connect(server.port) as channel:
        stub = plugin_service_grpc.PluginServiceStub(channel)
        async with (
            _subscribed(stub, Subscribe(plugin_names=["doubler"])) as doubler_only,
            _subscribed(stub, Subscribe(types=[FAILED])) as failures_only,
            _subscribed(
                stub, Subscribe(plugin_names=["raiser", "word_count"], types=[STARTED])
            ) as raiser_starts,
            _subscribed(stub, Subscribe(plugin_names=["no_such_plugin"])) as nothing,
        ):
            assert server.service.events.subscriber_count == 4
            doubled = await stub.InvokePlugin(Invoke(plugin_name="doubler", arguments={"n": "7"}), timeout=30)
            await expect_status(stub.InvokePlugin(Invoke(plugin_name="raiser"), timeout=30), Status.INTERNAL)

            seen = await _next_events(doubler_only, 2)
            assert _kinds(seen) == [("doubler", STARTED), ("doubler", SUCCEEDED)]
            assert {event.invocation_id for event in seen} == {doubled.invocation_id}
            assert _kinds(await _next_events(failures_only, 1)) == [("raiser", FAILED)]
            assert _kinds(await _next_events(raiser_starts, 1)) == [("raiser", STARTED)]
            for stream in (doubler_only, failures_only, raiser_starts, nothing):
                await _quiet(stream, 0.2)


async def test_the_dataclass_target_streams_events_too() -> None:
    async with plugin_server() as server, connect(server.port) as channel:
        stub = v1.PluginServiceStub(channel, timeout=60)
        received: list[v1.PluginEvent] = []

        async def read() -> None:
            request = v1.StreamPluginEventsRequest(types=[v1.PluginEventType.INVOCATION_SUCCEEDED])
            async for reply in stub.stream_plugin_events(request):
                assert reply.event is not None
                received.append(reply.event)

        reading = asyncio.ensure_future(read())
        try:
            await until(lambda: server.service.events.subscriber_count == 1, 10)
            reply = await stub.invoke_plugin(
                v1.InvokePluginRequest(plugin_name="doubler", arguments={"n": "8"})
            )
            await until(lambda: len(received) == 1, 10)
            [event] = received
            assert event.type is v1.PluginEventType.INVOCATION_SUCCEEDED
            assert event.invocation_id == reply.invocation_id and event.plugin_name == "doubler"
            assert event.time is not None
            assert abs(event.time - datetime.datetime.now(datetime.UTC)) < datetime.timedelta(seconds=30)
            assert "elapsed_ms" in event.attributes
        finally:
            reading.cancel()
            with suppress(asyncio.CancelledError):
                await reading
        await until(lambda: server.service.events.subscriber_count == 0, 5)


async def test_an_unspecified_or_unknown_event_type_is_invalid_argument() -> None:
    async with plugin_server() as server, connect(server.port) as channel:
        stub = plugin_service_grpc.PluginServiceStub(channel)

        async def subscribe(request: Subscribe) -> None:
            async with stub.StreamPluginEvents.open(timeout=10) as stream:
                await stream.send_message(request, end=True)
                await stream.recv_message()

        await expect_status(subscribe(Subscribe(types=[UNSPECIFIED])), Status.INVALID_ARGUMENT, "types[0]")
        await expect_status(
            subscribe(Subscribe(types=[STARTED, plugin_service_pb2.PluginEventType.ValueType(9)])),
            Status.INVALID_ARGUMENT,
            "types[1]",
        )

        dataclass_stub = v1.PluginServiceStub(channel, timeout=10)

        async def subscribe_dataclass() -> None:
            request = v1.StreamPluginEventsRequest(
                types=[v1.PluginEventType.INVOCATION_FAILED, v1.PluginEventType.UNSPECIFIED]
            )
            async for _ in dataclass_stub.stream_plugin_events(request):
                pytest.fail("no event may arrive on a refused stream")

        await expect_status(subscribe_dataclass(), Status.INVALID_ARGUMENT, "types[1]")
        assert server.service.events.subscriber_count == 0


async def test_draining_ends_event_streams_with_unavailable_and_refuses_new_calls() -> None:
    async with plugin_server() as server, connect(server.port) as channel:
        stub = plugin_service_grpc.PluginServiceStub(channel)
        dataclass_stub = v1.PluginServiceStub(channel, timeout=60)

        async def read_dataclass() -> None:
            async for _ in dataclass_stub.stream_plugin_events(v1.StreamPluginEventsRequest()):
                pytest.fail("no invocation ran, so no event may arrive")

        reading = asyncio.ensure_future(read_dataclass())
        async with _subscribed(stub, Subscribe()) as events:
            await until(lambda: server.service.events.subscriber_count == 2, 10)
            server.lifecycle.begin_draining()
            ended = await expect_status(_stream_end(events), Status.UNAVAILABLE)
            assert "shutting down" in (ended.message or "")
            await expect_status(reading, Status.UNAVAILABLE)
        await until(lambda: server.service.events.subscriber_count == 0, 5)
        await expect_status(
            stub.InvokePlugin(Invoke(plugin_name="doubler", arguments={"n": "1"}), timeout=10),
            Status.UNAVAILABLE,
        )


async def test_draining_the_full_server_ends_event_streams_with_unavailable(app: App) -> None:
    async with connect(app.port) as channel:
        stub = plugin_service_grpc.PluginServiceStub(channel)
        async with _subscribed(stub, Subscribe(plugin_names=["calculator"])) as events:
            app.begin_draining()
            await expect_status(_stream_end(events), Status.UNAVAILABLE)


async def test_a_subscriber_that_falls_too_far_behind_is_cut_off() -> None:
    async with plugin_server() as server, connect(server.port) as channel:
        stub = plugin_service_grpc.PluginServiceStub(channel)
        async with _subscribed(stub, Subscribe()) as events:
            # Published in one go, before the subscriber's handler can take any off its queue.
            for index in range(LISTENER_QUEUE_LIMIT + 1):
                server.service.events.publish(
                    domain.PluginEvent(
                        event_id=f"e{index}",
                        plugin_name="doubler",
                        type=domain.EventType.STARTED,
                        time_ns=time.time_ns(),
                        invocation_id=f"i{index}",
                    )
                )
            error = await expect_status(_stream_end(events), Status.RESOURCE_EXHAUSTED)
            assert "subscribe again" in (error.message or "")
        await until(lambda: server.service.events.subscriber_count == 0, 5)


# Bugs these tests found, since fixed


async def test_a_plugin_flooding_stdout_is_stopped_at_the_result_limit() -> None:
    async with plugin_server() as server, connect(server.port) as channel:
        stub = plugin_service_grpc.PluginServiceStub(channel)
        error = await expect_status(
            stub.InvokePlugin(Invoke(plugin_name="flooder", timeout=Duration(seconds=2)), timeout=30),
            Status.INTERNAL,
        )
        assert f"more than {MAX_RESULT_BYTES} bytes" in (error.message or "")


async def test_a_calculator_result_too_long_to_print_is_not_internal(app: App) -> None:
    async with connect(app.port) as channel:
        stub = plugin_service_grpc.PluginServiceStub(channel)
        outcome = await _outcome(
            stub.InvokePlugin(
                Invoke(plugin_name="calculator", arguments={"expression": "10**5000"}), timeout=30
            )
        )
    # 5001 digits is over the calculator's result limit (about 4200 digits, under str()'s 4300):
    # a refusal that blames the expression, never INTERNAL from str().
    assert isinstance(outcome, GRPCError)
    assert outcome.status is Status.INVALID_ARGUMENT, (outcome.status, outcome.message)
    assert violated_fields(outcome) == ["arguments[expression]"]
    assert "the result is too large" in (outcome.message or "")


async def test_calculator_refuses_a_nested_power_with_a_huge_result(app: App) -> None:
    async with connect(app.port) as channel:
        stub = plugin_service_grpc.PluginServiceStub(channel)
        await expect_status(
            stub.InvokePlugin(
                Invoke(
                    plugin_name="calculator",
                    arguments={"expression": "(9**9999)**9999"},
                    timeout=Duration(seconds=2),
                ),
                timeout=30,
            ),
            Status.INVALID_ARGUMENT,
            "arguments[expression]",
        )


async def test_a_worker_left_exiting_by_a_stopping_server_is_reaped_before_the_runner_closes(
    tmp_path: Path,
) -> None:
    # The client gives up (the handler is cancelled and kills the worker), then the server
    # stops at once (a second cancellation, while the worker may still be exiting): the
    # runner's close(), which the App and plugin_server run after the server, waits for it.
    pid_file = tmp_path / "sleeper.pid"
    async with plugin_server() as server, connect(server.port) as channel:
        runner = server.service.runner
        stub = plugin_service_grpc.PluginServiceStub(channel)
        async with stub.InvokePlugin.open(timeout=30) as call:
            await call.send_message(
                Invoke(plugin_name="sleeper", arguments={"pid_file": str(pid_file)}), end=True
            )
            pid = await _started_worker(pid_file)
            await call.cancel()
    assert not runner._exiting  # every killed worker's exit was learnt before plugin_server returned
    assert not _exists(pid)
