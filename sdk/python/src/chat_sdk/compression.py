"""gRPC message compression (gzip, deflate) as the gRPC spec defines it, shared by the SDK and the services.

A call names its encoding in the ``grpc-encoding`` header and each message says in its
5-byte prefix whether it is compressed, so a sender may leave any message plain. A
peer lists what it can read in ``grpc-accept-encoding``; nothing is ever sent compressed
to a peer that did not list the encoding. grpclib has no compression of its own: the
SDK's client stream (:mod:`chat_sdk._compressed`) and the services' server stream frame
messages with :func:`frame` and read them with :func:`inflate`.

Messages under :data:`DEFAULT_MIN_BYTES` stay plain: measured on the benchmark's
messages (services/README.md, "Compression"), a message of a few hundred bytes of chat
text shrinks by a fifth or less, for about as much CPU as a kilobyte that shrinks by
two fifths. zlib compresses at level 1 (level 6 saved 3-8% more bytes for twice the CPU)
with a window no larger than the message: the default 32 kB window made zlib allocate
and fault in ~270 kB per message, which cost 80 µs on a 250-byte one, against 15 µs.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Sequence

IDENTITY = "identity"
# grpc-encoding → zlib's wbits: gzip framing, or the zlib framing gRPC calls "deflate".
WBITS = {"gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}
ENCODINGS = tuple(WBITS)  # what this package reads and writes, in order of preference
ACCEPT_ENCODING = ",".join((IDENTITY, *ENCODINGS))  # the grpc-accept-encoding header's value
DEFAULT_MIN_BYTES = 512
LEVEL = 1
_MIN_WINDOW_BITS = 9
_PREFIX = struct.Struct(">BI")

__all__ = [
    "ACCEPT_ENCODING",
    "DEFAULT_MIN_BYTES",
    "ENCODINGS",
    "IDENTITY",
    "DecompressionError",
    "InflatedTooLarge",
    "accepted",
    "check_encoding",
    "compress",
    "frame",
    "inflate",
    "response_encoding",
]


class DecompressionError(ValueError):
    """A compressed message that does not inflate: corrupt, truncated, or with trailing bytes."""


class InflatedTooLarge(ValueError):
    """A compressed message that inflates past the size limit (a compression bomb, or just too big)."""


def check_encoding(encoding: str | None) -> str | None:
    """``encoding`` if this package can write it (None: no compression); ValueError otherwise."""
    if encoding is None or encoding == IDENTITY:
        return None
    if encoding not in WBITS:
        raise ValueError(f"compression {encoding!r} is not one of {', '.join(ENCODINGS)} (or None)")
    return encoding


def accepted(header: str | None) -> list[str]:
    """The encodings a ``grpc-accept-encoding`` header lists (lowercase, in the peer's order)."""
    if not header:
        return []
    return [name.strip().lower() for name in header.split(",") if name.strip()]


def response_encoding(request_encoding: str, accept_header: str | None, preferred: Sequence[str]) -> str:
    """The encoding to answer in: the request's own if the peer accepts it, else the first of ``preferred``.

    Only encodings the peer listed in ``grpc-accept-encoding`` and this package writes;
    :data:`IDENTITY` when there is none (an old client, or one that lists nothing).
    """
    usable = [name for name in accepted(accept_header) if name in WBITS]
    if request_encoding in usable and request_encoding in preferred:
        return request_encoding
    return next((name for name in preferred if name in usable), IDENTITY)


def compress(data: bytes, encoding: str) -> bytes:
    """``data`` compressed in ``encoding`` (gzip or deflate) at :data:`LEVEL`, with a window fitted to it."""
    window = max(_MIN_WINDOW_BITS, min(zlib.MAX_WBITS, (len(data) - 1).bit_length()))
    wbits = window + (WBITS[encoding] - zlib.MAX_WBITS)
    compressor = zlib.compressobj(LEVEL, zlib.DEFLATED, wbits)
    return compressor.compress(data) + compressor.flush()


def frame(data: bytes, encoding: str, min_bytes: int = DEFAULT_MIN_BYTES) -> bytes:
    """A gRPC length-prefixed message: compressed (flag 1) only if ``encoding`` is set, it is
    at least ``min_bytes`` long and compressing made it shorter; plain (flag 0) otherwise."""
    if encoding != IDENTITY and len(data) >= min_bytes:
        packed = compress(data, encoding)
        if len(packed) < len(data):
            return _PREFIX.pack(1, len(packed)) + packed
    return _PREFIX.pack(0, len(data)) + data


def inflate(body: bytes, encoding: str, limit: int) -> bytes:
    """``body`` inflated from ``encoding``, never more than ``limit`` bytes of it.

    zlib stops at ``limit + 1`` bytes, so a bomb costs no more than the limit to refuse:
    :class:`InflatedTooLarge` past the limit, :class:`DecompressionError` when ``body``
    is not one whole stream of ``encoding``.
    """
    inflater = zlib.decompressobj(WBITS[encoding])
    try:
        inflated = inflater.decompress(body, limit + 1)
    except zlib.error as error:
        raise DecompressionError(f"a {encoding} message does not inflate: {error}") from None
    if len(inflated) > limit:
        raise InflatedTooLarge(f"inflates from {encoding} past the {limit}-byte message limit")
    if not inflater.eof or inflater.unused_data:
        raise DecompressionError(f"a {encoding} message is truncated or has trailing bytes")
    return inflated
