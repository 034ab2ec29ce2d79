"""What authentication, rate limits, metrics and tracing cost on unary throughput.

Starts ``chat-services serve`` in its own process once per variant and round: open
(loopback, nothing on); JWT auth with rate limits set high enough not to refuse;
``/metrics`` served; every call traced and exported over OTLP/HTTP to a sink in this
process; and all of them together. Drives GetMessage from this process at a fixed
concurrency and prints calls a second of each, with its overhead against open. Run with
``nox -s security_overhead`` (``-- --calls N --concurrency C --rounds R``).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from grpclib.client import Channel

from chat.v1 import message_service_pb2
from chat.v1.message_service_grpc import MessageServiceStub

ISSUER, AUDIENCE = "https://auth.bench", "chat-services"
LIMITS = "[defaults]\nrate = 1000000\nburst = 1000000\nmax_streams = 1000\n"


class _Sink(BaseHTTPRequestHandler):
    """An OTLP/HTTP collector that accepts and drops every export."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", 0)))
        self.send_response(200)
        self.send_header("content-type", "application/x-protobuf")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        return


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _cpu_seconds(pid: int) -> float:
    """User plus system CPU time the process has used (Linux ``/proc``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextmanager
def _server(flags: list[str], database: Path, env: dict[str, str]) -> Iterator[tuple[int, int]]:
    port = _free_port()
    command = [
        "chat-services",
        "serve",
        "--port",
        str(port),
        "--database",
        str(database),
        "--log-level",
        "ERROR",
    ]
    process = subprocess.Popen([*command, *flags], stderr=subprocess.DEVNULL, env={**os.environ, **env})
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError("chat-services did not start") from None
                time.sleep(0.05)
        yield port, process.pid
    finally:
        process.terminate()
        process.wait(timeout=30)


async def _drive(port: int, pid: int, token: str | None, calls: int, concurrency: int) -> tuple[float, float]:
    """Calls a second and server CPU seconds a call: ``calls`` GetMessage calls, ``concurrency`` in flight."""
    metadata = {"authorization": f"Bearer {token}"} if token else None
    async with Channel("127.0.0.1", port) as channel:
        stub = MessageServiceStub(channel)
        new = message_service_pb2.NewMessage(
            idempotency_key="k", conversation_id="c", author_id="bench", content="x"
        )
        sent = await stub.SendMessages(
            [message_service_pb2.SendMessagesRequest(message=new)], metadata=metadata
        )
        request = message_service_pb2.GetMessageRequest(message_id=sent.messages[0].id)
        remaining = calls

        async def worker() -> None:
            nonlocal remaining
            while remaining > 0:
                remaining -= 1
                await stub.GetMessage(request, metadata=metadata, timeout=30)

        for _ in range(concurrency * 4):  # warm up connections and code paths
            await stub.GetMessage(request, metadata=metadata)
        start, cpu = time.perf_counter(), _cpu_seconds(pid)
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return calls / (time.perf_counter() - start), (_cpu_seconds(pid) - cpu) / calls


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=4000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    token = jwt.encode(
        {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": "bench",
            "exp": int(time.time()) + 3600,
            "scope": "messages:read messages:write",
        },
        key,
        algorithm="RS256",
    )
    sink = ThreadingHTTPServer(("127.0.0.1", 0), _Sink)
    threading.Thread(target=sink.serve_forever, daemon=True).start()
    rates: dict[str, list[float]] = {}
    cpu: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="security-overhead-") as scratch:
        folder = Path(scratch)
        public = folder / "jwt.pem"
        public.write_bytes(
            key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
        (folder / "limits.toml").write_text(LIMITS)
        auth = [
            "--jwt-issuer", ISSUER, "--jwt-audience", AUDIENCE, "--jwt-public-key", str(public),
            "--rate-limits", str(folder / "limits.toml"),
        ]  # fmt: skip
        metrics = ["--metrics-port", "0"]
        tracing = [
            "--trace-exporter",
            "otlp",
            "--otlp-endpoint",
            f"http://127.0.0.1:{sink.server_port}/v1/traces",
        ]
        every = [*auth, *metrics, *tracing]
        # OpenTelemetry's own sampler settings: keep 1 trace in 10 unless the caller's is sampled.
        sampled = {"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.1"}
        variants: dict[str, tuple[list[str], str | None, dict[str, str]]] = {
            "open": ([], None, {}),
            "auth+limits": (auth, token, {}),
            "metrics": (metrics, None, {}),
            "tracing": (tracing, None, {}),
            "all": (every, token, {}),
            "all, 10% traced": (every, token, sampled),
        }
        for round_number in range(args.rounds):
            for number, (name, (flags, bearer, env)) in enumerate(variants.items()):
                with _server(flags, folder / f"{number}-{round_number}.db", env) as (port, pid):
                    rate, per_call = asyncio.run(_drive(port, pid, bearer, args.calls, args.concurrency))
                rates.setdefault(name, []).append(rate)
                cpu.setdefault(name, []).append(per_call)
                print(
                    f"round {round_number + 1} {name:16} {rate:8.0f} calls/s"
                    f" {per_call * 1e6:8.0f} server CPU µs/call",
                    flush=True,
                )
    sink.shutdown()
    baseline, baseline_cpu = statistics.median(rates["open"]), statistics.median(cpu["open"])
    print(f"GetMessage, {args.concurrency} in flight, median of {args.rounds} rounds of {args.calls} calls:")
    for name in rates:
        rate, per_call = statistics.median(rates[name]), statistics.median(cpu[name])
        print(
            f"  {name:16} {rate:8.0f} calls/s ({100 * (rate / baseline - 1):+5.1f}%)"
            f"  {per_call * 1e6:6.0f} server CPU µs/call ({100 * (per_call / baseline_cpu - 1):+5.1f}%)"
        )
    print(
        "target: 'all' (JWT + rate limits + metrics + OTLP tracing) costs under 15%. Server CPU per call"
        " is the steadier figure on a shared machine; calls/s follows it when the server is the bottleneck."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
