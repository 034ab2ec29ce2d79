"""The guard's policy beyond scopes: work is charged, callers are keyed by kind, refusals are counted,
health and reflection streams are capped, and /metrics is private by default."""

from __future__ import annotations

import asyncio
import socket
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from google.rpc import error_details_pb2
from grpclib.client import Channel
from grpclib.const import Status
from grpclib.exceptions import GRPCError
from grpclib.health.v1.health_grpc import HealthStub
from grpclib.health.v1.health_pb2 import HealthCheckRequest
from grpclib.reflection.v1.reflection_grpc import ServerReflectionStub
from grpclib.reflection.v1.reflection_pb2 import ServerReflectionRequest, ServerReflectionResponse

from chat.v1 import message_service_pb2
from chat.v1.message_service_grpc import MessageServiceStub
from chat_services.server import App

from ..clients import channel, until
from ..conftest import make_config, running
from .conftest import AUDIENCE, IMPERSONATOR_TOKEN, ISSUER, Issuer, secured_config

LIMITS = """
[defaults]
max_streams = 2

[methods."/chat.v1.MessageService/GetMessage"]
rate = 1
burst = 3

[methods."/chat.v1.MessageService/ListMessages"]
rate = 0.01
burst = 2

[work.messages]
rate = 1
burst = 5

[work.joins]
rate = 1
burst = 3
"""
STEP = 15.0
GET = "/chat.v1.MessageService/GetMessage"


@pytest.fixture
async def guarded(tmp_path: Path, issuer: Issuer) -> AsyncIterator[App]:
    """A secured server with small work budgets, two streams per caller, metrics behind a token."""
    limits = tmp_path / "limits.toml"
    limits.write_text(LIMITS)
    token_file = tmp_path / "metrics-token"
    token_file.write_text("scrape-secret\n")
    config = secured_config(
        tmp_path, issuer, rate_limits=limits, metrics_port=0, metrics_token_file=token_file
    )
    async with running(config) as app:
        yield app


class ChannelFrom(Channel):
    """A channel whose connections leave from ``source`` (any 127.x address is loopback on Linux)."""

    def __init__(self, source: str, port: int) -> None:
        super().__init__("127.0.0.1", port)
        self.source = source

    async def _create_connection(self) -> Any:
        _, protocol = await self._loop.create_connection(
            self._protocol_factory, self._host, self._port, local_addr=(self.source, 0)
        )
        return protocol


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def new(
    key: str, author: str = "alice", conversation: str = "c-1"
) -> message_service_pb2.SendMessagesRequest:
    return message_service_pb2.SendMessagesRequest(
        message=message_service_pb2.NewMessage(
            idempotency_key=key, conversation_id=conversation, author_id=author, content="x"
        )
    )


def metrics_port(app: App) -> int:
    endpoint = app.interceptors.metrics_endpoint if app.interceptors else None
    assert endpoint is not None
    return endpoint.port


def error_info(error: GRPCError) -> error_details_pb2.ErrorInfo:
    [info] = [d for d in error.details or [] if isinstance(d, error_details_pb2.ErrorInfo)]
    return info


def counted(page: str, method: str, reason: str) -> float:
    """The refusals of ``method`` for ``reason`` on a metrics page (0 when none was counted)."""
    series = f'chat_server_refused_total{{grpc_method="{method}",reason="{reason}"}} '
    return sum(float(line.removeprefix(series)) for line in page.splitlines() if line.startswith(series))


def scrape(app: App, token: str | None = "scrape-secret") -> str:
    request = urllib.request.Request(f"http://127.0.0.1:{metrics_port(app)}/metrics")
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(request, timeout=10) as response:
        return str(response.read().decode())


