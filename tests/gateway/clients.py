"""Clients of the gateway's streaming routes: Server-Sent Events over httpx, and WebSockets."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from httpx_sse import EventSource, aconnect_sse
from websockets.asyncio.client import ClientConnection, connect
from websockets.typing import Subprotocol

FRAME_TIMEOUT = 30.0  # seconds to wait for a WebSocket frame before failing


@asynccontextmanager
async def sse(http: httpx.AsyncClient, method: str, path: str, **kwargs: Any) -> AsyncIterator[EventSource]:
    """An open Server-Sent Events response (its status already checked by the caller)."""
    async with aconnect_sse(http, method, path, **kwargs) as source:
        yield source


async def collect(source: EventSource) -> tuple[list[dict[str, Any]], str]:
    """Every ``message`` event's data until the stream ends, and how it ended (``end`` or ``error``)."""
    messages: list[dict[str, Any]] = []
    async for event in source.aiter_sse():
        if event.event == "message":
            messages.append(json.loads(event.data))
        elif event.event in ("end", "error"):
            return messages, event.event
    return messages, "closed"


async def next_message(source: EventSource) -> dict[str, Any]:
    """The data of the next ``message`` event (failing on ``end`` or ``error``)."""
    async for event in source.aiter_sse():
        if event.event == "message":
            data: dict[str, Any] = json.loads(event.data)
            return data
        assert event.event not in ("end", "error"), (event.event, event.data)
    raise AssertionError("the stream closed before a message")


@asynccontextmanager
async def websocket(
    base_url: str, path: str, headers: dict[str, str] | None = None
) -> AsyncIterator[ClientConnection]:
    """A WebSocket to the gateway."""
    async with connect(base_url.replace("http://", "ws://", 1) + path, additional_headers=headers) as socket:
        yield socket


async def receive_json(socket: ClientConnection) -> dict[str, Any]:
    """The next frame, decoded (failing instead of hanging when none comes)."""
    data: dict[str, Any] = json.loads(await asyncio.wait_for(socket.recv(), FRAME_TIMEOUT))
    return data


@asynccontextmanager
async def graphql_socket(
    base_url: str, headers: dict[str, str] | None = None
) -> AsyncIterator[ClientConnection]:
    """A WebSocket to ``/graphql`` speaking graphql-transport-ws, past its connection_init handshake."""
    async with connect(
        base_url.replace("http://", "ws://", 1) + "/graphql",
        subprotocols=[Subprotocol("graphql-transport-ws")],
        additional_headers=headers,
    ) as socket:
        await socket.send(json.dumps({"type": "connection_init"}))
        acknowledged = await receive_json(socket)
        assert acknowledged["type"] == "connection_ack", acknowledged
        yield socket
