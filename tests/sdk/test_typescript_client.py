"""The TypeScript package's client calls every RPC kind of the Python services over a real socket.

The services run here on 127.0.0.1, port 0; `sdk/typescript/test/rpc.test.ts` (node's
test runner, connect-node's gRPC transport over HTTP/2) gets the port in CHAT_PORT.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from compat_tests.node import failure_report, run_node_suite

RPC_TESTS = 5  # the test() calls of rpc.test.ts: each must have run and passed


async def test_typescript_client_calls_unary_and_every_kind_of_stream(tmp_path: Path) -> None:
    from chat_services.config import ServiceConfig
    from chat_services.server import build_app

    app = await build_app(ServiceConfig(port=0, database=tmp_path / "chat.db", completion_chunk_delay=0.0))
    port = await app.start()
    try:
        result = await asyncio.to_thread(run_node_suite, "rpc", {"CHAT_PORT": str(port)})
    finally:
        await app.shutdown()
    assert result.returncode == 0, failure_report(result)
    assert f"\N{INFORMATION SOURCE} pass {RPC_TESTS}\n" in result.stdout, failure_report(result)
