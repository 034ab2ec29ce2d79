"""The replies the floor servers repeat: what the real server answered each benchmark shape, recorded once.

The runner makes every shape's call once through the `_pb2` client against the seeded
server, and keeps each reply message as the client received it (grpclib's ``RecvMessage``
event, so the calls are the very ones the benchmark makes). They are stored one file per
method, each a run of messages with a 4-byte big-endian length before each: a unary
method's one reply (GetMessage: one per message asked for), a streaming method's every
reply in order.
"""

from __future__ import annotations

import struct
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path

from google.protobuf.message import Message
from grpclib.events import RecvMessage, SendRequest, listen

from chat_bench.methods import resolve
from chat_bench.transports import Pb2Transport, Transport

_LENGTH = struct.Struct(">I")
Call = Callable[[Transport, int], Awaitable[object]]


def file_name(path: str) -> str:
    """``/chat.v1.MessageService/GetMessage`` -> ``chat.v1.MessageService.GetMessage.bin``."""
    return path.strip("/").replace("/", ".") + ".bin"


def write(folder: Path, replies: dict[str, list[bytes]]) -> None:
    """Store each method's serialized replies (by method path) in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    for path, messages in replies.items():
        (folder / file_name(path)).write_bytes(b"".join(_LENGTH.pack(len(m)) + m for m in messages))


def _split(data: bytes) -> Iterable[bytes]:
    at = 0
    while at < len(data):
        (length,) = _LENGTH.unpack_from(data, at)
        at += _LENGTH.size
        if at + length > len(data):
            raise ValueError(f"a reply file ends inside a message ({len(data)} bytes)")
        yield data[at : at + length]
        at += length


def read(folder: Path) -> dict[str, list[Message]]:
    """Every method stored in ``folder`` (by method path), its replies parsed into the schema's classes."""
    replies = {}
    for file in sorted(folder.glob("*.bin")):
        service, _, method = file.name.removesuffix(".bin").rpartition(".")
        resolved = resolve(f"{service}/{method}")
        replies[resolved.path] = [resolved.reply_type.FromString(m) for m in _split(file.read_bytes())]
    return replies


async def record(port: int, calls: Iterable[Call]) -> dict[str, list[bytes]]:
    """Make each call once through the `_pb2` client on 127.0.0.1:``port``; its replies by method path."""
    client = Pb2Transport("127.0.0.1", port)
    client.name = "floor-record"  # SendMessages writes to a conversation of its own
    replies: dict[str, list[bytes]] = {}
    current: list[str] = []

    async def on_request(event: SendRequest) -> None:
        current[:] = [event.method_name]
        replies.setdefault(event.method_name, [])

    async def on_message(event: RecvMessage) -> None:
        replies[current[0]].append(event.message.SerializeToString())

    listen(client.channel, SendRequest, on_request)
    listen(client.channel, RecvMessage, on_message)
    try:
        for call in calls:
            await call(client, 0)
    finally:
        await client.close()
    return replies
