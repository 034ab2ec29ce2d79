"""A whole server (every service, health, reflection) on 127.0.0.1 with a fresh SQLite file.

Also the storage backends: ``postgres_cluster`` (one throwaway PostgreSQL cluster per test
session), ``postgres_dsn`` (a fresh database in it per test) and ``database_target``
(parametrized: a fresh SQLite file, then a fresh PostgreSQL database). A missing PostgreSQL
fails those tests loudly; set ``CHAT_TESTS_SKIP_POSTGRES=1`` to skip them instead.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path
from typing import TypeVar

import pytest

from chat_services.config import ServiceConfig
from chat_services.devpostgres import Cluster, PostgresUnavailable, start_cluster
from chat_services.message.service import MessageService
from chat_services.server import App, build_app


def make_config(tmp_path: Path, **overrides: object) -> ServiceConfig:
    """A configuration on an ephemeral loopback port with its own database file."""
    base = ServiceConfig(port=0, database=tmp_path / "chat.db", completion_chunk_delay=0.0, grace_period=5.0)
    return replace(base, **overrides)  # type: ignore[arg-type]


S = TypeVar("S")
SKIP_POSTGRES = "CHAT_TESTS_SKIP_POSTGRES"
BACKENDS = ("sqlite", "postgresql")


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[Cluster]:
    """One throwaway PostgreSQL cluster (fsync off) for the whole session, stopped by PID after it."""
    if os.environ.get(SKIP_POSTGRES) == "1":
        pytest.skip(f"{SKIP_POSTGRES}=1: PostgreSQL tests skipped on request")
    try:
        cluster = start_cluster(durable=False)
    except PostgresUnavailable as error:  # never a silent skip: CI must have PostgreSQL
        pytest.fail(f"{error} (or set {SKIP_POSTGRES}=1 to skip the PostgreSQL tests)")
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def postgres_dsn(postgres_cluster: Cluster) -> Iterator[str]:
    """A fresh, empty database in the session's cluster: its ``postgresql://`` DSN."""
    dsn = postgres_cluster.create_database()
    try:
        yield dsn
    finally:
        postgres_cluster.drop_database(dsn.rsplit("/", 1)[1])


# On a service-level test: run it on both backends (the ``app`` fixture follows ``backend``).
both_backends = pytest.mark.parametrize("backend", BACKENDS)


def target_for(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh database of ``backend``: an SQLite file path, or a new PostgreSQL database's DSN."""
    if backend == "sqlite":
        return str(tmp_path / "chat.db")
    return str(request.getfixturevalue("postgres_dsn"))


@pytest.fixture(params=BACKENDS)
def database_target(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """What ``--database`` takes, once per backend: an SQLite file path, then a PostgreSQL DSN."""
    return target_for(request.param, request, tmp_path)


@pytest.fixture
def backend() -> str:
    """The ``app`` fixture's backend: SQLite unless a test is marked ``both_backends``."""
    return "sqlite"


@pytest.fixture
def database(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh database of ``backend`` for ``make_config(tmp_path, database=database)``."""
    return target_for(backend, request, tmp_path)


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
async def app(tmp_path: Path, database: str) -> AsyncIterator[App]:
    """The full server on ``backend``'s database, started; shut down (drained) after the test."""
    async with running(make_config(tmp_path, database=database)) as built:
        yield built
