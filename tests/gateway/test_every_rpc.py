"""Every chat.v1 RPC over HTTP returns what the same call over gRPC returns, compared as ProtoJSON.

Each case makes the call both ways against the same services. Where two calls cannot
return identical data (a second SendMessages with the same keys is a retry; an edit
stamps a new time), the fields that legitimately differ are named in the case and
masked; everything else must match exactly.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from google.protobuf import json_format
from google.protobuf.message import Message
from grpclib.client import Channel

from chat.v1 import (
    ai_service_grpc,
    ai_service_pb2,
    common_pb2,
    conversation_service_grpc,
    conversation_service_pb2,
    message_service_grpc,
    message_service_pb2,
    plugin_service_grpc,
    plugin_service_pb2,
    rag_service_grpc,
    rag_service_pb2,
)
from chat_gateway.schema import rpcs
from chat_services.plugin.service import PluginService
from chat_services.server import App
from tests.gateway.clients import collect, next_message, receive_json, sse, websocket
from tests.services.clients import channel, until
from tests.services.conftest import hub_listeners, service_of

CONVERSATION = "c-every"
AUTHOR = "u-every"


@dataclass
class Ctx:
    """What a case needs: the services, a gRPC channel, the gateway's URL and an HTTP client."""

    app: App
    grpc: Channel
    url: str
    http: httpx.AsyncClient

    @property
    def messages(self) -> message_service_grpc.MessageServiceStub:
        return message_service_grpc.MessageServiceStub(self.grpc)

    @property
    def conversations(self) -> conversation_service_grpc.ConversationServiceStub:
        return conversation_service_grpc.ConversationServiceStub(self.grpc)

    @property
    def ai(self) -> ai_service_grpc.AIServiceStub:
        return ai_service_grpc.AIServiceStub(self.grpc)

    @property
    def rag(self) -> rag_service_grpc.RAGServiceStub:
        return rag_service_grpc.RAGServiceStub(self.grpc)

    @property
    def plugins(self) -> plugin_service_grpc.PluginServiceStub:
        return plugin_service_grpc.PluginServiceStub(self.grpc)

    async def ok(self, response: Awaitable[httpx.Response]) -> Any:
        reply = await response
        assert reply.status_code == 200, reply.text
        return reply.json()


def pj(message: Message) -> dict[str, Any]:
    """ProtoJSON of a gRPC reply, as the gateway writes it."""
    return json_format.MessageToDict(message)


def new_message(key: str, content: str = "hello there") -> message_service_pb2.SendMessagesRequest:
    return message_service_pb2.SendMessagesRequest(
        message=message_service_pb2.NewMessage(
            idempotency_key=key, conversation_id=CONVERSATION, author_id=AUTHOR, content=content
        )
    )


async def seed(ctx: Ctx) -> message_service_pb2.Message:
    """Store two messages over gRPC; return the first."""
    async with ctx.messages.SendMessages.open() as stream:
        await stream.send_message(new_message("seed-1", "the first message"))
        await stream.send_message(new_message("seed-2", "the second message"), end=True)
        reply = await stream.recv_message()
    assert reply is not None
    return reply.messages[0]


def masked(document: Any, paths: tuple[str, ...]) -> Any:
    """``document`` with each dotted path removed (on a copy)."""
    copy = json.loads(json.dumps(document))
    for path in paths:
        *parents, last = path.split(".")
        target = copy
        for name in parents:
            target = target.get(name, {})
        assert last in target, f"masked field {path} is absent: the mask is stale"
        del target[last]
    return copy


Pair = tuple[Any, Any]  # (over gRPC, over HTTP), both ProtoJSON


async def get_message(ctx: Ctx) -> Pair:
    first = await seed(ctx)
    grpc = await ctx.messages.GetMessage(
        message_service_pb2.GetMessageRequest(message_id=first.id, include_user=True)
    )
    http = await ctx.ok(ctx.http.get(f"/v1/messages/{first.id}", params={"includeUser": "true"}))
    assert http["message"]["content"] == "the first message"
    return pj(grpc), http


async def list_messages(ctx: Ctx) -> Pair:
    await seed(ctx)
    request = message_service_pb2.ListMessagesRequest(
        conversation_id=CONVERSATION, page=common_pb2.PageRequest(page_size=1), include_user=True
    )
    grpc = await ctx.messages.ListMessages(request)
    http = await ctx.ok(
        ctx.http.get(
            f"/v1/conversations/{CONVERSATION}/messages", params={"page.pageSize": "1", "includeUser": "true"}
        )
    )
    assert len(http["messages"]) == 1 and http["page"]["nextPageToken"]
    return pj(grpc), http


