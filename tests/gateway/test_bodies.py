"""Bodies at the edge: nesting bounded, streamed arrays refused at the first bad element while the
rest is still on the wire, and a call the services refuse ends the body's reading at once."""

from __future__ import annotations

import asyncio
import json
from urllib.parse import urlsplit

import httpx
import pytest
from grpclib.const import Cardinality, Handler
from grpclib.server import Stream

from chat.v1 import message_service_pb2
from chat_services.server import App
from tests.gateway.harness import running_gateway, scripted_services
from tests.gateway.test_errors import assert_status, violations
from tests.gateway.test_graphql import count_calls
from tests.services.security.conftest import Issuer, issuer, secure_app  # noqa: F401 - fixtures

__all__ = ["issuer", "secure_app"]
ANSWER_TIMEOUT = 30.0  # seconds to wait for an answer before failing instead of hanging


def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


@pytest.mark.parametrize(
    ("path", "body", "content_type"),
    [
        pytest.param("/v1/completions", b'{"prompt": ' + nested(5000) + b"}", "application/json", id="unary"),
        pytest.param(
            "/v1/completions", b'{"prompt": ' + nested(40) + b"}", "application/json", id="unary-40"
        ),
        pytest.param("/v1/messages:send", b"[" + nested(5000) + b"]", "application/json", id="array"),
        pytest.param("/v1/messages:send", nested(5000) + b"\n", "application/x-ndjson", id="ndjson"),
    ],
)
async def test_deeply_nested_json_is_a_400_naming_the_limit(
    http: httpx.AsyncClient, path: str, body: bytes, content_type: str
) -> None:
    reply = await http.post(path, content=body, headers={"content-type": content_type})
    status = assert_status(reply, 400, 3)
    assert "nests deeper than" in status["message"]


async def test_an_element_of_a_stream_that_nests_within_the_limit_is_judged_by_the_schema(
    http: httpx.AsyncClient,
) -> None:
    reply = await http.post("/v1/messages:send", json=[{"message": {"content": [[["x"]]]}}])
    status = assert_status(reply, 400, 3)
    assert violations(status) == ["[0].message.content"]
    assert status["details"][0]["fieldViolations"][0]["description"] == "expected a string"


async def unfinished_post(
    base_url: str, path: str, first: bytes, headers: dict[str, str]
) -> tuple[int, bytes]:
    """POST a chunked body that starts with ``first`` and never ends; the answer's status and body."""
    address = urlsplit(base_url)
    reader, writer = await asyncio.open_connection(address.hostname, address.port)
    try:
        head = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        writer.write(
            f"POST {path} HTTP/1.1\r\nhost: gateway\r\ntransfer-encoding: chunked\r\n"
            f"content-type: application/json\r\n{head}\r\n".encode()
        )
        writer.write(f"{len(first):x}\r\n".encode() + first + b"\r\n")
        await writer.drain()
        head_bytes = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), ANSWER_TIMEOUT)
        status_line, *header_lines = head_bytes.decode().split("\r\n")
        fields = dict(line.lower().split(": ", 1) for line in header_lines if line)
        answer = await asyncio.wait_for(reader.readexactly(int(fields["content-length"])), ANSWER_TIMEOUT)
        return int(status_line.split()[1]), answer
    finally:
        writer.close()


async def test_a_bad_element_is_refused_while_the_rest_is_still_on_the_wire(
    app: App, gateway_url: str
) -> None:
    good = {"message": {"idempotencyKey": "k", "conversationId": "c", "authorId": "u", "content": "a"}}
    first = json.dumps([good, {"messag": {}}])[:-1].encode() + b", "  # the array goes on, never ends
    status, answer = await unfinished_post(gateway_url, "/v1/messages:send", first, {})
    assert status == 400 and b"[1].messag" in answer


async def test_a_call_the_services_refuse_ends_the_body_reading_at_once(secure_app: App) -> None:
    async with running_gateway(secure_app.port) as url:
        status, answer = await unfinished_post(url, "/v1/messages:send", b"[", {})
    assert status == 401 and b'"code":16' in answer


