"""The clients the benchmark compares, each making the same calls over its own stack.

=============  =========================================================
``dataclass``  grpclib + the SDK's betterproto2 dataclasses (``chat_sdk.v1``)
``pb2``        grpclib + the SDK's ``_pb2`` classes (``chat.v1``)
``grpcio``     the official grpcio client (``grpc.aio``) + ``_pb2``
``http-json``  the pre-ADR baseline: HTTP/1.1 keep-alive, ProtoJSON bodies (aiohttp)
``pb2-gzip``   ``pb2`` through the SDK's ``connect(compression="gzip")``: gRPC compression both ways
``http-json-gzip``  the baseline as deployed behind gzip: ``Content-Encoding: gzip`` both ways
``gateway``    the external gateway (``gateway/``): REST + Server-Sent Events, ProtoJSON (aiohttp)
=============  =========================================================
"""

from __future__ import annotations

import gzip
import json
import sys
from collections.abc import Callable
from typing import Any, Protocol

import aiohttp
import grpc
from google.protobuf import json_format
from google.protobuf.message import Message
from grpclib.client import Channel

import chat_sdk.v1 as dc
from chat.v1 import ai_service_grpc, ai_service_pb2, message_service_grpc
from chat.v1 import message_service_pb2 as pb
from chat_sdk import connect
from chat_sdk.compression import DEFAULT_MIN_BYTES

TIMEOUT = 60.0


class Transport(Protocol):
    """One client stack: the benchmark's calls, each awaited to completion."""

    name: str

    async def get(self, message_id: str) -> None:
        """GetMessage with the author and files."""

    async def page(self, conversation_id: str, page_size: int) -> int:
        """ListMessages: one page; returns its length."""

    async def send(self, conversation_id: str, contents: list[str], key: str) -> None:
        """SendMessages: one client stream of new messages, keys ``key-0``, ``key-1``..."""

    async def stream(self, conversation_id: str) -> int:
        """StreamMessages from the start, not following; returns the messages received."""

    async def complete(self, conversation_id: str, prompt: str) -> int:
        """StreamCompletion; returns the events received."""

    async def close(self) -> None:
        """Close connections."""


def _new_messages(conversation_id: str, contents: list[str], key: str) -> list[pb.SendMessagesRequest]:
    return [
        pb.SendMessagesRequest(
            message=pb.NewMessage(
                conversation_id=conversation_id,
                author_id="bench-user",
                content=text,
                idempotency_key=f"{key}-{i}",
            )
        )
        for i, text in enumerate(contents)
    ]


class DataclassTransport:
    """grpclib with the SDK's dataclass stubs, on a plain channel (the SDK's codec is the classes' own)."""

    name = "dataclass"

    def __init__(self, host: str, port: int) -> None:
        self.channel = Channel(host, port)
        self.messages = dc.MessageServiceStub(self.channel, timeout=TIMEOUT)
        self.ai = dc.AiServiceStub(self.channel, timeout=TIMEOUT)

    async def get(self, message_id: str) -> None:
        await self.messages.get_message(
            dc.GetMessageRequest(message_id=message_id, include_user=True, include_files=True)
        )

    async def page(self, conversation_id: str, page_size: int) -> int:
        reply = await self.messages.list_messages(
            dc.ListMessagesRequest(
                conversation_id=conversation_id, page=dc.PageRequest(page_size=page_size), include_user=True
            )
        )
        return len(reply.messages)

    async def send(self, conversation_id: str, contents: list[str], key: str) -> None:
        await self.messages.send_messages(
            dc.SendMessagesRequest(
                message=dc.NewMessage(
                    conversation_id=conversation_id,
                    author_id="bench-user",
                    content=text,
                    idempotency_key=f"{key}-{i}",
                )
            )
            for i, text in enumerate(contents)
        )

    async def stream(self, conversation_id: str) -> int:
        count = 0
        async for _ in self.messages.stream_messages(
            dc.StreamMessagesRequest(conversation_id=conversation_id)
        ):
            count += 1
        return count

    async def complete(self, conversation_id: str, prompt: str) -> int:
        count = 0
        request = dc.StreamCompletionRequest(conversation_id=conversation_id, prompt=prompt)
        async for _ in self.ai.stream_completion(request):
            count += 1
        return count

    async def close(self) -> None:
        self.channel.close()


class Pb2Transport:
    """grpclib with the SDK's ``_pb2`` classes and grpclib stubs."""

    name = "pb2"

    def __init__(self, host: str, port: int) -> None:
        self.channel = Channel(host, port)
        self.messages = message_service_grpc.MessageServiceStub(self.channel)
        self.ai = ai_service_grpc.AIServiceStub(self.channel)

    async def get(self, message_id: str) -> None:
        request = pb.GetMessageRequest(message_id=message_id, include_user=True, include_files=True)
        await self.messages.GetMessage(request, timeout=TIMEOUT)

    async def page(self, conversation_id: str, page_size: int) -> int:
        request = pb.ListMessagesRequest(conversation_id=conversation_id, include_user=True)
        request.page.page_size = page_size
        reply = await self.messages.ListMessages(request, timeout=TIMEOUT)
        return len(reply.messages)

    async def send(self, conversation_id: str, contents: list[str], key: str) -> None:
        async with self.messages.SendMessages.open(timeout=TIMEOUT) as stream:
            for request in _new_messages(conversation_id, contents, key):
                await stream.send_message(request)
            await stream.end()
            await stream.recv_message()

    async def stream(self, conversation_id: str) -> int:
        count = 0
        request = pb.StreamMessagesRequest(conversation_id=conversation_id)
        async with self.messages.StreamMessages.open(timeout=TIMEOUT) as stream:
            await stream.send_message(request, end=True)
            async for _ in stream:
                count += 1
        return count

    async def complete(self, conversation_id: str, prompt: str) -> int:
        count = 0
        request = ai_service_pb2.StreamCompletionRequest(conversation_id=conversation_id, prompt=prompt)
        async with self.ai.StreamCompletion.open(timeout=TIMEOUT) as stream:
            await stream.send_message(request, end=True)
            async for _ in stream:
                count += 1
        return count

    async def close(self) -> None:
        self.channel.close()


class Pb2GzipTransport(Pb2Transport):
    """The ``_pb2`` client over the SDK's ``connect``, compressing with gzip (messages from 512 bytes)."""

    name = "pb2-gzip"
    min_bytes = DEFAULT_MIN_BYTES

    def __init__(self, host: str, port: int) -> None:
        self.channel = connect(f"{host}:{port}", compression="gzip", compress_min_bytes=self.min_bytes)
        self.messages = message_service_grpc.MessageServiceStub(self.channel)
        self.ai = ai_service_grpc.AIServiceStub(self.channel)


class GrpcioTransport:
    """The official grpcio asyncio client, with the ``_pb2`` classes."""

    name = "grpcio"

    def __init__(self, host: str, port: int) -> None:
        self.channel = grpc.aio.insecure_channel(f"{host}:{port}")

        def method(kind: str, path: str, request: type[Message], reply: type[Message]) -> Any:
            factory = getattr(self.channel, kind)
            return factory(
                path, request_serializer=request.SerializeToString, response_deserializer=reply.FromString
            )

        service = "/chat.v1.MessageService/"
        self._get = method("unary_unary", service + "GetMessage", pb.GetMessageRequest, pb.GetMessageResponse)
        self._list = method(
            "unary_unary", service + "ListMessages", pb.ListMessagesRequest, pb.ListMessagesResponse
        )
        self._send = method(
            "stream_unary", service + "SendMessages", pb.SendMessagesRequest, pb.SendMessagesResponse
        )
        self._stream = method(
            "unary_stream", service + "StreamMessages", pb.StreamMessagesRequest, pb.StreamMessagesResponse
        )
        self._complete = method(
            "unary_stream",
            "/chat.v1.AIService/StreamCompletion",
            ai_service_pb2.StreamCompletionRequest,
            ai_service_pb2.StreamCompletionResponse,
        )

    async def get(self, message_id: str) -> None:
        request = pb.GetMessageRequest(message_id=message_id, include_user=True, include_files=True)
        await self._get(request, timeout=TIMEOUT)

    async def page(self, conversation_id: str, page_size: int) -> int:
        request = pb.ListMessagesRequest(conversation_id=conversation_id, include_user=True)
        request.page.page_size = page_size
        reply = await self._list(request, timeout=TIMEOUT)
        return len(reply.messages)

    async def send(self, conversation_id: str, contents: list[str], key: str) -> None:
        await self._send(iter(_new_messages(conversation_id, contents, key)), timeout=TIMEOUT)

    async def stream(self, conversation_id: str) -> int:
        count = 0
        async for _ in self._stream(
            pb.StreamMessagesRequest(conversation_id=conversation_id), timeout=TIMEOUT
        ):
            count += 1
        return count

    async def complete(self, conversation_id: str, prompt: str) -> int:
        count = 0
        request = ai_service_pb2.StreamCompletionRequest(conversation_id=conversation_id, prompt=prompt)
        async for _ in self._complete(request, timeout=TIMEOUT):
            count += 1
        return count

    async def close(self) -> None:
        await self.channel.close()