async def stream_messages(ctx: Ctx) -> Pair:
    await seed(ctx)
    request = message_service_pb2.StreamMessagesRequest(conversation_id=CONVERSATION, after_sequence=1)
    async with ctx.messages.StreamMessages.open() as stream:
        await stream.send_message(request, end=True)
        grpc = [pj(reply) async for reply in stream]
    async with sse(
        ctx.http, "GET", f"/v1/conversations/{CONVERSATION}/messages:stream?afterSequence=1"
    ) as source:
        http, ending = await collect(source)
    assert ending == "end" and len(http) == 1
    return grpc, http


async def send_messages(ctx: Ctx) -> Pair:
    body = [json_format.MessageToDict(new_message(key)) for key in ("send-1", "send-2")]
    http = await ctx.ok(ctx.http.post("/v1/messages:send", json=body))
    async with ctx.messages.SendMessages.open() as stream:
        for key in ("send-1", "send-2"):
            await stream.send_message(new_message(key))
        await stream.end()
        grpc = await stream.recv_message()
    assert grpc is not None
    # The gRPC call repeats the keys: a retry, which returns the stored messages and stores none.
    assert http["createdCount"] == 2 and grpc.created_count == 0
    return masked(pj(grpc), ()), masked(http, ("createdCount",))


async def chat_stream(ctx: Ctx) -> Pair:
    conversation = "c-live"
    async with (
        websocket(ctx.url, "/v1/chat:connect") as socket,
        ctx.messages.ChatStream.open() as stream,
    ):
        await socket.send(json.dumps({"join": {"conversationId": conversation, "userId": "u-web"}}))
        await until(lambda: hub_listeners(ctx.app, conversation) == 1)
        await stream.send_request()
        await stream.send_message(
            message_service_pb2.ChatStreamRequest(
                join=message_service_pb2.ChatJoin(conversation_id=conversation, user_id="u-grpc")
            )
        )
        await until(lambda: hub_listeners(ctx.app, conversation) == 2)
        await socket.send(
            json.dumps(
                {
                    "send": {
                        "idempotencyKey": "live-1",
                        "conversationId": conversation,
                        "authorId": "u-web",
                        "content": "hi",
                    }
                }
            )
        )
        http = await receive_json(socket)
        while "message" not in http:  # presence of the gRPC participant comes first
            http = await receive_json(socket)
        grpc = await stream.recv_message()
        while grpc is not None and not grpc.HasField("message"):
            grpc = await stream.recv_message()
        assert grpc is not None
        await stream.cancel()
    assert http["message"]["content"] == "hi"
    return pj(grpc), http


async def edit_message(ctx: Ctx) -> Pair:
    first = await seed(ctx)
    request = message_service_pb2.EditMessageRequest(message_id=first.id, editor_id=AUTHOR, content="edited")
    grpc = await ctx.messages.EditMessage(request)
    http = await ctx.ok(
        ctx.http.patch(f"/v1/messages/{first.id}", json={"editorId": AUTHOR, "content": "edited"})
    )
    # Each edit stamps its own time.
    return masked(pj(grpc), ("message.editedAt",)), masked(http, ("message.editedAt",))


async def stream_completion(ctx: Ctx) -> Pair:
    await seed(ctx)
    request = ai_service_pb2.StreamCompletionRequest(conversation_id=CONVERSATION, prompt="what was said?")
    async with ctx.ai.StreamCompletion.open() as stream:
        await stream.send_message(request, end=True)
        grpc = [pj(reply) async for reply in stream]
    async with sse(ctx.http, "POST", "/v1/completions:stream", json=pj(request)) as source:
        http, ending = await collect(source)
    assert ending == "end" and "done" in http[-1] and len(http) > 2
    return grpc, http


async def complete(ctx: Ctx) -> Pair:
    await seed(ctx)
    request = ai_service_pb2.CompleteRequest(
        conversation_id=CONVERSATION, prompt="what was said?", max_tokens=20
    )
    grpc = await ctx.ai.Complete(request)
    http = await ctx.ok(ctx.http.post("/v1/completions", json=pj(request)))
    assert http["text"]
    return pj(grpc), http