async def test_a_refused_streamed_array_stores_nothing(app: App, http: httpx.AsyncClient) -> None:
    good = {"message": {"idempotencyKey": "k-1", "conversationId": "c-half", "authorId": "u", "content": "a"}}
    reply = await http.post("/v1/messages:send", json=[good, {"message": {"content": 1}}])
    assert_status(reply, 400, 3)
    listed = await http.get("/v1/conversations/c-half/messages")
    assert listed.json().get("messages", []) == []


ALIASES = " ".join(
    f'a{n}: getMessage(request: {{messageId: "m{n}"}}) {{ message {{ id }} }}' for n in range(20)
)
LONG = '{ getMessage(request: {messageId: "m"}) { message { ' + "id " * 60 + "} } }"


async def test_graphql_aliases_are_bounded_before_any_call(app: App, http: httpx.AsyncClient) -> None:
    seen = count_calls(app)
    body = (await http.post("/graphql", json={"query": f"{{ {ALIASES} }}"})).json()
    assert body.get("data") is None and "aliases" in body["errors"][0]["message"], body
    assert seen == []


async def test_graphql_tokens_are_bounded_before_any_call(app: App, http: httpx.AsyncClient) -> None:
    seen = count_calls(app)
    answered = (await http.post("/graphql", json={"query": LONG})).json()
    assert "no message" in answered["errors"][0]["message"]  # within the default limit: called
    assert len(seen) == 1
    async with (
        running_gateway(app.port, graphql_max_tokens=50) as url,
        httpx.AsyncClient(base_url=url) as short,
    ):
        refused = (await short.post("/graphql", json={"query": LONG})).json()
    assert "token" in refused["errors"][0]["message"].lower(), refused
    assert len(seen) == 1


async def test_graphql_depth_is_bounded(app: App, gateway_url: str) -> None:
    seen = count_calls(app)
    async with running_gateway(app.port, graphql_max_depth=2) as url, httpx.AsyncClient(base_url=url) as http:
        reply = await http.post(
            "/graphql",
            json={
                "query": '{ getMessage(request: {messageId: "m"}) { message { author { displayName } } } }'
            },
        )
    assert "exceeds maximum operation depth" in reply.json()["errors"][0]["message"]
    assert seen == []


async def test_graphql_introspection_can_be_switched_off(app: App) -> None:
    query = {"query": "{ __schema { queryType { name } } }"}
    async with running_gateway(app.port) as url, httpx.AsyncClient(base_url=url) as http:
        assert (await http.post("/graphql", json=query)).json()["data"]["__schema"]["queryType"][
            "name"
        ] == "Query"
    async with (
        running_gateway(app.port, graphql_introspection=False) as url,
        httpx.AsyncClient(base_url=url) as http,
    ):
        refused = (await http.post("/graphql", json=query)).json()
        assert refused["errors"] and "introspection" in refused["errors"][0]["message"].lower()


SendRequest = message_service_pb2.SendMessagesRequest
SendResponse = message_service_pb2.SendMessagesResponse


class EarlyHeaders:
    """A SendMessages that answers its headers before reading the requests, as a gRPC server may."""

    async def send_messages(
        self,
        stream: Stream[message_service_pb2.SendMessagesRequest, message_service_pb2.SendMessagesResponse],
    ) -> None:
        await stream.send_initial_metadata()
        received = [request async for request in stream]
        await stream.send_message(SendResponse(created_count=len(received)))

    def __mapping__(self) -> dict[str, Handler]:
        return {
            "/chat.v1.MessageService/SendMessages": Handler(
                self.send_messages,
                Cardinality.STREAM_UNARY,
                SendRequest,
                SendResponse,
            )
        }


async def test_a_stream_whose_headers_come_early_is_still_read_whole() -> None:
    async with (
        scripted_services(EarlyHeaders()) as port,
        running_gateway(port, unary_timeout=20.0) as url,
        httpx.AsyncClient(base_url=url) as http,
    ):
        body = [{"message": {"content": str(n)}} for n in range(3)]
        reply = await http.post("/v1/messages:send", json=body)
    assert reply.status_code == 200, reply.text
    assert reply.json()["createdCount"] == 3
