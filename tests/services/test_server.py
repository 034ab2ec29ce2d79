"""The assembled server: health, draining, the wire boundary, unexpected errors, the CLI."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import grpc
import pytest
from google.protobuf.message import DecodeError
from grpclib.client import Channel
from grpclib.const import Status
from grpclib.exceptions import GRPCError
from grpclib.health.v1.health_grpc import HealthStub
from grpclib.health.v1.health_pb2 import HealthCheckRequest, HealthCheckResponse

from chat.v1 import message_service_grpc, message_service_pb2
from chat_services.server import App, build_app

from .clients import until
from .conftest import make_config
from .harness import serve

SERVICES = (
    "chat.v1.MessageService",
    "chat.v1.ConversationService",
    "chat.v1.AIService",
    "chat.v1.RAGService",
    "chat.v1.PluginService",
)
GET_MESSAGE = "/chat.v1.MessageService/GetMessage"


async def test_every_service_reports_serving(app: App) -> None:
    async with Channel("127.0.0.1", app.port) as channel:
        health = HealthStub(channel)
        for name in ("", *SERVICES):
            reply = await health.Check(HealthCheckRequest(service=name), timeout=5)
            assert reply.status == HealthCheckResponse.SERVING, name


async def _raw_call(port: int, method: str, payload: bytes) -> grpc.aio.AioRpcError | bytes:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        call = channel.unary_unary(method)
        try:
            reply: bytes = await call(payload, timeout=5)
        except grpc.aio.AioRpcError as error:
            return error
        return reply


async def test_truncated_request_bytes_are_invalid_argument(app: App) -> None:
    whole = message_service_pb2.GetMessageRequest(message_id="m" * 40, include_user=True).SerializeToString()
    with pytest.raises(DecodeError):
        message_service_pb2.GetMessageRequest.FromString(whole[:10])
    result = await _raw_call(app.port, GET_MESSAGE, whole[:10])
    assert isinstance(result, grpc.aio.AioRpcError)
    assert result.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "malformed chat.v1.GetMessageRequest" in (result.details() or "")


async def test_garbage_bytes_are_invalid_argument_and_the_server_keeps_serving(app: App) -> None:
    result = await _raw_call(app.port, GET_MESSAGE, b"\xff\xff\xff\xff\xff")
    assert isinstance(result, grpc.aio.AioRpcError)
    assert result.code() == grpc.StatusCode.INVALID_ARGUMENT
    valid = message_service_pb2.GetMessageRequest(message_id="absent").SerializeToString()
    after = await _raw_call(app.port, GET_MESSAGE, valid)
    assert isinstance(after, grpc.aio.AioRpcError)
    assert after.code() == grpc.StatusCode.NOT_FOUND


async def test_an_oversized_request_is_resource_exhausted(tmp_path: Path) -> None:
    built = await build_app(make_config(tmp_path, max_message_bytes=1024))
    port = await built.start()
    try:
        big = message_service_pb2.GetMessageRequest(message_id="x" * 4096).SerializeToString()
        result = await _raw_call(port, GET_MESSAGE, big)
        assert isinstance(result, grpc.aio.AioRpcError)
        assert result.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "exceeds the 1024-byte message limit" in (result.details() or "")
        small = message_service_pb2.GetMessageRequest(message_id="absent").SerializeToString()
        after = await _raw_call(port, GET_MESSAGE, small)
        assert isinstance(after, grpc.aio.AioRpcError)
        assert after.code() == grpc.StatusCode.NOT_FOUND
    finally:
        await built.shutdown()


async def test_the_default_limit_is_four_mebibytes(app: App) -> None:
    assert app.config.max_message_bytes == 4 * 1024 * 1024


class Exploding(message_service_grpc.MessageServiceBase):
    """A handler with a bug, to show what an unexpected exception turns into."""

    async def GetMessage(self, stream: object) -> None:
        raise RuntimeError("a bug")

    async def ListMessages(self, stream: object) -> None:
        raise NotImplementedError

    async def StreamMessages(self, stream: object) -> None:
        raise NotImplementedError

    async def SendMessages(self, stream: object) -> None:
        raise NotImplementedError

    async def ChatStream(self, stream: object) -> None:
        raise NotImplementedError

    async def EditMessage(self, stream: object) -> None:
        raise NotImplementedError


async def test_an_unexpected_exception_is_internal_logged_and_not_fatal(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with serve([Exploding()]) as port, Channel("127.0.0.1", port) as channel:
        stub = message_service_grpc.MessageServiceStub(channel)
        for _ in range(2):
            with pytest.raises(GRPCError) as raised:
                await stub.GetMessage(message_service_pb2.GetMessageRequest(message_id="m"), timeout=5)
            assert raised.value.status is Status.INTERNAL
            assert "the server logged it" in (raised.value.message or "")
    assert "unexpected error in /chat.v1.MessageService/GetMessage" in caplog.text


async def test_draining_refuses_new_calls_lets_running_ones_finish_and_says_not_serving(
    tmp_path: Path,
) -> None:
    built = await build_app(make_config(tmp_path, grace_period=10.0))
    port = await built.start()
    async with Channel("127.0.0.1", port) as channel:
        messages = message_service_grpc.MessageServiceStub(channel)
        # A client stream the client keeps open: the call runs until the client ends it,
        # whatever the server's state, so the drain must wait for it.
        async with messages.SendMessages.open(timeout=30) as running:
            new = message_service_pb2.NewMessage(
                idempotency_key="k-1", conversation_id="c-1", author_id="u-1", content="in flight"
            )
            await running.send_message(message_service_pb2.SendMessagesRequest(message=new))
            await asyncio.wait_for(until(lambda: built.lifecycle.active_calls == 1), 5)
            shutdown = asyncio.ensure_future(built.shutdown())
            await asyncio.wait_for(until(lambda: built.lifecycle.draining), 5)

            health = await HealthStub(channel).Check(
                HealthCheckRequest(service="chat.v1.AIService"), timeout=5
            )
            assert health.status == HealthCheckResponse.NOT_SERVING
            with pytest.raises(GRPCError) as refused:
                await messages.GetMessage(message_service_pb2.GetMessageRequest(message_id="m"), timeout=5)
            assert refused.value.status is Status.UNAVAILABLE
            assert not shutdown.done(), "the drain waits for the running call"

            await running.end()
            reply = await running.recv_message()
            assert reply is not None and [m.content for m in reply.messages] == ["in flight"]
        await asyncio.wait_for(shutdown, 15)


def _start_cli(database: Path, *extra: str) -> tuple[subprocess.Popen[str], int]:
    process = subprocess.Popen(
        [sys.executable, "-m", "chat_services", "serve", "--port", "0", "--database", str(database), *extra],
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "CHAT_SERVICES_LOG_LEVEL": "INFO"},
    )
    assert process.stderr is not None
    for line in process.stderr:
        match = re.search(r"serving address=127\.0\.0\.1:(\d+)", line)
        if match:
            return process, int(match.group(1))
    raise AssertionError(f"the server never said it was serving (exit {process.wait(10)})")


def _stop_cli(process: subprocess.Popen[str]) -> str:
    process.send_signal(signal.SIGTERM)
    _, rest = process.communicate(timeout=30)
    assert process.returncode == 0, rest
    return rest


async def test_the_cli_serves_stops_on_sigterm_and_keeps_data_across_restarts(tmp_path: Path) -> None:
    database = tmp_path / "chat.db"
    process, port = _start_cli(database)
    try:
        async with Channel("127.0.0.1", port) as channel:
            stub = message_service_grpc.MessageServiceStub(channel)
            new = message_service_pb2.NewMessage(
                idempotency_key="k-1", conversation_id="c-1", author_id="u-1", content="kept"
            )
            sent = await stub.SendMessages([message_service_pb2.SendMessagesRequest(message=new)], timeout=10)
            stored_id = sent.messages[0].id
    finally:
        log = _stop_cli(process)
    assert "draining" in log
    assert "stopped" in log

    process, port = _start_cli(database)
    try:
        async with Channel("127.0.0.1", port) as channel:
            stub = message_service_grpc.MessageServiceStub(channel)
            reply = await stub.GetMessage(
                message_service_pb2.GetMessageRequest(message_id=stored_id), timeout=10
            )
        assert reply.message.content == "kept"
    finally:
        _stop_cli(process)


def test_the_cli_refuses_a_bad_flag_value_clearly(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "chat_services", "serve", "--port", "not-a-port"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert "port: 'not-a-port' is not a valid int" in result.stderr
