"""Run the HTTP/JSON baseline: ``python -m chat_bench.serve_http --database F`` prints ``port N``."""

from __future__ import annotations

import argparse
import asyncio
import signal
from pathlib import Path

from aiohttp import web

from chat_bench.baseline import application
from chat_services.config import ServiceConfig
from chat_services.server import build_app


async def serve(database: Path, port: int) -> None:
    """Serve every chat.v1 service as HTTP/JSON on 127.0.0.1 until SIGTERM."""
    app = await build_app(ServiceConfig(port=0, database=database, completion_chunk_delay=0.0))
    runner = web.AppRunner(application(app.services), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    server = site._server  # aiohttp exposes the bound socket only here
    assert isinstance(server, asyncio.Server)
    print(f"port {server.sockets[0].getsockname()[1]}", flush=True)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    await runner.cleanup()
    await app.database.close()


def main() -> None:
    """Parse the flags and serve."""
    parser = argparse.ArgumentParser(description="The HTTP/JSON baseline of the chat.v1 services.")
    parser.add_argument("--database", type=Path, required=True)
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    asyncio.run(serve(args.database, args.port))


if __name__ == "__main__":
    main()
