"""The benchmark run: seed one database, start the servers, measure every shape on every transport.

Rounds are interleaved (each round measures every shape on every transport, in a rotated
order) and every comparison is a median of in-round ratios, so a slow minute on a shared
machine weighs on both sides of a ratio rather than on one.
"""

from __future__ import annotations

import asyncio
import shutil
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from chat.v1 import common_pb2
from chat.v1 import message_service_pb2 as pb
from chat_bench import floor_replies, transports
from chat_bench.codec_bench import CodecResults, measure
from chat_bench.engine import CallPlan, LoadPlan, run_load
from chat_bench.floor_servers import FLOOR_GRPCLIB, FLOOR_HTTP_JSON, FLOOR_SHAPE, STACKS, floor_server
from chat_bench.methods import resolve
from chat_bench.prose import prose
from chat_bench.proxy import CountingProxy
from chat_bench.servers import ServerProcess, can_pin, extract_services, grpclib_server, http_server, pin
from chat_bench.spread import Spread, ratios
from chat_bench.stats import LoadResult, percentile
from chat_bench.templates import RequestTemplate

BASELINE = "http-json"
SERVER_CPUS = {0}
CLIENT_CPUS = {1}
PROMPT = "How do I reset the password of a shared account?"
LARGE_CONTENT = 8000
CPU_CONCURRENCY = 50  # calls in flight while the server's CPU is measured
CPU_MIN_CALLS = 2
CPU_SERVERS = ("grpclib", "previous", BASELINE)


@dataclass(frozen=True)
class Settings:
    """How much to measure; ``quick()`` is a smoke run of the same steps."""

    rounds: int = 5
    calls: int = 150  # c=1 unary calls per shape, transport and round
    stream_calls: int = 3  # 1,000-message replays per transport and round
    c50_calls: int = 800  # GetMessage calls at 50 in flight per transport and round
    # GetMessage calls per server per round for the CPU figure (other shapes: fewer): at
    # 200-700 µs a call, one to three seconds of server CPU, so the 10 ms clock tick is
    # 1-2 µs of a figure (at 1,500 calls a fast machine read 6.7 µs steps).
    cpu_calls: int = 4500
    mixed_seconds: float = 60.0
    mixed_concurrency: int = 50
    previous_ref: str = ""

    @classmethod
    def quick(cls, previous_ref: str) -> Settings:
        """A run of a minute or two that exercises every step."""
        return cls(
            rounds=2,
            calls=40,
            stream_calls=1,
            c50_calls=200,
            cpu_calls=400,
            mixed_seconds=5.0,
            previous_ref=previous_ref,
        )


@dataclass(frozen=True)
class Seeded:
    """What the seed put in the database, for the calls to name."""

    small_id: str
    large_id: str
    sample: bytes  # the small message as GetMessage returns it: the codec benchmark's input
    page_conversation: str = "bench-page"
    replay_conversation: str = "bench-replay"


