"""``chat-services health``: one grpc.health.v1 Check, for container health checks and exec probes.

Kubernetes' own ``grpc:`` probes speak plaintext only; where the services listen on TLS
(or mutual TLS) this command is the probe, presenting the pod's client certificate.
The exit code says it all: 0 when the server answers SERVING, 1 otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from grpclib.client import Channel
from grpclib.config import Configuration
from grpclib.exceptions import GRPCError, StreamTerminatedError
from grpclib.health.v1.health_grpc import HealthStub
from grpclib.health.v1.health_pb2 import HealthCheckRequest, HealthCheckResponse

from chat_sdk import tls_context

MAX_SERVICE_NAME = 256  # characters; the name is echoed in the verdict


@dataclass(frozen=True)
class HealthTarget:
    """What to ask: the server's address, the service name ("" is the whole server) and TLS."""

    host: str = "127.0.0.1"
    port: int = 50051
    service: str = ""
    timeout: float = 5.0
    tls: ssl.SSLContext | None = None
    server_name: str | None = None  # the name the server's certificate must carry


async def check_health(target: HealthTarget) -> str:
    """The serving status the server reports for ``target.service``, by its enum name."""
    config = Configuration(ssl_target_name_override=target.server_name)
    channel = Channel(target.host, target.port, ssl=target.tls, config=config)
    try:
        reply = await HealthStub(channel).Check(
            HealthCheckRequest(service=target.service), timeout=target.timeout
        )
    finally:
        channel.close()
    return str(HealthCheckResponse.ServingStatus.Name(reply.status))


def add_health_command(commands: Any) -> None:
    """Add ``health`` to the ``chat-services`` parser's subparsers."""
    health = commands.add_parser(
        "health", help="ask a server's grpc.health.v1 Check; exit 0 when SERVING (container probes)"
    )
    health.add_argument("--host", default="127.0.0.1", help="the server's address (default: loopback)")
    health.add_argument("--port", type=int, default=50051, help="the server's port")
    health.add_argument(
        "--service", default="", help='service to ask about, e.g. chat.v1.MessageService ("": all)'
    )
    health.add_argument("--timeout", type=float, default=5.0, help="seconds the answer may take")
    health.add_argument(
        "--tls-ca", type=Path, help="PEM CA bundle the server's certificate must chain to: TLS"
    )
    health.add_argument("--tls-cert", type=Path, help="PEM client certificate, for mutual TLS")
    health.add_argument("--tls-key", type=Path, help="PEM private key of --tls-cert")
    health.add_argument("--server-name", help="name expected in the server's certificate (default: --host)")


def target_from(args: argparse.Namespace) -> HealthTarget:
    """The target the parsed flags describe; ValueError on flags that do not fit together."""
    if not 0 < args.port < 65536:
        raise ValueError(f"port {args.port} is outside 1-65535")
    if args.timeout <= 0:
        raise ValueError("--timeout must be positive")
    if len(args.service) > MAX_SERVICE_NAME:
        raise ValueError(f"--service is longer than {MAX_SERVICE_NAME} characters")
    if (args.tls_cert is None) != (args.tls_key is None):
        raise ValueError("mutual TLS needs both --tls-cert and --tls-key")
    if args.tls_ca is None and (args.tls_cert is not None or args.server_name is not None):
        raise ValueError("--tls-cert, --tls-key and --server-name need --tls-ca")
    context = None if args.tls_ca is None else tls_context(args.tls_ca, args.tls_cert, args.tls_key)
    return HealthTarget(args.host, args.port, args.service, args.timeout, context, args.server_name)


def run_health_command(args: argparse.Namespace) -> int:
    """Carry out ``health``: print the verdict, return 0 when SERVING and 1 otherwise."""
    where = f"{args.host}:{args.port}"
    try:
        target = target_from(args)
        status = asyncio.run(check_health(target))
    except (ValueError, OSError) as error:  # bad flags or files, refused connection, TLS failure
        print(f"chat-services health: {where}: {error}")
        return 1
    except GRPCError as error:
        print(f"chat-services health: {where}: {error.status.name}")
        return 1
    except (TimeoutError, StreamTerminatedError):
        print(f"chat-services health: {where}: no answer within {args.timeout} s")
        return 1
    print(f"{where} {target.service or '(server)'}: {status}")
    return 0 if status == "SERVING" else 1
