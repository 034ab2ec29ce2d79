"""Client-side balancing: several targets (or a name with several addresses), round-robin over
the ones that are up, a failed one skipped for a backoff and tried again after it."""

from __future__ import annotations

import asyncio
import socket

import pytest

from chat_sdk import RetryPolicy, call_with_retry, connect
from chat_sdk.channel import resolve
from chat_sdk.v1 import GetMessageRequest, GetMessageResponse, MessageServiceStub

from .server import FlakyMessages, closed_port, serving

CALLS = 12


def test_calls_go_round_robin_over_every_target() -> None:
    first, second = FlakyMessages(), FlakyMessages()

    async def scenario() -> None:
        async with (
            serving(first, []) as a,
            serving(second, []) as b,
            connect([f"127.0.0.1:{a}", f"127.0.0.1:{b}"]) as channel,
        ):
            stub = MessageServiceStub(channel, timeout=5)
            for index in range(CALLS):
                await stub.get_message(GetMessageRequest(message_id=f"m-{index}"))

    asyncio.run(scenario())
    assert (first.calls, second.calls) == (CALLS // 2, CALLS // 2)


def test_a_target_that_is_down_is_ejected_and_the_rest_carry_the_calls() -> None:
    """One target refuses connections: after its first failure, calls go to the live one."""
    live = FlakyMessages()
    down = closed_port()

    async def scenario() -> tuple[int, float]:
        async with serving(live, []) as port:
            channel = connect(f"127.0.0.1:{down},127.0.0.1:{port}")
            stub = MessageServiceStub(channel, timeout=5)
            policy = RetryPolicy(max_attempts=3, initial_backoff=0.01, max_backoff=0.05)

            async def get(timeout: float | None) -> GetMessageResponse:
                return await stub.get_message(GetMessageRequest(message_id="m"), timeout=timeout)

            async with channel:
                for _ in range(CALLS):
                    await call_with_retry(get, policy=policy, idempotent=True)
            dead = next(m for m in channel.members if m._port == down)  # grpclib's own field
            return dead.failures, dead.ejected_until

    failures, ejected_until = asyncio.run(scenario())
    assert live.calls == CALLS  # every call answered, none lost to the dead target
    assert failures == 1  # tried once, then skipped for its backoff instead of every other call
    assert ejected_until > 0


def test_a_recovered_target_gets_calls_again_after_its_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    import chat_sdk.channel as channel_module

    monkeypatch.setattr(channel_module, "EJECTION_BASE_SECONDS", 0.0)  # tried again at once
    first, second = FlakyMessages(), FlakyMessages()

    async def scenario() -> None:
        async with serving(first, []) as a:
            port_b = closed_port()
            async with connect([f"127.0.0.1:{a}", f"127.0.0.1:{port_b}"]) as channel:
                stub = MessageServiceStub(channel, timeout=5)
                policy = RetryPolicy(max_attempts=3, initial_backoff=0.01, max_backoff=0.05)
                for _ in range(2):
                    await call_with_retry(
                        lambda timeout: stub.get_message(GetMessageRequest(message_id="m"), timeout=timeout),
                        policy=policy,
                        idempotent=True,
                    )
                # The second target comes up on the port that refused: it is used again.
                async with serving(second, [], port=port_b):
                    for _ in range(4):
                        await stub.get_message(GetMessageRequest(message_id="m"))

    asyncio.run(scenario())
    assert second.calls >= 1


def test_a_name_with_several_addresses_becomes_one_endpoint_each() -> None:
    addresses = {info[4][0] for info in socket.getaddrinfo("localhost", 1, type=socket.SOCK_STREAM)}
    endpoints = resolve("localhost", 50051)
    if len(addresses) == 1:
        assert [(e.host, e.server_name) for e in endpoints] == [("localhost", None)]
    else:
        assert {e.host for e in endpoints} == addresses
        assert {e.server_name for e in endpoints} == {"localhost"}  # TLS still checks the name
    assert [(e.host, e.port) for e in resolve("127.0.0.1", 7)] == [("127.0.0.1", 7)]
    with pytest.raises(ValueError, match="cannot resolve"):
        resolve("no-such-host.invalid", 1)
    with pytest.raises(ValueError, match="at least one"):
        connect([])