@dataclass(frozen=True)
class Shape:
    """One call shape of the mix and how each transport makes it once."""

    name: str
    description: str
    call: Callable[[transports.Transport, int], Awaitable[object]]
    per_round: Callable[[Settings], int]
    streamed: int = 0  # messages a call receives, for throughput
    # Calls per round of the CPU figure: ``Settings.cpu_calls // cpu_share``, so that each
    # measurement spends a second or more of server CPU (the clock ticks at 10 ms).
    cpu_share: int = 1

    def cpu_calls(self, settings: Settings) -> int:
        """Calls per server and round for the server-CPU figure."""
        return max(CPU_MIN_CALLS, settings.cpu_calls // self.cpu_share)


@dataclass
class Results:
    """Everything measured, for the report."""

    settings: Settings
    transports: list[str]
    shapes: list[Shape]
    pinned: bool
    latencies: dict[tuple[str, str], list[list[float]]] = field(default_factory=dict)  # (shape, transport)
    bytes_per_call: dict[tuple[str, str], float] = field(default_factory=dict)
    c50: dict[str, list[tuple[float, float]]] = field(default_factory=dict)  # transport: (p50, rps) per round
    # (shape, server): server CPU seconds (user + system, every thread) per call, one per round
    cpu_per_call: dict[tuple[str, str], list[float]] = field(default_factory=dict)
    # (shape, client): server CPU seconds per call per round, plain and compressing (_compression_cpu)
    compression_cpu: dict[tuple[str, str], list[float]] = field(default_factory=dict)
    mixed: LoadResult | None = None
    codec: CodecResults | None = None
    previous_ref: str | None = None
    started: float = field(default_factory=time.time)
    finished: float = 0.0

    def p50s(self, shape: str, transport: str) -> list[float]:
        """The median latency of each round."""
        return [percentile(sorted(values), 50) for values in self.latencies.get((shape, transport), [])]

    def ratio(self, shape: str, transport: str, against: str = BASELINE) -> float:
        """Median over rounds of ``transport``'s p50 divided by ``against``'s in the same round."""
        return self.ratios(shape, transport, against).median

    def ratios(self, shape: str, transport: str, against: str = BASELINE) -> Spread:
        """``transport``'s p50 divided by ``against``'s, one ratio per round."""
        return ratios(self.p50s(shape, transport), self.p50s(shape, against))

    def cpu_ratios(self, shape: str, server: str, against: str = BASELINE) -> Spread:
        """Server CPU per call of ``server`` divided by ``against``'s, one ratio per round."""
        return ratios(self.cpu_per_call[(shape, server)], self.cpu_per_call[(shape, against)])


def shapes(seeded: Seeded) -> list[Shape]:
    """The realistic mix: small and large GetMessage, a 50-message page, a batch of 10, replay, AI."""
    contents = [f"batch message {i}: " + prose(160, f"batch-{i}") for i in range(10)]

    async def send(t: transports.Transport, i: int) -> None:
        await t.send(f"bench-send-{t.name}", contents, f"{t.name}-{i}-{uuid.uuid4().hex}")

    return [
        Shape(
            "GetMessage small",
            "one ~250 B message, author and 1 file",
            lambda t, _i: t.get(seeded.small_id),
            lambda s: s.calls,
        ),
        Shape(
            "GetMessage large",
            f"one ~{LARGE_CONTENT // 1000} kB message, author and 1 file",
            lambda t, _i: t.get(seeded.large_id),
            lambda s: s.calls,
            cpu_share=2,
        ),
        Shape(
            "ListMessages 50",
            "a page of 50 messages with authors",
            lambda t, _i: t.page(seeded.page_conversation, 50),
            lambda s: max(10, s.calls // 4),
            cpu_share=10,
        ),
        Shape(
            "SendMessages 10",
            "a client stream of 10 new messages (one transaction, fsync)",
            send,
            lambda s: max(10, s.calls // 4),
            cpu_share=10,
        ),
        Shape(
            "StreamMessages 1000",
            "replay of 1,000 stored messages",
            lambda t, _i: t.stream(seeded.replay_conversation),
            lambda s: s.stream_calls,
            streamed=1000,
            cpu_share=300,
        ),
        Shape(
            "StreamCompletion",
            "an AI answer streamed in chunks (no model delay)",
            lambda t, _i: t.complete(seeded.page_conversation, PROMPT),
            lambda s: max(10, s.calls // 4),
            cpu_share=10,
        ),
    ]


async def seed(port: int) -> Seeded:
    """Store the conversations the shapes read, through the `_pb2` client."""
    client = transports.Pb2Transport("127.0.0.1", port)
    try:
        ids = []
        for conversation, size in (("bench-small", 120), ("bench-large", LARGE_CONTENT)):
            new = pb.NewMessage(
                conversation_id=conversation,
                author_id="bench-author",
                content=prose(size, conversation),
                idempotency_key=f"seed-{conversation}",
                files=[
                    common_pb2.File(
                        file_id="f-1",
                        name="report.pdf",
                        media_type="application/pdf",
                        size_bytes=48213,
                        url="https://files.example/f-1",
                        sha256="ab" * 32,
                    )
                ],
            )
            async with client.messages.SendMessages.open() as stream:
                await stream.send_message(pb.SendMessagesRequest(message=new), end=True)
                reply = await stream.recv_message()
            assert reply is not None
            ids.append(reply.messages[0].id)
        for conversation, count in (("bench-page", 60), ("bench-replay", 1000)):
            for start in range(0, count, 500):
                # A line or two each, as chat is: ~140 characters, different in every message.
                contents = [
                    f"{n}: {prose(140, f'{conversation}-{n}')}" for n in range(start, min(count, start + 500))
                ]
                await client.send(conversation, contents, f"seed-{conversation}-{start}")
        got = await client.messages.GetMessage(
            pb.GetMessageRequest(message_id=ids[0], include_user=True, include_files=True)
        )
        sample = got.message.SerializeToString()
        return Seeded(small_id=ids[0], large_id=ids[1], sample=sample)
    finally:
        await client.close()


async def latencies(call: Callable[[int], Awaitable[object]], count: int, concurrency: int) -> list[float]:
    """Make ``count`` calls, ``concurrency`` at a time; return each call's seconds."""
    numbers = iter(range(count))
    out: list[float] = []

    async def worker() -> None:
        for number in numbers:
            began = time.perf_counter()
            await call(number)
            out.append(time.perf_counter() - began)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return out


def factories() -> dict[str, transports.Factory]:
    """Every transport the run compares, by name (the gateway when its hook is set)."""
    found: dict[str, transports.Factory] = {
        "dataclass": transports.DataclassTransport,
        "pb2": transports.Pb2Transport,
        "grpcio": transports.GrpcioTransport,
        BASELINE: transports.HttpJsonTransport,
    }
    if transports.GATEWAY_HOOK is not None:
        found["gateway"] = transports.GATEWAY_HOOK
    return found


async def run(settings: Settings, work: Path, repository: Path) -> Results:
    """The whole benchmark; servers' files and logs go into ``work``."""
    pin(0, CLIENT_CPUS)
    seed_server = grpclib_server("seed", work / "seed.db", work / "seed.log")
    seed_port = await seed_server.start(SERVER_CPUS)
    seeded = await seed(seed_port)
    # What the real server answers each shape, for the floor servers to repeat.
    replies = await floor_replies.record(seed_port, [shape.call for shape in shapes(seeded)])
    floor_replies.write(work / "floor-replies", replies)
    seed_server.stop()
    servers: dict[str, ServerProcess] = {
        "grpclib": grpclib_server("grpclib", work / "grpclib.db", work / "grpclib.log"),
        BASELINE: http_server(work / "http.db", work / "http.log"),
    }
    previous = (
        extract_services(repository, settings.previous_ref, work / "previous")
        if settings.previous_ref
        else None
    )
    if previous is not None:
        servers["previous"] = grpclib_server(
            "previous", work / "previous.db", work / "previous.log", previous
        )
    for name in servers:
        shutil.copyfile(work / "seed.db", work / f"{'http' if name == BASELINE else name}.db")
    for name in STACKS:
        servers[name] = floor_server(name, work / "floor-replies", work / f"{name}.log")
    made = factories()
    results = Results(
        settings, list(made), shapes(seeded), can_pin(), previous_ref=settings.previous_ref or None
    )
    results.codec = measure(seeded.sample, rounds=settings.rounds)
    if previous is None:
        results.previous_ref = None
    try:
        ports = {name: await server.start(SERVER_CPUS) for name, server in servers.items()}
        if transports.GATEWAY_COMMAND is not None:  # in front of this run's chat-services
            command = transports.GATEWAY_COMMAND(ports["grpclib"])
            servers["gateway"] = ServerProcess("gateway", command, work / "gateway.log")
            ports["gateway"] = await servers["gateway"].start(SERVER_CPUS)

        def port_of(transport: str) -> int:
            return ports[
                BASELINE
                if transport.startswith(BASELINE)
                else "gateway"
                if transport == "gateway"
                else "grpclib"
            ]

        clients = {name: factory("127.0.0.1", port_of(name)) for name, factory in made.items()}
        floors = floor_clients(ports)
        try:
            await _rounds(results, clients, floors)
            await _wire_bytes(results, made, port_of)
            await _wire_bytes(results, COMPRESSING, port_of)
            await _compression_cpu(results, servers, port_of)
            await _server_cpu(results, servers)
            results.mixed = await _mixed(settings, ports["grpclib"], seeded)
        finally:
            for client in [*clients.values(), *floors.values()]:
                await client.close()
    finally:
        for server in servers.values():
            server.stop()
    results.finished = time.time()
    return results


def floor_clients(ports: dict[str, int]) -> dict[str, transports.Transport]:
    """The latency floor's clients: `_pb2` on the bare grpclib server, HTTP/JSON on the baseline's stack."""
    return {
        FLOOR_GRPCLIB: transports.Pb2Transport("127.0.0.1", ports[FLOOR_GRPCLIB]),
        FLOOR_HTTP_JSON: transports.HttpJsonTransport("127.0.0.1", ports[FLOOR_HTTP_JSON]),
    }


def _rotated(names: list[str], round_number: int) -> list[str]:
    return names[round_number % len(names) :] + names[: round_number % len(names)]


async def _rounds(
    results: Results,
    clients: dict[str, transports.Transport],
    floors: dict[str, transports.Transport] | None = None,
) -> None:
    """Every shape at c=1 on every client, then GetMessage at c=50, in rotated order each round.

    ``floors`` (the floor servers' clients, by server name) join the c=1 measurements in
    the same rounds and order, so their in-round ratios to the HTTP/JSON server hold.
    """
    every = {**clients, **(floors or {})}
    for client in every.values():  # connect and warm every path once
        for shape in results.shapes:
            await shape.call(client, 0)
    for round_number in range(results.settings.rounds):
        for shape in results.shapes:
            for name in _rotated(list(every), round_number):
                client = every[name]
                measured = await latencies(partial(shape.call, client), shape.per_round(results.settings), 1)
                results.latencies.setdefault((shape.name, name), []).append(measured)
        for name in _rotated(list(clients), round_number):
            client = clients[name]
            started = time.perf_counter()
            measured = await latencies(
                partial(results.shapes[0].call, client), results.settings.c50_calls, 50
            )
            elapsed = time.perf_counter() - started
            results.c50.setdefault(name, []).append(
                (percentile(sorted(measured), 50), len(measured) / elapsed)
            )
        print(f"round {round_number + 1}/{results.settings.rounds} done", flush=True)


async def _wire_bytes(
    results: Results, made: dict[str, transports.Factory], port_of: Callable[[str], int], calls: int = 20
) -> None:
    """Bytes on the wire per call, through a counting proxy, after a warm-up call per shape."""
    for name, factory in made.items():
        proxy = CountingProxy(port_of(name))
        client = factory("127.0.0.1", await proxy.start())
        try:
            for shape in results.shapes:
                await shape.call(client, 0)
                before = proxy.count.total
                count = calls if not shape.streamed else 2
                for i in range(count):
                    await shape.call(client, i + 1)
                results.bytes_per_call[(shape.name, name)] = (proxy.count.total - before) / count
        finally:
            await client.close()
            await proxy.close()


# The compressing clients: bytes and server CPU only (services/README.md, "Compression"); each
# is measured against its plain twin on the same server.
COMPRESSING: dict[str, transports.Factory] = {
    "pb2-gzip": transports.Pb2GzipTransport,
    "http-json-gzip": transports.HttpJsonGzipTransport,
}
PLAIN_TWIN = {"pb2-gzip": "pb2", "http-json-gzip": BASELINE}


async def _compression_cpu(
    results: Results, servers: dict[str, ServerProcess], port_of: Callable[[str], int]
) -> None:
    """Server CPU seconds per call of every shape, with and without compression, interleaved by round."""
    made = {**{twin: factories()[twin] for twin in PLAIN_TWIN.values()}, **COMPRESSING}
    clients = {name: factory("127.0.0.1", port_of(name)) for name, factory in made.items()}
    server_of = {name: servers[BASELINE if name.startswith(BASELINE) else "grpclib"] for name in clients}
    try:
        for shape in results.shapes:
            for client in clients.values():
                await shape.call(client, 0)
        for _ in range(results.settings.rounds):
            for shape in results.shapes:
                count = shape.per_round(results.settings)  # CPU times tick every 10 ms: not fewer
                for name, client in clients.items():
                    before = server_of[name].cpu_seconds()
                    await latencies(partial(shape.call, client), count, 1)
                    spent = server_of[name].cpu_seconds() - before
                    results.compression_cpu.setdefault((shape.name, name), []).append(spent / count)
    finally:
        for client in clients.values():
            await client.close()


async def _server_cpu(results: Results, servers: dict[str, ServerProcess]) -> None:
    """Server CPU seconds per call of every shape at up to 50 in flight, for each server, interleaved.

    The servers' own CPU time (user + system of every thread, from the kernel), divided by
    the calls: load on the rest of the machine slows a call but adds little to its CPU time.
    The floor servers (chat_bench.floor_servers) answer only the small GetMessage: they are
    measured on that shape alone, in the same rounds, so their in-round ratios hold.
    """
    targets = {name: server for name, server in servers.items() if name in CPU_SERVERS or name in STACKS}
    clients = {
        name: (
            transports.HttpJsonTransport if name in (BASELINE, FLOOR_HTTP_JSON) else transports.Pb2Transport
        )("127.0.0.1", server.port)
        for name, server in targets.items()
    }
    shapes_of = {
        name: {s.name for s in results.shapes if name in CPU_SERVERS or s.name == FLOOR_SHAPE}
        for name in clients
    }
    names = list(clients)
    try:
        for name, client in clients.items():
            for shape in results.shapes:
                if shape.name in shapes_of[name]:
                    await shape.call(client, 0)
        for round_number in range(results.settings.rounds):
            order = _rotated(names, round_number)
            for shape in results.shapes:
                calls = shape.cpu_calls(results.settings)
                for name in (name for name in order if shape.name in shapes_of[name]):
                    before = targets[name].cpu_seconds()
                    await latencies(partial(shape.call, clients[name]), calls, min(CPU_CONCURRENCY, calls))
                    spent = targets[name].cpu_seconds() - before
                    results.cpu_per_call.setdefault((shape.name, name), []).append(spent / calls)
            print(f"server CPU round {round_number + 1}/{results.settings.rounds} done", flush=True)
    finally:
        for client in clients.values():
            await client.close()


async def _mixed(settings: Settings, port: int, seeded: Seeded) -> LoadResult:
    """The mixed load at 50 in flight through the load engine; its success rate is the criterion."""

    def plan(method: str, data: str, weight: int, stream_count: int = 1) -> CallPlan:
        resolved = resolve(method)
        return CallPlan(resolved, RequestTemplate(data, resolved.request_type), stream_count, weight)

    send = (
        '{"message": {"conversationId": "bench-mixed", "authorId": "bench-user",'
        ' "content": "mixed load message {{.RequestNumber}}.{{.MessageNumber}}",'
        ' "idempotencyKey": "{{.UUID}}"}}'
    )
    calls = [
        plan(
            "chat.v1.MessageService/GetMessage",
            f'{{"messageId": "{seeded.small_id}", "includeUser": true, "includeFiles": true}}',
            10,
        ),
        plan(
            "chat.v1.MessageService/ListMessages",
            f'{{"conversationId": "{seeded.page_conversation}", "page": {{"pageSize": 50}}}}',
            4,
        ),
        plan("chat.v1.MessageService/SendMessages", send, 2, stream_count=10),
        plan(
            "chat.v1.MessageService/StreamMessages",
            f'{{"conversationId": "{seeded.replay_conversation}"}}',
            1,
        ),
        plan(
            "chat.v1.AIService/StreamCompletion",
            f'{{"conversationId": "{seeded.page_conversation}", "prompt": "{PROMPT}"}}',
            1,
        ),
    ]
    return await run_load(
        LoadPlan(
            host="127.0.0.1",
            port=port,
            calls=calls,
            total=None,
            duration=settings.mixed_seconds,
            concurrency=settings.mixed_concurrency,
            connections=1,
            timeout=30.0,
        )
    )
