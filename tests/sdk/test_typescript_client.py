"""The TypeScript package's client calls every RPC kind of the Python services over a real socket.

The services run here on 127.0.0.1, port 0, behind a recording proxy;
`sdk/typescript/test/rpc.test.ts` (node's test runner, connect-node's gRPC transport over
HTTP/2) gets the proxy's port in CHAT_PORT.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from compat_tests.node import failure_report, run_node_suite

RPC_TESTS = 6  # the test() calls of rpc.test.ts: each must have run and passed


async def test_typescript_client_calls_unary_and_every_kind_of_stream(tmp_path: Path) -> None:
    from chat_services.config import ServiceConfig
    from chat_services.server import build_app
    from tests.services.wiretap import Wiretap

    app = await build_app(ServiceConfig(port=0, database=tmp_path / "chat.db", completion_chunk_delay=0.0))
    tap = Wiretap(await app.start())  # records the calls, to see which replies went compressed
    try:
        port = await tap.start()
        result = await asyncio.to_thread(run_node_suite, "rpc", {"CHAT_PORT": str(port)})
    finally:
        await tap.close()
        await app.shutdown()
    assert result.returncode == 0, failure_report(result)
    assert f"\N{INFORMATION SOURCE} pass {RPC_TESTS}\n" in result.stdout, failure_report(result)
    # connect-node lists gzip in grpc-accept-encoding: the replies carrying the long message
    # (and only those: every other reply is under 512 bytes) came compressed.
    compressed = [call for call in tap.calls() if any(m.compressed for m in call.reply.messages)]
    assert {call.path.rpartition("/")[2] for call in compressed} == {"SendMessages", "GetMessage"}
    assert {call.reply.header("grpc-encoding") for call in compressed} == {"gzip"}
