"""Errors at the edge: 400 with a field-level google.rpc.Status for what the schema refuses, the
google.rpc mapping for upstream statuses, 404 for unknown routes, 503 when the services are down.
"""

from __future__ import annotations

import json
import socket
from typing import Any

import httpx
import pytest

from chat_gateway.errors import HTTP_STATUS
from tests.gateway.clients import receive_json, websocket
from tests.gateway.harness import running_gateway
from tests.gateway.test_graphql import count_calls

BAD_REQUEST = "type.googleapis.com/google.rpc.BadRequest"


def violations(body: dict[str, Any]) -> list[str]:
    """The fields a Status body's BadRequest details blame."""
    return [
        violation.get("field", "")
        for detail in body.get("details", [])
        if detail["@type"] == BAD_REQUEST
        for violation in detail["fieldViolations"]
    ]


def assert_status(reply: httpx.Response, http_status: int, code: int) -> dict[str, Any]:
    """The reply has the HTTP status and a google.rpc.Status body with ``code`` and a message."""
    assert reply.status_code == http_status, reply.text
    assert reply.headers["content-type"] == "application/json"
    body: dict[str, Any] = reply.json()
    assert body["code"] == code and body["message"], body
    assert "Traceback" not in reply.text
    return body


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "field"),
    [
        pytest.param("POST", "/v1/completions", {"content": b"{not json"}, "", id="bad-json"),
        pytest.param("POST", "/v1/completions", {"content": b"\xff\xfe"}, "", id="not-utf8"),
        pytest.param("POST", "/v1/completions", {"json": [1, 2]}, "", id="not-an-object"),
        pytest.param(
            "POST",
            "/v1/completions",
            {"json": {"prompt": "x", "temperature": 2}},
            "temperature",
            id="unknown-field",
        ),
        pytest.param("POST", "/v1/completions", {"json": {"prompt": 5}}, "prompt", id="wrong-type"),
        pytest.param(
            "POST", "/v1/completions", {"json": {"maxTokens": "many"}}, "maxTokens", id="not-a-number"
        ),
        pytest.param(
            "POST",
            "/v1/documents:search",
            {"json": {"vector": {"values": ["x"]}}},
            "vector.values[0]",
            id="nested",
        ),
        pytest.param(
            "POST", "/v1/documents:search", {"json": {"documentIds": "d"}}, "documentIds", id="not-a-list"
        ),
        pytest.param(
            "GET",
            "/v1/conversations/c/messages",
            {"params": {"page.bogus": "1"}},
            "page.bogus",
            id="unknown-query",
        ),
        pytest.param(
            "GET",
            "/v1/conversations/c/messages",
            {"params": {"includeUser": "yes"}},
            "includeUser",
            id="bad-bool",
        ),
        pytest.param(
            "GET",
            "/v1/conversations/c/messages",
            {"params": {"page.pageSize": "1.5"}},
            "page.pageSize",
            id="bad-int",
        ),
        pytest.param("POST", "/v1/messages:send", {"json": {"message": {}}}, "", id="stream-needs-array"),
        pytest.param(
            "POST", "/v1/messages:send", {"json": [{}, {"messag": {}}]}, "[1].messag", id="array-element"
        ),
        pytest.param("POST", "/v1/completions?prompt=x", {"json": {}}, "", id="query-on-body-route"),
    ],
)
async def test_what_the_schema_refuses_is_a_400_naming_the_field(
    http: httpx.AsyncClient, method: str, path: str, kwargs: dict[str, Any], field: str
) -> None:
    reply = await http.request(method, path, **kwargs)
    body = assert_status(reply, 400, 3)
    assert violations(body) == [field]


@pytest.mark.parametrize("path", ["/v1/completions", "/v1/messages:send", "/graphql"])
async def test_an_oversized_body_is_a_413_without_reaching_the_services(app: Any, path: str) -> None:
    calls = count_calls(app)
    async with running_gateway(app.port, body_limit=1000) as url, httpx.AsyncClient(base_url=url) as http:
        prompt = "x" * 2000
        reply = await http.post(path, json={"prompt": prompt})
        body = assert_status(reply, 413, 3)
        assert "1000 bytes" in body["message"] and prompt not in reply.text

        async def chunks() -> Any:  # no Content-Length: the limit holds while reading
            yield b"["
            for _ in range(10):
                yield b" " * 500

        reply = await http.post(path, content=chunks(), headers={"content-type": "application/json"})
        assert_status(reply, 413, 3)
    assert calls == [] or path == "/v1/messages:send"  # a client stream opens its call first


