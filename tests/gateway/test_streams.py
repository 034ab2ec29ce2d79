"""Streams at the edge: a client that goes away cancels the upstream call; NDJSON client streams."""

from __future__ import annotations

import json

import httpx
import pytest

from chat_services.server import App
from tests.gateway.clients import next_message, receive_json, sse, websocket
from tests.gateway.harness import running_gateway
from tests.gateway.test_errors import assert_status, violations
from tests.services.clients import until
from tests.services.conftest import hub_listeners
from tests.services.security.conftest import Issuer, issuer, secure_app

__all__ = ["issuer", "secure_app"]


def new(key: str, conversation: str, content: str = "hi") -> dict[str, object]:
    return {
        "message": {
            "idempotencyKey": key,
            "conversationId": conversation,
            "authorId": "u",
            "content": content,
        }
    }


async def test_closing_an_sse_follow_cancels_the_upstream_stream(app: App, http: httpx.AsyncClient) -> None:
    path = "/v1/conversations/c-sse/messages:stream"
    # Nothing is stored yet: the 200 comes with the service's headers, before any message.
    async with sse(http, "GET", path, params={"follow": "true"}) as source:
        assert source.response.status_code == 200
        assert source.response.headers["content-type"].startswith("text/event-stream")
        await until(lambda: hub_listeners(app, "c-sse") == 1)
        sent = await http.post("/v1/messages:send", json=[new("k-sse", "c-sse", "live")])
        assert sent.status_code == 200
        event = await next_message(source)
        assert event["message"]["content"] == "live"
    # The client is gone: the gateway resets the upstream stream and the service drops its listener.
    await until(lambda: hub_listeners(app, "c-sse") == 0)


async def test_closing_a_websocket_cancels_the_upstream_chat(app: App, gateway_url: str) -> None:
    async with websocket(gateway_url, "/v1/chat:connect") as socket:
        await socket.send(json.dumps({"join": {"conversationId": "c-ws", "userId": "u"}}))
        await until(lambda: hub_listeners(app, "c-ws") == 1)
    await until(lambda: hub_listeners(app, "c-ws") == 0)


async def test_a_client_stream_takes_ndjson_too(http: httpx.AsyncClient) -> None:
    lines = "\n".join(json.dumps(new(f"k-nd-{n}", "c-nd", f"line {n}")) for n in range(3)) + "\n"
    reply = await http.post(
        "/v1/messages:send", content=lines, headers={"content-type": "application/x-ndjson"}
    )
    assert reply.status_code == 200, reply.text
    assert [m["content"] for m in reply.json()["messages"]] == ["line 0", "line 1", "line 2"]
    assert reply.json()["createdCount"] == 3


async def test_a_chat_over_websocket_reaches_an_sse_follower(
    app: App, http: httpx.AsyncClient, gateway_url: str
) -> None:
    async with (
        sse(http, "GET", "/v1/conversations/c-mix/messages:stream", params={"follow": "true"}) as source,
        websocket(gateway_url, "/v1/chat:connect") as socket,
    ):
        await until(lambda: hub_listeners(app, "c-mix") == 1)
        await socket.send(json.dumps({"join": {"conversationId": "c-mix", "userId": "u"}}))
        await socket.send(
            json.dumps(
                {
                    "send": {
                        "idempotencyKey": "k-mix",
                        "conversationId": "c-mix",
                        "authorId": "u",
                        "content": "yo",
                    }
                }
            )
        )
        acknowledged = await receive_json(socket)
        followed = await next_message(source)
    assert acknowledged["message"] == followed["message"]


async def test_a_finished_stream_ends_with_an_end_event(http: httpx.AsyncClient) -> None:
    await http.post("/v1/messages:send", json=[new("k-end", "c-end")])
    async with sse(http, "GET", "/v1/conversations/c-end/messages:stream") as source:
        kinds = [event.event async for event in source.aiter_sse()]
    assert kinds == ["message", "end"]


async def test_a_stream_request_the_rules_refuse_is_a_400_before_the_stream_starts(
    http: httpx.AsyncClient,
) -> None:
    """The service refuses it before its first message; the field path is in ProtoJSON names."""
    reply = await http.get("/v1/conversations/c-missing/messages:stream", params={"afterSequence": "-1"})
    status = assert_status(reply, 400, 3)
    assert violations(status) == ["afterSequence"]


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/v1/conversations/c-auth/messages:stream", None),
        ("POST", "/v1/completions:stream", {"conversationId": "c-auth", "prompt": "hi"}),
    ],
)
async def test_a_stream_the_services_refuse_is_an_http_error_before_the_stream_starts(
    secure_app: App, issuer: Issuer, method: str, path: str, body: dict[str, str] | None
) -> None:
    """No credentials: 401; credentials without the scope the call needs: 403; both a Status body."""
    async with running_gateway(secure_app.port) as url, httpx.AsyncClient(base_url=url) as http:
        anonymous = await http.request(method, path, json=body)
        assert_status(anonymous, 401, 16)
        token = {"authorization": f"Bearer {issuer.token(scopes=['messages:write'])}"}
        unscoped = await http.request(method, path, json=body, headers=token)
        assert_status(unscoped, 403, 7)


async def test_a_conversation_without_messages_lists_as_an_empty_page(http: httpx.AsyncClient) -> None:
    reply = await http.get("/v1/conversations/c-fresh/messages")
    assert reply.status_code == 200, reply.text
    assert reply.json().get("messages", []) == []


async def test_an_upstream_error_after_the_stream_started_is_an_error_event(
    app: App, http: httpx.AsyncClient
) -> None:
    path = "/v1/conversations/c-drain/messages:stream"
    async with sse(http, "GET", path, params={"follow": "true"}) as source:
        assert source.response.status_code == 200
        await until(lambda: hub_listeners(app, "c-drain") == 1)
        app.begin_draining()  # the services tell followers to resume elsewhere
        events = [event async for event in source.aiter_sse()]
    assert [event.event for event in events] == ["error"]
    status = json.loads(events[0].data)
    assert status["code"] == 14 and "after_sequence=0" in status["message"]
