"""The gateway's overhead alone: ``python -m chat_bench.gateway_overhead --rounds 3``.

A shorter run than ``chat-bench`` for working on the gateway: the same seed, shapes,
servers and transports, but only the HTTP/JSON baseline, the gateway and the ``_pb2``
client straight to the gateway's own chat-services (the hop the gateway cannot avoid).
Rounds alternate the transports (rotated order); each figure is the median of in-round
ratios with the lowest and highest round beside it. CPU per request is read from each
server process (user + system) around a c=50 GetMessage run, which a shared machine
disturbs far less than latency.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import tempfile
import time
from collections.abc import Sequence
from contextlib import AsyncExitStack
from functools import partial
from pathlib import Path

from chat_bench import transports
from chat_bench.runner import BASELINE, CLIENT_CPUS, SERVER_CPUS, Shape, latencies, seed, shapes
from chat_bench.servers import ServerProcess, grpclib_server, http_server, pin
from chat_bench.stats import percentile

GATEWAY = "gateway"
DIRECT = "pb2"


def _spread(values: Sequence[float]) -> str:
    return f"{statistics.median(values):.2f} ({min(values):.2f}-{max(values):.2f})"


async def run(rounds: int, calls: int, c50_calls: int, work: Path) -> None:
    """Measure and print the tables."""
    assert transports.GATEWAY_COMMAND is not None
    pin(0, CLIENT_CPUS)
    seed_server = grpclib_server("seed", work / "seed.db", work / "seed.log")
    seeded = await seed(await seed_server.start(SERVER_CPUS))
    seed_server.stop()
    shutil.copyfile(work / "seed.db", work / "grpclib.db")
    shutil.copyfile(work / "seed.db", work / "http.db")
    servers = {
        "services": grpclib_server("grpclib", work / "grpclib.db", work / "grpclib.log"),
        BASELINE: http_server(work / "http.db", work / "http.log"),
    }
    async with AsyncExitStack() as started:  # stopped last in, first out: clients, gateway, servers
        ports: dict[str, int] = {}
        for name, server in servers.items():
            started.callback(server.stop)
            ports[name] = await server.start(SERVER_CPUS)
        command = transports.GATEWAY_COMMAND(ports["services"])
        servers[GATEWAY] = ServerProcess(GATEWAY, command, work / "gateway.log")
        started.callback(servers[GATEWAY].stop)
        ports[GATEWAY] = await servers[GATEWAY].start(SERVER_CPUS)
        clients: dict[str, transports.Transport] = {
            BASELINE: transports.HttpJsonTransport("127.0.0.1", ports[BASELINE]),
            GATEWAY: transports.GatewayTransport("127.0.0.1", ports[GATEWAY]),
            DIRECT: transports.Pb2Transport("127.0.0.1", ports["services"]),
        }
        for client in clients.values():
            started.push_async_callback(client.close)
        await _measure(clients, servers, seeded.small_id, shapes(seeded), rounds, calls, c50_calls)


async def _measure(
    clients: dict[str, transports.Transport],
    servers: dict[str, ServerProcess],
    small_id: str,
    all_shapes: list[Shape],
    rounds: int,
    calls: int,
    c50_calls: int,
) -> None:
    names = list(clients)
    for client in clients.values():
        for shape in all_shapes:
            await shape.call(client, 0)
    p50: dict[tuple[str, str], list[float]] = {}
    rps: dict[str, list[float]] = {}
    cpu: dict[str, list[float]] = {}  # server CPU µs per GetMessage at c=50
    for number in range(rounds):
        order = names[number % len(names) :] + names[: number % len(names)]
        for shape in all_shapes:
            count = (
                calls if shape.name.startswith("GetMessage") else max(3 if shape.streamed else 10, calls // 4)
            )
            for name in order:
                measured = await latencies(partial(shape.call, clients[name]), count, 1)
                p50.setdefault((shape.name, name), []).append(percentile(sorted(measured), 50))
        for name in order:
            before = {server: process.cpu_seconds() for server, process in servers.items()}
            started = time.perf_counter()
            await latencies(partial(_get, clients[name], small_id), c50_calls, 50)
            rps.setdefault(name, []).append(c50_calls / (time.perf_counter() - started))
            for server, process in servers.items():
                spent = process.cpu_seconds() - before[server]
                if spent > 0.05 * c50_calls / 1000:  # the servers this client used
                    cpu.setdefault(f"{name}: {server}", []).append(spent / c50_calls * 1e6)
        print(f"round {number + 1}/{rounds} done", flush=True)
    print("\n| shape | http-json p50 ms | gateway x | pb2 direct x | gateway - pb2 direct ms |")
    print("|---|---|---|---|---|")
    for shape in all_shapes:
        base = p50[(shape.name, BASELINE)]
        gateway = p50[(shape.name, GATEWAY)]
        direct = p50[(shape.name, DIRECT)]
        print(
            f"| {shape.name} | {_spread([b * 1e3 for b in base])}"
            f" | {_spread([g / b for g, b in zip(gateway, base, strict=True)])}"
            f" | {_spread([d / b for d, b in zip(direct, base, strict=True)])}"
            f" | {_spread([(g - d) * 1e3 for g, d in zip(gateway, direct, strict=True)])} |"
        )
    print("\n| GetMessage small, c=50 | calls/s | x http-json |")
    print("|---|---|---|")
    for name in names:
        ratios = [mine / base for mine, base in zip(rps[name], rps[BASELINE], strict=True)]
        print(f"| {name} | {_spread(rps[name])} | {_spread(ratios)} |")
    print("\n| client: server process | CPU µs per GetMessage (c=50) |")
    print("|---|---|")
    for key, values in cpu.items():
        print(f"| {key} | {_spread(values)} |")


async def _get(client: transports.Transport, message_id: str, _number: int) -> None:
    await client.get(message_id)


def main() -> None:
    """Parse the flags and run."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--calls", type=int, default=100, help="c=1 GetMessage calls per round (others: /4)")
    parser.add_argument("--c50-calls", type=int, default=1000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="gateway-overhead-") as work:
        asyncio.run(run(args.rounds, args.calls, args.c50_calls, Path(work)))


if __name__ == "__main__":
    main()
