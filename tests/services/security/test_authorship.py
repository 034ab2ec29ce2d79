"""The caller's identity, not a request field, decides who writes and edits a message."""

from __future__ import annotations

from grpclib.client import Channel
from grpclib.const import Status

from chat.v1 import message_service_pb2
from chat.v1.conversation_service_grpc import ConversationServiceStub
from chat.v1.conversation_service_pb2 import AddMemberRequest
from chat.v1.message_service_grpc import MessageServiceStub
from chat_services.server import App

from ..clients import channel, expect_status
from .conftest import IMPERSONATOR_TOKEN, Issuer


def bearer(token: str) -> dict[str, str]:
    """Call metadata carrying ``token``."""
    return {"authorization": f"Bearer {token}"}


async def send(
    opened: Channel, token: str, author: str, key: str
) -> message_service_pb2.SendMessagesResponse:
    """Send one message as ``author`` with ``token``."""
    stub = MessageServiceStub(opened)
    async with stub.SendMessages.open(metadata=bearer(token)) as stream:
        new = message_service_pb2.NewMessage(
            idempotency_key=key, conversation_id="c-1", author_id=author, content="hi"
        )
        await stream.send_message(message_service_pb2.SendMessagesRequest(message=new), end=True)
        reply = await stream.recv_message()
    assert reply is not None
    return reply


async def test_an_author_edits_only_their_own_message(secure_app: App, issuer: Issuer) -> None:
    alice, bob = issuer.token("alice"), issuer.token("bob")
    async with channel(secure_app.port) as opened:
        stub = MessageServiceStub(opened)
        [sent] = (await send(opened, alice, "alice", "k-1")).messages
        edit = message_service_pb2.EditMessageRequest(message_id=sent.id, content="by bob")
        # Not a member: the message is as missing as one never stored.
        await expect_status(stub.EditMessage(edit, metadata=bearer(bob)), Status.NOT_FOUND, "message_id")
        members = ConversationServiceStub(opened)
        await members.AddMember(
            AddMemberRequest(conversation_id="c-1", user_id="bob"), metadata=bearer(alice)
        )
        await expect_status(stub.EditMessage(edit, metadata=bearer(bob)), Status.PERMISSION_DENIED)
        claimed = message_service_pb2.EditMessageRequest(message_id=sent.id, editor_id="alice", content="x")
        await expect_status(
            stub.EditMessage(claimed, metadata=bearer(bob)), Status.PERMISSION_DENIED, "editor_id"
        )
        own = message_service_pb2.EditMessageRequest(message_id=sent.id, content="by alice")
        edited = await stub.EditMessage(own, metadata=bearer(alice))
    assert edited.message.content == "by alice"
    assert edited.message.author_id == "alice"


async def test_a_user_cannot_send_as_someone_else(secure_app: App, issuer: Issuer) -> None:
    async with channel(secure_app.port) as opened:
        await expect_status(
            send(opened, issuer.token("bob"), "alice", "k-2"), Status.PERMISSION_DENIED, "message.author_id"
        )


async def test_a_service_with_the_impersonate_scope_writes_for_users(secure_app: App, issuer: Issuer) -> None:
    async with channel(secure_app.port) as opened:
        [sent] = (await send(opened, IMPERSONATOR_TOKEN, "carol", "k-3")).messages
        edit = message_service_pb2.EditMessageRequest(message_id=sent.id, editor_id="carol", content="fixed")
        edited = await MessageServiceStub(opened).EditMessage(edit, metadata=bearer(IMPERSONATOR_TOKEN))
    assert (sent.author_id, edited.message.content) == ("carol", "fixed")


async def test_a_chat_stream_joins_only_as_the_caller(secure_app: App, issuer: Issuer) -> None:
    async with channel(secure_app.port) as opened:
        stub = MessageServiceStub(opened)

        async def join_as(user: str) -> None:
            async with stub.ChatStream.open(metadata=bearer(issuer.token("bob"))) as stream:
                join = message_service_pb2.ChatJoin(conversation_id="c-9", user_id=user)
                await stream.send_message(message_service_pb2.ChatStreamRequest(join=join), end=True)
                async for _ in stream:
                    pass

        await expect_status(join_as("alice"), Status.PERMISSION_DENIED, "join.user_id")
        await join_as("bob")
