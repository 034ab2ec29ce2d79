"""The pre-ADR baseline: the same services served as HTTP/1.1 with ProtoJSON bodies (aiohttp).

Every chat.v1 method is ``POST /chat.v1.Service/Method``. A unary request is one JSON
object; a client stream is a JSON array of them. A unary reply is one JSON object; a
server stream answers with one JSON object per line (chunked). The very same handler
objects the gRPC server runs do the work, through :class:`JsonStream`, which offers the
part of grpclib's server stream the handlers use: so both transports share the domain
layer, the store and the wire conversion, and differ only in the protocol.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterable
from typing import Any

from aiohttp import web
from google.protobuf import json_format
from google.protobuf.message import Message
from grpclib._typing import IServable
from grpclib.const import Cardinality, Status
from grpclib.exceptions import GRPCError

# The HTTP status a pre-ADR JSON API would answer for each gRPC status.
HTTP_STATUS = {
    Status.INVALID_ARGUMENT: 400,
    Status.FAILED_PRECONDITION: 400,
    Status.OUT_OF_RANGE: 400,
    Status.UNAUTHENTICATED: 401,
    Status.PERMISSION_DENIED: 403,
    Status.NOT_FOUND: 404,
    Status.ALREADY_EXISTS: 409,
    Status.ABORTED: 409,
    Status.RESOURCE_EXHAUSTED: 429,
    Status.CANCELLED: 499,
    Status.UNIMPLEMENTED: 501,
    Status.UNAVAILABLE: 503,
    Status.DEADLINE_EXCEEDED: 504,
}
MAX_BODY_BYTES = 4 * 1024 * 1024
# Replies from this size on are gzipped for a client that sends Accept-Encoding: gzip, as a
# deployment's proxy would (nginx: gzip on); the same threshold as the gRPC services' own.
COMPRESS_MIN_BYTES = 512


def to_json(message: Message) -> bytes:
    """A message as compact ProtoJSON."""
    return json.dumps(json_format.MessageToDict(message), separators=(",", ":")).encode()


class JsonStream:
    """grpclib's server stream, as the handlers use it, over one HTTP request and response."""

    deadline = None
    metadata: dict[str, str] = {}  # noqa: RUF012 - read-only, as grpclib's is for handlers

    def __init__(self, requests: list[Message], http: web.Request, server_streaming: bool) -> None:
        self._requests = iter(requests)
        self._http = http
        self._server_streaming = server_streaming
        self.response: web.StreamResponse | None = None
        self.replies: list[Message] = []

    async def recv_message(self) -> Message | None:
        """The next request message, or None after the last."""
        return next(self._requests, None)

    async def __aiter__(self) -> AsyncIterator[Message]:
        for message in self._requests:
            yield message

    async def send_initial_metadata(self) -> None:
        """Start the HTTP response (a server stream's headers go out now)."""
        if self._server_streaming and self.response is None:
            self.response = web.StreamResponse(headers={"Content-Type": "application/x-ndjson"})
            self.response.enable_compression()  # only if the client accepts gzip
            await self.response.prepare(self._http)

    async def send_message(self, message: Message) -> None:
        """A unary reply is kept for the response; a stream's reply is written as one line."""
        if not self._server_streaming:
            self.replies.append(message)
            return
        await self.send_initial_metadata()
        assert self.response is not None
        await self.response.write(to_json(message) + b"\n")


def _error_body(error: GRPCError) -> dict[str, object]:
    return {"code": error.status.name, "message": error.message or ""}


def routes(services: Iterable[IServable]) -> web.RouteTableDef:
    """One POST route per method of ``services``, calling the same handler as gRPC does."""
    table = web.RouteTableDef()
    for service in services:
        for path, handler in service.__mapping__().items():
            table.post(path)(_endpoint(handler.func, handler.cardinality, handler.request_type))
    return table


def _endpoint(func: Any, cardinality: Cardinality, request_type: type[Message]) -> Any:
    client_streaming = cardinality in (Cardinality.STREAM_UNARY, Cardinality.STREAM_STREAM)
    server_streaming = cardinality in (Cardinality.UNARY_STREAM, Cardinality.STREAM_STREAM)

    async def endpoint(http: web.Request) -> web.StreamResponse:
        try:
            requests = _parse(await http.read(), request_type, client_streaming)
        except ValueError as error:
            return web.json_response({"code": "INVALID_ARGUMENT", "message": str(error)[:200]}, status=400)
        stream = JsonStream(requests, http, server_streaming)
        try:
            await func(stream)
        except GRPCError as error:
            if stream.response is not None:  # headers are gone: the error is the stream's last line
                await stream.response.write(json.dumps({"error": _error_body(error)}).encode() + b"\n")
                await stream.response.write_eof()
                return stream.response
            return web.json_response(_error_body(error), status=HTTP_STATUS.get(error.status, 500))
        if server_streaming:
            await stream.send_initial_metadata()
            assert stream.response is not None
            await stream.response.write_eof()
            return stream.response
        (reply,) = stream.replies
        body = to_json(reply)
        response = web.Response(body=body, content_type="application/json")
        if len(body) >= COMPRESS_MIN_BYTES:
            response.enable_compression()  # only if the client accepts gzip
        return response

    return endpoint


def _parse(body: bytes, request_type: type[Message], many: bool) -> list[Message]:
    try:
        data = json.loads(body or b"{}")
    except json.JSONDecodeError as error:
        raise ValueError(f"the body is not JSON: {error}") from None
    items = data if many else [data]
    if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
        raise ValueError("the body must be a JSON object (a JSON array of objects for a client stream)")
    messages = []
    for item in items:
        message = request_type()
        try:
            json_format.ParseDict(item, message)
        except json_format.ParseError as error:
            raise ValueError(str(error)) from None
        messages.append(message)
    return messages


def application(services: Iterable[IServable]) -> web.Application:
    """The aiohttp application serving ``services`` as HTTP/JSON."""
    app = web.Application(client_max_size=MAX_BODY_BYTES)
    app.add_routes(routes(services))
    return app
