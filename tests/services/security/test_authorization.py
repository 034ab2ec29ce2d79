"""Who may see what, method by method, with authentication on.

Written from the specification (services/README.md, "Who may see what"), not from the
server's own table: for every method of every service, a member or owner is allowed, an
outsider holding every scope of the method is refused, an admin service is allowed, and
nothing of the refused data appears in the outsider's reply, the error text, a log line
or a metric label.
"""

from __future__ import annotations

import asyncio
import logging
import urllib.request
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeAlias

import pytest
from grpclib.client import Channel
from grpclib.const import Status
from grpclib.exceptions import GRPCError

from chat.v1 import (
    ai_service_pb2,
    conversation_service_pb2,
    message_service_pb2,
    plugin_service_pb2,
    rag_service_pb2,
)
from chat.v1.ai_service_grpc import AIServiceStub
from chat.v1.conversation_service_grpc import ConversationServiceStub
from chat.v1.message_service_grpc import MessageServiceStub
from chat.v1.plugin_service_grpc import PluginServiceStub
from chat.v1.rag_service_grpc import RAGServiceStub
from chat_services.server import App

from ..clients import channel
from ..conftest import both_backends, running
from .conftest import ADMIN_TOKEN, Issuer, secured_config
from .test_authentication import chat_methods, open_call

# What alice keeps to herself; none of it may reach bob by any path.
SECRET_MESSAGE = "My bank PIN is 4711 and nobody else may know it."
SECRET_DOCUMENT = "The CEO salary is 2.4 million dollars per year. Quarterly bonus plans follow."
# Whole phrases: a bare "4711" also turns up inside a metrics timestamp (1.7965930268347113e+09).
SECRET_MARKERS = ("PIN is 4711", "2.4 million dollars", "Quarterly bonus")
CONVERSATION = "c-alice"
DOCUMENT = "doc-alice"
STEP = 15.0
Visibility: TypeAlias = rag_service_pb2.DocumentVisibility.ValueType


@dataclass
class World:
    """The running server, alice's data, and a bearer token per caller."""

    app: App
    opened: Channel
    alice: str
    bob: str
    message_id: str

    def metadata(self, token: str) -> dict[str, str]:
        return {"authorization": f"Bearer {token}"}


@pytest.fixture
async def world(tmp_path: Path, issuer: Issuer, database: str) -> AsyncIterator[World]:
    """A secured server where alice owns a conversation with a secret and a private document."""
    config = secured_config(tmp_path, issuer, database=database, metrics_port=0, completion_chunk_delay=0.0)
    alice, bob = issuer.token("alice"), issuer.token("bob")
    async with running(config) as app, channel(app.port) as opened:
        made = World(app, opened, alice, bob, "")
        await ConversationServiceStub(opened).CreateConversation(
            conversation_service_pb2.CreateConversationRequest(conversation_id=CONVERSATION),
            metadata=made.metadata(alice),
        )
        sent = await send(made, alice, "alice", "k-secret", SECRET_MESSAGE)
        made.message_id = sent.messages[0].id
        await ingest(made, alice, DOCUMENT, SECRET_DOCUMENT)
        yield made


async def send(
    world: World, token: str, author: str, key: str, content: str, conversation: str = CONVERSATION
) -> message_service_pb2.SendMessagesResponse:
    new = message_service_pb2.NewMessage(
        idempotency_key=key, conversation_id=conversation, author_id=author, content=content
    )
    return await MessageServiceStub(world.opened).SendMessages(
        [message_service_pb2.SendMessagesRequest(message=new)], metadata=world.metadata(token), timeout=STEP
    )


async def ingest(
    world: World,
    token: str,
    document_id: str,
    text: str,
    visibility: Visibility = rag_service_pb2.DOCUMENT_VISIBILITY_UNSPECIFIED,
) -> rag_service_pb2.IngestDocumentResponse:
    header = rag_service_pb2.DocumentHeader(document_id=document_id, title="t", visibility=visibility)
    return await RAGServiceStub(world.opened).IngestDocument(
        [rag_service_pb2.IngestDocumentRequest(header=header, text=text)],
        metadata=world.metadata(token),
        timeout=STEP,
    )


