"""gRPC message compression (gzip, deflate, zstd) as the gRPC spec defines it, for the SDK and the services.

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

zstd (the ``zstandard`` package, level 1) comes first: on the same chat text it takes
about half of zlib's CPU to compress and two thirds to inflate, for sizes within 3% of
gzip's under 1 kB and 3-7% smaller above (``python -m chat_bench.compression_costs``;
services/README.md, "Compression"). grpcio and connect do not read it, so a peer only
gets it when it lists ``zstd`` (this SDK does). Its contexts are kept per thread (one
costs ~10 µs to create). A zstd frame may declare its size: one declaring more than the
limit is refused before anything is allocated; one that does not declare it is inflated
into at most ``limit + 1`` bytes.
"""

from __future__ import annotations

import struct
import threading
import zlib
from collections.abc import Sequence

import zstandard

IDENTITY = "identity"
ZSTD = "zstd"
# grpc-encoding → zlib's wbits: gzip framing, or the zlib framing gRPC calls "deflate".
WBITS = {"gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}
ENCODINGS = (ZSTD, *WBITS)  # what this package reads and writes, in order of preference
ACCEPT_ENCODING = ",".join((IDENTITY, *ENCODINGS))  # the grpc-accept-encoding header's value
DEFAULT_MIN_BYTES = 512
LEVEL = 1
ZSTD_LEVEL = 1  # level 3 (zstd's default) cost 20-30% more CPU for a few percent fewer bytes
_MIN_WINDOW_BITS = 9
_PREFIX = struct.Struct(">BI")
_zstd = threading.local()  # this thread's ZstdCompressor and ZstdDecompressor

__all__ = [
    "ACCEPT_ENCODING",
    "DEFAULT_MIN_BYTES",
    "ENCODINGS",
    "IDENTITY",
    "ZSTD",
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
    if encoding not in ENCODINGS:
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
    usable = [name for name in accepted(accept_header) if name in ENCODINGS]
    if request_encoding in usable and request_encoding in preferred:
        return request_encoding
    return next((name for name in preferred if name in usable), IDENTITY)


def compress(data: bytes, encoding: str) -> bytes:
    """``data`` compressed in ``encoding``: zlib at :data:`LEVEL` with a window fitted to it, or zstd."""
    if encoding == ZSTD:
        return _zstd_compressor().compress(data)
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
    if encoding == ZSTD:
        return _inflate_zstd(body, limit)
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


def _inflate_zstd(body: bytes, limit: int) -> bytes:
    """``body`` as one whole zstd frame, inflated into at most ``limit + 1`` bytes (see :func:`inflate`)."""
    try:
        declared = zstandard.get_frame_parameters(body).content_size
    except zstandard.ZstdError:
        raise DecompressionError("a zstd message does not start with a zstd frame header") from None
    if declared != zstandard.CONTENTSIZE_UNKNOWN and declared > limit:
        # zstandard would allocate the declared size at once, whatever max_output_size says.
        raise InflatedTooLarge(f"inflates from zstd past the {limit}-byte message limit (its frame says so)")
    decompressor = _zstd_decompressor()
    try:
        inflated = decompressor.decompress(body, max_output_size=limit + 1, allow_extra_data=False)
    except zstandard.ZstdError:
        # Truncated, corrupt, or more than limit + 1 bytes: read that far again to tell which.
        reader = decompressor.stream_reader(body, read_across_frames=False)
        try:
            if len(reader.read(limit + 1)) > limit:
                raise InflatedTooLarge(f"inflates from zstd past the {limit}-byte message limit") from None
        except zstandard.ZstdError:
            pass
        raise DecompressionError("a zstd message is corrupt, truncated or has trailing bytes") from None
    if len(inflated) > limit:
        raise InflatedTooLarge(f"inflates from zstd past the {limit}-byte message limit")
    return inflated


def _zstd_compressor() -> zstandard.ZstdCompressor:
    compressor: zstandard.ZstdCompressor | None = getattr(_zstd, "compressor", None)
    if compressor is None:
        compressor = _zstd.compressor = zstandard.ZstdCompressor(level=ZSTD_LEVEL)
    return compressor


def _zstd_decompressor() -> zstandard.ZstdDecompressor:
    decompressor: zstandard.ZstdDecompressor | None = getattr(_zstd, "decompressor", None)
    if decompressor is None:
        # A frame asking for a window past 8 MiB is refused (the services' message limit is
        # 4 MiB by default; zstd's own default would let a frame ask for 128 MiB).
        decompressor = _zstd.decompressor = zstandard.ZstdDecompressor(max_window_size=1 << 23)
    return decompressor
