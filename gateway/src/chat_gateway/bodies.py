"""Request bodies: bounded before parsing, JSON of bounded depth, streamed arrays parsed element by element.

:class:`BodyLimit` is ASGI middleware in front of every route (GraphQL included): a
declared ``Content-Length`` over the limit is a 413 before the body is read, and a
body that grows past it (chunked) stops the handler with :class:`BodyTooLarge` at the
first byte too many. :func:`stream_documents` yields the elements of a JSON array (or
the lines of NDJSON) as their bytes arrive, so a bad element is refused while the rest
is still on the wire.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

import ijson
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from chat_gateway.errors import BadRequest, BodyTooLarge, bounded, status_body

MAX_JSON_DEPTH = 32  # nesting of arrays and objects in one JSON document; the schema needs far less
NDJSON = "application/x-ndjson"


class BodyLimit:
    """Refuse request bodies over ``limit`` bytes (413), whatever ``Content-Length`` claims."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)  # WebSocket frames are bounded by uvicorn (ws_max_size)
            return
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.limit:
            error = BodyTooLarge(self.limit)
            body = status_body(error.status, error.message, error.details)
            await JSONResponse(body, status_code=error.http_status)(scope, receive, send)
            return
        size = 0

        async def bounded_receive() -> Message:
            nonlocal size
            message = await receive()
            if message["type"] == "http.request":
                size += len(message.get("body", b""))
                if size > self.limit:
                    raise BodyTooLarge(self.limit)
            return message

        await self.app(scope, bounded_receive, send)


def check_depth(value: Any, where: str = "") -> Any:
    """``value`` itself, refused when its arrays and objects nest deeper than :data:`MAX_JSON_DEPTH`."""
    level = [value]
    for _ in range(MAX_JSON_DEPTH):
        level = [
            child
            for item in level
            if isinstance(item, dict | list)
            for child in (item.values() if isinstance(item, dict) else item)
        ]
        if not level:
            return value
    if any(isinstance(item, dict | list) for item in level):
        raise BadRequest(where, f"the JSON nests deeper than {MAX_JSON_DEPTH} levels")
    return value


def parse_json(raw: bytes, where: str = "") -> Any:
    """One JSON document of bounded depth; an empty body is an empty object."""
    if not raw.strip():
        return {}
    try:
        return check_depth(json.loads(raw), where)
    except RecursionError:
        raise BadRequest(where, f"the JSON nests deeper than {MAX_JSON_DEPTH} levels") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise BadRequest(where, f"the body is not valid JSON: {bounded(str(error))}") from None


async def stream_documents(request: Request) -> AsyncGenerator[tuple[int, Any], None]:
    """Each element (numbered) of the body's JSON array, or each line of NDJSON, as soon as it is whole."""
    content_type = request.headers.get("content-type", "").split(";", 1)[0].strip()
    chunks = request.stream()
    if content_type == NDJSON:
        async for item in _ndjson(chunks):
            yield item
    else:
        async for item in _array(chunks):
            yield item


async def _ndjson(chunks: AsyncIterator[bytes]) -> AsyncIterator[tuple[int, Any]]:
    pending = b""
    index = 0
    async for chunk in chunks:
        *lines, pending = (pending + chunk).split(b"\n")
        for line in lines:
            if line.strip():
                yield index, _line(line, index)
                index += 1
    if pending.strip():
        yield index, _line(pending, index)


def _line(line: bytes, index: int) -> Any:
    try:
        return check_depth(json.loads(line), f"[{index}]")
    except RecursionError:
        raise BadRequest(f"[{index}]", f"the JSON nests deeper than {MAX_JSON_DEPTH} levels") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise BadRequest(f"[{index}]", f"line {index + 1} is not valid JSON: {bounded(str(error))}") from None


async def _array(chunks: AsyncIterator[bytes]) -> AsyncIterator[tuple[int, Any]]:
    """Elements of a top-level JSON array, parsed by yajl (C, no recursion) as bytes arrive."""
    found = ijson.sendable_list()
    parser = ijson.items_coro(found, "item", use_float=True)
    started = False
    index = 0
    try:
        async for chunk in chunks:
            if not chunk:
                continue  # an empty send would tell yajl the body has ended
            if not started and chunk.strip():
                if not chunk.lstrip().startswith(b"["):
                    raise BadRequest("", "a streaming request is a JSON array of request objects (or NDJSON)")
                started = True
            parser.send(chunk)
            for document in found:
                yield index, check_depth(document, f"[{index}]")
                index += 1
            del found[:]
        if not started:
            raise BadRequest("", "a streaming request is a JSON array of request objects (or NDJSON)")
        parser.close()
        for document in found:
            yield index, check_depth(document, f"[{index}]")
            index += 1
    except ijson.JSONError as error:
        raise BadRequest(f"[{index}]", f"the body is not valid JSON: {bounded(str(error))}") from None
