"""A whole server (every service, health, reflection) on 127.0.0.1 with a fresh SQLite file."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path
from typing import TypeVar

import pytest

from chat_services.config import ServiceConfig
from chat_services.message.service import MessageService
from chat_services.server import App, build_app


def make_config(tmp_path: Path, **overrides: object) -> ServiceConfig:
    """A configuration on an ephemeral loopback port with its own database file."""
    base = ServiceConfig(port=0, database=tmp_path / "chat.db", completion_chunk_delay=0.0, grace_period=5.0)
    return replace(base, **overrides)  # type: ignore[arg-type]


S = TypeVar("S")


def service_of(app: App, kind: type[S]) -> S:
    """The app's one service of class ``kind``."""
    [service] = [s for s in app.services if isinstance(s, kind)]
    return service


def hub_listeners(app: App, conversation_id: str) -> int:
    """How many live listeners the MessageService hub holds for a conversation."""
    return service_of(app, MessageService).hub.listener_count(conversation_id)


@asynccontextmanager
async def running(config: ServiceConfig) -> AsyncIterator[App]:
    """The full server built from ``config``, started; shut down (drained) on exit."""
    built = await build_app(config)
    await built.start()
    try:
        yield built
    finally:
        await built.shutdown()


@pytest.fixture
async def app(tmp_path: Path) -> AsyncIterator[App]:
    """The full server, started; shut down (drained) after the test."""
    async with running(make_config(tmp_path)) as built:
        yield built
