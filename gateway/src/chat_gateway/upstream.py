"""Calls to the internal gRPC services: any RPC of the schema, by its method path and ``_pb2`` classes.

Calls share a pool of HTTP/2 connections (:class:`Pool`). The gateway counts the calls
on each connection itself, because grpclib waits silently once a connection's
``max_concurrent_streams`` is reached: here a call that finds no room is refused at
once with a status that says when to retry.
"""

from __future__ import annotations

import asyncio
import ssl
from collections import Counter
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field

import grpclib.client
from google.protobuf.message import Message
from grpclib.config import Configuration
from grpclib.const import Cardinality, Status
from grpclib.encoding.proto import ProtoStatusDetailsCodec
from grpclib.exceptions import GRPCError, ProtocolError, StreamTerminatedError

from chat_gateway.config import UpstreamAddress, UpstreamPool, UpstreamTls
from chat_gateway.errors import MAX_UPSTREAM_MESSAGE, GatewayError
from chat_gateway.schema import Kind, Rpc
from chat_gateway.transcode import in_json_names
from chat_gateway.unary import UnaryCalls, grpcio_channel
from chat_sdk.channel import tls_context

SATURATED_RETRY_AFTER = 1  # seconds a caller is told to wait when every connection is full
CALLER_RETRY_AFTER = 5  # seconds a caller at its share of streams is told to wait

_CARDINALITY = {
    Kind.UNARY: Cardinality.UNARY_UNARY,
    Kind.SERVER_STREAM: Cardinality.UNARY_STREAM,
    Kind.CLIENT_STREAM: Cardinality.STREAM_UNARY,
    Kind.BIDI_STREAM: Cardinality.STREAM_STREAM,
}
LONG_LIVED = (Kind.SERVER_STREAM, Kind.BIDI_STREAM)

UpstreamStream = grpclib.client.Stream[Message, Message]


def upstream_ssl(settings: UpstreamTls | None) -> ssl.SSLContext | None:
    """The client TLS context of ``settings`` (the SDK's own, speaking h2), or None for plaintext."""
    if settings is None:
        return None
    return tls_context(settings.ca, settings.client_cert, settings.client_key)


@dataclass
class _Member:
    """One member of the pool (a grpclib connection for streams, a grpcio one for unary calls)
    and the calls it carries now."""

    channel: grpclib.client.Channel
    unary: UnaryCalls
    calls: int = 0


@dataclass
class Pool:
    """Admission to the upstream connections: room for unary calls, a fair share of streams per caller."""

    settings: UpstreamPool
    members: list[_Member] = field(default_factory=list)
    streams_by_caller: Counter[str] = field(default_factory=Counter)

    @contextmanager
    def lease(self, caller: str, long_lived: bool) -> Iterator[_Member]:
        """A connection with room for one call of ``caller``; refused (429/503) instead of waiting."""
        if long_lived and self.streams_by_caller[caller] >= self.settings.caller_streams:
            raise GatewayError(
                Status.RESOURCE_EXHAUSTED,
                f"this caller already has {self.settings.caller_streams} open streams",
                retry_after=CALLER_RETRY_AFTER,
            )
        room = self.settings.streams - (self.settings.unary_reserve if long_lived else 0)
        member = min(self.members, key=lambda candidate: candidate.calls)
        if member.calls >= room:
            what = "streams" if long_lived else "calls"
            raise GatewayError(
                Status.UNAVAILABLE,
                f"the connections to the chat services have no room for more {what}",
                retry_after=SATURATED_RETRY_AFTER,
            )
        member.calls += 1
        if long_lived:
            self.streams_by_caller[caller] += 1
        try:
            yield member
        finally:
            member.calls -= 1
            if long_lived:
                self.streams_by_caller[caller] -= 1
                if not self.streams_by_caller[caller]:
                    del self.streams_by_caller[caller]


