"""What authentication, rate limits, metrics and tracing cost on unary throughput.

Starts ``chat-services serve`` in its own process twice per round, once open
(loopback, nothing on) and once secured (JWT auth, rate limits set high enough not
to refuse, ``/metrics`` served, every call traced and exported over OTLP/HTTP to a
sink in this process), and drives GetMessage from this process at a fixed
concurrency. Prints calls a second of each and the overhead. Run with
``nox -s security_overhead`` (``-- --calls N --concurrency C --rounds R``).
"""

from __future__ import annotations

import argparse
import asyncio
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


@contextmanager
def _server(flags: list[str], database: Path) -> Iterator[int]:
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
    process = subprocess.Popen([*command, *flags], stderr=subprocess.DEVNULL)
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
        yield port
    finally:
        process.terminate()
        process.wait(timeout=30)


async def _drive(port: int, token: str | None, calls: int, concurrency: int) -> float:
    """Calls a second of ``calls`` GetMessage calls, ``concurrency`` in flight."""
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
        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return calls / (time.perf_counter() - start)


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
    open_rates: list[float] = []
    secured_rates: list[float] = []
    with tempfile.TemporaryDirectory(prefix="security-overhead-") as scratch:
        folder = Path(scratch)
        public = folder / "jwt.pem"
        public.write_bytes(
            key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
        (folder / "limits.toml").write_text(LIMITS)
        secured = [
            "--jwt-issuer", ISSUER, "--jwt-audience", AUDIENCE, "--jwt-public-key", str(public),
            "--rate-limits", str(folder / "limits.toml"), "--metrics-port", "0",
            "--trace-exporter", "otlp", "--otlp-endpoint", f"http://127.0.0.1:{sink.server_port}/v1/traces",
        ]  # fmt: skip
        for round_number in range(args.rounds):
            for name, flags, rates, bearer in (
                ("open", [], open_rates, None),
                ("secured", secured, secured_rates, token),
            ):
                with _server(flags, folder / f"{name}-{round_number}.db") as port:
                    rate = asyncio.run(_drive(port, bearer, args.calls, args.concurrency))
                rates.append(rate)
                print(f"round {round_number + 1} {name:8} {rate:8.0f} calls/s", flush=True)
    sink.shutdown()
    open_rate, secured_rate = statistics.median(open_rates), statistics.median(secured_rates)
    overhead = 100 * (1 - secured_rate / open_rate)
    print(
        f"GetMessage, {args.concurrency} in flight, median of {args.rounds} rounds of {args.calls} calls:\n"
        f"  open (no auth, no metrics, no tracing): {open_rate:8.0f} calls/s\n"
        f"  secured (JWT + rate limits + metrics + OTLP tracing): {secured_rate:8.0f} calls/s\n"
        f"  overhead: {overhead:.1f}% (target < 15%)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
