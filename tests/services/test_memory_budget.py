"""The memory budget: a SendMessages call holds at most --max-call-bytes, all calls --max-inflight-bytes.

The RSS test runs the real server as a process with its default limits and sends it the
issue's case: four maximal SendMessages at once (1,000 messages of 64 KiB content and
ten maximal files each, all within the schema's limits). Peak resident memory is read
from the kernel's high-water mark (``VmHWM``, reset through ``/proc/PID/clear_refs``), so
no short peak between two samples is missed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from google.rpc import error_details_pb2
from grpclib.client import Channel
from grpclib.const import Status
from grpclib.encoding.proto import ProtoStatusDetailsCodec
from grpclib.exceptions import GRPCError, StreamTerminatedError

from chat.v1 import common_pb2, message_service_grpc, message_service_pb2
from chat_services.budget import MemoryBudget
from chat_services.config import ServiceConfig
from chat_services.errors import ResourceExhausted
from chat_services.message.service import MessageService
from chat_services.server import App, build_app

from .clients import channel, expect_status, until
from .conftest import make_config, service_of
from .fuzz.driver import rss_kb, server_process

PEAK_BOUND_MB = 300  # services/README.md, "Memory": four maximal calls at once stay below this
SETTLED_BOUND_MB = 60  # afterwards the server holds at most this much more than before
LEVEL_BOUND_MB = 20  # and a second round adds at most this much to the first
CONTENT = "é" * 32768  # 64 KiB of UTF-8: the largest content the schema allows


def maximal_message(key: str) -> message_service_pb2.SendMessagesRequest:
    """A message at every limit of the schema: 64 KiB of content and ten maximal files."""
    files = [
        common_pb2.File(
            file_id=f"f-{n}".ljust(64, "f"),
            name="n" * 255,
            media_type="m" * 255,
            size_bytes=1,
            url="https://example.com/" + "u" * 2028,
            sha256="0" * 64,
        )
        for n in range(10)
    ]
    return message_service_pb2.SendMessagesRequest(
        message=message_service_pb2.NewMessage(
            idempotency_key=key, conversation_id="c-1", author_id="u-1", content=CONTENT, files=files
        )
    )


def batch(prefix: str, count: int) -> Iterator[message_service_pb2.SendMessagesRequest]:
    return (maximal_message(f"{prefix}-{n}") for n in range(count))


def peak_kb(pid: int) -> int:
    """The process's peak resident memory since the last :func:`reset_peak`, in kB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM in /proc")


def rss_below(pid: int, limit_kb: int) -> Callable[[], bool]:
    """A condition for :func:`until`: the process's resident memory is under ``limit_kb``."""
    return lambda: rss_kb(pid) < limit_kb


def reset_peak(pid: int) -> None:
    Path(f"/proc/{pid}/clear_refs").write_text("5")


async def send(port: int, messages: Iterator[message_service_pb2.SendMessagesRequest]) -> object:
    """One SendMessages call; its reply, or the status it ended with."""
    async with Channel("127.0.0.1", port, status_details_codec=ProtoStatusDetailsCodec()) as opened:
        stub = message_service_grpc.MessageServiceStub(opened)
        try:
            return await stub.SendMessages(list(messages), timeout=120)
        except (GRPCError, StreamTerminatedError) as error:
            return error


async def four_maximal_calls_then_four_that_fit(port: int, round_: int, fits: int) -> None:
    """The issue's case (four calls of 1,000 maximal messages: each refused at its cap), then four
    calls as large as the cap allows, at once: all stored."""
    refused = await asyncio.gather(*(send(port, batch(f"big-{round_}-{n}", 1000)) for n in range(4)))
    for outcome in refused:
        assert isinstance(outcome, GRPCError), outcome
        assert outcome.status is Status.RESOURCE_EXHAUSTED, (outcome.status, outcome.message)
        assert "split the batch" in (outcome.message or "")
    stored = await asyncio.gather(*(send(port, batch(f"fit-{round_}-{n}", fits)) for n in range(4)))
    for reply in stored:
        assert isinstance(reply, message_service_pb2.SendMessagesResponse), reply
        assert reply.created_count == fits


async def test_four_maximal_sends_at_once_stay_within_the_memory_bound(tmp_path: Path) -> None:
    fits = ServiceConfig().max_call_bytes // maximal_message("k").ByteSize()  # messages under the cap
    async with server_process(tmp_path) as (pid, port):
        await send(port, batch("warm", 4))
        start_kb = rss_kb(pid)
        reset_peak(pid)
        settled_kb: list[int] = []
        for round_ in range(2):
            await four_maximal_calls_then_four_that_fit(port, round_, fits)
            await until(rss_below(pid, start_kb + SETTLED_BOUND_MB * 1024), timeout=10)
            if settled_kb:
                # The heap is trimmed on a worker thread after the last large call: the second
                # round's level is read once that has happened (or the wait fails the test).
                await until(rss_below(pid, settled_kb[0] + LEVEL_BOUND_MB * 1024), timeout=10)
            settled_kb.append(rss_kb(pid))
        peak_mb = peak_kb(pid) / 1024
        print(f"RSS {start_kb / 1024:.1f} MB at the start, peak {peak_mb:.1f} MB, then", settled_kb)
        assert peak_mb < PEAK_BOUND_MB, f"peak RSS {peak_mb:.1f} MB"
        # A second round leaves the server about where the first did: nothing accumulates.
        assert settled_kb[1] < settled_kb[0] + LEVEL_BOUND_MB * 1024, (start_kb, settled_kb)


def test_a_call_is_refused_past_its_cap_and_the_server_past_its_budget_with_retry_info() -> None:
    budget = MemoryBudget(limit=100, per_call=60)
    with budget.call("SendMessages") as first:
        first.take(60)
        with pytest.raises(ResourceExhausted, match="at most 60 bytes") as too_big:
            first.take(1)
        assert too_big.value.retry_after is None  # the same call would be refused again: split it
        with budget.call("SendMessages") as second:
            second.take(40)
            with pytest.raises(ResourceExhausted, match="limit of 100 request bytes") as full:
                second.take(1)
            assert full.value.retry_after is not None
        assert budget.in_flight == 60
    assert budget.in_flight == 0


async def test_a_full_server_budget_is_resource_exhausted_with_retry_info_until_calls_end(
    tmp_path: Path,
) -> None:
    size = maximal_message("held-0").ByteSize()  # every key here is as long
    config = make_config(tmp_path, max_call_bytes=3 * size, max_inflight_bytes=3 * size + 100)
    app: App = await build_app(config)
    await app.start()
    budget = service_of(app, MessageService).budget
    try:
        async with channel(app.port) as opened:
            stub = message_service_grpc.MessageServiceStub(opened)
            async with stub.SendMessages.open(timeout=30) as running:
                for n in range(3):
                    await running.send_message(maximal_message(f"held-{n}"))
                await until(lambda: budget.in_flight == 3 * size)
                error = await expect_status(
                    stub.SendMessages([maximal_message("more-0")]), Status.RESOURCE_EXHAUSTED
                )
                assert "retry in" in (error.message or "")
                assert any(isinstance(d, error_details_pb2.RetryInfo) for d in error.details or [])
                await running.end()
                reply = await running.recv_message()
                assert reply is not None and reply.created_count == 3
            assert budget.in_flight == 0
            retried = await stub.SendMessages([maximal_message("more-0")], timeout=30)
            assert retried.created_count == 1
    finally:
        await app.shutdown()