async def ingest_document(ctx: Ctx) -> Pair:
    async def grpc_ingest(document_id: str) -> rag_service_pb2.IngestDocumentResponse:
        async with ctx.rag.IngestDocument.open() as stream:
            for request in ingest_requests(document_id):
                await stream.send_message(request)
            await stream.end()
            reply = await stream.recv_message()
        assert reply is not None
        return reply

    grpc = await grpc_ingest("d-grpc")
    http = await ctx.ok(ctx.http.post("/v1/documents", json=[pj(r) for r in ingest_requests("d-http")]))
    assert http["document"]["documentId"] == "d-http"
    # Two documents with the same content: only the ID and the time stored differ.
    paths = ("document.documentId", "document.createdAt")
    return masked(pj(grpc), paths), masked(http, paths)


def ingest_requests(document_id: str) -> list[rag_service_pb2.IngestDocumentRequest]:
    header = rag_service_pb2.DocumentHeader(document_id=document_id, title="Otters", metadata={"lang": "en"})
    return [
        rag_service_pb2.IngestDocumentRequest(header=header, text="Sea otters hold hands while they sleep. "),
        rag_service_pb2.IngestDocumentRequest(text="They use stones as tools to open shells."),
    ]


async def ingest_both(ctx: Ctx) -> None:
    for document_id in ("d-1", "d-2"):
        async with ctx.rag.IngestDocument.open() as stream:
            for request in ingest_requests(document_id):
                await stream.send_message(request)
            await stream.end()
            await stream.recv_message()


async def delete_document(ctx: Ctx) -> Pair:
    await ingest_both(ctx)
    grpc = await ctx.rag.DeleteDocument(rag_service_pb2.DeleteDocumentRequest(document_id="d-1"))
    http = await ctx.ok(ctx.http.delete("/v1/documents/d-2"))
    assert http["deletedChunkCount"] >= 1
    return pj(grpc), http


async def create_conversation(ctx: Ctx) -> Pair:
    # An open server has no caller to own a conversation: the first member named owns it.
    grpc = await ctx.conversations.CreateConversation(
        conversation_service_pb2.CreateConversationRequest(
            conversation_id="c-grpc", member_ids=[AUTHOR, "u-2"]
        )
    )
    http = await ctx.ok(
        ctx.http.post("/v1/conversations", json={"conversationId": "c-http", "memberIds": [AUTHOR, "u-2"]})
    )
    assert http["conversation"]["ownerId"] == AUTHOR and http["conversation"]["memberCount"] == 2
    paths = ("conversation.conversationId", "conversation.createdAt")
    return masked(pj(grpc), paths), masked(http, paths)


async def add_member(ctx: Ctx) -> Pair:
    await seed(ctx)
    grpc = await ctx.conversations.AddMember(
        conversation_service_pb2.AddMemberRequest(conversation_id=CONVERSATION, user_id="u-a")
    )
    http = await ctx.ok(ctx.http.post(f"/v1/conversations/{CONVERSATION}/members", json={"userId": "u-b"}))
    assert http["member"]["role"] == "MEMBER_ROLE_MEMBER"
    paths = ("member.userId", "member.joinedAt")
    return masked(pj(grpc), paths), masked(http, paths)


async def remove_member(ctx: Ctx) -> Pair:
    await seed(ctx)
    for user in ("u-a", "u-b"):
        await ctx.conversations.AddMember(
            conversation_service_pb2.AddMemberRequest(conversation_id=CONVERSATION, user_id=user)
        )
    grpc = await ctx.conversations.RemoveMember(
        conversation_service_pb2.RemoveMemberRequest(conversation_id=CONVERSATION, user_id="u-a")
    )
    http = await ctx.ok(ctx.http.delete(f"/v1/conversations/{CONVERSATION}/members/u-b"))
    assert http == {"removed": True}
    return pj(grpc), http


async def list_members(ctx: Ctx) -> Pair:
    await seed(ctx)
    request = conversation_service_pb2.ListMembersRequest(
        conversation_id=CONVERSATION, page=common_pb2.PageRequest(page_size=1)
    )
    grpc = await ctx.conversations.ListMembers(request)
    http = await ctx.ok(
        ctx.http.get(f"/v1/conversations/{CONVERSATION}/members", params={"page.pageSize": "1"})
    )
    assert [m["userId"] for m in http["members"]] == [AUTHOR]
    return pj(grpc), http


