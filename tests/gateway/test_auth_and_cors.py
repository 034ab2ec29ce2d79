"""The gateway forwards the caller's credentials and never judges them; CORS only when configured."""

from __future__ import annotations

import json

import httpx
from grpclib.events import RecvRequest, listen

from chat_services.server import App
from tests.gateway.clients import sse, websocket
from tests.gateway.harness import running_gateway
from tests.services.clients import until

TOKEN = "Bearer a-token-the-gateway-cannot-judge"


def record_authorization(app: App) -> list[tuple[str, str | None]]:
    """Every upstream call's method and ``authorization`` metadata, as the services receive them."""
    seen: list[tuple[str, str | None]] = []

    async def on_request(event: RecvRequest) -> None:
        value = event.metadata.get("authorization")
        seen.append((event.method_name, value if isinstance(value, str) else None))

    listen(app.server, RecvRequest, on_request)
    return seen


async def test_the_authorization_header_reaches_every_kind_of_call(
    app: App, http: httpx.AsyncClient, gateway_url: str
) -> None:
    seen = record_authorization(app)
    headers = {"authorization": TOKEN}
    assert (await http.get("/v1/plugins", headers=headers)).status_code == 200
    assert (await http.post("/v1/messages:send", json=[], headers=headers)).status_code == 200
    async with sse(http, "GET", "/v1/conversations/c/messages:stream", headers=headers) as source:
        [_ async for _ in source.aiter_sse()]
    async with websocket(gateway_url, "/v1/chat:connect", headers=headers) as socket:
        await socket.send(json.dumps({"join": {"conversationId": "c", "userId": "u"}}))
        await until(lambda: len(seen) == 4)
    assert [value for _, value in seen] == [TOKEN] * 4
    assert {method for method, _ in seen} == {
        "/chat.v1.PluginService/ListPlugins",
        "/chat.v1.MessageService/SendMessages",
        "/chat.v1.MessageService/StreamMessages",
        "/chat.v1.MessageService/ChatStream",
    }


async def test_without_a_header_nothing_is_invented(app: App, http: httpx.AsyncClient) -> None:
    seen = record_authorization(app)
    assert (await http.get("/v1/plugins")).status_code == 200
    assert seen == [("/chat.v1.PluginService/ListPlugins", None)]


async def test_a_header_grpc_cannot_carry_is_a_400_before_any_call(app: App, http: httpx.AsyncClient) -> None:
    seen = record_authorization(app)
    for value in ("Bearer \u00e9t\u00e9".encode("latin-1"), b"Bearer a\tb"):
        headers = {b"authorization": value}
        for reply in (
            await http.get("/v1/messages/m", headers=headers),
            await http.get("/v1/conversations/c/messages:stream", headers=headers),
        ):
            assert reply.status_code == 400, reply.text
            assert reply.json() == {"code": 3, "message": "the authorization header must be printable ASCII"}
    assert seen == []


async def test_cors_is_off_by_default(http: httpx.AsyncClient) -> None:
    reply = await http.get("/v1/plugins", headers={"origin": "https://example.test"})
    assert reply.status_code == 200
    assert "access-control-allow-origin" not in reply.headers
    preflight = await http.options(
        "/v1/plugins", headers={"origin": "https://example.test", "access-control-request-method": "GET"}
    )
    assert "access-control-allow-origin" not in preflight.headers


async def test_cors_allows_the_configured_origins_only(app: App) -> None:
    async with (
        running_gateway(app.port, cors_origins=("https://chat.example.test",)) as url,
        httpx.AsyncClient(base_url=url) as http,
    ):
        allowed = await http.options(
            "/v1/plugins",
            headers={"origin": "https://chat.example.test", "access-control-request-method": "GET"},
        )
        assert allowed.status_code == 200
        assert allowed.headers["access-control-allow-origin"] == "https://chat.example.test"
        other = await http.get("/v1/plugins", headers={"origin": "https://evil.example.test"})
        assert "access-control-allow-origin" not in other.headers
