"""The security commands of ``chat-services``: ``dev-certs``, ``dev-jwt`` and ``new-token``."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from chat_services.security.devcerts import dev_jwt, write_dev_certs
from chat_services.security.tokens import hash_token, new_api_token


def add_security_commands(commands: Any) -> None:
    """Add the subcommands to the ``chat-services`` parser's subparsers."""
    certs = commands.add_parser("dev-certs", help="write throwaway server and client CAs and certificates")
    certs.add_argument(
        "directory", type=Path, help="folder to write ca.pem, client-ca.pem, server.pem/.key, client.pem/.key"
    )
    certs.add_argument("--client-name", default="dev-client", help="the client certificate's identity")
    user = commands.add_parser("dev-jwt", help="print a user JWT signed by a throwaway key in DIR")
    user.add_argument(
        "directory", type=Path, help="folder holding jwt-private.pem/jwt-public.pem (made if missing)"
    )
    user.add_argument("subject", help="the user id (the sub claim)")
    user.add_argument("--scope", action="append", default=[], help="a scope to grant (repeatable)")
    user.add_argument(
        "--lifetime", type=float, default=3600.0, help="seconds until it expires (default 3600)"
    )
    token = commands.add_parser("new-token", help="print a new API token and its service-accounts entry")
    token.add_argument("name", help="the service account's name")
    token.add_argument("--scope", action="append", default=[], help="a scope to grant (repeatable)")


def run_security_command(args: argparse.Namespace) -> int:
    """Carry out ``dev-certs`` or ``new-token``; returns the exit code."""
    if args.command == "dev-certs":
        paths = write_dev_certs(args.directory, args.client_name)
        print(
            "wrote throwaway certificates (never commit the .key files):\n"
            + "\n".join(f"  {name}: {path}" for name, path in paths.items())
            + "\nserve with: chat-services serve"
            f" --tls-cert {paths['server_cert']} --tls-key {paths['server_key']}"
            f" --tls-client-ca {paths['client_ca']}"
        )
        return 0
    if args.command == "dev-jwt":
        print(dev_jwt(args.directory, args.subject, args.scope, lifetime=args.lifetime))
        return 0
    token = new_api_token()
    scopes = ", ".join(f'"{scope}"' for scope in args.scope)
    print(f"token (give it to the service; it is not stored anywhere): {token}\n")
    print(f'[service.{args.name}]\nscopes = [{scopes}]\ntoken_sha256 = ["{hash_token(token)}"]')
    return 0
