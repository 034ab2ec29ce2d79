"""Page tokens from a hostile client are INVALID_ARGUMENT, never an internal error."""

from __future__ import annotations

import base64

import pytest
from grpclib.const import Status

from chat.v1 import plugin_service_grpc, plugin_service_pb2
from chat_services.errors import InvalidArgument
from chat_services.pagination import decode_token, encode_token
from chat_services.server import App

from .clients import channel, expect_status


def token_of(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def test_a_token_round_trips() -> None:
    assert decode_token(encode_token({"list": "x", "after": 3}), scope={"list": "x"}) == {
        "list": "x",
        "after": 3,
    }


@pytest.mark.parametrize("depth", [700, 100_000])
def test_deeply_nested_json_is_not_a_token(depth: int) -> None:
    with pytest.raises(InvalidArgument) as raised:
        decode_token(token_of(b"[" * depth), scope={"list": "x"})
    assert raised.value.field == "page.page_token"


async def test_a_nested_json_token_over_the_wire_is_invalid_argument(app: App) -> None:
    request = plugin_service_pb2.ListPluginsRequest()
    request.page.page_token = token_of(b"[" * 100_000)
    async with channel(app.port) as opened:
        stub = plugin_service_grpc.PluginServiceStub(opened)
        await expect_status(stub.ListPlugins(request), Status.INVALID_ARGUMENT, "page.page_token")
