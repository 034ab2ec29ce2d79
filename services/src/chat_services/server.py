"""The server: every chat.v1 service, health, reflection, the wire boundary and graceful shutdown."""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from google.protobuf import descriptor_pb2
from grpclib._typing import IServable
from grpclib.encoding.proto import ProtoStatusDetailsCodec
from grpclib.events import RecvRequest, listen
from grpclib.health.check import ServiceStatus
from grpclib.health.service import Health
from grpclib.health.v1 import health_pb2
from grpclib.reflection.service import ServerReflection
from grpclib.reflection.v1 import reflection_pb2
from grpclib.reflection.v1alpha import reflection_pb2 as reflection_v1alpha_pb2
from opentelemetry.sdk.trace.export import SpanExporter

import chat_sdk.schema
from chat_services.ai.local import LocalGroundedProvider
from chat_services.ai.service import AiService
from chat_services.boundary import BoundedProtoCodec
from chat_services.budget import MemoryBudget
from chat_services.config import ServiceConfig
from chat_services.connections import GuardedServer
from chat_services.conversation.service import ConversationService
from chat_services.conversation.store import MIGRATIONS as CONVERSATION_MIGRATIONS
from chat_services.conversation.store import ConversationStore
from chat_services.conversations import StoredConversations
from chat_services.framing import ReplyCompression
from chat_services.hygiene import TransportLimits
from chat_services.instances import local_fanout, shared_fanout
from chat_services.interceptors import Interceptors, install
from chat_services.lifecycle import Lifecycle
from chat_services.message.service import MessageService
from chat_services.message.store import MIGRATIONS as MESSAGE_MIGRATIONS
from chat_services.message.store import MessageStore
from chat_services.plugin.registry import PluginRegistry
from chat_services.plugin.runner import PluginRunner
from chat_services.plugin.service import PluginService
from chat_services.rag.embedding import HashingEmbedder
from chat_services.rag.service import RagService
from chat_services.rag.store import MIGRATIONS as RAG_MIGRATIONS
from chat_services.rag.store import DocumentStore
from chat_services.security.access import ConversationAccess
from chat_services.security.shared_limits import MIGRATIONS as RATE_MIGRATIONS
from chat_services.storage import Storage, open_storage

log = logging.getLogger("chat_services.server")


def reflection_pool() -> object:
    """The schema image shipped in the SDK wheel, plus health and reflection's own files."""
    pool = chat_sdk.schema.descriptor_pool()
    for module in (health_pb2, reflection_pb2, reflection_v1alpha_pb2):
        proto = descriptor_pb2.FileDescriptorProto()
        module.DESCRIPTOR.CopyToProto(proto)
        pool.Add(proto)
    return pool


@dataclass
class App:
    """A built server and what it owns; ``start`` and ``shutdown`` bracket its life."""

    config: ServiceConfig
    server: GuardedServer
    lifecycle: Lifecycle
    database: Storage
    services: list[IServable]
    health: dict[str, ServiceStatus] = field(default_factory=dict)
    interceptors: Interceptors | None = None
    # Closed after the server, before the database: worker processes and threads.
    closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    port: int = 0
    started: bool = False
    stopped: bool = False

    def update_health(self) -> None:
        """SERVING once started, unless draining or in a storage fault episode (full disk, I/O error)."""
        serving = self.started and not self.lifecycle.draining and not self.database.faulted
        for status in self.health.values():
            status.set(serving)

    async def start(self) -> int:
        """Listen on the configured address; return the bound port (useful with port 0)."""
        ssl = self.interceptors.ssl if self.interceptors else None
        reuse_port = self.config.reuse_port or None  # None: asyncio's default (off)
        await self.server.start(self.config.host, self.config.port, ssl=ssl, reuse_port=reuse_port)
        if self.interceptors is not None:
            self.interceptors.start(self.config)
        self.port = self.server.port
        self.started = True
        self.update_health()
        log.info(
            "serving",
            extra={"address": f"{self.config.host}:{self.port}", "services": ",".join(sorted(self.health))},
        )
        return self.port

    def begin_draining(self) -> None:
        """Health turns NOT_SERVING, new calls get UNAVAILABLE, long-lived streams are told to end."""
        if self.lifecycle.draining:
            return
        log.info("draining", extra={"active_calls": self.lifecycle.active_calls})
        self.lifecycle.begin_draining()
        self.update_health()

    async def shutdown(self) -> None:
        """Drain, wait up to the grace period for running calls, close; a second call does nothing."""
        if self.stopped:
            return
        self.stopped = True
        self.begin_draining()
        idle = await self.lifecycle.wait_idle(self.config.grace_period)
        if not idle:
            log.warning("grace period over", extra={"cancelled_calls": self.lifecycle.active_calls})
        self.server.close()
        await self.server.wait_closed()
        if self.interceptors is not None:
            await asyncio.to_thread(self.interceptors.stop)  # flushing spans and stopping HTTP block
        for close in self.closers:
            await close()
        await self.database.close()
        log.info("stopped")


async def build_app(config: ServiceConfig, *, span_exporter: SpanExporter | None = None) -> App:
    """Open the database and wire every service with its dependencies (``span_exporter``: traces' sink)."""
    database = open_storage(config.database, probe_interval=config.storage_probe_interval)
    migrations = [*MESSAGE_MIGRATIONS, *CONVERSATION_MIGRATIONS, *RAG_MIGRATIONS, *RATE_MIGRATIONS]
    await database.open(migrations)
    lifecycle = Lifecycle()
    messages = MessageStore(database)
    conversations = ConversationStore(database)
    access = ConversationAccess(conversations)
    documents = DocumentStore(database, HashingEmbedder(), workers=config.rag_workers)
    provider = LocalGroundedProvider(
        conversations=StoredConversations(messages),
        passages=documents,
        chunk_delay=config.completion_chunk_delay,
    )
    # On PostgreSQL, instances sharing the database hear of each other's messages and events.
    fanout = await shared_fanout(database.dsn, messages, documents) if database.dsn else local_fanout()
    plugin_runner = PluginRunner()
    services: list[IServable] = [
        MessageService(
            messages,
            fanout.hub,
            lifecycle,
            access,
            follower_timeout=config.follower_timeout,
            budget=MemoryBudget(config.max_inflight_bytes, config.max_call_bytes),
        ),
        ConversationService(conversations, access),
        AiService(provider, lifecycle, access),
        RagService(documents),
        PluginService(
            PluginRegistry.discover(),
            plugin_runner,
            fanout.plugin_events,
            lifecycle,
            default_timeout=config.plugin_timeout,
            max_timeout=config.plugin_max_timeout,
        ),
    ]
    health = {_service_name(service): ServiceStatus() for service in services}
    health_service = Health({service: [health[_service_name(service)]] for service in services})
    handlers: list[IServable] = [*services, health_service]
    if config.serves_reflection:
        # extend() returns the handlers given plus the two reflection services (v1, v1alpha).
        handlers = ServerReflection.extend(handlers, pool=reflection_pool())
    server = GuardedServer(
        handlers,
        codec=BoundedProtoCodec(config.max_message_bytes),
        status_details_codec=ProtoStatusDetailsCodec(),
        limits=TransportLimits.from_config(config),
        replies=ReplyCompression(config.reply_encodings, config.compress_min_bytes),
    )
    listen(server, RecvRequest, lifecycle.on_request)
    interceptors = install(server, handlers, config, database=database, span_exporter=span_exporter)
    app = App(
        config,
        server,
        lifecycle,
        database,
        services,
        health,
        interceptors,
        [fanout.close, documents.close, plugin_runner.close],
    )
    database.on_fault = lambda _faulted: app.update_health()
    return app


def _service_name(service: IServable) -> str:
    """``chat.v1.MessageService`` from the handler's mapping of method paths."""
    path = next(iter(service.__mapping__()))
    return path.split("/")[1]


async def serve(config: ServiceConfig) -> None:
    """Run until SIGTERM or SIGINT, then shut down gracefully."""
    app = await build_app(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    # Before start logs "serving": a SIGTERM sent on seeing that line must drain, not kill.
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await app.start()
    # Everything alive now (modules, schema descriptors, generated classes) lives as long as
    # the process: keep it out of the cyclic collector, whose full passes over it paused the
    # event loop for 50-120 ms under load.
    gc.freeze()
    try:
        await stop.wait()
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
        await app.shutdown()