async def chat(
    world: World, token: str, user: str, content: str
) -> list[message_service_pb2.ChatStreamResponse]:
    """Join alice's conversation as ``user``, post, and collect what comes back."""
    stub = MessageServiceStub(world.opened)
    received = []
    async with stub.ChatStream.open(metadata=world.metadata(token), timeout=STEP) as stream:
        join = message_service_pb2.ChatJoin(conversation_id=CONVERSATION, user_id=user)
        await stream.send_message(message_service_pb2.ChatStreamRequest(join=join))
        new = message_service_pb2.NewMessage(
            idempotency_key=f"chat-{user}", conversation_id=CONVERSATION, author_id=user, content=content
        )
        await stream.send_message(message_service_pb2.ChatStreamRequest(send=new), end=True)
        async for event in stream:
            received.append(event)
    return received


# One call per method: (world, token, user) -> reply. The user is whom the token names.
Call = Callable[[World, str, str], Awaitable[object]]


async def get_message(world: World, token: str, user: str) -> object:
    request = message_service_pb2.GetMessageRequest(message_id=world.message_id)
    return await MessageServiceStub(world.opened).GetMessage(request, metadata=world.metadata(token))


async def list_messages(world: World, token: str, user: str) -> object:
    request = message_service_pb2.ListMessagesRequest(conversation_id=CONVERSATION)
    return await MessageServiceStub(world.opened).ListMessages(request, metadata=world.metadata(token))


async def stream_messages(world: World, token: str, user: str) -> object:
    request = message_service_pb2.StreamMessagesRequest(conversation_id=CONVERSATION)
    return await MessageServiceStub(world.opened).StreamMessages(request, metadata=world.metadata(token))


async def send_messages(world: World, token: str, user: str) -> object:
    return await send(world, token, user, f"k-{user}", "hello")


async def edit_message(world: World, token: str, user: str) -> object:
    # Members edit their own messages: write one first when the caller may.
    try:
        own = (await send(world, token, user, f"own-{user}", "draft")).messages[0].id
    except GRPCError:
        own = world.message_id  # an outsider cannot post: try alice's message instead
    request = message_service_pb2.EditMessageRequest(message_id=own, editor_id=user, content="edited")
    return await MessageServiceStub(world.opened).EditMessage(request, metadata=world.metadata(token))


async def chat_stream(world: World, token: str, user: str) -> object:
    return await chat(world, token, user, "hi from the stream")


async def add_member(world: World, token: str, user: str) -> object:
    request = conversation_service_pb2.AddMemberRequest(conversation_id=CONVERSATION, user_id="carol")
    return await ConversationServiceStub(world.opened).AddMember(request, metadata=world.metadata(token))


async def remove_member(world: World, token: str, user: str) -> object:
    stub = ConversationServiceStub(world.opened)
    add = conversation_service_pb2.AddMemberRequest(conversation_id=CONVERSATION, user_id="dave")
    await stub.AddMember(add, metadata=world.metadata(world.alice))  # adding again is a no-op
    request = conversation_service_pb2.RemoveMemberRequest(conversation_id=CONVERSATION, user_id="dave")
    return await stub.RemoveMember(request, metadata=world.metadata(token))


async def list_members(world: World, token: str, user: str) -> object:
    request = conversation_service_pb2.ListMembersRequest(conversation_id=CONVERSATION)
    return await ConversationServiceStub(world.opened).ListMembers(request, metadata=world.metadata(token))


async def complete(world: World, token: str, user: str) -> object:
    request = ai_service_pb2.CompleteRequest(prompt="What is the PIN?", conversation_id=CONVERSATION)
    return await AIServiceStub(world.opened).Complete(request, metadata=world.metadata(token))


async def stream_completion(world: World, token: str, user: str) -> object:
    request = ai_service_pb2.StreamCompletionRequest(prompt="What is the PIN?", conversation_id=CONVERSATION)
    return await AIServiceStub(world.opened).StreamCompletion(request, metadata=world.metadata(token))


async def delete_document(world: World, token: str, user: str) -> object:
    request = rag_service_pb2.DeleteDocumentRequest(document_id=DOCUMENT)
    return await RAGServiceStub(world.opened).DeleteDocument(request, metadata=world.metadata(token))


async def replace_document(world: World, token: str, user: str) -> object:
    # Replacing is delete then ingest under the same ID: only the owner may do either.
    await delete_document(world, token, user)
    return await ingest(world, token, DOCUMENT, "replaced text")


# method -> (call, the outsider's status). Derived from the specification, not the server.
REFUSED: dict[str, tuple[Call, Status]] = {
    "MessageService.GetMessage": (get_message, Status.NOT_FOUND),
    "MessageService.ListMessages": (list_messages, Status.NOT_FOUND),
    "MessageService.StreamMessages": (stream_messages, Status.NOT_FOUND),
    "MessageService.SendMessages": (send_messages, Status.NOT_FOUND),
    "MessageService.EditMessage": (edit_message, Status.NOT_FOUND),
    "MessageService.ChatStream": (chat_stream, Status.NOT_FOUND),
    "ConversationService.AddMember": (add_member, Status.NOT_FOUND),
    "ConversationService.RemoveMember": (remove_member, Status.NOT_FOUND),
    "ConversationService.ListMembers": (list_members, Status.NOT_FOUND),
    "AIService.Complete": (complete, Status.NOT_FOUND),
    "AIService.StreamCompletion": (stream_completion, Status.NOT_FOUND),
    "RAGService.DeleteDocument": (delete_document, Status.NOT_FOUND),
    "RAGService.IngestDocument": (replace_document, Status.NOT_FOUND),
}


def assert_secret_free(text: str) -> None:
    for marker in SECRET_MARKERS:
        assert marker not in text, f"{marker!r} leaked: {text[:300]}"


def scrape(world: World) -> str:
    endpoint = world.app.interceptors.metrics_endpoint if world.app.interceptors else None
    assert endpoint is not None
    with urllib.request.urlopen(f"http://127.0.0.1:{endpoint.port}/metrics", timeout=10) as response:
        return str(response.read().decode())


@pytest.mark.parametrize("method", sorted(REFUSED))
async def test_an_outsider_with_every_scope_is_refused_and_sees_nothing(
    world: World, method: str, caplog: pytest.LogCaptureFixture
) -> None:
    call, status = REFUSED[method]
    caplog.set_level(logging.DEBUG, logger="chat_services")
    with pytest.raises(GRPCError) as refused:
        await asyncio.wait_for(call(world, world.bob, "bob"), STEP)
    assert refused.value.status is status, (refused.value.status, refused.value.message)
    assert_secret_free(f"{refused.value.message} {refused.value.details}")
    assert_secret_free(
        " ".join(
            r.getMessage() + str(r.__dict__) for r in caplog.records if r.name.startswith("chat_services")
        )
    )
    assert_secret_free(scrape(world))
    # What alice owns is untouched: her message and her document are still hers alone.
    listed = await list_messages(world, world.alice, "alice")
    assert SECRET_MESSAGE in str(listed)
    found = await search(world, world.alice)
    assert any("salary" in p.text for p in found.passages)


@pytest.mark.parametrize("caller", ["member", "admin"])
@pytest.mark.parametrize("method", sorted(REFUSED))
async def test_the_member_and_an_admin_service_are_allowed(world: World, method: str, caller: str) -> None:
    call, _ = REFUSED[method]
    token = world.alice if caller == "member" else ADMIN_TOKEN  # the admin acts for alice
    reply = await asyncio.wait_for(call(world, token, "alice"), STEP)
    assert reply is not None


async def search(world: World, token: str) -> rag_service_pb2.SearchDocumentsResponse:
    request = rag_service_pb2.SearchDocumentsRequest(text="CEO salary bonus", top_k=20)
    return await RAGServiceStub(world.opened).SearchDocuments(request, metadata=world.metadata(token))


@both_backends
async def test_search_returns_only_documents_the_caller_may_read(world: World) -> None:
    await ingest(world, world.bob, "doc-bob", "Bob writes about the salary of interns in spring.")
    await ingest(
        world,
        world.alice,
        "doc-shared",
        "The shared salary policy is public.",
        rag_service_pb2.DOCUMENT_VISIBILITY_SHARED,
    )
    by_bob = {p.document_id for p in (await search(world, world.bob)).passages}
    by_alice = {p.document_id for p in (await search(world, world.alice)).passages}
    by_admin = {p.document_id for p in (await search(world, ADMIN_TOKEN)).passages}
    assert by_bob == {"doc-bob", "doc-shared"}
    assert by_alice == {DOCUMENT, "doc-shared"}
    assert by_admin == {DOCUMENT, "doc-shared", "doc-bob"}


@both_backends
async def test_a_shared_document_of_another_owner_is_visible_but_not_deletable(world: World) -> None:
    shared = await ingest(
        world, world.alice, "doc-shared", "A shared note.", rag_service_pb2.DOCUMENT_VISIBILITY_SHARED
    )
    assert shared.document.owner_id == "user:alice"
    assert shared.document.visibility == rag_service_pb2.DOCUMENT_VISIBILITY_SHARED
    with pytest.raises(GRPCError) as refused:
        await RAGServiceStub(world.opened).DeleteDocument(
            rag_service_pb2.DeleteDocumentRequest(document_id="doc-shared"),
            metadata=world.metadata(world.bob),
        )
    assert refused.value.status is Status.PERMISSION_DENIED
    with pytest.raises(GRPCError) as taken:
        await ingest(world, world.bob, "doc-shared", "mine now")
    assert taken.value.status is Status.PERMISSION_DENIED


async def test_retrieval_cites_only_documents_the_caller_may_read(world: World) -> None:
    stub = AIServiceStub(world.opened)
    request = ai_service_pb2.CompleteRequest(prompt="What is the CEO salary?", use_retrieval=True)
    for_bob = await stub.Complete(request, metadata=world.metadata(world.bob))
    assert_secret_free(for_bob.text)
    assert all(c.document_id != DOCUMENT for c in for_bob.citations)
    for_alice = await stub.Complete(request, metadata=world.metadata(world.alice))
    assert "2.4 million" in for_alice.text and any(c.document_id == DOCUMENT for c in for_alice.citations)


async def test_completion_needs_the_read_scopes_of_what_it_reads(world: World, issuer: Issuer) -> None:
    """ai:complete alone reads neither messages nor documents, even alice's own."""
    only_ai = issuer.token("alice", ["ai:complete"])
    stub = AIServiceStub(world.opened)
    history = ai_service_pb2.CompleteRequest(prompt="PIN?", conversation_id=CONVERSATION)
    retrieval = ai_service_pb2.CompleteRequest(prompt="CEO salary?", use_retrieval=True)
    for request, field in ((history, "conversation_id"), (retrieval, "use_retrieval")):
        with pytest.raises(GRPCError) as refused:
            await stub.Complete(request, metadata=world.metadata(only_ai))
        assert refused.value.status is Status.PERMISSION_DENIED
        assert field in str(refused.value.details)
    plain = await stub.Complete(
        ai_service_pb2.CompleteRequest(prompt="hello"), metadata=world.metadata(only_ai)
    )
    assert_secret_free(plain.text)


async def test_an_outsider_cannot_join_follow_or_post_live(world: World) -> None:
    stub = MessageServiceStub(world.opened)
    follow = message_service_pb2.StreamMessagesRequest(conversation_id=CONVERSATION, follow=True)
    with pytest.raises(GRPCError) as refused:
        await asyncio.wait_for(stub.StreamMessages(follow, metadata=world.metadata(world.bob)), STEP)
    assert refused.value.status is Status.NOT_FOUND
    with pytest.raises(GRPCError):
        await asyncio.wait_for(chat(world, world.bob, "bob", "let me in"), STEP)
    listed = await list_messages(world, world.alice, "alice")
    assert "let me in" not in str(listed)


@both_backends
async def test_a_removed_member_loses_access_and_an_added_one_gains_it(world: World) -> None:
    members = ConversationServiceStub(world.opened)
    add = conversation_service_pb2.AddMemberRequest(conversation_id=CONVERSATION, user_id="bob")
    added = await members.AddMember(add, metadata=world.metadata(world.alice))
    assert added.member.role == conversation_service_pb2.MEMBER_ROLE_MEMBER
    assert SECRET_MESSAGE in str(await list_messages(world, world.bob, "bob"))
    assert SECRET_MESSAGE in str(await get_message(world, world.bob, "bob"))
    listed = await list_members(world, world.bob, "bob")
    assert [m.user_id for m in listed.members] == ["alice", "bob"]  # type: ignore[attr-defined]
    # bob may not remove the owner, nor may he remove others; he may leave.
    for user in ("alice",):
        with pytest.raises(GRPCError):
            await members.RemoveMember(
                conversation_service_pb2.RemoveMemberRequest(conversation_id=CONVERSATION, user_id=user),
                metadata=world.metadata(world.bob),
            )
    left = await members.RemoveMember(
        conversation_service_pb2.RemoveMemberRequest(conversation_id=CONVERSATION, user_id="bob"),
        metadata=world.metadata(world.bob),
    )
    assert left.removed
    with pytest.raises(GRPCError) as refused:
        await list_messages(world, world.bob, "bob")
    assert refused.value.status is Status.NOT_FOUND
    # Membership is read afresh by every call, never cached: the very next GetMessage is refused.
    with pytest.raises(GRPCError) as hidden:
        await get_message(world, world.bob, "bob")
    assert hidden.value.status is Status.NOT_FOUND


@both_backends
async def test_a_conversation_nobody_made_is_made_by_its_first_writer(world: World) -> None:
    await send(world, world.bob, "bob", "b-1", "bob's own room", conversation="c-bob")
    listed = await ConversationServiceStub(world.opened).ListMembers(
        conversation_service_pb2.ListMembersRequest(conversation_id="c-bob"),
        metadata=world.metadata(world.bob),
    )
    assert [(m.user_id, m.role) for m in listed.members] == [
        ("bob", conversation_service_pb2.MEMBER_ROLE_OWNER)
    ]
    with pytest.raises(GRPCError) as refused:
        await MessageServiceStub(world.opened).ListMessages(
            message_service_pb2.ListMessagesRequest(conversation_id="c-bob"),
            metadata=world.metadata(world.alice),
        )
    assert refused.value.status is Status.NOT_FOUND


async def test_plugin_events_go_only_to_the_invoker_and_admins(world: World) -> None:
    stub = PluginServiceStub(world.opened)
    seen: dict[str, list[plugin_service_pb2.PluginEvent]] = {"bob": [], "admin": []}

    async def follow(name: str, token: str, count: int) -> None:
        async with stub.StreamPluginEvents.open(metadata=world.metadata(token), timeout=STEP) as stream:
            await stream.send_message(plugin_service_pb2.StreamPluginEventsRequest(), end=True)
            await stream.recv_initial_metadata()
            ready[name].set()
            async for reply in stream:
                seen[name].append(reply.event)
                if len(seen[name]) == count:
                    await stream.cancel()
                    return

    ready = {"bob": asyncio.Event(), "admin": asyncio.Event()}
    # bob sees only his own invocation's two events; the admin sees alice's two and bob's two.
    tasks = [
        asyncio.ensure_future(follow("bob", world.bob, 2)),
        asyncio.ensure_future(follow("admin", ADMIN_TOKEN, 4)),
    ]
    await asyncio.wait_for(asyncio.gather(*(event.wait() for event in ready.values())), STEP)
    secret = plugin_service_pb2.InvokePluginRequest(
        plugin_name="calculator", arguments={"expression": "PIN is 4711"}
    )
    with pytest.raises(GRPCError) as failed:
        await stub.InvokePlugin(secret, metadata=world.metadata(world.alice), timeout=STEP)
    assert failed.value.status is Status.INVALID_ARGUMENT, failed.value
    own = plugin_service_pb2.InvokePluginRequest(plugin_name="word_count", arguments={"text": "a b"})
    await stub.InvokePlugin(own, metadata=world.metadata(world.bob))
    await asyncio.wait_for(asyncio.gather(*tasks), STEP)
    assert len({e.invocation_id for e in seen["bob"]}) == 1
    assert all(e.plugin_name == "word_count" for e in seen["bob"])
    assert_secret_free(str(seen["bob"]))
    assert {e.plugin_name for e in seen["admin"]} == {"calculator", "word_count"}


