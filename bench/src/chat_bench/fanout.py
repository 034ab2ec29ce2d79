"""Live fan-out under load: ``--followers`` StreamMessages followers, ``--rate`` messages a second.

``python -m chat_bench.fanout`` (or ``nox -s fanout``) starts ``chat-services`` in a child
process on a fresh SQLite file, opens the followers (spread over ``--conversations``
conversations and over as many HTTP/2 connections as their 100-streams limit needs),
then sends ``--rate`` messages a second for ``--seconds`` seconds, round robin over the
conversations. Each message carries its send time; a delivery's fan-out latency is
the time it reached a follower less that. Every follower checks that it got each
message of its conversation once, in order. Prints one Markdown table.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import psutil
from grpclib.client import Channel

from chat.v1 import message_service_grpc
from chat.v1.message_service_pb2 import NewMessage, SendMessagesRequest, StreamMessagesRequest

STREAMS_PER_CONNECTION = 90  # under the server's 100 concurrent streams per connection
DRAIN_SECONDS = 60.0  # how long the followers get to receive everything once sending stops


@dataclass
class Follower:
    """What one follower received."""

    conversation: str
    latencies_ms: list[float] = field(default_factory=list)
    last: int = 0
    faults: int = 0  # a sequence out of order or twice

    def received(self, sequence: int, sent_ns: int) -> None:
        if sequence != self.last + 1:
            self.faults += 1
        self.last = max(self.last, sequence)
        if sent_ns:  # the warm-up message carries no send time
            self.latencies_ms.append((time.time_ns() - sent_ns) / 1e6)


async def follow(
    stub: message_service_grpc.MessageServiceStub, follower: Follower, ready: asyncio.Event
) -> None:
    request = StreamMessagesRequest(conversation_id=follower.conversation, follow=True)
    async with stub.StreamMessages.open() as stream:
        await stream.send_message(request, end=True)
        while (reply := await stream.recv_message()) is not None:
            content = reply.message.content
            follower.received(reply.message.sequence, int(content) if content.isdigit() else 0)
            if reply.message.sequence == 1:
                ready.set()


@contextlib.asynccontextmanager
async def server(database: Path) -> AsyncIterator[tuple[int, psutil.Process]]:
    """``chat-services serve`` on a free port of 127.0.0.1, in a child process; yields port and process."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "chat_services",
        "serve",
        "--port",
        "0",
        "--database",
        str(database),
        stderr=subprocess.PIPE,
        env={**os.environ, "CHAT_SERVICES_LOG_LEVEL": "INFO"},
    )
    assert process.stderr is not None
    drain: asyncio.Future[bytes] | None = None
    try:
        port = None
        while port is None:
            line = await asyncio.wait_for(process.stderr.readline(), 60)
            if not line:
                raise RuntimeError(f"chat-services exited ({await process.wait()}) before serving")
            if found := re.search(rb"serving address=127\.0\.0\.1:(\d+)", line):
                port = int(found.group(1))
        # Keep reading its log, so a full pipe never blocks the server.
        drain = asyncio.ensure_future(process.stderr.read())
        yield port, psutil.Process(process.pid)
    finally:
        if process.returncode is None:
            process.terminate()
            await asyncio.wait_for(process.wait(), 60)
        if drain is not None:
            drain.cancel()


