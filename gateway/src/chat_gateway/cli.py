"""The ``chat-gateway`` command: ``chat-gateway serve --upstream-port 50051 --port 8080``.

``serve`` prints ``port N`` once it listens (``--port 0`` picks a free port).
"""

from __future__ import annotations

import argparse
import json
import logging
import socket
import sys
from collections.abc import Sequence
from pathlib import Path

import uvicorn

from chat_gateway.app import app_factory
from chat_gateway.config import DEFAULT_BODY_LIMIT, GatewayConfig
from chat_gateway.openapi import openapi_document
from chat_gateway.schema import rpcs
from chat_gateway.upstream import UpstreamAddress


def parser() -> argparse.ArgumentParser:
    """The command line of ``chat-gateway``."""
    top = argparse.ArgumentParser(
        prog="chat-gateway", description="REST, SSE, WebSocket and GraphQL over chat.v1."
    )
    commands = top.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="serve until SIGTERM/SIGINT")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default: loopback only)")
    serve.add_argument("--port", type=int, default=8080, help="port to listen on; 0 picks a free one")
    serve.add_argument("--upstream-host", default="127.0.0.1", help="where chat-services listens")
    serve.add_argument("--upstream-port", type=int, default=50051, help="chat-services' port")
    serve.add_argument(
        "--cors-origin",
        action="append",
        default=[],
        metavar="ORIGIN",
        help="allow this browser origin (repeat for several); CORS is off without one",
    )
    serve.add_argument(
        "--body-limit",
        type=int,
        default=DEFAULT_BODY_LIMIT,
        help="largest request body or WebSocket frame, bytes",
    )
    serve.add_argument(
        "--call-timeout",
        type=float,
        default=GatewayConfig.unary_timeout,
        help="seconds a unary or client-streaming call may take upstream (then 504)",
    )
    serve.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    openapi = commands.add_parser("openapi", help="write the OpenAPI document generated from the schema")
    openapi.add_argument("--output", type=Path, help="file to write (default: standard output)")
    openapi.add_argument("--check", action="store_true", help="write nothing; fail when --output differs")
    return top


def openapi_text() -> str:
    """The OpenAPI document as the gateway serves it, formatted for a diff."""
    return json.dumps(openapi_document(rpcs()), indent=2, ensure_ascii=False) + "\n"


def write_openapi(output: Path | None, check: bool) -> int:
    """Write (or with ``check``, compare) the OpenAPI document; returns the exit code."""
    text = openapi_text()
    if output is None:
        sys.stdout.write(text)
        return 0
    if check:
        if not output.exists() or output.read_text() != text:
            print(f"{output} differs from the schema: run `nox -s openapi`", file=sys.stderr)
            return 1
        return 0
    output.write_text(text)
    return 0


def config_from(args: argparse.Namespace) -> GatewayConfig:
    """The configuration the parsed flags describe."""
    if args.body_limit <= 0:
        raise ValueError("--body-limit must be positive")
    if args.call_timeout <= 0:
        raise ValueError("--call-timeout must be positive")
    return GatewayConfig(
        upstream=UpstreamAddress(args.upstream_host, args.upstream_port),
        host=args.host,
        port=args.port,
        cors_origins=tuple(args.cors_origin),
        body_limit=args.body_limit,
        unary_timeout=args.call_timeout,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the command line and run it; returns the process exit code."""
    command = parser()
    args = command.parse_args(argv)
    if args.command == "openapi":
        return write_openapi(args.output, args.check)
    try:
        config = config_from(args)
    except ValueError as error:
        command.error(str(error))
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    app = app_factory(config.upstream, config)
    server = PortReportingServer(
        uvicorn.Config(
            app,
            host=config.host,
            port=config.port,
            ws_max_size=config.body_limit,
            log_level=args.log_level.lower(),
        )
    )
    server.run()
    return 0


class PortReportingServer(uvicorn.Server):
    """uvicorn's server, printing ``port N`` once it listens (the port ``--port 0`` picked)."""

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        """Start as uvicorn does, then print the bound port for whoever started the process."""
        await super().startup(sockets)
        if self.started and self.servers and self.servers[0].sockets:
            print(f"port {self.servers[0].sockets[0].getsockname()[1]}", flush=True)