async def test_one_call_cannot_store_more_messages_than_the_budget(guarded: App, issuer: Issuer) -> None:
    """Rate limits count messages stored, not calls: one SendMessages of 8 against a budget of 5."""
    async with channel(guarded.port) as opened:
        stub = MessageServiceStub(opened)
        with pytest.raises(GRPCError) as refused:
            await stub.SendMessages([new(f"k-{i}") for i in range(8)], metadata=bearer(issuer.token("alice")))
        assert refused.value.status is Status.RESOURCE_EXHAUSTED
        assert "messages" in (refused.value.message or "")
        # Nothing of the refused batch was stored: the conversation was not even made.
        with pytest.raises(GRPCError) as missing:
            await stub.ListMessages(
                message_service_pb2.ListMessagesRequest(conversation_id="c-1"),
                metadata=bearer(issuer.token("alice")),
            )
        assert missing.value.status is Status.NOT_FOUND


async def test_joins_are_charged_and_a_stream_cannot_join_without_bound(guarded: App, issuer: Issuer) -> None:
    async with channel(guarded.port) as opened:
        stub = MessageServiceStub(opened)
        statuses: list[Status] = []
        async with stub.ChatStream.open(metadata=bearer(issuer.token("alice")), timeout=STEP) as stream:
            for index in range(6):
                join = message_service_pb2.ChatJoin(conversation_id=f"c-join-{index}", user_id="alice")
                await stream.send_message(message_service_pb2.ChatStreamRequest(join=join))
            await stream.end()
            try:
                async for _ in stream:
                    pass
                statuses.append(Status.OK)
            except GRPCError as error:
                statuses.append(error.status)
        assert statuses == [Status.RESOURCE_EXHAUSTED]


async def test_a_user_named_like_a_service_has_a_bucket_of_its_own(guarded: App, issuer: Issuer) -> None:
    """user:bridge draining its GetMessage budget leaves service:bridge's untouched."""
    request = message_service_pb2.GetMessageRequest(message_id="m-none")
    async with channel(guarded.port) as opened:
        stub = MessageServiceStub(opened)

        async def status(token: str) -> Status:
            try:
                await stub.GetMessage(request, metadata=bearer(token), timeout=STEP)
            except GRPCError as error:
                return error.status
            return Status.OK

        impostor = issuer.token("bridge")
        seen = [await status(impostor) for _ in range(5)]
        assert seen[-1] is Status.RESOURCE_EXHAUSTED
        assert await status(IMPERSONATOR_TOKEN) is Status.NOT_FOUND  # admitted: its own bucket


async def test_calls_without_valid_credentials_are_rate_limited_by_address(guarded: App) -> None:
    request = message_service_pb2.GetMessageRequest(message_id="m-none")
    async with channel(guarded.port) as opened:
        stub = MessageServiceStub(opened)
        seen: list[GRPCError] = []
        for _ in range(6):
            try:
                await stub.GetMessage(request, metadata=bearer("not-a-token"), timeout=STEP)
            except GRPCError as error:
                seen.append(error)
        first, last = seen[0], seen[-1]
        assert first.status is Status.UNAUTHENTICATED and first.message
        assert error_info(first).reason == "TOKEN_INVALID"
        assert (last.status, last.message) == (
            Status.RESOURCE_EXHAUSTED,
            f"too many {GET} calls; retry in 1 s",
        )
    page = scrape(guarded)
    assert counted(page, GET, "RATE_LIMITED") >= 1
    assert counted(page, GET, "TOKEN_INVALID") == 6


async def test_an_address_has_one_bucket_whatever_its_connection_and_another_has_its_own(
    guarded: App,
) -> None:
    request = message_service_pb2.ListMessagesRequest(conversation_id="c-1")

    async def status(opened: Channel) -> Status:
        try:
            await MessageServiceStub(opened).ListMessages(
                request, metadata=bearer("not-a-token"), timeout=STEP
            )
        except GRPCError as error:
            return error.status
        return Status.OK

    first, second, other = (
        ChannelFrom("127.0.0.2", guarded.port),
        ChannelFrom("127.0.0.2", guarded.port),
        None,
    )
    try:
        assert [await status(first) for _ in range(3)] == [Status.UNAUTHENTICATED] * 2 + [
            Status.RESOURCE_EXHAUSTED
        ]
        assert await status(second) is Status.RESOURCE_EXHAUSTED  # a new connection from the same address
        other = ChannelFrom("127.0.0.3", guarded.port)
        assert await status(other) is Status.UNAUTHENTICATED
    finally:
        for opened in (first, second, other):
            if opened is not None:
                opened.close()


