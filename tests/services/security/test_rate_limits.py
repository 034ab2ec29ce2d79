"""Rate limits per caller and method: a burst past the bucket is refused with RetryInfo, then recovers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from google.rpc import error_details_pb2
from grpclib.const import Status
from grpclib.exceptions import GRPCError

from chat.v1 import message_service_pb2
from chat.v1.conversation_service_grpc import ConversationServiceStub
from chat.v1.conversation_service_pb2 import CreateConversationRequest
from chat.v1.message_service_grpc import MessageServiceStub
from chat_services.server import App

from ..clients import channel, until
from ..conftest import make_config, running
from .conftest import AUDIENCE, ISSUER, Issuer

LIMITS = """
[defaults]
max_streams = 1

[methods."/chat.v1.MessageService/GetMessage"]
rate = 2      # one token back every 0.5 s
burst = 2
"""
MAX_CALLS = 50  # bound on the burst loop


@pytest.fixture
async def limited_app(tmp_path: Path, issuer: Issuer) -> AsyncIterator[App]:
    """A secured server with a tiny GetMessage bucket and one stream per caller."""
    limits = tmp_path / "limits.toml"
    limits.write_text(LIMITS)
    config = make_config(
        tmp_path,
        jwt_issuer=ISSUER,
        jwt_audience=AUDIENCE,
        jwt_public_key=issuer.public_key_file,
        rate_limits=limits,
    )
    async with running(config) as app:
        yield app


async def get_status(stub: MessageServiceStub, token: str) -> GRPCError:
    """The status of one GetMessage of a message that does not exist (NOT_FOUND when admitted)."""
    request = message_service_pb2.GetMessageRequest(message_id="m-none")
    try:
        await stub.GetMessage(request, metadata={"authorization": f"Bearer {token}"}, timeout=10)
    except GRPCError as error:
        return error
    raise AssertionError("GetMessage of a missing message succeeded")


async def test_a_burst_past_the_limit_is_refused_with_retry_info_and_recovers(
    limited_app: App, issuer: Issuer
) -> None:
    alice, bob = issuer.token("alice"), issuer.token("bob")
    async with channel(limited_app.port) as opened:
        stub = MessageServiceStub(opened)
        admitted = 0
        for _ in range(MAX_CALLS):
            error = await get_status(stub, alice)
            if error.status is not Status.NOT_FOUND:
                break
            admitted += 1
        assert error.status is Status.RESOURCE_EXHAUSTED, error.message
        assert admitted >= 2  # the whole burst got through first
        [retry] = [d for d in error.details or [] if isinstance(d, error_details_pb2.RetryInfo)]
        assert retry.retry_delay.ToTimedelta().total_seconds() == pytest.approx(0.5)
        # Another caller has a bucket of its own.
        assert (await get_status(stub, bob)).status is Status.NOT_FOUND

        async def recovered() -> bool:
            return (await get_status(stub, alice)).status is Status.NOT_FOUND

        await until(recovered)


async def test_a_caller_holds_at_most_the_configured_number_of_streams(
    limited_app: App, issuer: Issuer
) -> None:
    metadata = {"authorization": f"Bearer {issuer.token('alice')}"}
    async with channel(limited_app.port) as opened:
        stub = MessageServiceStub(opened)
        await ConversationServiceStub(opened).CreateConversation(
            CreateConversationRequest(conversation_id="c-1"), metadata=metadata
        )

        async def replay_status() -> Status:
            request = message_service_pb2.StreamMessagesRequest(conversation_id="c-1")
            try:
                await stub.StreamMessages(request, metadata=metadata, timeout=10)
            except GRPCError as error:
                return error.status
            return Status.OK

        async with stub.StreamMessages.open(metadata=metadata) as follower:
            await follower.send_message(
                message_service_pb2.StreamMessagesRequest(conversation_id="c-1", follow=True), end=True
            )

            async def refused() -> bool:
                return await replay_status() is Status.RESOURCE_EXHAUSTED

            # The follower holds the one stream alice may have open: a second is refused.
            await until(refused)
            # A unary call is no stream: it is admitted while the follower holds the cap.
            assert (await get_status(stub, issuer.token("alice"))).status is Status.NOT_FOUND
            await follower.cancel()

        # Once it is gone, alice may stream again.
        async def allowed() -> bool:
            return await replay_status() is Status.OK

        await until(allowed)
