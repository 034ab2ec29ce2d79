"""Hostile payloads for every chat.v1 method: random bytes, truncations, bit flips, lies about sizes.

Each payload is a request a gRPC client could put on the wire, or a raw HTTP/2 fault; the
fuzz driver sends it and records the outcome under the payload's ``kind``.
"""

from __future__ import annotations

import gzip
import random
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import zstandard
from google.protobuf import message_factory
from google.protobuf.message import Message

from chat.v1 import (
    ai_service_pb2,
    conversation_service_pb2,
    message_service_pb2,
    plugin_service_pb2,
    rag_service_pb2,
)

from .rawh2 import frame

MODULES = (ai_service_pb2, conversation_service_pb2, message_service_pb2, plugin_service_pb2, rag_service_pb2)
MAX_MESSAGE_BYTES = 4 * 1024 * 1024  # the server's default limit
DEADLINE = ("grpc-timeout", "2S")  # following streams end by deadline instead of running on


@dataclass(frozen=True)
class Payload:
    """One request stream (``method``, ``body``, extra headers), or raw bytes for a fresh connection."""

    kind: str
    method: str = ""
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()
    raw_http2: bytes | None = None


def request_types() -> dict[str, type[Message]]:
    """Every chat.v1 method path with its request message class."""
    methods: dict[str, type[Message]] = {}
    for module in MODULES:
        for service in module.DESCRIPTOR.services_by_name.values():
            for method in service.methods:
                path = f"/{service.full_name}/{method.name}"
                methods[path] = message_factory.GetMessageClass(method.input_type)
    return methods


def sample(kind: type[Message], rng: random.Random, depth: int = 0) -> Message:
    """A plausible request: every field set to a small value of its type."""
    message = kind()
    fields: list[Any] = list(kind.DESCRIPTOR.fields)
    for field in fields:
        if field.message_type is not None:
            if depth < 2 and not field.message_type.GetOptions().map_entry and not field.is_repeated:
                nested_kind = message_factory.GetMessageClass(field.message_type)
                if field.message_type.full_name.startswith("google.protobuf."):
                    continue
                getattr(message, field.name).CopyFrom(sample(nested_kind, rng, depth + 1))
            continue
        value = _scalar(field, rng)
        if value is None:
            continue
        if field.is_repeated:
            getattr(message, field.name).append(value)
        else:
            setattr(message, field.name, value)
    return message


def _scalar(field: Any, rng: random.Random) -> object:
    # Any: the upb runtime's descriptors are not the pure-Python classes the stubs name.
    if field.type == field.TYPE_STRING:
        return rng.choice(["fuzz", "c-1", "u-1", "", "x" * rng.randint(0, 80)])
    if field.type == field.TYPE_BYTES:
        return rng.randbytes(rng.randint(0, 16))
    if field.type == field.TYPE_BOOL:
        return False  # a following stream would outlive the payload
    if field.type == field.TYPE_ENUM:
        return field.enum_type.values[0].number
    if field.type in (field.TYPE_FLOAT, field.TYPE_DOUBLE):
        return rng.random()
    if field.cpp_type in (
        field.CPPTYPE_INT32,
        field.CPPTYPE_INT64,
        field.CPPTYPE_UINT32,
        field.CPPTYPE_UINT64,
    ):
        return rng.randint(0, 5)
    return None


