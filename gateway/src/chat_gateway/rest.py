"""One HTTP route per RPC of the schema: unary as JSON, server streams as Server-Sent Events,
client streams as a JSON array (or NDJSON) body, and bidirectional streams as a WebSocket.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import AsyncExitStack, aclosing
from typing import Any, TypeVar

from google.protobuf import json_format
from google.protobuf.message import Message
from grpclib.const import Status
from sse_starlette import EventSourceResponse
from starlette.background import BackgroundTask
from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Router
from starlette.websockets import WebSocket, WebSocketDisconnect

from chat_gateway.bodies import parse_json, stream_documents
from chat_gateway.errors import BadRequest, GatewayError, status_body
from chat_gateway.schema import Kind, Rpc
from chat_gateway.transcode import build_request, in_json_names
from chat_gateway.upstream import Upstream, UpstreamStream, answer_headers, reply_of, upstream_errors

_T = TypeVar("_T")
WEBSOCKET_INTERNAL_ERROR = 1011  # close code after an upstream error frame
FORWARDED_HEADERS = ("authorization",)


def forwarded_metadata(headers: Mapping[str, str]) -> dict[str, str]:
    """The caller's credentials, passed on unchanged: the services authorise, never the gateway.

    gRPC metadata values are printable ASCII; any other value is a 400 here rather than an
    error inside the gRPC client (a 500 and a traceback).
    """
    found = {}
    for name in FORWARDED_HEADERS:
        value = headers.get(name)
        if value is None:
            continue
        if not (value.isascii() and value.isprintable()):
            raise GatewayError(Status.INVALID_ARGUMENT, f"the {name} header must be printable ASCII")
        found[name] = value
    return found


def caller_of(connection: HTTPConnection) -> str:
    """Who shares the upstream streams fairly: a credential (by digest), else the client's address."""
    credential = connection.headers.get("authorization")
    if credential:
        return "credential:" + hashlib.sha256(credential.encode()).hexdigest()[:32]
    return "address:" + (connection.client.host if connection.client else "unknown")


class RestRoutes:
    """Builds the routes of every RPC onto a Starlette router."""

    def __init__(self, upstream: Upstream) -> None:
        self.upstream = upstream

    def install(self, router: Router, rpcs: tuple[Rpc, ...]) -> None:
        """Add one route per RPC."""
        for rpc in rpcs:
            path = rpc.template.route_path
            if rpc.kind is Kind.BIDI_STREAM:
                router.add_websocket_route(path, self._websocket(rpc), name=rpc.operation_id)
            else:
                router.add_route(path, self._endpoint(rpc), methods=[rpc.verb.upper()], name=rpc.operation_id)

    def _endpoint(self, rpc: Rpc) -> Callable[[Request], Awaitable[Response]]:
        handlers = {
            Kind.UNARY: self._unary,
            Kind.SERVER_STREAM: self._server_stream,
            Kind.CLIENT_STREAM: self._client_stream,
        }
        handler = handlers[rpc.kind]

        async def endpoint(request: Request) -> Response:
            return await handler(rpc, request)

        return endpoint

    async def _single_request(self, rpc: Rpc, request: Request) -> Message:
        body = parse_json(await request.body()) if rpc.body else None  # bounded by BodyLimit
        return build_request(rpc, request.path_params, request.query_params.multi_items(), body)

    async def _unary(self, rpc: Rpc, request: Request) -> Response:
        message = await self._single_request(rpc, request)
        reply = await self.upstream.unary(
            rpc, message, forwarded_metadata(request.headers), caller_of(request)
        )
        return JSONResponse(json_format.MessageToDict(reply))

    async def _client_stream(self, rpc: Rpc, request: Request) -> Response:
        """Forward each element of the body as soon as it is parsed; stop at the first refused one.

        The call opens first, so a refusal of the call itself (no credentials, no
        permission) ends the body's reading at once instead of following it.
        """
        query = request.query_params.multi_items()
        async with (
            self.upstream.open(rpc, forwarded_metadata(request.headers), caller_of(request)) as stream,
            aclosing(stream_documents(request)) as documents,
        ):
            with upstream_errors():
                await stream.send_request()
            refused = asyncio.ensure_future(answer_headers(stream))
            try:
                while (item := await _unless(refused, anext(documents, None))) is not None:
                    index, document = item
                    message = build_request(rpc, request.path_params, query, document, index=index)
                    try:
                        with upstream_errors():
                            await stream.send_message(message)
                    except GatewayError:
                        # A send fails when the upstream has ended the call: its answer (a refusal's
                        # status, or the stream's end) is already received, so the headers' reader
                        # finishes at once. Without this wait its status would lose to the send's.
                        await asyncio.wait({refused})
                        if not _failed(refused):
                            raise
                        break  # the upstream's own status, below, says why
                if not _failed(refused):
                    with upstream_errors():
                        await stream.end()
                with upstream_errors():
                    await refused
            finally:
                refused.cancel()
            reply = await reply_of(stream)
        return JSONResponse(json_format.MessageToDict(reply))

    async def _server_stream(self, rpc: Rpc, request: Request) -> Response:
        """Answer 200 and the events only once the service has taken the call.

        A service refuses a call (no credentials, no permission, a request its rules
        refuse, no such conversation) before its first message, with a trailers-only
        response: waiting for the response headers turns that refusal into an HTTP error
        with the status body instead of an ``error`` event inside a 200. The services send
        their headers as soon as they accept a stream, so a follower is not held back.
        """
        message = await self._single_request(rpc, request)
        call = AsyncExitStack()
        try:
            stream = await call.enter_async_context(
                self.upstream.open(rpc, forwarded_metadata(request.headers), caller_of(request))
            )
            with upstream_errors():
                # Connecting happens here, so an unreachable upstream is still a 503, not an event.
                await stream.send_message(message, end=True)
                await answer_headers(stream)
        except GatewayError as error:
            await _reset(call)
            raise in_json_names(error, rpc.request_descriptor) from None
        except BaseException:
            await _reset(call)
            raise
        # The background task resets the call if the generator never ran (the client left first).
        return EventSourceResponse(
            _events(rpc, stream, call), ping=15, background=BackgroundTask(_reset, call)
        )

    def _websocket(self, rpc: Rpc) -> Callable[[WebSocket], Awaitable[None]]:
        async def endpoint(websocket: WebSocket) -> None:
            await _bridge(self.upstream, rpc, websocket, caller_of(websocket))

        return endpoint