async def test_a_user_spending_their_message_budget_leaves_anothers_untouched(
    guarded: App, issuer: Issuer
) -> None:
    async with channel(guarded.port) as opened:
        stub = MessageServiceStub(opened)
        with pytest.raises(GRPCError) as refused:
            await stub.SendMessages([new(f"a-{i}") for i in range(6)], metadata=bearer(issuer.token("alice")))
        assert refused.value.status is Status.RESOURCE_EXHAUSTED
        reply = await stub.SendMessages(
            [new("b-1", author="bob", conversation="c-bob")],
            metadata=bearer(issuer.token("bob")),
            timeout=STEP,
        )
    assert reply.created_count == 1


async def test_an_open_server_with_limits_admits_calls_by_address(tmp_path: Path) -> None:
    limits = tmp_path / "limits.toml"
    limits.write_text(LIMITS)
    request = message_service_pb2.GetMessageRequest(message_id="m-none")
    async with running(make_config(tmp_path, rate_limits=limits)) as app, channel(app.port) as opened:
        with pytest.raises(GRPCError) as answered:
            await MessageServiceStub(opened).GetMessage(request, timeout=STEP)
    assert answered.value.status is Status.NOT_FOUND  # admitted, and answered by the handler


async def test_a_token_lacking_the_methods_scope_is_refused_and_counted(guarded: App, issuer: Issuer) -> None:
    request = message_service_pb2.GetMessageRequest(message_id="m-none")
    async with channel(guarded.port) as opened:
        token = issuer.token("alice", ["messages:write", "documents:read"])
        with pytest.raises(GRPCError) as refused:
            await MessageServiceStub(opened).GetMessage(request, metadata=bearer(token), timeout=STEP)
    assert (refused.value.status, refused.value.message) == (
        Status.PERMISSION_DENIED,
        f"{GET} needs the scope(s) messages:read",
    )
    assert counted(scrape(guarded), GET, "PERMISSION_DENIED") == 1


async def test_a_forged_algorithm_header_is_unauthenticated_and_counted(guarded: App) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    now = int(time.time())
    forged = jwt.encode(
        {"iss": ISSUER, "aud": AUDIENCE, "sub": "mallory", "iat": now, "exp": now + 60},
        key,
        algorithm="ES256",
    )
    async with channel(guarded.port) as opened:
        with pytest.raises(GRPCError) as refused:
            await MessageServiceStub(opened).GetMessage(
                message_service_pb2.GetMessageRequest(message_id="m-1"), metadata=bearer(forged), timeout=STEP
            )
    assert refused.value.status is Status.UNAUTHENTICATED
    page = scrape(guarded)
    counted = (
        'chat_server_refused_total{grpc_method="/chat.v1.MessageService/GetMessage",reason="TOKEN_INVALID"}'
    )
    assert f"{counted} 1.0" in page


async def watch_once(stub: HealthStub) -> None:
    """Open a health Watch and wait for its first status."""
    async with stub.Watch.open(timeout=STEP) as stream:
        await stream.send_message(HealthCheckRequest(), end=True)
        await stream.recv_message()


async def list_services(opened: Channel) -> ServerReflectionResponse:
    """Ask reflection for the list of services."""
    async with ServerReflectionStub(opened).ServerReflectionInfo.open(timeout=STEP) as stream:
        await stream.send_message(ServerReflectionRequest(list_services=""), end=True)
        reply = await stream.recv_message()
    assert reply is not None
    return reply