class HttpJsonTransport:
    """The pre-ADR baseline's client: HTTP/1.1 keep-alive with ProtoJSON bodies, parsed into ``_pb2``."""

    name = "http-json"
    accept_encoding = "identity"  # aiohttp would ask for gzip: the baseline is uncompressed
    compress_requests = False

    def __init__(self, host: str, port: int) -> None:
        self.base = f"http://{host}:{port}"
        self.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=100, force_close=False),
            timeout=aiohttp.ClientTimeout(total=TIMEOUT),
            headers={"Accept-Encoding": self.accept_encoding},
        )

    def _body(self, body: object) -> tuple[bytes, dict[str, str]]:
        data = json.dumps(body, separators=(",", ":")).encode()
        if self.compress_requests and len(data) >= DEFAULT_MIN_BYTES:
            return gzip.compress(data, compresslevel=1), {**_JSON, "Content-Encoding": "gzip"}
        return data, _JSON

    async def _call(self, path: str, body: object, reply_type: type[Message]) -> Message:
        data, headers = self._body(body)
        async with self.session.post(self.base + path, data=data, headers=headers) as response:
            payload = await response.read()
            if response.status != 200:
                raise RuntimeError(f"{path} answered HTTP {response.status}: {payload[:200]!r}")
        return json_format.Parse(payload, reply_type())

    async def _lines(self, path: str, body: object, reply_type: type[Message]) -> int:
        count = 0
        data, headers = self._body(body)
        async with self.session.post(self.base + path, data=data, headers=headers) as response:
            if response.status != 200:
                raise RuntimeError(f"{path} answered HTTP {response.status}")
            async for line in response.content:
                if line.strip():
                    json_format.Parse(line, reply_type())
                    count += 1
        return count

    async def get(self, message_id: str) -> None:
        body = {"messageId": message_id, "includeUser": True, "includeFiles": True}
        await self._call("/chat.v1.MessageService/GetMessage", body, pb.GetMessageResponse)

    async def page(self, conversation_id: str, page_size: int) -> int:
        body = {"conversationId": conversation_id, "page": {"pageSize": page_size}, "includeUser": True}
        reply = await self._call("/chat.v1.MessageService/ListMessages", body, pb.ListMessagesResponse)
        assert isinstance(reply, pb.ListMessagesResponse)
        return len(reply.messages)

    async def send(self, conversation_id: str, contents: list[str], key: str) -> None:
        body = [json_format.MessageToDict(m) for m in _new_messages(conversation_id, contents, key)]
        await self._call("/chat.v1.MessageService/SendMessages", body, pb.SendMessagesResponse)

    async def stream(self, conversation_id: str) -> int:
        body = {"conversationId": conversation_id}
        return await self._lines("/chat.v1.MessageService/StreamMessages", body, pb.StreamMessagesResponse)

    async def complete(self, conversation_id: str, prompt: str) -> int:
        body = {"conversationId": conversation_id, "prompt": prompt}
        return await self._lines(
            "/chat.v1.AIService/StreamCompletion", body, ai_service_pb2.StreamCompletionResponse
        )

    async def close(self) -> None:
        await self.session.close()


