"""Fixtures of the gateway tests: chat-services on a real socket, and the gateway in front of it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from chat_services.server import App
from tests.gateway.harness import running_gateway
from tests.services.conftest import app, backend, database  # noqa: F401 - the services fixture, shared

HTTP_TIMEOUT = 30.0


@pytest.fixture
async def gateway_url(app: App) -> AsyncIterator[str]:  # noqa: F811 - the fixture above
    """The base URL of a gateway in front of the started services."""
    async with running_gateway(app.port) as url:
        yield url


@pytest.fixture
async def http(gateway_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client of the gateway."""
    async with httpx.AsyncClient(base_url=gateway_url, timeout=HTTP_TIMEOUT) as client:
        yield client