async def run(followers: int, conversations: int, rate: float, seconds: float) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as folder:
        async with server(Path(folder) / "fanout.db") as (port, process):
            channels = [
                Channel("127.0.0.1", port) for _ in range(-(-followers // STREAMS_PER_CONNECTION) + 1)
            ]
            try:
                return await measure(channels, process, followers, conversations, rate, seconds)
            finally:
                for opened in channels:
                    opened.close()


async def measure(
    channels: list[Channel],
    process: psutil.Process,
    followers: int,
    conversations: int,
    rate: float,
    seconds: float,
) -> dict[str, float]:
    sender = message_service_grpc.MessageServiceStub(channels[0])
    names = [f"fanout-{n}" for n in range(conversations)]
    members = [Follower(names[n % conversations]) for n in range(followers)]
    readies = [asyncio.Event() for _ in members]
    tasks = [
        asyncio.ensure_future(
            follow(
                message_service_grpc.MessageServiceStub(channels[1 + n // STREAMS_PER_CONNECTION]),
                member,
                ready,
            )
        )
        for n, (member, ready) in enumerate(zip(members, readies, strict=True))
    ]
    try:
        # A first message in each conversation: once every follower has it, all are live.
        for name in names:
            await send(sender, name, f"warm-up-{name}", "")
        await asyncio.wait_for(asyncio.gather(*(ready.wait() for ready in readies)), DRAIN_SECONDS)
        # Sends start on schedule, each on its own, so a slow answer never delays the next one.
        sending: set[asyncio.Future[None]] = set()
        cpu_before = sum(process.cpu_times()[:2])
        sent = 0
        start = time.monotonic()
        while sent < seconds * rate:
            send_at = start + sent / rate
            await asyncio.sleep(max(0.0, send_at - time.monotonic()))
            sending.add(
                asyncio.ensure_future(
                    send(sender, names[sent % conversations], f"m{sent}", str(time.time_ns()))
                )
            )
            sent += 1
        await asyncio.gather(*sending)
        expected = {
            name: 1 + sent // conversations + (n < sent % conversations) for n, name in enumerate(names)
        }
        deadline = time.monotonic() + DRAIN_SECONDS
        while any(m.last < expected[m.conversation] for m in members) and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        cpu_seconds = sum(process.cpu_times()[:2]) - cpu_before
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    latencies = sorted(latency for member in members for latency in member.latencies_ms)
    missing = sum(max(0, expected[m.conversation] - m.last) for m in members)
    return {
        "messages": sent,
        "deliveries": len(latencies),
        "p50_ms": statistics.median(latencies),
        "p99_ms": latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))],
        "max_ms": latencies[-1],
        "faults": sum(m.faults for m in members),
        "missing": missing,
        "server_cpu_us": 1e6 * cpu_seconds / max(1, len(latencies)),
    }


async def send(
    stub: message_service_grpc.MessageServiceStub, conversation: str, key: str, content: str
) -> None:
    message = NewMessage(
        idempotency_key=key, conversation_id=conversation, author_id="bench", content=content or "warm-up"
    )
    await stub.SendMessages([SendMessagesRequest(message=message)], timeout=30)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m chat_bench.fanout", description=__doc__.splitlines()[0])
    parser.add_argument("--followers", type=int, default=2000)
    parser.add_argument(
        "--conversations", type=int, default=100, help="followers are spread evenly over them"
    )
    parser.add_argument("--rate", type=float, default=100.0, help="messages a second, over all conversations")
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args(argv)
    result = asyncio.run(run(args.followers, args.conversations, args.rate, args.seconds))
    columns = ["followers", "conversations", "msgs/s", "messages", "deliveries", "p50 ms", "p99 ms", "max ms"]
    columns += ["server CPU µs per delivery", "out of order or twice", "missing"]
    print("| " + " | ".join(columns) + " |")
    print("|" + " ---: |" * len(columns))
    cells = [str(args.followers), str(args.conversations), f"{args.rate:g}", f"{result['messages']:.0f}"]
    cells += [f"{result['deliveries']:.0f}", f"{result['p50_ms']:.1f}", f"{result['p99_ms']:.1f}"]
    cells += [f"{result['max_ms']:.1f}", f"{result['server_cpu_us']:.0f}"]
    cells += [f"{result['faults']:.0f}", f"{result['missing']:.0f}"]
    print("| " + " | ".join(cells) + " |")
    return 0 if result["faults"] == 0 and result["missing"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
