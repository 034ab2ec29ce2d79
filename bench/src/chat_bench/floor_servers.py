"""The server-CPU floor's servers: each protocol stack alone, answering GetMessage with a constant reply.

``python -m chat_bench.floor_servers --stack grpclib --reply FILE`` serves a bare
``grpclib.server.Server``; ``--stack http-json`` the HTTP/JSON baseline's own stack
(aiohttp, ProtoJSON, :mod:`chat_bench.baseline`'s endpoint). Both run the same handler:
it reads the request and sends the pre-built ``GetMessageResponse`` read from FILE, with
no storage, no guard and none of this repository's layers. Each prints ``port N`` once it
listens on 127.0.0.1. The server CPU per call of each, against the real servers' whole
GetMessage, shows how much of a call the protocol stack alone costs (issue 26).
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import socket
import sys
from pathlib import Path

from aiohttp import web
from grpclib.const import Cardinality, Handler
from grpclib.server import Server, Stream

from chat.v1 import message_service_pb2 as pb
from chat_bench.baseline import application
from chat_bench.servers import ServerProcess

GET_MESSAGE = "/chat.v1.MessageService/GetMessage"
FLOOR_SHAPE = "GetMessage small"  # the benchmark's shape whose reply the floor servers repeat
# The floor servers by name in the benchmark's results, and the stack each serves.
FLOOR_GRPCLIB = "floor-grpclib"
FLOOR_HTTP_JSON = "floor-http-json"
STACKS = {FLOOR_GRPCLIB: "grpclib", FLOOR_HTTP_JSON: "http-json"}


class ConstantGetMessage:
    """``chat.v1.MessageService/GetMessage`` answering one pre-built reply, whatever it is asked."""

    def __init__(self, reply: pb.GetMessageResponse) -> None:
        self.reply = reply

    async def get_message(self, stream: Stream[pb.GetMessageRequest, pb.GetMessageResponse]) -> None:
        """Read the request (each stack decodes it), send the constant reply (each stack encodes it)."""
        await stream.recv_message()
        await stream.send_message(self.reply)

    def __mapping__(self) -> dict[str, Handler]:
        """grpclib's table of methods; the baseline's routes read the same one."""
        return {
            GET_MESSAGE: Handler(
                self.get_message, Cardinality.UNARY_UNARY, pb.GetMessageRequest, pb.GetMessageResponse
            )
        }


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


async def serve(stack: str, reply: pb.GetMessageResponse, port: int = 0) -> None:
    """Serve the constant GetMessage on ``stack`` ("grpclib" or "http-json") until SIGTERM."""
    service = ConstantGetMessage(reply)
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


def floor_server(name: str, reply_file: Path, log: Path) -> ServerProcess:
    """The floor server ``name`` (a key of ``STACKS``) answering the reply stored in ``reply_file``."""
    argv = [
        sys.executable,
        "-m",
        "chat_bench.floor_servers",
        "--stack",
        STACKS[name],
        "--reply",
        str(reply_file),
    ]
    return ServerProcess(name, argv, log)


def main() -> None:
    """Parse the flags and serve."""
    parser = argparse.ArgumentParser(description="GetMessage with a constant reply on one protocol stack.")
    parser.add_argument("--stack", choices=sorted(set(STACKS.values())), required=True)
    parser.add_argument("--reply", type=Path, required=True, help="a serialized GetMessageResponse")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    reply = pb.GetMessageResponse.FromString(args.reply.read_bytes())
    asyncio.run(serve(args.stack, reply, args.port))


if __name__ == "__main__":
    main()
