"""The ``chat-gateway`` command: ``chat-gateway serve --upstream-port 50051 --port 8080``.

``serve`` prints ``port N`` once it listens (``--port 0`` picks a free port).
"""

from __future__ import annotations

import argparse
import json
import logging
import socket
import ssl
import sys
from collections.abc import Sequence
from pathlib import Path

import uvicorn

from chat_gateway.app import app_factory
from chat_gateway.config import DEFAULT_BODY_LIMIT, GatewayConfig, UpstreamAddress, UpstreamPool, UpstreamTls
from chat_gateway.openapi import openapi_document
from chat_gateway.schema import rpcs


def parser() -> argparse.ArgumentParser:
    """The command line of ``chat-gateway``."""
    top = argparse.ArgumentParser(
        prog="chat-gateway", description="REST, SSE, WebSocket and GraphQL over chat.v1."
    )
    commands = top.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="serve until SIGTERM/SIGINT", allow_abbrev=False)
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default: loopback only)")
    serve.add_argument("--port", type=int, default=8080, help="port to listen on; 0 picks a free one")
    serve.add_argument("--upstream-host", default="127.0.0.1", help="where chat-services listens")
    serve.add_argument("--upstream-port", type=int, default=50051, help="chat-services' port")
    tls = serve.add_argument_group("TLS to chat-services (the SDK's connect settings)")
    tls.add_argument("--upstream-ca", type=Path, help="PEM CA bundle the services' certificate must chain to")
    tls.add_argument("--upstream-tls", action="store_true", help="TLS trusting the system's CAs")
    tls.add_argument("--upstream-cert", type=Path, help="PEM client certificate (mutual TLS)")
    tls.add_argument("--upstream-key", type=Path, help="PEM private key of --upstream-cert")
    tls.add_argument("--upstream-server-name", help="name to check the services' certificate against")
    tls.add_argument(
        "--upstream-insecure",
        action="store_true",
        help="allow plaintext to a non-loopback host (a trusted network only: tokens cross it in the clear)",
    )
    pool = serve.add_argument_group("upstream connections")
    pool.add_argument(
        "--upstream-connections", type=int, default=UpstreamPool.connections, help="HTTP/2 connections"
    )
    pool.add_argument(
        "--upstream-streams",
        type=int,
        default=UpstreamPool.streams,
        help="calls per connection; at most the services' --max-concurrent-streams",
    )
    pool.add_argument(
        "--unary-reserve",
        type=int,
        default=UpstreamPool.unary_reserve,
        help="calls per connection only unary and client-streaming calls may take",
    )
    pool.add_argument(
        "--caller-streams",
        type=int,
        default=UpstreamPool.caller_streams,
        help="long-lived streams (SSE, WebSocket) one credential or address may hold",
    )
    graphql = serve.add_argument_group("GraphQL")
    graphql.add_argument("--graphql-max-depth", type=int, default=GatewayConfig.graphql_max_depth)
    graphql.add_argument("--graphql-max-aliases", type=int, default=GatewayConfig.graphql_max_aliases)
    graphql.add_argument("--graphql-max-tokens", type=int, default=GatewayConfig.graphql_max_tokens)
    graphql.add_argument("--no-introspection", action="store_true", help="refuse GraphQL introspection")
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
    """The configuration the parsed flags describe (a contradiction is a ValueError naming the flag)."""
    tls = None
    if args.upstream_ca or args.upstream_tls or args.upstream_cert or args.upstream_key:
        if args.upstream_key and not args.upstream_cert:
            raise ValueError("--upstream-key needs --upstream-cert")
        tls = UpstreamTls(args.upstream_ca, args.upstream_cert, args.upstream_key, args.upstream_server_name)
    elif args.upstream_server_name:
        raise ValueError("--upstream-server-name needs TLS: --upstream-ca or --upstream-tls")
    if tls is not None and args.upstream_insecure:
        raise ValueError("--upstream-insecure is for plaintext; it cannot go with TLS flags")
    return GatewayConfig(
        upstream=UpstreamAddress(args.upstream_host, args.upstream_port),
        upstream_tls=tls,
        upstream_insecure=args.upstream_insecure,
        pool=UpstreamPool(
            connections=args.upstream_connections,
            streams=args.upstream_streams,
            unary_reserve=args.unary_reserve,
            caller_streams=args.caller_streams,
        ),
        graphql_max_depth=args.graphql_max_depth,
        graphql_max_aliases=args.graphql_max_aliases,
        graphql_max_tokens=args.graphql_max_tokens,
        graphql_introspection=not args.no_introspection,
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
    try:
        app = app_factory(config.upstream, config)
    except (OSError, ssl.SSLError) as error:  # a TLS file missing or unreadable
        command.error(f"cannot load the upstream TLS files: {error}")
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
