"""Calls to the internal gRPC services: any RPC of the schema, by its method path and ``_pb2`` classes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass

import grpclib.client
from google.protobuf.message import Message
from grpclib.const import Cardinality, Status
from grpclib.encoding.proto import ProtoStatusDetailsCodec
from grpclib.exceptions import GRPCError, ProtocolError, StreamTerminatedError

from chat_gateway.errors import GatewayError
from chat_gateway.schema import Kind, Rpc

MAX_UPSTREAM_MESSAGE = 200  # characters of an upstream status message passed on

_CARDINALITY = {
    Kind.UNARY: Cardinality.UNARY_UNARY,
    Kind.SERVER_STREAM: Cardinality.UNARY_STREAM,
    Kind.CLIENT_STREAM: Cardinality.STREAM_UNARY,
    Kind.BIDI_STREAM: Cardinality.STREAM_STREAM,
}

UpstreamStream = grpclib.client.Stream[Message, Message]


@dataclass(frozen=True)
class UpstreamAddress:
    """Where the internal gRPC services listen."""

    host: str = "127.0.0.1"
    port: int = 50051


class Upstream:
    """One HTTP/2 channel to the services, shared by every request (calls are multiplexed on it)."""

    def __init__(self, address: UpstreamAddress, *, unary_timeout: float) -> None:
        self.address = address
        self.unary_timeout = unary_timeout
        self._channel: grpclib.client.Channel | None = None

    @property
    def channel(self) -> grpclib.client.Channel:
        """The channel, created on first use inside the running event loop."""
        if self._channel is None:
            self._channel = grpclib.client.Channel(
                self.address.host, self.address.port, status_details_codec=ProtoStatusDetailsCodec()
            )
        return self._channel

    def close(self) -> None:
        """Close the channel; a later call opens a new one."""
        if self._channel is not None:
            self._channel.close()
            self._channel = None

    @asynccontextmanager
    async def open(self, rpc: Rpc, metadata: Mapping[str, str]) -> AsyncIterator[UpstreamStream]:
        """Open a call of ``rpc``; upstream failures leave as :class:`GatewayError`."""
        timeout = self.unary_timeout if rpc.kind in (Kind.UNARY, Kind.CLIENT_STREAM) else None
        with upstream_errors():
            async with self.channel.request(
                rpc.grpc_path,
                _CARDINALITY[rpc.kind],
                rpc.request,
                rpc.response,
                timeout=timeout,
                metadata=dict(metadata),
            ) as stream:
                yield stream

    async def unary(self, rpc: Rpc, request: Message, metadata: Mapping[str, str]) -> Message:
        """Call a unary RPC."""
        async with self.open(rpc, metadata) as stream:
            await stream.send_message(request, end=True)
            return await _reply(stream)

    async def client_stream(self, rpc: Rpc, requests: list[Message], metadata: Mapping[str, str]) -> Message:
        """Call a client-streaming RPC with every request, then half-close and read the reply."""
        async with self.open(rpc, metadata) as stream:
            await stream.send_request()
            for request in requests:
                await stream.send_message(request)
            await stream.end()
            return await _reply(stream)


async def _reply(stream: UpstreamStream) -> Message:
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
        if isinstance(error, OSError | StreamTerminatedError | ProtocolError | ConnectionError):
            raise GatewayError(Status.UNAVAILABLE, "the chat services are unavailable") from None
