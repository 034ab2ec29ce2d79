"""The wire boundary: the message size limit, exactly at it and one byte over, by default."""

from __future__ import annotations

import grpc
import pytest
from grpclib.const import Status
from grpclib.exceptions import GRPCError

from chat.v1 import message_service_pb2
from chat_services.boundary import BoundedProtoCodec
from chat_services.config import DEFAULT_MAX_MESSAGE_BYTES, ServiceConfig
from chat_services.server import App

GET_MESSAGE = "/chat.v1.MessageService/GetMessage"
PADDING_FIELD = 1000  # a field number GetMessageRequest does not know: kept as an unknown field
Request = message_service_pb2.GetMessageRequest


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def padded_request(size: int) -> bytes:
    """A valid GetMessageRequest for ``m-1`` of exactly ``size`` bytes (padded with an unknown field)."""
    head = Request(message_id="m-1").SerializeToString() + _varint(PADDING_FIELD << 3 | 2)
    length = size - len(head)
    while len(head) + len(_varint(length)) + length != size:
        length -= 1
    data = head + _varint(length) + b"x" * length
    assert len(data) == size and Request.FromString(data).message_id == "m-1"
    return data


def test_the_default_limit_is_four_mebibytes() -> None:
    assert DEFAULT_MAX_MESSAGE_BYTES == 4 * 1024 * 1024
    assert ServiceConfig().max_message_bytes == DEFAULT_MAX_MESSAGE_BYTES


@pytest.mark.parametrize("limit", [1024, DEFAULT_MAX_MESSAGE_BYTES])
def test_the_codec_accepts_exactly_the_limit_and_refuses_one_byte_more(limit: int) -> None:
    codec = BoundedProtoCodec(limit)
    assert codec.decode(padded_request(limit), Request).message_id == "m-1"
    with pytest.raises(GRPCError) as raised:
        codec.decode(padded_request(limit + 1), Request)
    assert raised.value.status is Status.RESOURCE_EXHAUSTED
    assert raised.value.message == (
        f"chat.v1.GetMessageRequest of {limit + 1} bytes exceeds the {limit}-byte message limit"
    )


def test_malformed_bytes_are_invalid_argument_naming_the_message() -> None:
    whole = Request(message_id="m" * 40).SerializeToString()
    with pytest.raises(GRPCError) as raised:
        BoundedProtoCodec(1024).decode(whole[:10], Request)
    assert raised.value.status is Status.INVALID_ARGUMENT
    assert (raised.value.message or "").startswith("malformed chat.v1.GetMessageRequest: ")


def test_the_codec_still_encodes_replies() -> None:
    reply = message_service_pb2.GetMessageResponse(message=message_service_pb2.Message(id="m-1"))
    assert (
        BoundedProtoCodec(1).encode(reply, message_service_pb2.GetMessageResponse)
        == reply.SerializeToString()
    )


async def _call(port: int, payload: bytes) -> grpc.StatusCode:
    """The status of a raw GetMessage call with ``payload`` as its request bytes (grpcio, no send limit)."""
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        try:
            await channel.unary_unary(GET_MESSAGE)(payload, timeout=30)
        except grpc.aio.AioRpcError as error:
            return error.code()
    return grpc.StatusCode.OK


async def test_the_default_server_reads_a_request_of_exactly_four_mebibytes(app: App) -> None:
    assert app.config.max_message_bytes == DEFAULT_MAX_MESSAGE_BYTES
    # Decoded, then looked up: there is no message m-1, so NOT_FOUND proves it got past the limit.
    assert await _call(app.port, padded_request(DEFAULT_MAX_MESSAGE_BYTES)) == grpc.StatusCode.NOT_FOUND


async def test_the_default_server_refuses_one_byte_over_four_mebibytes(app: App) -> None:
    code = await _call(app.port, padded_request(DEFAULT_MAX_MESSAGE_BYTES + 1))
    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED
