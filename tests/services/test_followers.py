"""StreamMessages followers: handed each stored message by the hub, ended when they stop reading.

Followers get the message object the sender stored instead of each reading the
database on every wake-up; they catch up from the database only after a gap or an
overflow. Every follower still receives every message once, in order, with authors
and files when it asked for them. A follower that leaves a message unread longer
than ``--follower-timeout`` is ended with RESOURCE_EXHAUSTED, told where to resume.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from grpclib.client import Channel
from grpclib.config import Configuration
from grpclib.const import Status
from grpclib.exceptions import GRPCError

from chat.v1 import common_pb2, message_service_grpc, message_service_pb2
from chat.v1.message_service_pb2 import NewMessage, SendMessagesRequest, StreamMessagesRequest
from chat_services.config import ServiceConfig, parse_config
from chat_services.message.model import Draft, Profile
from chat_services.message.service import MessageService
from chat_services.server import App, build_app

from .clients import channel, until
from .conftest import hub_listeners, make_config, service_of

FOLLOWERS = 20
SENDERS = 3
PER_SENDER = 10
SMALLEST_WINDOW = 2**16 - 1  # HTTP/2's initial window: the least a client can announce


def new(
    key: str, conversation: str = "c", author: str = "u", content: str = "hi", files: int = 0
) -> NewMessage:
    return NewMessage(
        idempotency_key=key,
        conversation_id=conversation,
        author_id=author,
        content=content,
        files=[common_pb2.File(file_id=f"{key}-f{n}", name=f"{n}.txt") for n in range(files)],
    )


async def follow(
    stub: message_service_grpc.MessageServiceStub, request: StreamMessagesRequest, count: int
) -> list[message_service_pb2.Message]:
    """The first ``count`` messages a following stream receives."""
    received: list[message_service_pb2.Message] = []
    async with stub.StreamMessages.open(timeout=60) as stream:
        await stream.send_message(request, end=True)
        while len(received) < count:
            reply = await stream.recv_message()
            assert reply is not None
            received.append(reply.message)
        await stream.cancel()
    return received


async def send_each(stub: message_service_grpc.MessageServiceStub, sender: int) -> None:
    for n in range(PER_SENDER):
        await stub.SendMessages([SendMessagesRequest(message=new(f"s{sender}-{n}", files=n % 2))], timeout=30)


async def test_followers_receive_every_message_once_in_order_without_reading_the_database(app: App) -> None:
    reads = 0
    observed = app.database.observer

    def count(operation: str, seconds: float) -> None:
        nonlocal reads
        reads += operation == "call"
        if observed is not None:
            observed(operation, seconds)

    total = SENDERS * PER_SENDER
    app.database.observer = count
    async with channel(app.port) as following, channel(app.port) as sending:
        stub = message_service_grpc.MessageServiceStub(following)
        request = StreamMessagesRequest(conversation_id="c", follow=True, include_files=True)
        followers = [asyncio.ensure_future(follow(stub, request, total)) for _ in range(FOLLOWERS)]
        # Each follower subscribes, sends its headers, then replays the empty conversation:
        # one read each. Once all those are done, count only what sends and followers do.
        await until(lambda: hub_listeners(app, "c") == FOLLOWERS and reads == FOLLOWERS)
        reads = 0
        try:
            writer = message_service_grpc.MessageServiceStub(sending)
            await asyncio.gather(*(send_each(writer, sender) for sender in range(SENDERS)))
            streams = await asyncio.wait_for(asyncio.gather(*followers), 60)
        finally:
            app.database.observer = observed
    for received in streams:
        assert [m.sequence for m in received] == list(range(1, total + 1))
        assert len({m.idempotency_key for m in received}) == total
        assert [len(m.files) for m in received] == [int(m.idempotency_key[-1]) % 2 for m in received]
        assert not any(m.HasField("author") for m in received)
    # Re-reading per wake-up made at least one read per follower; handing the message over, none.
    assert reads < FOLLOWERS, reads


async def test_a_follower_gets_authors_and_files_only_when_it_asked(app: App) -> None:
    await service_of(app, MessageService).store.save_profile(Profile("ann", "Ann A.", "https://a/ann.png"))
    async with channel(app.port) as following, channel(app.port) as sending:
        stub = message_service_grpc.MessageServiceStub(following)
        asked = StreamMessagesRequest(conversation_id="c", follow=True, include_user=True, include_files=True)
        plain = StreamMessagesRequest(conversation_id="c", follow=True)
        rich, bare = (asyncio.ensure_future(follow(stub, r, 2)) for r in (asked, plain))
        await until(lambda: hub_listeners(app, "c") == 2)
        writer = message_service_grpc.MessageServiceStub(sending)
        await writer.SendMessages([SendMessagesRequest(message=new("k1", author="ann", files=2))], timeout=30)
        await writer.SendMessages([SendMessagesRequest(message=new("k2", author="bo"))], timeout=30)
        rich_messages, bare_messages = await asyncio.wait_for(asyncio.gather(rich, bare), 30)
    assert [(m.author.user_id, m.author.display_name, m.author.avatar_url) for m in rich_messages] == [
        ("ann", "Ann A.", "https://a/ann.png"),
        ("bo", "bo", ""),  # no stored profile: the ID stands for the name
    ]
    assert [[f.file_id for f in m.files] for m in rich_messages] == [["k1-f0", "k1-f1"], []]
    assert not any(m.HasField("author") or m.files for m in bare_messages)
    assert [m.content for m in bare_messages] == [m.content for m in rich_messages] == ["hi", "hi"]


async def test_a_message_handed_over_before_an_earlier_one_is_caught_up_from_the_store(app: App) -> None:
    service = service_of(app, MessageService)
    async with channel(app.port) as following:
        stub = message_service_grpc.MessageServiceStub(following)
        received = asyncio.ensure_future(
            follow(stub, StreamMessagesRequest(conversation_id="g", follow=True), 3)
        )
        await until(lambda: hub_listeners(app, "g") == 1)
        stored = await service.store.store([Draft(f"k{n}", "g", "u", f"m{n}") for n in range(1, 4)])
        first, second, third = (message for message, _ in stored)
        # Senders publish after their commits, so the hub may hand them over out of order.
        for message in (first, third, second):
            service.hub.publish("g", message)
        messages = await asyncio.wait_for(received, 30)
    assert [(m.sequence, m.content) for m in messages] == [(1, "m1"), (2, "m2"), (3, "m3")]


@pytest.fixture
async def impatient(tmp_path: Path) -> AsyncIterator[App]:
    """A server that ends a follower leaving a message unread for half a second."""
    built = await build_app(make_config(tmp_path, follower_timeout=0.5))
    await built.start()
    try:
        yield built
    finally:
        await built.shutdown()


async def test_a_follower_that_never_reads_is_ended_with_where_to_resume(impatient: App) -> None:
    app = impatient
    small = Configuration(
        http2_stream_window_size=SMALLEST_WINDOW, http2_connection_window_size=SMALLEST_WINDOW
    )
    total, content = 10, "x" * 20_000  # three fit in the client's window, the fourth does not
    async with Channel("127.0.0.1", app.port, config=small) as following, channel(app.port) as sending:
        stub = message_service_grpc.MessageServiceStub(following)
        async with stub.StreamMessages.open(timeout=60) as stream:
            await stream.send_message(StreamMessagesRequest(conversation_id="c", follow=True), end=True)
            await until(lambda: hub_listeners(app, "c") == 1)
            writer = message_service_grpc.MessageServiceStub(sending)
            for n in range(total):
                await writer.SendMessages(
                    [SendMessagesRequest(message=new(f"k{n}", content=content))], timeout=30
                )
            # The client reads nothing; the server gives up on it and lets go of its listener.
            await until(lambda: hub_listeners(app, "c") == 0, timeout=30)
            received = []
            while (reply := await stream.recv_message()) is not None:
                received.append(reply.message.sequence)
            with pytest.raises(GRPCError) as raised:
                await stream.recv_trailing_metadata()
        error = raised.value
        assert error.status is Status.RESOURCE_EXHAUSTED
        assert error.message is not None
        resume = re.search(r"resume with after_sequence=(\d+)$", error.message)
        assert resume is not None, error.message
        last = int(resume.group(1))
        assert received == list(range(1, last + 1)) and 0 < last < total  # whole messages only
        rest = await writer.StreamMessages(StreamMessagesRequest(conversation_id="c", after_sequence=last))
        assert [r.message.sequence for r in rest] == list(range(last + 1, total + 1))


def test_the_follower_timeout_and_rag_workers_are_flags_and_environment_variables() -> None:
    config = parse_config(["--follower-timeout", "2.5"], {"CHAT_SERVICES_RAG_WORKERS": "3"})
    assert (config.follower_timeout, config.rag_workers) == (2.5, 3)
    assert (ServiceConfig().follower_timeout, ServiceConfig().rag_workers) == (60.0, 1)
    with pytest.raises(ValueError, match="must"):
        ServiceConfig(follower_timeout=0)
    with pytest.raises(ValueError, match="must"):
        ServiceConfig(rag_workers=0)
