"""The floor servers: each protocol stack alone, answering every benchmark shape with constant replies.

``python -m chat_bench.floor_servers --stack grpclib --replies FOLDER`` serves a bare
``grpclib.server.Server``; ``--stack http-json`` the HTTP/JSON baseline's own stack
(aiohttp, ProtoJSON, :mod:`chat_bench.baseline`'s endpoint). Both run the same handlers:
each reads the whole request (a client stream: every message) and sends the replies the
real server gave that call, recorded once (:mod:`chat_bench.floor_replies`) and parsed
at start, with no storage, no guard and none of this repository's layers. GetMessage
answers the recorded reply whose message has the id asked for (small and large differ
only in that). Each prints ``port N`` once it listens on 127.0.0.1. The server CPU per
call and the p50 of each, against the real servers' whole calls, show how much of a call
the protocol stack alone costs (issue 26).
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import socket
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from aiohttp import web
from google.protobuf.message import Message
from grpclib.const import Handler, Status
from grpclib.exceptions import GRPCError
from grpclib.server import Server

from chat_bench.baseline import application
from chat_bench.floor_replies import read
from chat_bench.methods import resolve
from chat_bench.servers import ServerProcess

GET_MESSAGE = "/chat.v1.MessageService/GetMessage"
FLOOR_SHAPE = "GetMessage small"  # the shape of the server-CPU floor (floor_report)
# The floor servers by name in the benchmark's results, and the stack each serves.
FLOOR_GRPCLIB = "floor-grpclib"
FLOOR_HTTP_JSON = "floor-http-json"
STACKS = {FLOOR_GRPCLIB: "grpclib", FLOOR_HTTP_JSON: "http-json"}


class ConstantReplies:
    """Every recorded method, answering its recorded replies, whatever it is asked (GetMessage: by id)."""

    def __init__(self, replies: dict[str, list[Message]]) -> None:
        self.replies = replies
        self.by_id = {reply.message.id: reply for reply in replies.get(GET_MESSAGE, [])}  # type: ignore[attr-defined]

    def _handler(self, path: str) -> Callable[[Any], Coroutine[Any, Any, None]]:
        client_streaming = resolve(path).client_streaming
        replies = self.replies[path]

        async def handle(stream: Any) -> None:
            """Read the request(s) (each stack decodes them), send the replies (each stack encodes them)."""
            if client_streaming:
                async for _ in stream:
                    pass
                answer = replies
            else:
                request = await stream.recv_message()
                answer = replies if path != GET_MESSAGE else [self._get(request.message_id)]
            for reply in answer:
                await stream.send_message(reply)

        return handle

    def _get(self, message_id: str) -> Message:
        if message_id not in self.by_id:
            raise GRPCError(Status.NOT_FOUND, "no recorded reply for this message id")
        return self.by_id[message_id]

    def __mapping__(self) -> dict[str, Handler]:
        """grpclib's table of methods; the baseline's routes read the same one."""
        table = {}
        for path in self.replies:
            method = resolve(path)
            table[path] = Handler(
                self._handler(path), method.cardinality, method.request_type, method.reply_type
            )
        return table


def _listening_socket(port: int) -> socket.socket:
    """A TCP socket listening on 127.0.0.1. Its protocol is named (IPPROTO_TCP), as a socket
    asyncio opens itself is: asyncio turns Nagle's algorithm off only on such sockets'
    connections, and with it on, each reply waits ~40 ms for the client's delayed ACK."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(128)
    sock.setblocking(False)
    return sock


async def serve(stack: str, replies: dict[str, list[Message]], port: int = 0) -> None:
    """Serve the constant replies on ``stack`` ("grpclib" or "http-json") until SIGTERM."""
    service = ConstantReplies(replies)
    sock = _listening_socket(port)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    if stack == "grpclib":
        server = Server([service])
        await server.start(sock=sock)
        print(f"port {sock.getsockname()[1]}", flush=True)
        await stop.wait()
        server.close()
        await server.wait_closed()
        return
    runner = web.AppRunner(application([service]), access_log=None)
    await runner.setup()
    await web.SockSite(runner, sock).start()
    print(f"port {sock.getsockname()[1]}", flush=True)
    await stop.wait()
    await runner.cleanup()


def floor_server(name: str, replies: Path, log: Path) -> ServerProcess:
    """The floor server ``name`` (a key of ``STACKS``) answering the replies stored in folder ``replies``."""
    argv = [
        sys.executable,
        "-m",
        "chat_bench.floor_servers",
        "--stack",
        STACKS[name],
        "--replies",
        str(replies),
    ]
    return ServerProcess(name, argv, log)


def main() -> None:
    """Parse the flags and serve."""
    parser = argparse.ArgumentParser(
        description="Constant replies to every benchmark shape on one protocol stack."
    )
    parser.add_argument("--stack", choices=sorted(set(STACKS.values())), required=True)
    parser.add_argument(
        "--replies", type=Path, required=True, help="a folder of chat_bench.floor_replies files"
    )
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    asyncio.run(serve(args.stack, read(args.replies), args.port))


if __name__ == "__main__":
    main()
