"""chat_sdk.connect: addresses, and the token sent on every call."""

from __future__ import annotations

import asyncio

import pytest
from grpclib.events import RecvRequest

from chat_sdk import connect, default_timeouts, parse_target
from chat_sdk.channel import DEFAULT_UNARY_TIMEOUT
from chat_sdk.v1 import GetMessageRequest, MessageServiceStub

from .server import FlakyMessages, serving


@pytest.mark.parametrize(
    ("target", "expected"),
    [("127.0.0.1:50051", ("127.0.0.1", 50051)), ("[::1]:8443", ("::1", 8443)), ("svc:1", ("svc", 1))],
)
def test_parse_target_accepts_host_port(target: str, expected: tuple[str, int]) -> None:
    assert parse_target(target) == expected


@pytest.mark.parametrize("target", ["127.0.0.1", ":50051", "host:port", "host:0", "host:70000"])
def test_parse_target_rejects_malformed_addresses(target: str) -> None:
    with pytest.raises(ValueError, match="target"):
        parse_target(target)


def test_token_travels_as_bearer_authorization() -> None:
    seen: list[dict[str, str | bytes]] = []

    async def scenario() -> str:
        async with serving(FlakyMessages(), seen) as port, connect(f"127.0.0.1:{port}", token="s3cret") as ch:
            reply = await MessageServiceStub(ch, timeout=5).get_message(GetMessageRequest(message_id="m-1"))
        assert reply.message is not None
        return reply.message.id

    assert asyncio.run(scenario()) == "m-1"
    assert [call.get("authorization") for call in seen] == ["Bearer s3cret"]


def test_without_token_no_authorization_is_sent() -> None:
    seen: list[dict[str, str | bytes]] = []

    async def scenario() -> None:
        async with serving(FlakyMessages(), seen) as port, connect(f"127.0.0.1:{port}") as channel:
            await MessageServiceStub(channel, timeout=5).get_message(GetMessageRequest(message_id="m"))

    asyncio.run(scenario())
    assert len(seen) == 1 and "authorization" not in seen[0]


@pytest.mark.parametrize("token", ["", "two\nlines"])
def test_a_malformed_token_is_refused_before_any_call(token: str) -> None:
    with pytest.raises(ValueError, match="token"):
        connect("127.0.0.1:1", token=token)


def test_a_token_provider_is_asked_before_every_call() -> None:
    seen: list[dict[str, str | bytes]] = []
    issued = iter(["first", "second"])

    async def provider() -> str:
        return next(issued)

    async def scenario() -> None:
        async with serving(FlakyMessages(), seen) as port, connect(f"127.0.0.1:{port}", token=provider) as ch:
            stub = MessageServiceStub(ch, timeout=5)
            for _ in range(2):
                await stub.get_message(GetMessageRequest(message_id="m"))

    asyncio.run(scenario())
    assert [call.get("authorization") for call in seen] == ["Bearer first", "Bearer second"]


def test_a_pool_spreads_calls_over_its_connections_in_turn() -> None:
    events: list[RecvRequest] = []

    async def scenario() -> None:
        async with (
            serving(FlakyMessages(), [], events) as port,
            connect(f"127.0.0.1:{port}", pool_size=3) as ch,
        ):
            stub = MessageServiceStub(ch, timeout=5)
            for _ in range(6):
                await stub.get_message(GetMessageRequest(message_id="m"))

    asyncio.run(scenario())
    peers = [event.peer.addr() for event in events]
    assert len(set(peers)) == 3
    assert peers[:3] == peers[3:]  # round robin: the same order each turn


def test_unary_calls_get_a_default_deadline_unless_given_one() -> None:
    events: list[RecvRequest] = []

    async def scenario() -> None:
        async with serving(FlakyMessages(), [], events) as port, connect(f"127.0.0.1:{port}") as ch:
            await MessageServiceStub(ch).get_message(GetMessageRequest(message_id="m"))
        async with (
            serving(FlakyMessages(), [], events) as port,
            connect(f"127.0.0.1:{port}", timeouts={"/chat.v1.MessageService/GetMessage": 1000.0}) as ch,
        ):
            await MessageServiceStub(ch).get_message(GetMessageRequest(message_id="m"))

    asyncio.run(scenario())
    default, overridden = (event.deadline for event in events)
    assert default is not None and overridden is not None
    assert default.time_remaining() <= DEFAULT_UNARY_TIMEOUT < overridden.time_remaining()
    assert default_timeouts()["/chat.v1.MessageService/GetMessage"] == DEFAULT_UNARY_TIMEOUT
    assert "/chat.v1.MessageService/ChatStream" not in default_timeouts()