def _failed(future: asyncio.Future[None]) -> bool:
    return future.done() and (future.cancelled() or future.exception() is not None)


async def _unless(refused: asyncio.Future[None], step: Awaitable[_T]) -> _T | None:
    """The result of ``step``, or None (``step`` cancelled) once ``refused`` fails.

    ``refused`` finishing without an error (the upstream answered headers early) stops nothing.
    """
    task = asyncio.ensure_future(step)
    if not refused.done():
        either: set[asyncio.Future[Any]] = {task, refused}
        await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
    if not task.done() and _failed(refused):
        task.cancel()
        await asyncio.wait({task})  # let it unwind before its generator is closed
        return None
    return await task


async def _events(rpc: Rpc, stream: UpstreamStream, call: AsyncExitStack) -> AsyncIterator[bytes]:
    """Each reply as a ``message`` event, then ``end``; a failure is one ``error`` event with the status.

    When the client goes away, sse-starlette cancels this generator: closing ``call``
    then resets the upstream stream, which cancels the call in the service.
    """
    finished = False
    try:
        while True:
            try:
                with upstream_errors():
                    reply = await stream.recv_message()
                    if reply is None:  # the status: a failure after the last reply is an error event too
                        await stream.recv_trailing_metadata()
            except GatewayError as error:
                in_json_names(error, rpc.request_descriptor)
                yield _event(b"error", json.dumps(status_body(error.status, error.message, error.details)))
                return
            if reply is None:
                finished = True
                yield _event(b"end", "{}")
                return
            yield _event(b"message", json.dumps(json_format.MessageToDict(reply)))
    finally:
        if finished:
            await call.aclose()
        else:
            await _reset(call)


def _event(name: bytes, data: str) -> bytes:
    """One Server-Sent Event, encoded here: sse-starlette passes bytes through as they are, and its
    own encoder costs more per event than the rest of the gateway's work on a small reply.
    ``json.dumps`` writes no line breaks, so the data is one ``data:`` line."""
    return b"event: " + name + b"\r\ndata: " + data.encode() + b"\r\n\r\n"


async def _reset(call: AsyncExitStack) -> None:
    """Leave the upstream call with an exception: grpclib then resets the stream at once (no await),
    which is safe inside a cancelled task and cancels the call in the service. Closing twice is a no-op.
    """
    stop = asyncio.CancelledError()
    await call.__aexit__(type(stop), stop, None)


async def _bridge(upstream: Upstream, rpc: Rpc, websocket: WebSocket, caller: str) -> None:
    """Carry a bidirectional stream over a WebSocket: one JSON request or reply per text frame.

    A frame that does not fit the schema gets an ``{"error": Status}`` frame and is not
    forwarded; an upstream error is sent the same way, then the socket closes. Closing the
    socket cancels the upstream call.
    """
    await websocket.accept()
    try:
        async with upstream.open(rpc, forwarded_metadata(websocket.headers), caller) as stream:
            await stream.send_request()
            receiving = asyncio.create_task(_pump_replies(stream, websocket))
            sending = asyncio.create_task(_pump_requests(rpc, stream, websocket))
            try:
                done, _ = await asyncio.wait({receiving, sending}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in (receiving, sending):
                    task.cancel()
                await asyncio.gather(receiving, sending, return_exceptions=True)
            for task in done:
                task.result()  # re-raise an upstream error
        await websocket.close()
    except GatewayError as error:
        await _send_error(websocket, error)
        await websocket.close(WEBSOCKET_INTERNAL_ERROR)
    except WebSocketDisconnect:
        return


async def _pump_requests(rpc: Rpc, stream: UpstreamStream, websocket: WebSocket) -> None:
    while True:
        text = await websocket.receive_text()
        try:
            message = build_request(rpc, {}, (), parse_json(text.encode()), body_rule="*")
        except BadRequest as error:
            await _send_error(websocket, error)
            continue
        with upstream_errors():
            await stream.send_message(message)


async def _pump_replies(stream: UpstreamStream, websocket: WebSocket) -> None:
    while True:
        with upstream_errors():
            reply = await stream.recv_message()
        if reply is None:
            return
        await websocket.send_json(json_format.MessageToDict(reply))


async def _send_error(websocket: WebSocket, error: GatewayError) -> None:
    await websocket.send_json({"error": status_body(error.status, error.message, error.details)})
