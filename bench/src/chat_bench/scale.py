"""Past one process: RPS and p50/p99 on SQLite and PostgreSQL (1 and 2 workers); fan-out across instances.

The same load (the load engine of ``chat-load``: 32 calls in flight over 8 connections,
so the kernel spreads them over the workers) runs against three servers in turn:
``chat-services`` on an SQLite file, on a throwaway PostgreSQL cluster (started here,
fsync on), and on that cluster with ``--workers 2``. Then two instances on the cluster,
a follower on each, and messages sent through the first at a steady pace: how long
until each follower has them, on the sender's instance and on the other.

Nothing is pinned: the workers, the database and this client share every core. On a
2-core machine the client and PostgreSQL take a large share, so the scaling ratio
measured here is a floor, not what two workers give with the client elsewhere.

``python -m chat_bench.scale [--seconds 10]`` prints the section; ``chat-bench`` appends it to its report.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from grpclib.client import Channel

from chat.v1 import message_service_grpc, message_service_pb2
from chat_bench.engine import CallPlan, LoadPlan, run_load
from chat_bench.methods import resolve
from chat_bench.servers import ServerProcess
from chat_bench.stats import LoadResult, percentile
from chat_bench.templates import RequestTemplate

CONCURRENCY = 32
CONNECTIONS = 8
CONVERSATIONS = (
    64  # SendMessages spreads over these, so sequences of one conversation are not the whole story
)
FANOUT_MESSAGES = 200
FANOUT_RATE = 50.0  # messages a second
_SERVING = re.compile(rb"serving address=\S+:(\d+)")


@dataclass
class Target:
    """One server set-up measured, and what it measured."""

    name: str
    database: str
    workers: int = 1
    results: dict[str, LoadResult] = field(default_factory=dict)


async def start(name: str, database: str, work: Path, *extra: str, serving: int = 1) -> ServerProcess:
    """A ``chat-services serve`` on a free port, once ``serving`` processes said they serve."""
    argv = [sys.executable, "-m", "chat_services", "serve", "--port", "0", "--database", database, *extra]
    server = ServerProcess(name, argv, work / f"{name}.log", env={"CHAT_SERVICES_LOG_LEVEL": "INFO"})
    await server.start(set(range(os.cpu_count() or 1)))
    for _ in range(1200):  # every worker serving, at most a minute
        if len(_SERVING.findall(server.log.read_bytes())) >= serving:
            return server
        await asyncio.sleep(0.05)
    server.stop()
    raise RuntimeError(f"{name}: {serving} processes never said they serve")


def plan(port: int, method: str, data: str, seconds: float) -> LoadPlan:
    resolved = resolve(method)
    call = CallPlan(resolved, RequestTemplate(data, resolved.request_type))
    return LoadPlan(
        "127.0.0.1",
        port,
        [call],
        total=None,
        duration=seconds,
        concurrency=CONCURRENCY,
        connections=CONNECTIONS,
        timeout=30.0,
    )


async def measure(target: Target, work: Path, seconds: float) -> None:
    """GetMessage of one stored message, then SendMessages of new ones, each for ``seconds``."""
    extra = ("--workers", str(target.workers)) if target.workers > 1 else ()
    server = await start(target.name, target.database, work, *extra, serving=target.workers)
    try:
        async with Channel("127.0.0.1", server.port) as channel:
            stub = message_service_grpc.MessageServiceStub(channel)
            new = message_service_pb2.NewMessage(
                idempotency_key="bench-get", conversation_id="bench", author_id="u", content="x" * 200
            )
            reply = await stub.SendMessages([message_service_pb2.SendMessagesRequest(message=new)])
            message_id = reply.messages[0].id
        get = plan(
            server.port, "chat.v1.MessageService/GetMessage", f'{{"messageId": "{message_id}"}}', seconds
        )
        send = plan(
            server.port,
            "chat.v1.MessageService/SendMessages",
            '{"message": {"idempotencyKey": "{{.UUID}}", "conversationId": "c{{randomInt 0 '
            + str(CONVERSATIONS)
            + '}}", "authorId": "u", "content": "{{randomString 200}}"}}',
            seconds,
        )
        target.results["GetMessage"] = await run_load(get)
        target.results["SendMessages"] = await run_load(send)
    finally:
        server.stop()


async def fanout(dsn: str, work: Path) -> dict[str, list[float]]:
    """Seconds from the SendMessages call on instance A until each follower (on A, on B) has the message."""
    first = await start("fanout-a", dsn, work)
    second = await start("fanout-b", dsn, work)
    sent: dict[str, float] = {}
    delays: dict[str, list[float]] = {"same instance": [], "other instance": []}
    try:
        async with (
            Channel("127.0.0.1", first.port) as a,
            Channel("127.0.0.1", second.port) as b,
        ):

            async def follow(channel: Channel, label: str) -> None:
                stub = message_service_grpc.MessageServiceStub(channel)
                request = message_service_pb2.StreamMessagesRequest(conversation_id="fanout", follow=True)
                async with stub.StreamMessages.open(timeout=300) as stream:
                    await stream.send_message(request, end=True)
                    while len(delays[label]) < FANOUT_MESSAGES:
                        reply = await stream.recv_message()
                        assert reply is not None
                        arrived = time.perf_counter()
                        delays[label].append(arrived - sent[reply.message.content])
                    await stream.cancel()

            followers = [
                asyncio.ensure_future(follow(a, "same instance")),
                asyncio.ensure_future(follow(b, "other instance")),
            ]
            stub = message_service_grpc.MessageServiceStub(a)
            await asyncio.sleep(1.0)  # both followers' streams open before the first send
            for index in range(FANOUT_MESSAGES):
                content = f"f{index}"
                new = message_service_pb2.NewMessage(
                    idempotency_key=content, conversation_id="fanout", author_id="u", content=content
                )
                sent[content] = time.perf_counter()
                await stub.SendMessages([message_service_pb2.SendMessagesRequest(message=new)])
                await asyncio.sleep(1 / FANOUT_RATE)
            await asyncio.wait_for(asyncio.gather(*followers), 120)
    finally:
        first.stop()
        second.stop()
    return delays


async def run(seconds: float, work: Path) -> str:
    """Every measurement; the report section as Markdown."""
    from chat_services.devpostgres import running_cluster  # the services' own throwaway cluster

    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, set(range(os.cpu_count() or 1)))  # the servers inherit it
    with running_cluster(durable=True) as cluster:  # fsync on, as SQLite's synchronous=FULL
        targets = [
            Target("SQLite, 1 process", str(work / "scale.db")),
            Target("PostgreSQL, 1 worker", cluster.create_database("bench_one")),
            Target("PostgreSQL, 2 workers", cluster.create_database("bench_two"), workers=2),
        ]
        for target in targets:
            await measure(target, work, seconds)
        delays = await fanout(cluster.create_database("bench_fanout"), work)
    return section(targets, delays, seconds)


def section(targets: Sequence[Target], delays: dict[str, list[float]], seconds: float) -> str:
    cores = os.cpu_count() or 1
    lines = [
        "## Past one process (issue 22)",
        "",
        f"{CONCURRENCY} calls in flight over {CONNECTIONS} connections, {seconds:g} s per method and set-up,"
        f" {cores} cores shared by the servers, PostgreSQL and this client (nothing pinned).",
        "",
        "| set-up | GetMessage RPS | p50 ms | p99 ms | SendMessages RPS | p50 ms | p99 ms | errors |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for target in targets:
        get, send = target.results["GetMessage"], target.results["SendMessages"]
        g, s = get.latency_summary(), send.latency_summary()
        errors = get.count - get.statuses.get("OK", 0) + send.count - send.statuses.get("OK", 0)
        lines.append(
            f"| {target.name} | {get.rps:,.0f} | {g['p50']:.1f} | {g['p99']:.1f} "
            f"| {send.rps:,.0f} | {s['p50']:.1f} | {s['p99']:.1f} | {errors} |"
        )
    by_name = {t.name: t for t in targets}
    one, two = by_name["PostgreSQL, 1 worker"], by_name["PostgreSQL, 2 workers"]
    lines += ["", "Scaling, PostgreSQL 2 workers over 1 worker:"]
    for method in ("GetMessage", "SendMessages"):
        ratio = two.results[method].rps / one.results[method].rps if one.results[method].rps else 0.0
        lines.append(f"- {method}: x{ratio:.2f}")
    lines += [
        "",
        f"Fan-out: {FANOUT_MESSAGES} messages sent through instance A at {FANOUT_RATE:g}/s, a follower on A"
        " and one on B (two instances, one PostgreSQL): from the SendMessages call until the follower"
        " has it.",
        "",
        "| follower | p50 ms | p99 ms | max ms |",
        "|---|---|---|---|",
    ]
    for label, values in delays.items():
        ordered = sorted(values)
        lines.append(
            f"| {label} | {percentile(ordered, 50) * 1000:.1f} | {percentile(ordered, 99) * 1000:.1f}"
            f" | {ordered[-1] * 1000 if ordered else 0:.1f} |"
        )
    return "\n".join(lines) + "\n"


def report_section(seconds: float) -> str:
    """Run every measurement in a temporary folder; the Markdown section for the report."""
    with tempfile.TemporaryDirectory(prefix="chat-scale-") as work:
        return asyncio.run(run(seconds, Path(work)))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m chat_bench.scale", description=__doc__)
    parser.add_argument("--seconds", type=float, default=10.0, help="load per method and set-up")
    args = parser.parse_args(argv)
    print(report_section(args.seconds))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
