"""What each framing refusal says: its status and words name the fault and the limit, so a client
author can fix the request; and the boundaries (an empty message, a message that inflates to
exactly the limit) are served."""

from __future__ import annotations

import gzip
import zlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from grpclib.const import Status
from grpclib.exceptions import GRPCError

from chat.v1 import message_service_pb2
from chat_services.framing import one_request

from .conftest import make_config
from .fuzz.rawh2 import RawConnection, Reply, frame
from .test_hygiene import GET_MESSAGE, started

LIMIT = 1000
GZIP = (("grpc-encoding", "gzip"),)


@pytest.fixture
async def raw(tmp_path: Path) -> AsyncIterator[RawConnection]:
    async with started(make_config(tmp_path, max_message_bytes=LIMIT)) as app:
        connection = await RawConnection.open(app.port)
        try:
            yield connection
        finally:
            await connection.close()


def request_of(size: int) -> bytes:
    """A GetMessageRequest of exactly ``size`` bytes (its id too long for the rules: read, then refused)."""
    body = message_service_pb2.GetMessageRequest(message_id="m" * (size - 3)).SerializeToString()
    assert len(body) == size
    return body


def corrupt() -> bytes:
    """A gzip member whose first deflate block has the reserved block type 3."""
    body = bytearray(gzip.compress(request_of(200)))
    body[10] = 0xFF  # right after the 10-byte gzip header: BFINAL=1, BTYPE=11
    return bytes(body)


def refused(reply: Reply, status: Status, message: str) -> None:
    assert (reply.status, reply.message) == (status.value, message), reply


async def test_a_frame_over_the_limit_names_the_request_its_size_and_the_limit(raw: RawConnection) -> None:
    reply = await raw.call(GET_MESSAGE, frame(b"x" * 10, length=LIMIT + 1))
    refused(
        reply,
        Status.RESOURCE_EXHAUSTED,
        f"chat.v1.GetMessageRequest of {LIMIT + 1} bytes exceeds the {LIMIT}-byte message limit",
    )


async def test_a_body_cut_short_says_where_it_ended(raw: RawConnection) -> None:
    refused(
        await raw.call(GET_MESSAGE, frame(b"x" * 10, length=500)),
        Status.INVALID_ARGUMENT,
        "the request stream ended inside a message: its length prefix says 500 bytes",
    )
    refused(
        await raw.call(GET_MESSAGE, frame(b"", length=500)),  # the header, then the end of the stream
        Status.INVALID_ARGUMENT,
        "the request stream ended inside a message: its length prefix says 500 bytes",
    )
    refused(
        await raw.call(GET_MESSAGE, b"\x00\x00\x00"),
        Status.INVALID_ARGUMENT,
        "the request stream ended inside a 5-byte message header (trailing bytes after a message?)",
    )


async def test_an_empty_message_is_an_empty_request(raw: RawConnection) -> None:
    reply = await raw.call(GET_MESSAGE, frame(b""))
    assert reply.status == Status.INVALID_ARGUMENT.value and "message_id" in reply.message, reply


async def test_a_compressed_message_without_an_encoding_is_refused(raw: RawConnection) -> None:
    refused(
        await raw.call(GET_MESSAGE, frame(gzip.compress(request_of(200)), compressed=True)),
        Status.INVALID_ARGUMENT,
        "a message is marked compressed but the call has no grpc-encoding",
    )


async def test_an_unknown_encoding_is_named_in_a_200_answer(raw: RawConnection) -> None:
    reply = await raw.call(
        GET_MESSAGE, frame(b"x", compressed=True), extra_headers=(("grpc-encoding", "snappy"),)
    )
    assert reply.status == Status.UNIMPLEMENTED.value
    assert reply.message.startswith("grpc-encoding 'snappy' is not supported"), reply.message
    assert reply.headers[":status"] == "200"


async def test_a_message_that_inflates_to_exactly_the_limit_is_read(raw: RawConnection) -> None:
    reply = await raw.call(
        GET_MESSAGE, frame(gzip.compress(request_of(LIMIT)), compressed=True), extra_headers=GZIP
    )
    assert reply.status == Status.INVALID_ARGUMENT.value and "at most 64 characters" in reply.message, reply
    over = await raw.call(
        GET_MESSAGE, frame(gzip.compress(request_of(LIMIT + 1)), compressed=True), extra_headers=GZIP
    )
    assert over.status == Status.RESOURCE_EXHAUSTED.value, over


CORRUPT = corrupt()


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (CORRUPT, "a gzip message does not inflate: "),
        (gzip.compress(request_of(200))[:-12], "a gzip message is truncated or has trailing bytes"),
        (gzip.compress(request_of(200)) + b"extra", "a gzip message is truncated or has trailing bytes"),
    ],
    ids=["corrupt", "truncated", "trailing"],
)
async def test_a_broken_gzip_message_is_invalid_argument_saying_how(
    raw: RawConnection, body: bytes, message: str
) -> None:
    reply = await raw.call(GET_MESSAGE, frame(body, compressed=True), extra_headers=GZIP)
    assert reply.status == Status.INVALID_ARGUMENT.value, reply
    assert reply.message.startswith(message), reply.message


async def test_deflate_is_zlib_framing(raw: RawConnection) -> None:
    reply = await raw.call(
        GET_MESSAGE,
        frame(zlib.compress(request_of(200)), compressed=True),
        extra_headers=(("grpc-encoding", "deflate"),),
    )
    assert "at most 64 characters" in reply.message, reply


class _Empty:
    """A request stream that ended without a message (one not read through the framing)."""

    async def recv_message(self) -> Any:
        return None


async def test_a_handler_given_no_request_answers_invalid_argument() -> None:
    with pytest.raises(GRPCError) as raised:
        await one_request(_Empty())  # type: ignore[arg-type]
    assert (raised.value.status, raised.value.message) == (
        Status.INVALID_ARGUMENT,
        "the call takes one request message and carried none",
    )