class Upstream:
    """A pool of HTTP/2 connections to the services, shared by every request."""

    def __init__(
        self,
        address: UpstreamAddress,
        *,
        unary_timeout: float,
        tls: UpstreamTls | None = None,
        pool: UpstreamPool | None = None,
    ) -> None:
        self.address = address
        self.unary_timeout = unary_timeout
        self.tls = tls
        self.ssl = upstream_ssl(tls)  # read the files now: a wrong path fails at start, not per call
        self.settings = pool or UpstreamPool()
        self._pool: Pool | None = None

    @property
    def pool(self) -> Pool:
        """The connections, created on first use inside the running event loop."""
        if self._pool is None:
            server_name = self.tls.server_name if self.tls is not None else None
            config = Configuration(ssl_target_name_override=server_name)
            members = [
                _Member(
                    grpclib.client.Channel(
                        self.address.host,
                        self.address.port,
                        ssl=self.ssl,
                        config=config,
                        status_details_codec=ProtoStatusDetailsCodec(),
                    ),
                    UnaryCalls(grpcio_channel(self.address, self.tls)),
                )
                for _ in range(self.settings.connections)
            ]
            self._pool = Pool(self.settings, members)
        return self._pool

    async def close(self) -> None:
        """Close every connection; a later call opens new ones."""
        if self._pool is not None:
            members, self._pool = self._pool.members, None
            for member in members:
                member.channel.close()
                await member.unary.close()

    @asynccontextmanager
    async def open(self, rpc: Rpc, metadata: Mapping[str, str], caller: str) -> AsyncIterator[UpstreamStream]:
        """Open a call of ``rpc`` for ``caller``; upstream failures leave as :class:`GatewayError`."""
        timeout = self.unary_timeout if rpc.kind in (Kind.UNARY, Kind.CLIENT_STREAM) else None
        with self.pool.lease(caller, rpc.kind in LONG_LIVED) as member, upstream_errors():
            async with member.channel.request(
                rpc.grpc_path,
                _CARDINALITY[rpc.kind],
                rpc.request,
                rpc.response,
                timeout=timeout,
                metadata=dict(metadata),
            ) as stream:
                try:
                    yield stream
                except GatewayError as error:
                    raise in_json_names(error, rpc.request_descriptor) from None

    async def unary(self, rpc: Rpc, request: Message, metadata: Mapping[str, str], caller: str) -> Message:
        """Call a unary RPC (over grpcio: see :mod:`chat_gateway.unary`)."""
        with self.pool.lease(caller, False) as member:
            try:
                return await member.unary.call(rpc, request, tuple(metadata.items()), self.unary_timeout)
            except GatewayError as error:
                raise in_json_names(error, rpc.request_descriptor) from None

    async def client_stream(
        self, rpc: Rpc, requests: list[Message], metadata: Mapping[str, str], caller: str
    ) -> Message:
        """Call a client-streaming RPC with every request, then half-close and read the reply."""
        async with self.open(rpc, metadata, caller) as stream:
            await stream.send_request()
            for request in requests:
                await stream.send_message(request)
            await stream.end()
            return await reply_of(stream)


async def answer_headers(stream: UpstreamStream) -> None:
    """Wait for the upstream's first headers; a refusal of the call (trailers-only) raises GRPCError."""
    try:
        await stream.recv_initial_metadata()
    except StreamTerminatedError:
        # A refusal is trailers-only and then a reset; when both arrive in one read, grpclib
        # cancels the wait for the headers it has in fact received. Read them (grpclib is
        # pinned below 0.5, whose Stream keeps them here).
        headers = stream._stream.headers if stream._stream is not None else None
        if not headers or "grpc-status" not in dict(headers):
            raise
        status, message, details = stream._process_grpc_status(dict(headers))
        if status is not Status.OK:
            raise GRPCError(status, message, details) from None
        raise


async def reply_of(stream: UpstreamStream) -> Message:
    """The one reply of a call whose requests are sent."""
    with upstream_errors():
        reply = await stream.recv_message()
    if reply is None:
        raise GatewayError(Status.INTERNAL, "the service sent no reply")
    return reply


class upstream_errors:
    """Turn what an upstream call raises into :class:`GatewayError` with the google.rpc status."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, trace: object) -> None:
        if error is None or isinstance(error, GatewayError | asyncio.CancelledError):
            return
        if isinstance(error, GRPCError):
            message = (error.message or error.status.name)[:MAX_UPSTREAM_MESSAGE]
            raise GatewayError(error.status, message, list(error.details or [])) from None
        if isinstance(error, asyncio.TimeoutError):
            raise GatewayError(Status.DEADLINE_EXCEEDED, "the service did not answer in time") from None
        if isinstance(error, ssl.SSLError):
            raise GatewayError(
                Status.UNAVAILABLE, "the TLS handshake with the chat services failed"
            ) from None
        if isinstance(error, OSError | StreamTerminatedError | ProtocolError | ConnectionError):
            raise GatewayError(Status.UNAVAILABLE, "the chat services are unavailable") from None