class HttpJsonGzipTransport(HttpJsonTransport):
    """The baseline as a deployment behind gzip runs it: gzip replies, and gzip request bodies from 512 bytes.

    A reply stream (NDJSON) is one gzip stream across its messages, as a proxy compresses it.
    """

    name = "http-json-gzip"
    accept_encoding = "gzip"
    compress_requests = True


class GatewayTransport(HttpJsonTransport):
    """The external gateway's REST routes (``google.api.http``) and Server-Sent Events, over aiohttp."""

    name = "gateway"

    async def _read(self, method: str, path: str, reply_type: type[Message], **kwargs: Any) -> Message:
        async with self.session.request(method, self.base + path, **kwargs) as response:
            payload = await response.read()
            if response.status != 200:
                raise RuntimeError(f"{path} answered HTTP {response.status}: {payload[:200]!r}")
        return json_format.Parse(payload, reply_type())

    async def _events(self, method: str, path: str, reply_type: type[Message], **kwargs: Any) -> int:
        """Parse every ``message`` event into ``reply_type`` until ``end``; an ``error`` event raises."""
        count = 0
        event = "message"
        async with self.session.request(method, self.base + path, **kwargs) as response:
            if response.status != 200:
                raise RuntimeError(f"{path} answered HTTP {response.status}")
            async for raw in response.content:
                line = raw.rstrip(b"\r\n")
                if line.startswith(b"event:"):
                    event = line[6:].strip().decode()
                elif line.startswith(b"data:"):
                    if event == "end":
                        return count
                    if event == "error":
                        raise RuntimeError(f"{path} ended with an error event: {line[5:205]!r}")
                    if event == "message":
                        json_format.Parse(line[5:], reply_type())
                        count += 1
                elif not line:
                    event = "message"
        raise RuntimeError(f"{path} closed before its end event")

    async def get(self, message_id: str) -> None:
        query = {"includeUser": "true", "includeFiles": "true"}
        await self._read("GET", f"/v1/messages/{message_id}", pb.GetMessageResponse, params=query)

    async def page(self, conversation_id: str, page_size: int) -> int:
        query = {"page.pageSize": str(page_size), "includeUser": "true"}
        path = f"/v1/conversations/{conversation_id}/messages"
        reply = await self._read("GET", path, pb.ListMessagesResponse, params=query)
        assert isinstance(reply, pb.ListMessagesResponse)
        return len(reply.messages)

    async def send(self, conversation_id: str, contents: list[str], key: str) -> None:
        body = [json_format.MessageToDict(m) for m in _new_messages(conversation_id, contents, key)]
        data = json.dumps(body, separators=(",", ":"))
        await self._read("POST", "/v1/messages:send", pb.SendMessagesResponse, data=data, headers=_JSON)

    async def stream(self, conversation_id: str) -> int:
        path = f"/v1/conversations/{conversation_id}/messages:stream"
        return await self._events("GET", path, pb.StreamMessagesResponse)

    async def complete(self, conversation_id: str, prompt: str) -> int:
        data = json.dumps({"conversationId": conversation_id, "prompt": prompt}, separators=(",", ":"))
        return await self._events(
            "POST",
            "/v1/completions:stream",
            ai_service_pb2.StreamCompletionResponse,
            data=data,
            headers=_JSON,
        )


_JSON = {"Content-Type": "application/json"}

Factory = Callable[[str, int], Transport]


def gateway_command(upstream_port: int) -> list[str]:
    """``chat-gateway serve`` on 127.0.0.1, port 0, in front of chat-services at ``upstream_port``."""
    return [
        *(sys.executable, "-m", "chat_gateway", "serve", "--host", "127.0.0.1", "--port", "0"),
        *("--upstream-port", str(upstream_port), "--log-level", "WARNING"),
    ]


# The external gateway: a factory of a Transport speaking to it, and the command that starts it in
# front of the run's chat-services (given that server's port); the command prints ``port N``.
GATEWAY_HOOK: Factory | None = GatewayTransport
GATEWAY_COMMAND: Callable[[int], list[str]] | None = gateway_command
