"""Every option of the TypeScript client, each with an effect the services can see.

`sdk/typescript/test/options.test.ts` (node's test runner) gets, on port 0: the services
on 127.0.0.1 enforcing service-account tokens (an interceptor must set one) and streaming
completions slowly (a short timeout must end the call with DEADLINE_EXCEEDED), a
MessageService on ::1 (the IPv6 host forms) and a port nothing listens on.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import grpclib.server

from chat_services.server import build_app
from compat_tests.node import failure_report, run_node_suite
from tests.sdk.server import FlakyMessages, closed_port
from tests.services.conftest import make_config
from tests.services.security.conftest import ADMIN_TOKEN, service_accounts_file

OPTION_TESTS = 11  # the test() calls of options.test.ts: each must have run and passed
CHUNK_DELAY = 0.5  # seconds before each completion chunk: the "slow call" of the timeout tests


@asynccontextmanager
async def ipv6_messages() -> AsyncIterator[int]:
    """A MessageService on ::1 whose GetMessage answers "ok"; yields its port."""
    server = grpclib.server.Server([FlakyMessages()])
    sock = socket.create_server(("::1", 0), family=socket.AF_INET6)
    await server.start(sock=sock)
    try:
        yield sock.getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()


async def test_every_typescript_client_option_has_its_effect_on_real_servers(tmp_path: Path) -> None:
    config = make_config(
        tmp_path, service_accounts=service_accounts_file(tmp_path), completion_chunk_delay=CHUNK_DELAY
    )
    app = await build_app(config)
    port = await app.start()
    try:
        async with ipv6_messages() as ipv6_port:
            env = {
                "CHAT_PORT": str(port),
                "CHAT_IPV6_PORT": str(ipv6_port),
                "CHAT_CLOSED_PORT": str(closed_port()),
                "CHAT_TOKEN": ADMIN_TOKEN,
                "CHAT_CHUNK_DELAY_MS": str(int(CHUNK_DELAY * 1000)),
            }
            result = await asyncio.to_thread(run_node_suite, "options", env)
    finally:
        await app.shutdown()
    assert result.returncode == 0, failure_report(result)
    assert f"\N{INFORMATION SOURCE} pass {OPTION_TESTS}\n" in result.stdout, failure_report(result)