class PayloadMaker:
    """Draws payloads of every kind, deterministically from a seed.

    ``kinds`` holds (name, maker, weight); a new kind (for example messages that violate a
    declared constraint) is one more entry whose maker takes a method path and returns a
    :class:`Payload`.
    """

    def __init__(self, seed: int, kinds: frozenset[str] | None = None) -> None:
        self.rng = random.Random(seed)
        self.bomb = gzip.compress(b"\x00" * (MAX_MESSAGE_BYTES + 1), compresslevel=9)
        self.zstd_bombs = [  # one declaring its inflated size, one leaving it out
            zstandard.ZstdCompressor(level=19, write_content_size=declared).compress(
                b"\x00" * (MAX_MESSAGE_BYTES + 1)
            )
            for declared in (True, False)
        ]
        self.methods = request_types()
        self.paths = sorted(self.methods)
        self.kinds: list[tuple[str, Callable[[str], Payload], int]] = [
            ("random-bytes", self.random_bytes, 10),
            ("random-message", self.random_message, 10),
            ("truncated", self.truncated, 10),
            ("bit-flip", self.bit_flip, 15),
            ("wrong-type", self.wrong_type, 10),
            ("invalid-utf8", self.invalid_utf8, 8),
            ("over-claimed", self.over_claimed, 8),
            ("compressed", self.compressed, 8),
            ("extra-messages", self.extra_messages, 6),
            ("valid", self.valid, 5),
            ("http2-fault", self.http2_fault, 4),
            ("oversized", self.oversized, 1),
        ]
        if kinds is not None:
            self.kinds = [entry for entry in self.kinds if entry[0] in kinds]

    def draw(self) -> Payload:
        """The next payload."""
        name, make, _ = self.rng.choices(self.kinds, weights=[weight for *_, weight in self.kinds])[0]
        payload = make(self.rng.choice(self.paths))
        assert payload.kind == name
        return payload

    def _valid_bytes(self, path: str) -> bytes:
        return sample(self.methods[path], self.rng).SerializeToString()

    def _call(self, kind: str, path: str, body: bytes, *headers: tuple[str, str]) -> Payload:
        return Payload(kind, path, body, (DEADLINE, *headers))

    def random_bytes(self, path: str) -> Payload:
        return self._call("random-bytes", path, self.rng.randbytes(self.rng.randint(0, 600)))

    def random_message(self, path: str) -> Payload:
        return self._call("random-message", path, frame(self.rng.randbytes(self.rng.randint(0, 600))))

    def truncated(self, path: str) -> Payload:
        whole = frame(self._valid_bytes(path))
        return self._call("truncated", path, whole[: self.rng.randint(0, max(len(whole) - 1, 0))])

    def bit_flip(self, path: str) -> Payload:
        data = bytearray(frame(self._valid_bytes(path)))
        for _ in range(self.rng.randint(1, 8)):
            bit = self.rng.randrange(len(data) * 8)
            data[bit // 8] ^= 1 << (bit % 8)
        return self._call("bit-flip", path, bytes(data))

    def wrong_type(self, path: str) -> Payload:
        other = self.rng.choice([p for p in self.paths if self.methods[p] is not self.methods[path]])
        return self._call("wrong-type", path, frame(self._valid_bytes(other)))

    def invalid_utf8(self, path: str) -> Payload:
        strings = [f for f in self.methods[path].DESCRIPTOR.fields if f.type == f.TYPE_STRING]
        number = self.rng.choice(strings).number if strings else 1
        bad = self.rng.choice([b"\xff\xfe", b"\xc3", b"\xed\xa0\x80", b"ok\x80"])
        field_bytes = _varint(number << 3 | 2) + _varint(len(bad)) + bad
        return self._call("invalid-utf8", path, frame(self._valid_bytes(path) + field_bytes))

    def over_claimed(self, path: str) -> Payload:
        claimed = self.rng.choice([MAX_MESSAGE_BYTES + 1, 2**31, 2**32 - 1])
        return self._call(
            "over-claimed", path, frame(self.rng.randbytes(self.rng.randint(0, 2000)), length=claimed)
        )

    def compressed(self, path: str) -> Payload:
        valid = self._valid_bytes(path)
        choice = self.rng.randrange(7)
        if choice == 0:  # flag set, no encoding
            return self._call("compressed", path, frame(valid, compressed=True))
        if choice == 1:  # an encoding the server does not have
            return self._call("compressed", path, frame(valid, compressed=True), ("grpc-encoding", "snappy"))
        if choice == 2:  # gzip that is not gzip
            return self._call("compressed", path, frame(valid, compressed=True), ("grpc-encoding", "gzip"))
        if choice == 3:
            return self._call(
                "compressed", path, frame(self.bomb, compressed=True), ("grpc-encoding", "gzip")
            )
        if choice == 4:  # zstd of a valid message, bit-flipped or cut short (or not zstd at all)
            packed = bytearray(zstandard.ZstdCompressor(level=1).compress(valid))
            if packed and self.rng.random() < 0.5:
                packed[self.rng.randrange(len(packed))] ^= 1 << self.rng.randrange(8)
            else:
                del packed[self.rng.randint(0, len(packed)) :]
            return self._call(
                "compressed", path, frame(bytes(packed), compressed=True), ("grpc-encoding", "zstd")
            )
        bomb = self.zstd_bombs[choice - 5]
        return self._call("compressed", path, frame(bomb, compressed=True), ("grpc-encoding", "zstd"))

    def extra_messages(self, path: str) -> Payload:
        body = b"".join(frame(self._valid_bytes(path)) for _ in range(self.rng.randint(0, 3)))
        return self._call("extra-messages", path, body + self.rng.randbytes(self.rng.randint(0, 4)))

    def valid(self, path: str) -> Payload:
        return self._call("valid", path, frame(self._valid_bytes(path)))

    def oversized(self, path: str) -> Payload:
        return self._call("oversized", path, frame(b"\x00" * (MAX_MESSAGE_BYTES + 1)))

    def http2_fault(self, path: str) -> Payload:
        faults = [
            self.rng.randbytes(self.rng.randint(1, 200)),  # no preface at all
            b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + self.rng.randbytes(self.rng.randint(1, 200)),
            b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
            + _h2_frame(0x4, 0, 0, b"")
            + _h2_frame(0x0, 0, 0, b"data on 0"),
            b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
            + _h2_frame(0x4, 0, 0, b"")
            + _h2_frame(0x1, 0x4, 1, b"\xff" * 20),
            b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + _h2_frame(0x8, 0, 0, struct.pack(">I", 0)),
            b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + _h2_frame(0x4, 0, 0, b"\x00\x04\xff\xff\xff\xff"),
            b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + _h2_frame(0xEE, 0, 3, self.rng.randbytes(30)),
            b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
            + struct.pack(">I", 0xFFFFFF00)[1:]
            + b"\x00\x00"
            + b"\x00" * 4,
        ]
        return Payload("http2-fault", raw_http2=self.rng.choice(faults))


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        bits = value & 0x7F
        value >>= 7
        if value:
            out.append(bits | 0x80)
        else:
            out.append(bits)
            return bytes(out)


def _h2_frame(kind: int, flags: int, stream_id: int, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload))[1:] + bytes([kind, flags]) + struct.pack(">I", stream_id) + payload
