"""The official stack as a second, independent client: grpcio with the `_pb2` target calls each service."""

from __future__ import annotations

from typing import Any

import grpc
import pytest
from google.protobuf import duration_pb2
from google.protobuf.message import Message

from chat.v1 import (
    ai_service_pb2,
    common_pb2,
    message_service_pb2,
    plugin_service_pb2,
    rag_service_pb2,
)
from chat_services.server import App


def _method(channel: grpc.aio.Channel, kind: str, path: str, response: type[Message]) -> Any:
    """grpcio's multi-callable of ``kind`` (``unary_unary``, ``stream_stream``...) for ``path``."""
    factory = getattr(channel, kind)
    return factory(
        path, request_serializer=lambda m: m.SerializeToString(), response_deserializer=response.FromString
    )


async def test_message_service_every_call_kind(app: App) -> None:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as channel:
        send = _method(
            channel,
            "stream_unary",
            "/chat.v1.MessageService/SendMessages",
            message_service_pb2.SendMessagesResponse,
        )
        requests = [
            message_service_pb2.SendMessagesRequest(
                message=message_service_pb2.NewMessage(
                    idempotency_key=f"k-{i}",
                    conversation_id="c-1",
                    author_id="u-1",
                    content=f"hello {i}",
                    files=[common_pb2.File(file_id=f"f-{i}", name="a.txt")],
                )
            )
            for i in range(3)
        ]
        sent = await send(iter(requests), timeout=10)
        assert [m.content for m in sent.messages] == ["hello 0", "hello 1", "hello 2"]

        get = _method(
            channel,
            "unary_unary",
            "/chat.v1.MessageService/GetMessage",
            message_service_pb2.GetMessageResponse,
        )
        got = await get(
            message_service_pb2.GetMessageRequest(message_id=sent.messages[1].id, include_files=True),
            timeout=10,
        )
        assert got.message.files[0].name == "a.txt"

        stream = _method(
            channel,
            "unary_stream",
            "/chat.v1.MessageService/StreamMessages",
            message_service_pb2.StreamMessagesResponse,
        )
        replay = [
            r.message.sequence
            async for r in stream(
                message_service_pb2.StreamMessagesRequest(conversation_id="c-1", after_sequence=1), timeout=10
            )
        ]
        assert replay == [2, 3]

        chat = _method(
            channel,
            "stream_stream",
            "/chat.v1.MessageService/ChatStream",
            message_service_pb2.ChatStreamResponse,
        )
        call = chat(timeout=10)
        await call.write(
            message_service_pb2.ChatStreamRequest(
                join=message_service_pb2.ChatJoin(conversation_id="c-2", user_id="u-1")
            )
        )
        await call.write(
            message_service_pb2.ChatStreamRequest(
                send=message_service_pb2.NewMessage(
                    idempotency_key="chat-1", conversation_id="c-2", author_id="u-1", content="live"
                )
            )
        )
        while True:
            event = await call.read()
            assert event is not grpc.aio.EOF
            if event.HasField("message"):
                break
        assert event.message.content == "live"
        await call.done_writing()

        with pytest.raises(grpc.aio.AioRpcError) as missing:
            await get(message_service_pb2.GetMessageRequest(message_id="absent"), timeout=10)
        assert missing.value.code() == grpc.StatusCode.NOT_FOUND


async def test_rag_and_ai_services(app: App) -> None:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as channel:
        ingest = _method(
            channel,
            "stream_unary",
            "/chat.v1.RAGService/IngestDocument",
            rag_service_pb2.IngestDocumentResponse,
        )
        header = rag_service_pb2.DocumentHeader(document_id="doc-1", title="Retries")
        document = await ingest(
            iter(
                [
                    rag_service_pb2.IngestDocumentRequest(
                        header=header, text="Retries use exponential backoff. "
                    ),
                    rag_service_pb2.IngestDocumentRequest(text="Deadlines bound every call."),
                ]
            ),
            timeout=10,
        )
        assert document.document.document_id == "doc-1"
        search = _method(
            channel,
            "unary_unary",
            "/chat.v1.RAGService/SearchDocuments",
            rag_service_pb2.SearchDocumentsResponse,
        )
        found = await search(
            rag_service_pb2.SearchDocumentsRequest(text="exponential backoff retries"), timeout=10
        )
        assert found.passages[0].document_id == "doc-1"

        complete = _method(
            channel,
            "unary_stream",
            "/chat.v1.AIService/StreamCompletion",
            ai_service_pb2.StreamCompletionResponse,
        )
        events = [
            e
            async for e in complete(
                ai_service_pb2.StreamCompletionRequest(
                    conversation_id="c-1", prompt="How do retries work?", use_retrieval=True
                ),
                timeout=20,
            )
        ]
        assert events[-1].HasField("done")
        assert all(e.HasField("chunk") for e in events[:-1])
        assert events[-1].done.usage.completion_tokens > 0

        delete = _method(
            channel,
            "unary_unary",
            "/chat.v1.RAGService/DeleteDocument",
            rag_service_pb2.DeleteDocumentResponse,
        )
        deleted = await delete(rag_service_pb2.DeleteDocumentRequest(document_id="doc-1"), timeout=10)
        assert deleted.deleted_chunk_count >= 1


async def test_plugin_service(app: App) -> None:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as channel:
        listing = _method(
            channel,
            "unary_unary",
            "/chat.v1.PluginService/ListPlugins",
            plugin_service_pb2.ListPluginsResponse,
        )
        names = {p.name for p in (await listing(plugin_service_pb2.ListPluginsRequest(), timeout=10)).plugins}
        assert {"word_count", "calculator", "summarize"} <= names
        invoke = _method(
            channel,
            "unary_unary",
            "/chat.v1.PluginService/InvokePlugin",
            plugin_service_pb2.InvokePluginResponse,
        )
        reply = await invoke(
            plugin_service_pb2.InvokePluginRequest(
                plugin_name="calculator",
                arguments={"expression": "6 * 7"},
                timeout=duration_pb2.Duration(seconds=20),
            ),
            timeout=30,
        )
        assert "42" in reply.output
