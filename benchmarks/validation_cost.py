"""What checking a request against its buf.validate rules costs, per call and against unary throughput.

Run by ``nox -s validation_cost``. Prints, for typical requests, the nanoseconds a call
spends parsing alone, parsing plus the boundary's check (the plan of standard rules,
protovalidate only on failure), and parsing plus protovalidate on every message
(what the boundary would cost without the plan); then the unary throughput of a real
server over loopback and each check's share of one call's time.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import protovalidate
from google.protobuf.duration_pb2 import Duration
from google.protobuf.message import Message
from grpclib.client import Channel
from grpclib.exceptions import GRPCError

from chat.v1 import (
    ai_service_pb2,
    common_pb2,
    message_service_grpc,
    message_service_pb2,
    plugin_service_pb2,
    rag_service_pb2,
)
from chat_services.validation import RequestValidator

TYPICAL: dict[str, Message] = {
    "GetMessage": message_service_pb2.GetMessageRequest(message_id="m-0123456789", include_user=True),
    "SendMessages": message_service_pb2.SendMessagesRequest(
        message=message_service_pb2.NewMessage(
            idempotency_key="3f1c7a52-9a43-4c1e-8a0e-5f1f4f0e2b11",
            conversation_id="c-general",
            author_id="u-ann",
            content="Lunch at noon? The usual place, I booked a table for five. " * 3,
            files=[
                common_pb2.File(
                    file_id="f-1", name="menu.pdf", media_type="application/pdf", size_bytes=48213
                )
            ],
        )
    ),
    "Complete": ai_service_pb2.CompleteRequest(
        conversation_id="c-general", prompt="Summarise what we decided about lunch.", max_tokens=256
    ),
    "InvokePlugin": plugin_service_pb2.InvokePluginRequest(
        plugin_name="calculator", arguments={"expression": "2 * (3 + 4)"}, timeout=Duration(seconds=5)
    ),
    "SearchDocuments": rag_service_pb2.SearchDocumentsRequest(text="lunch policy", top_k=5),
}


def ns_per_call(work: Callable[[], object], budget_s: float) -> float:
    """Mean nanoseconds of ``work()``, repeated until ``budget_s`` seconds have passed (at least 20 times)."""
    work()  # warm caches: the plan and protovalidate compile once per type
    calls, started = 0, time.perf_counter_ns()
    while calls < 20 or time.perf_counter_ns() - started < budget_s * 1e9:
        work()
        calls += 1
    return (time.perf_counter_ns() - started) / calls


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def unary_calls_per_second(port: int, calls: int, concurrency: int) -> float:
    """GetMessage calls a second (each answered NOT_FOUND by the handler), ``concurrency`` in flight."""
    request = TYPICAL["GetMessage"]
    async with Channel("127.0.0.1", port) as channel:
        stub = message_service_grpc.MessageServiceStub(channel)

        async def one() -> None:
            with contextlib.suppress(GRPCError):  # NOT_FOUND: the handler ran, the call counts
                await stub.GetMessage(request, timeout=30)

        deadline = time.monotonic() + 60
        while True:  # wait until the server answers, bounded
            try:
                await stub.GetMessage(request, timeout=1)
            except GRPCError:
                break
            except (ConnectionError, OSError, TimeoutError):
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.1)
        await asyncio.gather(*(one() for _ in range(concurrency)))  # warm up
        remaining = calls

        async def worker() -> None:
            nonlocal remaining
            while remaining > 0:
                remaining -= 1
                await one()

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return calls / (time.perf_counter() - started)


def main() -> None:
    """Print the per-call costs and their share of a unary call."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--budget", type=float, default=1.0, help="seconds to time each request kind")
    parser.add_argument("--calls", type=int, default=3000, help="unary calls for the throughput figure")
    parser.add_argument("--concurrency", type=int, default=50)
    args = parser.parse_args()

    boundary = RequestValidator()
    full = protovalidate.Validator()
    rows = []
    for name, message in TYPICAL.items():
        data, parse_one = message.SerializeToString(), type(message).FromString
        boundary.check(parse_one(data))  # every typical request is valid
        parse = ns_per_call(partial(parse_one, data), args.budget)
        checked = ns_per_call(lambda p=parse_one, d=data: boundary.check(p(d)), args.budget)
        every = ns_per_call(lambda p=parse_one, d=data: full.collect_violations(p(d)), args.budget)
        rows.append((name, len(data), parse, checked, every))

    port = _free_port()
    with tempfile.TemporaryDirectory() as scratch:
        command = [sys.executable, "-m", "chat_services", "serve", "--port", str(port)]
        server = subprocess.Popen([*command, "--database", str(Path(scratch) / "bench.db")])
        try:
            per_second = asyncio.run(unary_calls_per_second(port, args.calls, args.concurrency))
        finally:
            server.terminate()
            server.wait(30)
    call_ns = 1e9 / per_second

    print(f"unary throughput: {per_second:,.0f} GetMessage calls/s at {args.concurrency} in flight")
    print(f"  = {call_ns / 1000:,.0f} µs of server time per call\n")
    header = f"{'request':<16}{'bytes':>6}{'parse ns':>11}{'+check ns':>11}{'check %call':>12}"
    print(header + f"{'+protovalidate ns':>19}{'pv %call':>10}")
    for name, size, parse, checked, every in rows:
        check_share = (checked - parse) / call_ns * 100
        pv_share = (every - parse) / call_ns * 100
        print(
            f"{name:<16}{size:>6}{parse:>11,.0f}{checked:>11,.0f}{check_share:>11.1f}%{every:>19,.0f}{pv_share:>9.0f}%"
        )


if __name__ == "__main__":
    main()
