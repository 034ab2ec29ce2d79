"""chat_sdk.compression: framing by size, lossless both encodings, inflation bounded, negotiation."""

from __future__ import annotations

import gzip
import random
import struct
import zlib

import pytest
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


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
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
    ],
)
def test_the_reply_encoding_is_one_the_client_accepts(
    request_encoding: str, accept: str | None, expected: str
) -> None:
    assert response_encoding(request_encoding, accept, ("gzip", "deflate")) == expected
