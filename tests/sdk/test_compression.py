"""chat_sdk.compression: framing by size, lossless in every encoding, inflation bounded, negotiation."""

from __future__ import annotations

import gzip
import random
import struct
import tracemalloc
import zlib

import pytest
import zstandard
from hypothesis import given
from hypothesis import strategies as st

from chat_sdk.compression import (
    DecompressionError,
    InflatedTooLarge,
    compress,
    frame,
    inflate,
    response_encoding,
)

TEXT = b"the deploy of branch 7 passed its tests; the release goes out on friday. " * 20


def unframe(data: bytes) -> tuple[bool, bytes]:
    flag, length = struct.unpack_from(">BI", data)
    assert len(data) == 5 + length
    return bool(flag), data[5:]


@pytest.mark.parametrize("encoding", ["zstd", "gzip", "deflate"])
@given(data=st.binary(max_size=70_000))
def test_whatever_is_framed_inflates_to_the_same_bytes(encoding: str, data: bytes) -> None:
    compressed, body = unframe(frame(data, encoding, min_bytes=0))
    assert (inflate(body, encoding, len(data)) if compressed else body) == data


def test_only_messages_from_the_threshold_on_go_compressed() -> None:
    assert unframe(frame(TEXT[:511], "gzip", 512))[0] is False
    assert unframe(frame(TEXT[:512], "gzip", 512))[0] is True
    assert unframe(frame(TEXT, "identity", 0)) == (False, TEXT)


def test_a_message_compression_would_lengthen_goes_plain() -> None:
    noise = random.Random(0).randbytes(800)  # incompressible: deflate only adds its framing
    assert unframe(frame(noise, "gzip", 0)) == (False, noise)


def test_the_encodings_are_the_standard_ones() -> None:
    assert gzip.decompress(compress(TEXT, "gzip")) == TEXT
    assert zlib.decompress(compress(TEXT, "deflate")) == TEXT
    assert zstandard.ZstdDecompressor().decompress(compress(TEXT, "zstd")) == TEXT


@pytest.mark.parametrize(
    "settings",
    [{"level": 19}, {"level": 3, "write_content_size": False}, {"level": -5, "write_checksum": True}],
    ids=["level-19", "size-left-out", "fast-with-checksum"],
)
def test_zstd_from_any_encoder_settings_inflates(settings: dict[str, object]) -> None:
    body = zstandard.ZstdCompressor(**settings).compress(TEXT)  # type: ignore[arg-type]
    assert inflate(body, "zstd", len(TEXT)) == TEXT
    with pytest.raises(InflatedTooLarge, match=f"past the {len(TEXT) - 1}-byte"):
        inflate(body, "zstd", len(TEXT) - 1)


@pytest.mark.parametrize("declared", [True, False], ids=["size-in-frame", "size-left-out"])
def test_a_zstd_bomb_costs_no_more_memory_than_the_limit_to_refuse(declared: bool) -> None:
    limit = 1 << 20
    bomb = zstandard.ZstdCompressor(level=19, write_content_size=declared).compress(b"\0" * 200_000_000)
    inflate(compress(TEXT, "zstd"), "zstd", limit)  # this thread's contexts exist before measuring
    tracemalloc.start()
    try:
        with pytest.raises(InflatedTooLarge, match="past the 1048576-byte"):
            inflate(bomb, "zstd", limit)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 3 * limit  # 200 MB inflated would be 190x the limit


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (b"not zstd at all", "does not start with a zstd frame header"),
        (b"", "does not start with a zstd frame header"),
        (compress(TEXT, "zstd")[:-4], "corrupt, truncated or has trailing bytes"),
        (compress(TEXT, "zstd") + b"x", "corrupt, truncated or has trailing bytes"),
        (compress(TEXT, "zstd") * 2, "corrupt, truncated or has trailing bytes"),  # one frame, not two
        (zstandard.ZstdCompressor(level=1).compress(TEXT)[:8] + b"\xff" * 60, "corrupt, truncated"),
    ],
    ids=["garbage", "empty", "truncated", "trailing-byte", "two-frames", "corrupt-block"],
)
def test_a_zstd_message_that_is_not_one_whole_frame_is_refused(body: bytes, words: str) -> None:
    with pytest.raises(DecompressionError, match=words):
        inflate(body, "zstd", 1 << 20)


def test_a_zstd_frame_asking_for_a_window_past_8_mib_is_refused() -> None:
    params = zstandard.ZstdCompressionParameters.from_level(1, window_log=24, write_content_size=False)
    body = zstandard.ZstdCompressor(compression_params=params).compress(TEXT * 20_000)
    with pytest.raises(DecompressionError):
        inflate(body, "zstd", 64 << 20)


def test_a_bomb_is_refused_at_the_limit_and_garbage_is_refused() -> None:
    bomb = gzip.compress(b"\0" * 10_000_000)
    with pytest.raises(InflatedTooLarge, match="past the 4096-byte"):
        inflate(bomb, "gzip", 4096)
    with pytest.raises(DecompressionError, match="does not inflate"):
        inflate(b"not gzip at all", "gzip", 4096)
    with pytest.raises(DecompressionError, match="truncated or has trailing bytes"):
        inflate(compress(TEXT, "deflate") + b"x", "deflate", 1 << 20)


@pytest.mark.parametrize(
    ("request_encoding", "accept", "expected"),
    [
        ("identity", None, "identity"),  # a client that lists nothing gets nothing compressed
        ("identity", "identity", "identity"),
        ("identity", "identity,deflate,gzip", "gzip"),  # grpcio's list: our preference wins
        ("deflate", "identity,deflate,gzip", "deflate"),  # the request's own, when accepted
        ("gzip", "identity", "identity"),  # compressing requests is not accepting replies
        ("identity", "br, snappy", "identity"),
        ("identity", "GZIP", "gzip"),
        ("identity", "identity,gzip,zstd", "zstd"),  # this SDK's list: zstd preferred
        ("deflate", "identity,gzip,zstd,deflate", "deflate"),
    ],
)
def test_the_reply_encoding_is_one_the_client_accepts(
    request_encoding: str, accept: str | None, expected: str
) -> None:
    assert response_encoding(request_encoding, accept, ("zstd", "gzip", "deflate")) == expected
