"""The ``chat-services`` command: ``chat-services serve --port 50051``."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from chat_services.config import ServiceConfig, add_arguments, from_sources
from chat_services.logs import configure_logging
from chat_services.probe import add_health_command, run_health_command
from chat_services.security.commands import add_security_commands, run_security_command


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the command line and run it; returns the process exit code."""
    parser = argparse.ArgumentParser(prog="chat-services", description="Serve every chat.v1 service.")
    commands = parser.add_subparsers(dest="command", required=True)
    serve_parser = commands.add_parser(
        "serve", help="serve on 127.0.0.1 until SIGTERM/SIGINT", allow_abbrev=False
    )
    add_arguments(serve_parser)
    add_security_commands(commands)
    add_health_command(commands)
    dev_postgres = commands.add_parser(
        "dev-postgres", help="start a throwaway PostgreSQL cluster, print its DSN, stop it on Ctrl-C"
    )
    dev_postgres.add_argument(
        "--dir", type=Path, default=None, help="cluster directory (a temp directory by default)"
    )
    args = parser.parse_args(argv)
    if args.command == "dev-postgres":
        from chat_services.devpostgres import run_dev_postgres

        return run_dev_postgres(args.dir)
    if args.command == "health":
        return run_health_command(args)
    if args.command != "serve":
        return run_security_command(args)
    # Only serve imports the server (numpy, protovalidate, every service): `chat-services
    # health`, an exec probe in the pods, then takes 44 MB instead of 77 MB, and no seconds.
    from chat_services.storage import is_postgres
    from chat_services.supervisor import run_workers

    try:
        config = from_sources(args, os.environ)
    except ValueError as error:
        parser.error(str(error))
    if config.workers > 1 and not is_postgres(config.database):
        parser.error(
            f"--workers {config.workers} needs a PostgreSQL --database (postgresql://...);"
            " an SQLite file is served by one process"
        )
    configure_logging(config.log_level, config.log_format)
    return run_workers(config) if config.workers > 1 else run_server(config)


def run_server(config: ServiceConfig) -> int:
    """Serve in this process until SIGTERM/SIGINT; the exit code (a start failure is one line on stderr)."""
    from chat_services.server import serve
    from chat_services.storage import StorageOpenError

    try:
        asyncio.run(serve(config))
    except StorageOpenError as error:  # one line naming the file and the cause, no traceback
        print(f"chat-services: {error}", file=sys.stderr)
        return 1
    except OSError as error:
        print(f"chat-services: cannot serve on {config.host}:{config.port}: {error}", file=sys.stderr)
        return 1
    except ValueError as error:  # a malformed key, token or limits file
        print(f"chat-services: {error}", file=sys.stderr)
        return 2
    return 0
