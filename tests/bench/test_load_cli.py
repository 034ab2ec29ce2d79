"""chat-load, the installed console script, against a real server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from chat_bench.durations import parse_duration
from chat_bench.stats import MAX_ERROR_KINDS, MAX_ERROR_MESSAGE, OTHER_MESSAGES, LoadResult

from chat.v1 import message_service_pb2
from chat_services.server import App, build_app
from tests.sdk.server import closed_port
from tests.services.clients import channel
from tests.services.conftest import make_config
from tests.services.security.conftest import (  # noqa: F401 - the certificates fixture, shared
    IMPERSONATOR_TOKEN,
    Certificates,
    certificates,
    service_accounts_file,
)

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
        "-z", "1s", "--rps", "20", "-c", "4", "--connections", "2",
    )  # fmt: skip
    assert code == 0
    # Pacing starts call i at i/20 s: a 1 s run starts at most 21 calls.
    assert isinstance(report["count"], int) and 1 <= report["count"] <= 21


async def test_calls_paced_past_the_end_of_the_run_are_never_made(app: App) -> None:
    # At 0.01 calls a second the second call would start 100 s in: the 300 ms run ends first,
    # without waiting for it (a run that waited would hit CLI_TIMEOUT).
    _, report = await load_json(
        app.port, "--call", "chat.v1.MessageService/ListMessages", "-d", '{"conversationId": "c-4"}',
        "-z", "300ms", "--rps", "0.01", "-c", "3",
    )  # fmt: skip
    assert report["count"] == 1  # its status is the server's business: an unknown conversation


@pytest.mark.parametrize(
    ("args", "complaint"),
    [
        (["10.1.2.3:50051", "--call", "chat.v1.MessageService/GetMessage"], "not a loopback address"),
        (["127.0.0.1:1", "--call", "chat.v1.MessageService/Nope"], "has no method 'Nope'"),
        (["127.0.0.1:1", "--call", "chat.v1.NoService/Get"], "no service"),
        (["127.0.0.1:1", "--call", "chat.v1.MessageService/GetMessage", "-d", '{"nope": 1}'], "does not fit"),
        (["127.0.0.1:1", "--call", GET, "-d", '{"messageId": "{{.Nope}}"}'], "unknown template"),
        (["127.0.0.1:1", "--call", "chat.v1.MessageService/GetMessage", "-n", "0"], "-n must be"),
        (["127.0.0.1:1", "--call", GET, "-z", "30x"], "'30x' is not a duration: write 30s, 2m"),
        (["127.0.0.1:1", "--call", GET, "-z", "2h"], "-z must be between 0 and 3600 seconds"),
        (["127.0.0.1:1", "--call", GET, "-t", "0s"], "--timeout must be between"),
        (["127.0.0.1:1", "--call", GET, "-O", "xml"], "invalid choice: 'xml'"),
        (["127.0.0.1:1", "--call", GET, "--insecure", "--cacert", "ca.pem"], "--insecure is plaintext"),
        (["127.0.0.1:1", "--call", GET, "--key", "client.key"], "--key needs --cert"),
        (["127.0.0.1:1", "--call", GET, "--cacert", "/nonexistent/ca.pem"], "No such file"),
        (["127.0.0.1:1", "--call", GET, "-m", "[1]"], "must be a JSON object of strings"),
        (["127.0.0.1:1", "--call", GET, "-m", "{"], "--metadata is not JSON"),
        (["127.0.0.1:1", "--call", GET, "-m", '{"grpc-timeout": "1S"}'], "is not allowed"),
        (["127.0.0.1:1", "--call", GET, "-m", '{"Upper": "x"}'], "is not allowed"),
        (["127.0.0.1:1", "--call", GET, "-m", '{"te": "x"}'], "is set by the client itself"),
        (["127.0.0.1:1", "--call", GET, "-m", '{"k": "two\\nlines"}'], "printable ASCII"),
        (["127.0.0.1:1", "--call", GET, "--token", "t", "-m", '{"authorization": "x"}'], "token once"),
    ],
)  # fmt: skip
async def test_bad_usage_is_refused_before_any_call(args: list[str], complaint: str) -> None:
    code, out, err = await chat_load(*args)
    assert code == 2
    assert complaint in err
    assert not out


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30s", 30.0), ("2m", 120.0), ("1h", 3600.0), ("500ms", 0.5), ("1m30s", 90.0),
        ("1h2m3s", 3723.0), ("1.5s", 1.5), (".5m", 30.0), ("250us", 250e-6), ("250µs", 250e-6),
        ("100ns", 100e-9), ("10", 10.0), ("0.25", 0.25), (" 30s ", 30.0),
    ],
)  # fmt: skip
def test_durations_are_read_the_way_ghz_writes_them(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    "text", ["", "s", "30x", "30 s", "-1s", "1s-", "m30", "1.2.3s", "30S", "1d", "x" * 10_000]
)
def test_anything_else_is_not_a_duration(text: str) -> None:
    with pytest.raises(ValueError, match="is not a duration: write 30s, 2m, 1m30s, 500ms") as raised:
        parse_duration(text)
    assert len(str(raised.value)) < 200


async def test_a_run_with_a_duration_in_units_prints_a_histogram_that_counts_every_call(app: App) -> None:
    [message_id] = await send(app.port, "c-3", 1)
    code, out, err = await chat_load(
        f"127.0.0.1:{app.port}", "--call", GET, "-d", json.dumps({"messageId": message_id}),
        "-z", "500ms", "--rps", "40", "-c", "2",
    )  # fmt: skip
    assert code == 0, err
    lines = out.splitlines()
    count = int(next(line for line in lines if line.startswith("  Count:")).split()[-1])
    start = lines.index("Response time histogram (ms):") + 1
    histogram = lines[start : start + 11]
    assert all("[" in line and "|" in line for line in histogram), histogram
    assert sum(int(line.split("[")[1].split("]")[0]) for line in histogram) == count > 0
    assert lines[start + 11] == ""
    assert "Error distribution:" not in out


async def test_json_reports_a_histogram_and_errors_grouped_by_status_with_their_messages(app: App) -> None:
    # IDs of 64 characters are well-formed and unknown; of 65, too long: two statuses, about half each.
    data = '{"messageId": "{{randomString 63}}{{randomInt 5 15}}"}'
    code, report = await load_json(app.port, "--call", GET, "-d", data, "-n", "40", "-c", "4")
    assert code == 1
    statuses = report["status_codes"]
    assert isinstance(statuses, dict) and set(statuses) == {"NOT_FOUND", "INVALID_ARGUMENT"}
    assert sum(statuses.values()) == report["count"] == 40
    errors = report["errors"]
    assert isinstance(errors, list)
    by_status: dict[str, int] = {}
    for error in errors:
        assert set(error) == {"status", "message", "count"}
        assert error["message"] and len(error["message"]) <= MAX_ERROR_MESSAGE + 3
        by_status[error["status"]] = by_status.get(error["status"], 0) + error["count"]
    assert by_status == statuses
    assert [e["count"] for e in errors] == sorted((e["count"] for e in errors), reverse=True)
    histogram = report["histogram"]
    assert isinstance(histogram, list) and len(histogram) == 11
    assert all(set(bucket) == {"mark_ms", "count", "frequency"} for bucket in histogram)
    assert sum(bucket["count"] for bucket in histogram) == 40
    marks = [bucket["mark_ms"] for bucket in histogram]
    assert marks == sorted(marks)
    latency = report["latency_ms"]
    assert isinstance(latency, dict)
    assert marks[0] == latency["fastest"] and marks[-1] == latency["slowest"]
    assert sum(bucket["frequency"] for bucket in histogram) == pytest.approx(1.0, abs=0.01)


async def test_csv_has_one_row_per_call_with_its_status_and_error(app: App) -> None:
    data = '{"messageId": "missing-{{.RequestNumber}}"}'
    code, out, err = await chat_load(
        f"127.0.0.1:{app.port}", "--call", GET, "-d", data, "-n", "6", "-O", "csv"
    )
    assert code == 1, err
    rows = list(csv.reader(io.StringIO(out)))
    assert rows[0] == ["duration (ms)", "status", "error"]
    assert len(rows) == 7
    assert all(
        float(duration) > 0 and status == "NOT_FOUND" and "missing-" in error
        for duration, status, error in rows[1:]
    )
    assert {error for _, _, error in rows[1:]} == {f"no message has id 'missing-{n}'" for n in range(6)}


async def test_a_server_that_is_down_is_counted_unavailable_with_the_reason() -> None:
    code, report = await load_json(closed_port(), "--call", GET, "-n", "5", "-c", "1")
    assert code == 1
    assert report["status_codes"] == {"UNAVAILABLE": 5}
    errors = report["errors"]
    assert isinstance(errors, list) and len(errors) == 1
    [error] = errors
    assert error["count"] == 5 and error["message"].startswith("ConnectionRefusedError: ")


async def test_a_token_and_metadata_travel_with_every_call(tmp_path: Path) -> None:
    built = await build_app(make_config(tmp_path, service_accounts=service_accounts_file(tmp_path)))
    await built.start()
    try:
        data = '{"messageId": "m-none"}'
        _, without = await load_json(built.port, "--call", GET, "-d", data, "-n", "3", "-c", "1")
        _, token = await load_json(
            built.port, "--call", GET, "-d", data, "-n", "3", "-c", "1", "--token", IMPERSONATOR_TOKEN
        )
        metadata = json.dumps({"authorization": f"Bearer {IMPERSONATOR_TOKEN}", "x-load-test": "yes"})
        _, header = await load_json(
            built.port, "--call", GET, "-d", data, "-n", "3", "-c", "1", "-m", metadata
        )
    finally:
        await built.shutdown()
    assert without["status_codes"] == {"UNAUTHENTICATED": 3}
    # Authenticated, the call reaches the handler, which knows no such message.
    assert token["status_codes"] == header["status_codes"] == {"NOT_FOUND": 3}


@pytest.fixture
async def tls_app(tmp_path: Path, certificates: Certificates) -> AsyncIterator[App]:  # noqa: F811 - the fixture
    """The full server over TLS, requiring client certificates from the test CA (mutual TLS)."""
    config = make_config(
        tmp_path,
        tls_cert=certificates.directory / "server.pem",
        tls_key=certificates.directory / "server.key",
        tls_client_ca=certificates.directory / "ca.pem",
        service_accounts=service_accounts_file(tmp_path),
    )
    built = await build_app(config)
    await built.start()
    try:
        yield built
    finally:
        await built.shutdown()


async def test_tls_flags_reach_a_mutual_tls_server(
    tls_app: App,
    certificates: Certificates,  # noqa: F811 - the fixture
    tmp_path: Path,
) -> None:
    certificates.client.cert_chain_pems[0].write_to_path(str(tmp_path / "client.pem"))
    certificates.client.private_key_pem.write_to_path(str(tmp_path / "client.key"))
    base = ["--call", GET, "-d", '{"messageId": "m-none"}', "-n", "3", "-c", "1"]
    tls = ["--cacert", str(certificates.directory / "ca.pem"), "--cname", "localhost"]
    client = ["--cert", str(tmp_path / "client.pem"), "--key", str(tmp_path / "client.key")]
    _, mutual = await load_json(tls_app.port, *base, *tls, *client)
    _, no_client_cert = await load_json(tls_app.port, *base, *tls)
    _, plaintext = await load_json(tls_app.port, *base, "--insecure")
    # svc-reader, the client certificate's identity, may read: the handler answers NOT_FOUND.
    assert mutual["status_codes"] == {"NOT_FOUND": 3}
    assert no_client_cert["status_codes"] == plaintext["status_codes"] == {"UNAVAILABLE": 3}
    assert no_client_cert["errors"] and plaintext["errors"]


def test_error_messages_are_kept_bounded_in_length_and_kinds() -> None:
    result = LoadResult()
    result.record("get", 0.001, "INTERNAL", "x" * 100_000)
    result.record("get", 0.001, "INTERNAL", "two\nlines")
    for number in range(MAX_ERROR_KINDS + 20):
        result.record("get", 0.001, "NOT_FOUND", f"no message has id {number}")
    result.record("get", 0.001)
    assert len(result.errors) == MAX_ERROR_KINDS + 1
    assert result.errors[("NOT_FOUND", OTHER_MESSAGES)] == 22
    assert ("INTERNAL", "two lines") in result.errors
    assert all(len(message) <= MAX_ERROR_MESSAGE + 3 for _, message in result.errors)
    assert sum(result.errors.values()) + result.statuses["OK"] == result.count == MAX_ERROR_KINDS + 23
    # The summary for people shows the ten commonest kinds and counts the rest.
    summary = result.to_text().splitlines()
    start = summary.index("Error distribution:") + 1
    assert summary[start] == f"  [22]\tNOT_FOUND: {OTHER_MESSAGES}"
    rest = len(result.errors) - 10  # kinds of one call each
    assert summary[start + 10] == f"  [{rest}]\t... {rest} more kinds of error (--format json lists them)"