async def search_documents(ctx: Ctx) -> Pair:
    await ingest_both(ctx)
    request = rag_service_pb2.SearchDocumentsRequest(
        text="otters sleeping", top_k=3, document_ids=["d-1", "d-2"]
    )
    grpc = await ctx.rag.SearchDocuments(request)
    http = await ctx.ok(ctx.http.post("/v1/documents:search", json=pj(request)))
    assert http["passages"]
    return pj(grpc), http


async def list_plugins(ctx: Ctx) -> Pair:
    grpc = await ctx.plugins.ListPlugins(plugin_service_pb2.ListPluginsRequest())
    http = await ctx.ok(ctx.http.get("/v1/plugins"))
    assert {plugin["name"] for plugin in http["plugins"]} >= {"word_count", "calculator"}
    return pj(grpc), http


async def invoke_plugin(ctx: Ctx) -> Pair:
    request = plugin_service_pb2.InvokePluginRequest(
        plugin_name="word_count", arguments={"text": "one two three"}
    )
    grpc = await ctx.plugins.InvokePlugin(request)
    http = await ctx.ok(
        ctx.http.post("/v1/plugins/word_count:invoke", json={"arguments": {"text": "one two three"}})
    )
    # Each invocation has its own ID and running time.
    paths = ("invocationId", "elapsed")
    return masked(pj(grpc), paths), masked(http, paths)


async def stream_plugin_events(ctx: Ctx) -> Pair:
    events = service_of(ctx.app, PluginService).events
    request = plugin_service_pb2.StreamPluginEventsRequest(plugin_names=["word_count"])
    async with (
        sse(ctx.http, "GET", "/v1/plugins:streamEvents", params={"pluginNames": "word_count"}) as source,
        ctx.plugins.StreamPluginEvents.open() as stream,
    ):
        await stream.send_message(request, end=True)
        await until(lambda: events.subscriber_count == 2)
        await ctx.plugins.InvokePlugin(
            plugin_service_pb2.InvokePluginRequest(plugin_name="word_count", arguments={"text": "a b"})
        )
        grpc = await stream.recv_message()
        http = await next_message(source)
        await stream.cancel()
    assert grpc is not None
    # Both subscribers see the very same event.
    assert http["event"]["type"] == "PLUGIN_EVENT_TYPE_INVOCATION_STARTED"
    return pj(grpc), http


CASES: dict[str, Callable[[Ctx], Awaitable[Pair]]] = {
    "MessageService_GetMessage": get_message,
    "MessageService_ListMessages": list_messages,
    "MessageService_StreamMessages": stream_messages,
    "MessageService_SendMessages": send_messages,
    "MessageService_ChatStream": chat_stream,
    "MessageService_EditMessage": edit_message,
    "ConversationService_CreateConversation": create_conversation,
    "ConversationService_AddMember": add_member,
    "ConversationService_RemoveMember": remove_member,
    "ConversationService_ListMembers": list_members,
    "AIService_StreamCompletion": stream_completion,
    "AIService_Complete": complete,
    "RAGService_IngestDocument": ingest_document,
    "RAGService_DeleteDocument": delete_document,
    "RAGService_SearchDocuments": search_documents,
    "PluginService_ListPlugins": list_plugins,
    "PluginService_InvokePlugin": invoke_plugin,
    "PluginService_StreamPluginEvents": stream_plugin_events,
}


def test_every_rpc_of_the_schema_has_a_route_and_a_case() -> None:
    from google.protobuf import descriptor_pool

    names = {rpc.operation_id for rpc in rpcs()}
    in_schema = set()
    for module in (
        message_service_pb2,
        conversation_service_pb2,
        ai_service_pb2,
        rag_service_pb2,
        plugin_service_pb2,
    ):
        for service in module.DESCRIPTOR.services_by_name.values():
            in_schema |= {f"{service.name}_{method.name}" for method in service.methods}
    assert descriptor_pool.Default() is not None
    assert names == in_schema, "every RPC has a google.api.http route"
    assert set(CASES) == names, "every routed RPC is walked below"


@pytest.mark.parametrize("operation", sorted(CASES))
async def test_http_returns_what_grpc_returns(
    operation: str, app: App, gateway_url: str, http: httpx.AsyncClient
) -> None:
    async with channel(app.port) as grpc_channel:
        ctx = Ctx(app, grpc_channel, gateway_url, http)
        over_grpc, over_http = await asyncio.wait_for(CASES[operation](ctx), 60)
    assert over_http == over_grpc