async def test_health_watch_streams_are_capped_per_address(guarded: App) -> None:
    async with Channel("127.0.0.1", guarded.port) as opened:
        stub = HealthStub(opened)
        watchers = [stub.Watch.open(timeout=STEP) for _ in range(2)]
        streams = [await watcher.__aenter__() for watcher in watchers]
        try:
            for stream in streams:
                await stream.send_message(HealthCheckRequest(), end=True)
                await stream.recv_message()  # the first status: the stream is open and counted
            with pytest.raises(GRPCError) as refused:
                await watch_once(stub)
            assert (refused.value.status, refused.value.message) == (
                Status.RESOURCE_EXHAUSTED,
                "at most 2 open streams per caller",
            )
            [retry] = [d for d in refused.value.details or [] if isinstance(d, error_details_pb2.RetryInfo)]
            assert retry.retry_delay.ToTimedelta().total_seconds() == pytest.approx(1.0)
            assert counted(scrape(guarded), "/grpc.health.v1.Health/Watch", "TOO_MANY_STREAMS") == 1
            other = ChannelFrom("127.0.0.2", guarded.port)  # another address: its own streams
            try:
                async with HealthStub(other).Watch.open(timeout=STEP) as stream:
                    await stream.send_message(HealthCheckRequest(), end=True)
                    assert (await stream.recv_message()) is not None
                    await stream.cancel()
            finally:
                other.close()
            # Unary health checks are never capped.
            assert (await stub.Check(HealthCheckRequest(), timeout=STEP)).status == 1
        finally:
            for stream, watcher in zip(streams, watchers, strict=True):
                await stream.cancel()
                await watcher.__aexit__(None, None, None)


async def test_reflection_is_off_by_default_when_authentication_is_on(guarded: App) -> None:
    async with Channel("127.0.0.1", guarded.port) as opened:
        with pytest.raises(GRPCError) as refused:
            await list_services(opened)
    # grpclib answers an unknown method with grpc-status 12 and no content-type, which its
    # own client reports as UNKNOWN; grpcio reports UNIMPLEMENTED.
    assert refused.value.status in (Status.UNIMPLEMENTED, Status.UNKNOWN)


async def test_reflection_can_be_asked_for_with_authentication_on(tmp_path: Path, issuer: Issuer) -> None:
    async with running(secured_config(tmp_path, issuer, reflection="on")) as app:
        async with Channel("127.0.0.1", app.port) as opened:
            reply = await list_services(opened)
        assert "chat.v1.ConversationService" in {s.name for s in reply.list_services_response.service}


async def test_metrics_need_the_token_and_listen_on_loopback(guarded: App) -> None:
    with pytest.raises(urllib.error.HTTPError) as refused:
        scrape(guarded, token=None)
    assert refused.value.code == 401
    with pytest.raises(urllib.error.HTTPError):
        scrape(guarded, token="wrong")
    assert "grpc_server_started_total" in scrape(guarded)
    assert guarded.config.metrics_host == "127.0.0.1"
    endpoint = guarded.interceptors.metrics_endpoint if guarded.interceptors else None
    assert endpoint is not None and endpoint.server.server_address[0] == "127.0.0.1"


async def test_silent_metrics_connections_do_not_hold_threads_forever(
    guarded: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    """More half-open connections than the endpoint serves at once: a scrape still gets through
    once their request timeout frees the slots, and they never hold more than the cap."""
    from chat_services.observability import endpoint as metrics_http

    # A connection's timeout is read when it is accepted: 1 s instead of 10 keeps the test short.
    monkeypatch.setattr(metrics_http._QuietHandler, "timeout", 1.0)
    port = metrics_port(guarded)
    idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(metrics_http.MAX_CONNECTIONS + 4)]
    try:
        server = (
            guarded.interceptors.metrics_endpoint.server
            if guarded.interceptors and guarded.interceptors.metrics_endpoint
            else None
        )
        assert server is not None

        def scraped() -> bool:
            try:
                return "grpc_server_started_total" in scrape(guarded)
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                return False

        await until(lambda: asyncio.to_thread(scraped), timeout=metrics_http.REQUEST_TIMEOUT * 2)
    finally:
        for connection in idle:
            connection.close()
