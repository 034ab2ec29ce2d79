"""One caller cannot freeze the gateway: its long-lived streams are capped at its share, unary calls
always find room, and a full pool answers 503 with Retry-After at once instead of waiting silently."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path

import httpx
import pytest

from chat_gateway import UpstreamPool
from chat_services.server import App, build_app
from tests.gateway.clients import sse
from tests.gateway.harness import running_gateway
from tests.services.clients import until
from tests.services.conftest import hub_listeners, make_config

SERVICE_STREAMS = 6  # the services' max_concurrent_streams, and the gateway's streams per connection
POOL = UpstreamPool(connections=1, streams=SERVICE_STREAMS, unary_reserve=2, caller_streams=2)
PATH = "/v1/conversations/c-fair/messages:stream"


@pytest.fixture
async def small_app(tmp_path: Path) -> AsyncIterator[App]:
    """chat-services taking at most SERVICE_STREAMS calls per connection."""
    app = await build_app(make_config(tmp_path, max_concurrent_streams=SERVICE_STREAMS))
    await app.start()
    try:
        yield app
    finally:
        await app.shutdown()


def as_caller(name: str) -> dict[str, str]:
    return {"authorization": f"Bearer {name}"}


async def follow(stack: AsyncExitStack, http: httpx.AsyncClient, caller: str) -> int:
    """Open a follow stream as ``caller``; its HTTP status (the stream stays open in ``stack``)."""
    source = await stack.enter_async_context(
        sse(http, "GET", PATH, params={"follow": "true"}, headers=as_caller(caller))
    )
    return source.response.status_code


async def test_a_callers_streams_stop_at_its_share_and_a_full_pool_is_a_503(small_app: App) -> None:
    async with (
        running_gateway(small_app.port, pool=POOL) as url,
        httpx.AsyncClient(base_url=url, timeout=30) as http,
        AsyncExitStack() as streams,
    ):
        assert [await follow(streams, http, "alice") for _ in range(2)] == [200, 200]
        over_share = await http.get(PATH, params={"follow": "true"}, headers=as_caller("alice"))
        assert over_share.status_code == 429 and over_share.json()["code"] == 8
        assert int(over_share.headers["retry-after"]) > 0
        assert "RetryInfo" in over_share.text

        assert [await follow(streams, http, "bob") for _ in range(2)] == [200, 200]
        await until(lambda: hub_listeners(small_app, "c-fair") == 4)
        saturated = await http.get(PATH, params={"follow": "true"}, headers=as_caller("carol"))
        assert saturated.status_code == 503 and saturated.json()["code"] == 14
        assert int(saturated.headers["retry-after"]) > 0

        # Unary calls keep their reserved room: answered by the service, not queued behind streams.
        for caller in ("alice", "carol"):
            read = await http.get("/v1/messages/m-none", headers=as_caller(caller))
            assert read.status_code == 404 and read.json()["code"] == 5


async def test_a_closed_stream_gives_its_room_back(small_app: App) -> None:
    async with (
        running_gateway(small_app.port, pool=POOL) as url,
        httpx.AsyncClient(base_url=url, timeout=30) as http,
    ):
        async with AsyncExitStack() as streams:
            assert [await follow(streams, http, "alice") for _ in range(2)] == [200, 200]
            await until(lambda: hub_listeners(small_app, "c-fair") == 2)
        await until(lambda: hub_listeners(small_app, "c-fair") == 0)
        async with AsyncExitStack() as streams:
            assert [await follow(streams, http, "alice") for _ in range(2)] == [200, 200]


def test_pool_settings_that_leave_no_room_are_refused() -> None:
    for wrong, reason in (
        ({"connections": 0}, "at least one connection"),
        ({"streams": 10, "unary_reserve": 10}, "unary reserve"),
        ({"unary_reserve": 0}, "unary reserve"),
        ({"caller_streams": 0}, "at least one stream"),
    ):
        with pytest.raises(ValueError, match=reason):
            UpstreamPool(**wrong)


def test_pool_and_graphql_flags_become_the_configuration() -> None:
    from chat_gateway.cli import config_from, parser

    flags = ["--upstream-connections", "2", "--upstream-streams", "50", "--unary-reserve", "5"]
    flags += ["--caller-streams", "3", "--graphql-max-depth", "4", "--no-introspection"]
    config = config_from(parser().parse_args(["serve", *flags]))
    assert config.pool == UpstreamPool(connections=2, streams=50, unary_reserve=5, caller_streams=3)
    assert config.graphql_max_depth == 4 and not config.graphql_introspection
    with pytest.raises(ValueError, match="unary reserve"):
        config_from(parser().parse_args(["serve", "--upstream-streams", "5", "--unary-reserve", "5"]))
