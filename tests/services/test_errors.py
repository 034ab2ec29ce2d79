"""Client values echoed into status messages are bounded: one huge request cannot freeze the server."""

from __future__ import annotations

import asyncio

from grpclib.const import Status
from grpclib.health.v1.health_grpc import HealthStub
from grpclib.health.v1.health_pb2 import HealthCheckRequest, HealthCheckResponse

from chat.v1 import (
    ai_service_grpc,
    ai_service_pb2,
    message_service_grpc,
    message_service_pb2,
    plugin_service_grpc,
    plugin_service_pb2,
)
from chat_services.errors import ECHO_MAX_CHARS, STATUS_MESSAGE_MAX_CHARS, InvalidArgument, echo
from chat_services.server import App

from .clients import channel, expect_status

HUGE = 1_000_000
# A bound on waiting for health to answer, not a speed target: an unbounded trailer
# kept grpclib's event loop busy for minutes.
HEALTH_ANSWERS_WITHIN = 5.0


def test_echo_keeps_short_values_whole() -> None:
    assert echo("gpt-x") == "'gpt-x'"
    assert echo(42) == "42"


def test_echo_cuts_a_long_value_and_says_how_long_it_was() -> None:
    text = echo("m" * HUGE)
    assert text.startswith("'mmmm") and text.endswith(f"…' ({HUGE} bytes, truncated)"[-30:])
    assert f"({HUGE} bytes, truncated)" in text
    assert len(text) < ECHO_MAX_CHARS + 50
    assert f"({2 * 300} bytes, truncated)" in echo("é" * 300)  # bytes, not characters
    assert "(1000 bytes, truncated)" in echo(b"\x00" * 1000)


def test_a_domain_error_bounds_its_message_and_field() -> None:
    error = InvalidArgument("x" * HUGE, field="f" * HUGE)
    assert len(error.message) < STATUS_MESSAGE_MAX_CHARS + 50 and "truncated" in error.message
    assert error.field is not None and len(error.field) < ECHO_MAX_CHARS + 50


async def health_answers(port: int) -> None:
    async with channel(port) as opened:
        reply = await asyncio.wait_for(HealthStub(opened).Check(HealthCheckRequest()), HEALTH_ANSWERS_WITHIN)
        assert reply.status == HealthCheckResponse.SERVING


async def test_a_megabyte_model_name_is_refused_briefly_and_health_still_answers(app: App) -> None:
    async with channel(app.port) as opened:
        request = ai_service_pb2.CompleteRequest(prompt="hi", model="m" * HUGE)
        error = await expect_status(
            ai_service_grpc.AIServiceStub(opened).Complete(request), Status.INVALID_ARGUMENT
        )
    # The schema's 64-character bound refuses it at the boundary; nothing of the value is echoed.
    assert error.message is not None and "model" in error.message and "m" * 65 not in error.message
    assert len(error.message) < STATUS_MESSAGE_MAX_CHARS
    await health_answers(app.port)


async def test_a_megabyte_plugin_argument_name_is_refused_briefly(app: App) -> None:
    async with channel(app.port) as opened:
        request = plugin_service_pb2.InvokePluginRequest(
            plugin_name="word_count", arguments={"k" * HUGE: "v"}
        )
        stub = plugin_service_grpc.PluginServiceStub(opened)
        error = await expect_status(stub.InvokePlugin(request), Status.INVALID_ARGUMENT)
    assert error.message is not None and len(error.message) < STATUS_MESSAGE_MAX_CHARS
    await health_answers(app.port)


async def test_a_megabyte_typing_user_id_is_refused_briefly(app: App) -> None:
    requests = [
        message_service_pb2.ChatStreamRequest(
            join=message_service_pb2.ChatJoin(conversation_id="c", user_id="u")
        ),
        message_service_pb2.ChatStreamRequest(
            typing=message_service_pb2.ChatTyping(conversation_id="c", user_id="u" * HUGE, typing=True)
        ),
    ]
    async with channel(app.port) as opened:
        stub = message_service_grpc.MessageServiceStub(opened)

        async def chat() -> None:
            async with stub.ChatStream.open() as stream:
                for request in requests:
                    await stream.send_message(request)
                await stream.end()
                async for _ in stream:
                    pass

        error = await expect_status(chat(), Status.INVALID_ARGUMENT, "typing.user_id")
    assert error.message is not None and len(error.message) < STATUS_MESSAGE_MAX_CHARS
    await health_answers(app.port)
