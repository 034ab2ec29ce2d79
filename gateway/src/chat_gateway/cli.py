"""The ``chat-gateway`` command: ``chat-gateway serve --upstream-port 50051 --port 8080``."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence

import uvicorn

from chat_gateway.app import app_factory
from chat_gateway.config import DEFAULT_BODY_LIMIT, GatewayConfig
from chat_gateway.upstream import UpstreamAddress


def parser() -> argparse.ArgumentParser:
    """The command line of ``chat-gateway``."""
    top = argparse.ArgumentParser(prog="chat-gateway", description="REST, SSE, WebSocket and GraphQL over chat.v1.")
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
        "--body-limit", type=int, default=DEFAULT_BODY_LIMIT, help="largest request body or WebSocket frame, bytes"
    )
    serve.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    return top


def config_from(args: argparse.Namespace) -> GatewayConfig:
    """The configuration the parsed flags describe."""
    if args.body_limit <= 0:
        raise ValueError("--body-limit must be positive")
    return GatewayConfig(
        upstream=UpstreamAddress(args.upstream_host, args.upstream_port),
        host=args.host,
        port=args.port,
        cors_origins=tuple(args.cors_origin),
        body_limit=args.body_limit,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the command line and run it; returns the process exit code."""
    command = parser()
    args = command.parse_args(argv)
    try:
        config = config_from(args)
    except ValueError as error:
        command.error(str(error))
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    app = app_factory(config.upstream, config)
    uvicorn.run(app, host=config.host, port=config.port, ws_max_size=config.body_limit, log_level=args.log_level.lower())
    return 0
