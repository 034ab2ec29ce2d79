"""chat-load, the installed console script, against a real server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from chat.v1 import message_service_pb2
from chat_services.server import App, build_app
from tests.services.clients import channel
from tests.services.conftest import make_config

CLI_TIMEOUT = 120.0  # seconds: a bound on a hung run, never a speed target


@pytest.fixture
async def app(tmp_path: Path) -> AsyncIterator[App]:
    """The full server, started; shut down after the test."""
    built = await build_app(make_config(tmp_path))
    await built.start()
    try:
        yield built
    finally:
        await built.shutdown()


async def chat_load(*args: str) -> tuple[int, str, str]:
    """Run the installed ``chat-load`` and return its exit code, stdout and stderr."""
    executable = shutil.which("chat-load")
    assert executable is not None, "chat-load is installed with the chat-bench package"
    process = await asyncio.create_subprocess_exec(
        executable, *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(process.communicate(), CLI_TIMEOUT)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def load_json(port: int, *args: str) -> tuple[int, dict[str, object]]:
    """Run ``chat-load --format json`` against ``port``; return the exit code and the report."""
    code, out, err = await chat_load(f"127.0.0.1:{port}", "--format", "json", *args)
    assert out, err
    return code, json.loads(out)


async def send(port: int, conversation_id: str, count: int) -> list[str]:
    """Store ``count`` messages through the SDK's `_pb2` stubs; return their IDs."""
    from chat.v1.message_service_grpc import MessageServiceStub

    async with channel(port) as opened, MessageServiceStub(opened).SendMessages.open() as stream:
        for number in range(count):
            new = message_service_pb2.NewMessage(
                conversation_id=conversation_id,
                author_id="u-1",
                content=f"m{number}",
                idempotency_key=f"k{number}",
            )
            await stream.send_message(message_service_pb2.SendMessagesRequest(message=new))
        await stream.end()
        reply = await stream.recv_message()
    assert reply is not None
    return [message.id for message in reply.messages]


SEND = json.dumps(
    {
        "message": {
            "conversationId": "c-load",
            "authorId": "u-1",
            "content": "n{{.RequestNumber}}.{{.MessageNumber}}",
            "idempotencyKey": "{{.UUID}}",
        }
    }
)
GET = "chat.v1.MessageService/GetMessage"


async def test_unary_calls_report_every_call_ok_with_bytes_per_call(app: App) -> None:
    [message_id] = await send(app.port, "c-1", 1)
    data = json.dumps({"messageId": message_id, "includeFiles": True})
    code, report = await load_json(
        app.port, "--call", "chat.v1.MessageService/GetMessage", "-d", data, "-n", "50", "-c", "5"
    )
    assert code == 0
    assert report["count"] == 50
    assert report["status_codes"] == {"OK": 50}
    assert report["success_rate"] == 1.0
    sent = message_service_pb2.GetMessageRequest(message_id=message_id, include_files=True)
    assert report["bytes_sent_per_call"] == len(sent.SerializeToString()) + 5
    assert isinstance(report["bytes_received_per_call"], float) and report["bytes_received_per_call"] > 50


async def test_client_streams_send_templated_messages_each_stored_once(app: App) -> None:
    code, report = await load_json(
        app.port, "--call", "chat.v1.MessageService/SendMessages", "-d", SEND,
        "--stream-count", "10", "-n", "5", "-c", "2",
    )  # fmt: skip
    assert code == 0 and report["status_codes"] == {"OK": 5}
    # Fresh UUID keys per message: all 50 stored; the server streams them all back.
    code, report = await load_json(
        app.port, "--call", "chat.v1.MessageService/StreamMessages", "-d", '{"conversationId": "c-load"}',
        "-n", "3", "-c", "1",
    )  # fmt: skip
    assert code == 0
    assert report["messages_received_per_call"] == 50.0


async def test_failed_calls_show_in_the_status_histogram_and_the_exit_code(app: App) -> None:
    code, report = await load_json(
        app.port, "--call", GET, "-d", '{"messageId": "missing-{{randomString 6}}"}',
        "-n", "20", "-c", "4",
    )  # fmt: skip
    assert code == 1
    assert report["status_codes"] == {"NOT_FOUND": 20}
    assert report["success_rate"] == 0.0


async def test_a_duration_bounds_the_run_and_paced_calls_stay_under_the_rate(app: App) -> None:
    await send(app.port, "c-2", 3)
    code, report = await load_json(
        app.port, "--call", "chat.v1.MessageService/ListMessages", "-d", '{"conversationId": "c-2"}',
        "-z", "1", "--rps", "20", "-c", "4", "--connections", "2",
    )  # fmt: skip
    assert code == 0
    # Pacing starts call i at i/20 s: a 1 s run starts at most 21 calls.
    assert isinstance(report["count"], int) and 1 <= report["count"] <= 21


@pytest.mark.parametrize(
    ("args", "complaint"),
    [
        (["10.1.2.3:50051", "--call", "chat.v1.MessageService/GetMessage"], "not a loopback address"),
        (["127.0.0.1:1", "--call", "chat.v1.MessageService/Nope"], "has no method 'Nope'"),
        (["127.0.0.1:1", "--call", "chat.v1.NoService/Get"], "no service"),
        (["127.0.0.1:1", "--call", "chat.v1.MessageService/GetMessage", "-d", '{"nope": 1}'], "does not fit"),
        (["127.0.0.1:1", "--call", GET, "-d", '{"messageId": "{{.Nope}}"}'], "unknown template"),
        (["127.0.0.1:1", "--call", "chat.v1.MessageService/GetMessage", "-n", "0"], "-n must be"),
    ],
)  # fmt: skip
async def test_bad_usage_is_refused_before_any_call(args: list[str], complaint: str) -> None:
    code, out, err = await chat_load(*args)
    assert code == 2
    assert complaint in err
    assert not out