async def test_client_values_are_never_echoed_unbounded(http: httpx.AsyncClient) -> None:
    name = "f" * 10_000
    reply = await http.post("/v1/completions", json={name: 1})
    assert_status(reply, 400, 3)
    assert len(reply.text) < 2000


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/v2/messages/m"), ("GET", "/nothing"), ("POST", "/v1/messages/m"), ("GET", "/v1/messages")],
)
async def test_unknown_routes_are_404_or_405_with_a_status_body(
    http: httpx.AsyncClient, method: str, path: str
) -> None:
    reply = await http.request(method, path)
    expected = 405 if path == "/v1/messages/m" else 404
    assert_status(reply, expected, 12 if expected == 405 else 5)


async def test_upstream_statuses_follow_the_google_rpc_mapping(http: httpx.AsyncClient) -> None:
    missing = await http.get("/v1/messages/m-missing")
    assert_status(missing, 404, 5)
    invalid = await http.post("/v1/plugins/word_count:invoke", json={"arguments": {}})
    body = assert_status(invalid, 400, 3)
    assert body["details"][0]["@type"] == BAD_REQUEST and violations(body)
    unknown_plugin = await http.post("/v1/plugins/nope:invoke", json={})
    assert_status(unknown_plugin, 404, 5)
    denied = await http.post(
        "/v1/messages:send",
        json=[{"message": {"idempotencyKey": "k", "conversationId": "c", "authorId": "u", "content": "a"}}],
    )
    message_id = denied.json()["messages"][0]["id"]
    forbidden = await http.patch(
        f"/v1/messages/{message_id}", json={"editorId": "someone-else", "content": "b"}
    )
    assert_status(forbidden, 403, 7)


def test_the_mapping_covers_every_grpc_status_as_code_proto_says() -> None:
    from grpclib.const import Status

    assert set(HTTP_STATUS) == set(Status)
    assert HTTP_STATUS[Status.UNAVAILABLE] == 503 and HTTP_STATUS[Status.CANCELLED] == 499
    assert HTTP_STATUS[Status.FAILED_PRECONDITION] == 400 and HTTP_STATUS[Status.DEADLINE_EXCEEDED] == 504


def closed_port() -> int:
    """A loopback port nothing listens on (bound, read, released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


async def test_services_down_is_503_on_every_kind_of_route() -> None:
    async with running_gateway(closed_port()) as url, httpx.AsyncClient(base_url=url) as http:
        assert_status(await http.get("/v1/messages/m"), 503, 14)
        assert_status(await http.post("/v1/messages:send", json=[]), 503, 14)
        assert_status(await http.get("/v1/conversations/c/messages:stream"), 503, 14)
        async with websocket(url, "/v1/chat:connect") as socket_:
            frame = await receive_json(socket_)
            assert frame["error"]["code"] == 14


async def test_a_websocket_frame_the_schema_refuses_gets_an_error_frame_and_the_socket_stays(
    gateway_url: str,
) -> None:
    async with websocket(gateway_url, "/v1/chat:connect") as socket_:
        await socket_.send(json.dumps({"jion": {}}))
        frame = await receive_json(socket_)
        assert frame["error"]["code"] == 3 and violations(frame["error"]) == ["jion"]
        await socket_.send(json.dumps({"join": {"conversationId": "c", "userId": "u"}}))
        new = {"idempotencyKey": "k", "conversationId": "c", "authorId": "u", "content": "still here"}
        await socket_.send(json.dumps({"send": new}))
        acknowledged = await receive_json(socket_)
        assert acknowledged["message"]["content"] == "still here"


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "field", "description"),
    [
        pytest.param(
            "POST",
            "/v1/completions",
            {"json": {"maxTokens": "many"}},
            "maxTokens",
            "expected a 32-bit integer",
        ),
        pytest.param("POST", "/v1/completions", {"json": {"prompt": 5}}, "prompt", "expected a string"),
        pytest.param(
            "POST",
            "/v1/messages:send",
            {"json": [{"message": {"idempotency_key": 5}}]},
            "[0].message.idempotencyKey",
            "expected a string",
        ),
        pytest.param(
            "GET",
            "/v1/conversations/c/messages",
            {"params": {"page.page_size": "abc"}},
            "page.pageSize",
            "expected a 32-bit integer",
        ),
        pytest.param(
            "GET",
            "/v1/conversations/c/messages",
            {"params": {"page.page_bogus": "1"}},
            "page.page_bogus",
            "no such field",
        ),
        pytest.param(
            "POST",
            "/v1/documents:search",
            {"json": {"documentIds": "d"}},
            "documentIds",
            "expected a list whose items are each a string",
        ),
    ],
)
async def test_field_paths_are_protojson_names_and_descriptions_are_the_gateways_own(
    http: httpx.AsyncClient, method: str, path: str, kwargs: dict[str, Any], field: str, description: str
) -> None:
    body = assert_status(await http.request(method, path, **kwargs), 400, 3)
    [violation] = body["details"][0]["fieldViolations"]
    assert (violation["field"], violation["description"]) == (field, description)
    assert "literal" not in body["message"] and "int()" not in body["message"]