# The specification's scope table, written out literally: a changed scope in the server's
# table fails here, whatever the server's own tests derive from it.
SPECIFIED_SCOPES = {
    "/chat.v1.MessageService/GetMessage": {"messages:read"},
    "/chat.v1.MessageService/ListMessages": {"messages:read"},
    "/chat.v1.MessageService/StreamMessages": {"messages:read"},
    "/chat.v1.MessageService/SendMessages": {"messages:write"},
    "/chat.v1.MessageService/EditMessage": {"messages:write"},
    "/chat.v1.MessageService/ChatStream": {"messages:read", "messages:write"},
    "/chat.v1.ConversationService/CreateConversation": {"messages:write"},
    "/chat.v1.ConversationService/AddMember": {"messages:write"},
    "/chat.v1.ConversationService/RemoveMember": {"messages:write"},
    "/chat.v1.ConversationService/ListMembers": {"messages:read"},
    "/chat.v1.AIService/Complete": {"ai:complete"},
    "/chat.v1.AIService/StreamCompletion": {"ai:complete"},
    "/chat.v1.RAGService/IngestDocument": {"documents:write"},
    "/chat.v1.RAGService/DeleteDocument": {"documents:write"},
    "/chat.v1.RAGService/SearchDocuments": {"documents:read"},
    "/chat.v1.PluginService/ListPlugins": {"plugins:read"},
    "/chat.v1.PluginService/StreamPluginEvents": {"plugins:read"},
    "/chat.v1.PluginService/InvokePlugin": {"plugins:invoke"},
}


def test_the_scope_table_is_the_specified_one() -> None:
    from chat_services.security.scopes import METHOD_SCOPES

    assert {method: set(scopes) for method, scopes in METHOD_SCOPES.items()} == SPECIFIED_SCOPES


@pytest.mark.parametrize("method", sorted(SPECIFIED_SCOPES))
async def test_each_specified_scope_is_required(world: World, issuer: Issuer, method: str) -> None:
    """A token lacking any one of a method's scopes is refused before the handler runs."""
    handler = chat_methods(world.app)[method]
    every_scope = {scope for scopes in SPECIFIED_SCOPES.values() for scope in scopes}
    for missing in sorted(SPECIFIED_SCOPES[method]):
        token = issuer.token("alice", sorted(every_scope - {missing}))
        with pytest.raises(GRPCError) as refused:
            await open_call(world.opened, method, handler, token)
        assert refused.value.status is Status.PERMISSION_DENIED, (method, missing)
        assert missing in (refused.value.message or "")


def test_the_documented_table_is_the_servers_one() -> None:
    """README's table and the docs site's JSON are written from the server's table, and current."""
    import json

    from chat_services.security.scopes import policy_rows, policy_table

    root = Path(__file__).resolve().parents[3]
    assert json.loads((root / "docs" / "authorization.json").read_text()) == policy_rows(), (
        "run: python -m chat_services.security.scopes --json > docs/authorization.json"
    )
    assert policy_table() in (root / "services" / "README.md").read_text()


async def test_a_method_missing_from_the_table_is_refused_to_everyone(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Deny by default: a method the server serves but the table lacks is refused, admins included."""
    from chat_services.security import scopes

    method = "/chat.v1.ConversationService/ListMembers"
    handler = chat_methods(world.app)[method]
    monkeypatch.delitem(scopes.METHOD_SCOPES, method)
    for token in (world.alice, ADMIN_TOKEN):
        with pytest.raises(GRPCError) as refused:
            await open_call(world.opened, method, handler, token)
        assert refused.value.status is Status.PERMISSION_DENIED
        assert "is not open to any caller" in (refused.value.message or "")
