"""MessageService over real sockets and a real database (main tests on both backends), both SDK targets."""

from __future__ import annotations

import asyncio
import datetime
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from grpclib.const import Status

from chat.v1 import common_pb2, message_service_grpc, message_service_pb2
from chat_sdk import v1
from chat_services.message.service import SEND_BATCH_LIMIT
from chat_services.server import App, build_app

from .clients import channel, expect_status, until
from .conftest import both_backends, hub_listeners, make_config


def new(key: str, conversation: str = "c-1", author: str = "u-1", content: str = "hi") -> v1.NewMessage:
    return v1.NewMessage(idempotency_key=key, conversation_id=conversation, author_id=author, content=content)


def sends(*messages: v1.NewMessage) -> list[v1.SendMessagesRequest]:
    return [v1.SendMessagesRequest(message=m) for m in messages]


@both_backends
async def test_a_sent_message_reads_back_with_author_and_files_only_when_asked(app: App) -> None:
    async with channel(app.port) as opened:
        stub = v1.MessageServiceStub(opened, timeout=10)
        files = [v1.File(file_id="f-1", name="plan.pdf", media_type="application/pdf", size_bytes=2048)]
        message = v1.NewMessage(
            idempotency_key="k-1", conversation_id="c-1", author_id="u-7", content="see attached", files=files
        )
        sent = await stub.send_messages(sends(message))
        assert sent.created_count == 1
        stored = sent.messages[0]
        assert stored.sequence == 1 and stored.id and stored.created_at is not None
        assert stored.created_at.tzinfo is not None
        assert abs(stored.created_at - datetime.datetime.now(datetime.UTC)) < datetime.timedelta(minutes=1)

        bare = await stub.get_message(v1.GetMessageRequest(message_id=stored.id))
        assert bare.message is not None
        assert bare.message.author is None and bare.message.files == []
        assert bare.message.author_id == "u-7" and bare.message.content == "see attached"

        full = await stub.get_message(
            v1.GetMessageRequest(message_id=stored.id, include_user=True, include_files=True)
        )
        assert full.message is not None and full.message.author is not None
        assert full.message.author.user_id == "u-7"
        assert full.message.author.display_name == "u-7"  # no stored profile: the ID stands in
        assert [(f.file_id, f.name, f.size_bytes) for f in full.message.files] == [("f-1", "plan.pdf", 2048)]


async def test_the_standard_target_reads_what_the_dataclass_target_wrote(app: App) -> None:
    async with channel(app.port) as opened:
        sent = await v1.MessageServiceStub(opened, timeout=10).send_messages(
            sends(new("k-1", content="héllo ✓"))
        )
        stub = message_service_grpc.MessageServiceStub(opened)
        reply = await stub.GetMessage(message_service_pb2.GetMessageRequest(message_id=sent.messages[0].id))
        assert reply.message.content == "héllo ✓"
        assert reply.message.created_at.ToNanoseconds() > 0
        assert not reply.message.HasField("edited_at")


async def test_get_message_errors_name_the_field(app: App) -> None:
    async with channel(app.port) as opened:
        stub = message_service_grpc.MessageServiceStub(opened)
        await expect_status(
            stub.GetMessage(message_service_pb2.GetMessageRequest()), Status.INVALID_ARGUMENT, "message_id"
        )
        await expect_status(
            stub.GetMessage(message_service_pb2.GetMessageRequest(message_id="m" * 65)),
            Status.INVALID_ARGUMENT,
            "message_id",
        )
        error = await expect_status(
            stub.GetMessage(message_service_pb2.GetMessageRequest(message_id="absent")), Status.NOT_FOUND
        )
        assert "absent" in (error.message or "")


@both_backends
async def test_a_retried_send_stores_nothing_twice(app: App) -> None:
    async with channel(app.port) as opened:
        stub = v1.MessageServiceStub(opened, timeout=10)
        first = await stub.send_messages(sends(new("k-1"), new("k-2", content="second")))
        assert first.created_count == 2
        retry = await stub.send_messages(sends(new("k-1"), new("k-2", content="second"), new("k-3")))
        assert retry.created_count == 1
        assert [m.id for m in retry.messages[:2]] == [m.id for m in first.messages]
        assert [m.sequence for m in retry.messages] == [1, 2, 3]
        listed = await stub.list_messages(v1.ListMessagesRequest(conversation_id="c-1"))
        assert [m.content for m in listed.messages] == ["hi", "second", "hi"]


@both_backends
async def test_a_reused_key_with_another_payload_is_already_exists(app: App) -> None:
    async with channel(app.port) as opened:
        stub = v1.MessageServiceStub(opened, timeout=10)
        await stub.send_messages(sends(new("k-1", content="original")))
        await expect_status(
            stub.send_messages(sends(new("k-1", content="different"))),
            Status.ALREADY_EXISTS,
            "message.idempotency_key",
        )


@both_backends
async def test_a_batch_with_one_bad_message_stores_none_of_it(app: App) -> None:
    async with channel(app.port) as opened:
        stub = v1.MessageServiceStub(opened, timeout=10)
        await stub.send_messages(sends(new("taken", content="original")))
        await expect_status(
            stub.send_messages(sends(new("fresh-1"), new("taken", content="clash"))), Status.ALREADY_EXISTS
        )
        listed = await stub.list_messages(v1.ListMessagesRequest(conversation_id="c-1"))
        assert [m.idempotency_key for m in listed.messages] == ["taken"]


@pytest.mark.parametrize(
    ("message", "field"),
    [
        (new(""), "message.idempotency_key"),
        (new("k" * 129), "message.idempotency_key"),
        (new("k-1", conversation=""), "message.conversation_id"),
        (new("k-1", author=""), "message.author_id"),
        (new("k-1", content=""), "message.content"),
        (new("k-1", content="x" * (64 * 1024 + 1)), "message.content"),
        (
            v1.NewMessage(
                idempotency_key="k-1", conversation_id="c", author_id="u", files=[v1.File(name="no id")]
            ),
            "message.files[0].file_id",
        ),
    ],
)
async def test_an_invalid_new_message_is_refused_naming_the_field(
    app: App, message: v1.NewMessage, field: str
) -> None:
    async with channel(app.port) as opened:
        stub = v1.MessageServiceStub(opened, timeout=10)
        await expect_status(stub.send_messages(sends(message)), Status.INVALID_ARGUMENT, field)


async def test_a_batch_over_the_limit_is_resource_exhausted_and_stores_nothing(app: App) -> None:
    async with channel(app.port) as opened:
        stub = v1.MessageServiceStub(opened, timeout=30)
        too_many = sends(*(new(f"k-{i}") for i in range(SEND_BATCH_LIMIT + 1)))
        await expect_status(stub.send_messages(too_many), Status.RESOURCE_EXHAUSTED)
        stored = await stub.list_messages(v1.ListMessagesRequest(conversation_id="c-1"))
        assert stored.messages == []
        at_the_limit = await stub.send_messages(too_many[:SEND_BATCH_LIMIT])
        assert at_the_limit.created_count == SEND_BATCH_LIMIT


async def test_a_message_of_only_files_is_accepted(app: App) -> None:
    async with channel(app.port) as opened:
        stub = message_service_grpc.MessageServiceStub(opened)
        only_files = message_service_pb2.NewMessage(
            idempotency_key="k-1", conversation_id="c", author_id="u", files=[common_pb2.File(file_id="f")]
        )
        sent = await stub.SendMessages([message_service_pb2.SendMessagesRequest(message=only_files)])
        assert sent.messages[0].content == "" and sent.messages[0].files[0].file_id == "f"


@both_backends
async def test_list_messages_pages_through_everything_once_in_order(app: App) -> None:
    async with channel(app.port) as opened:
        stub = v1.MessageServiceStub(opened, timeout=10)
        await stub.send_messages(sends(*(new(f"k-{i}", content=f"m{i}") for i in range(7))))
        await stub.send_messages(sends(new("other", conversation="c-2")))
        seen: list[str] = []
        token = ""
        pages = 0
        while True:
            page = await stub.list_messages(
                v1.ListMessagesRequest(
                    conversation_id="c-1", page=v1.PageRequest(page_size=3, page_token=token)
                )
            )
            pages += 1
            seen += [m.content for m in page.messages]
            assert page.page is not None
            token = page.page.next_page_token
            if not token:
                break
        assert seen == [f"m{i}" for i in range(7)]
        assert pages == 3


async def test_list_messages_refuses_bad_pages_and_unknown_conversations(app: App) -> None:
    async with channel(app.port) as opened:
        stub = v1.MessageServiceStub(opened, timeout=10)
        await stub.send_messages(sends(*(new(f"k-{i}") for i in range(3)), new("x", conversation="c-2")))
        first = await stub.list_messages(
            v1.ListMessagesRequest(conversation_id="c-1", page=v1.PageRequest(page_size=1))
        )
        assert first.page is not None and first.page.next_page_token
        foreign = v1.PageRequest(page_token=first.page.next_page_token)
        await expect_status(
            stub.list_messages(v1.ListMessagesRequest(conversation_id="c-2", page=foreign)),
            Status.INVALID_ARGUMENT,
            "page.page_token",
        )
        await expect_status(
            stub.list_messages(
                v1.ListMessagesRequest(conversation_id="c-1", page=v1.PageRequest(page_token="not a token"))
            ),
            Status.INVALID_ARGUMENT,
            "page.page_token",
        )
        await expect_status(
            stub.list_messages(
                v1.ListMessagesRequest(conversation_id="c-1", page=v1.PageRequest(page_size=-1))
            ),
            Status.INVALID_ARGUMENT,
            "page.page_size",
        )
        empty = await stub.list_messages(v1.ListMessagesRequest(conversation_id="nobody"))
        assert empty.messages == [] and empty.page is not None and not empty.page.next_page_token


@both_backends
async def test_stream_messages_resumes_after_a_sequence_without_gaps(app: App) -> None:
    async with channel(app.port) as opened:
        stub = v1.MessageServiceStub(opened, timeout=10)
        await stub.send_messages(sends(*(new(f"k-{i}", content=f"m{i}") for i in range(5))))
        resumed = [
            r.message.sequence
            async for r in stub.stream_messages(
                v1.StreamMessagesRequest(conversation_id="c-1", after_sequence=2)
            )
            if r.message is not None
        ]
        assert resumed == [3, 4, 5]
        await expect_status(
            _drain(stub.stream_messages(v1.StreamMessagesRequest(conversation_id="c-1", after_sequence=-1))),
            Status.INVALID_ARGUMENT,
            "after_sequence",
        )


async def _drain(stream: AsyncIterator[object]) -> list[object]:
    return [item async for item in stream]


@both_backends
async def test_a_following_stream_replays_then_delivers_new_messages_live(app: App) -> None:
    async with channel(app.port) as opened:
        stub = message_service_grpc.MessageServiceStub(opened)
        writer = v1.MessageServiceStub(opened, timeout=10)
        await writer.send_messages(sends(new("k-0", content="before")))
        async with stub.StreamMessages.open(timeout=20) as stream:
            await stream.send_message(
                message_service_pb2.StreamMessagesRequest(conversation_id="c-1", follow=True), end=True
            )
            replayed = await asyncio.wait_for(stream.recv_message(), 5)
            assert replayed is not None and replayed.message.content == "before"
            await writer.send_messages(sends(new("k-1", content="live 1"), new("k-2", content="live 2")))
            live = [await asyncio.wait_for(stream.recv_message(), 5) for _ in range(2)]
            assert [(m.message.sequence, m.message.content) for m in live if m] == [
                (2, "live 1"),
                (3, "live 2"),
            ]
            await stream.cancel()
        await asyncio.wait_for(until(lambda: hub_listeners(app, "c-1") == 0), 5)


async def test_a_following_stream_ends_unavailable_with_its_resume_point_when_the_server_drains(
    app: App,
) -> None:
    async with channel(app.port) as opened:
        await v1.MessageServiceStub(opened, timeout=10).send_messages(sends(new("k-0"), new("k-1")))
        stub = message_service_grpc.MessageServiceStub(opened)

        async def follow() -> None:
            async with stub.StreamMessages.open(timeout=20) as stream:
                await stream.send_message(
                    message_service_pb2.StreamMessagesRequest(conversation_id="c-1", follow=True), end=True
                )
                for _ in range(2):
                    await asyncio.wait_for(stream.recv_message(), 5)
                app.begin_draining()
                assert await asyncio.wait_for(stream.recv_message(), 5) is None
                # grpclib raises the status when the trailers are read.

        error = await expect_status(follow(), Status.UNAVAILABLE)
        assert "after_sequence=2" in (error.message or "")


async def test_a_client_deadline_ends_a_following_stream_on_the_server_too(app: App) -> None:
    async with channel(app.port) as opened:
        stub = v1.MessageServiceStub(opened)
        with pytest.raises(asyncio.TimeoutError):
            await _drain(
                stub.stream_messages(
                    v1.StreamMessagesRequest(conversation_id="c-9", follow=True), timeout=0.5
                )
            )
        await asyncio.wait_for(until(lambda: hub_listeners(app, "c-9") == 0), 5)
        await asyncio.wait_for(until(lambda: app.lifecycle.active_calls == 0), 5)


Chat = message_service_pb2.ChatStreamRequest


async def _next_event(stream: object, kind: str) -> message_service_pb2.ChatStreamResponse:
    """The next event of ``kind`` on a ChatStream, skipping others."""
    while True:
        event = await asyncio.wait_for(stream.recv_message(), 5)  # type: ignore[attr-defined]
        assert event is not None, "the stream ended"
        if event.WhichOneof("event") == kind:
            return event  # type: ignore[no-any-return]


@both_backends
async def test_chat_stream_fans_out_between_two_participants(app: App) -> None:
    async with channel(app.port) as opened:
        stub = message_service_grpc.MessageServiceStub(opened)
        async with stub.ChatStream.open(timeout=20) as alice, stub.ChatStream.open(timeout=20) as bob:
            await alice.send_message(
                Chat(join=message_service_pb2.ChatJoin(conversation_id="room", user_id="alice"))
            )
            await asyncio.wait_for(until(lambda: hub_listeners(app, "room") == 1), 5)
            await bob.send_message(
                Chat(join=message_service_pb2.ChatJoin(conversation_id="room", user_id="bob"))
            )
            joined = await _next_event(alice, "presence")
            assert (joined.presence.user_id, joined.presence.state) == (
                "bob",
                message_service_pb2.PRESENCE_STATE_JOINED,
            )

            await bob.send_message(
                Chat(
                    typing=message_service_pb2.ChatTyping(conversation_id="room", user_id="bob", typing=True)
                )
            )
            typing = await _next_event(alice, "typing")
            assert typing.typing.user_id == "bob" and typing.typing.typing

            hello = message_service_pb2.NewMessage(
                idempotency_key="chat-1", conversation_id="room", author_id="bob", content="hello alice"
            )
            await bob.send_message(Chat(send=hello))
            for participant in (alice, bob):  # bob's copy is his acknowledgement
                received = await _next_event(participant, "message")
                assert received.message.content == "hello alice" and received.message.sequence == 1

            await bob.send_message(Chat(leave=message_service_pb2.ChatLeave(conversation_id="room")))
            left = await _next_event(alice, "presence")
            assert (left.presence.user_id, left.presence.state) == (
                "bob",
                message_service_pb2.PRESENCE_STATE_LEFT,
            )
            await bob.end()
            assert await asyncio.wait_for(bob.recv_message(), 5) is None  # no typing echo, nothing else
            await alice.end()
        stored = await v1.MessageServiceStub(opened, timeout=10).list_messages(
            v1.ListMessagesRequest(conversation_id="room")
        )
        assert [m.content for m in stored.messages] == ["hello alice"]


async def test_chat_stream_through_the_dataclass_target(app: App) -> None:
    async with channel(app.port) as opened:
        stub = v1.MessageServiceStub(opened, timeout=20)
        outgoing: asyncio.Queue[v1.ChatStreamRequest | None] = asyncio.Queue()

        async def requests() -> AsyncIterator[v1.ChatStreamRequest]:
            while (item := await outgoing.get()) is not None:
                yield item

        await outgoing.put(v1.ChatStreamRequest(join=v1.ChatJoin(conversation_id="room", user_id="u-1")))
        await outgoing.put(v1.ChatStreamRequest(send=new("chat-1", conversation="room", content="ping")))
        await outgoing.put(None)  # half-close: the stream ends after the acknowledgement
        events = await asyncio.wait_for(_drain(stub.chat_stream(requests())), 10)
        assert [e.message.content for e in events if isinstance(e, v1.ChatStreamResponse) and e.message] == [
            "ping"
        ]


@pytest.mark.parametrize(
    ("request_", "status", "field"),
    [
        (Chat(), Status.INVALID_ARGUMENT, "event"),
        (
            Chat(
                send=message_service_pb2.NewMessage(
                    idempotency_key="k", conversation_id="c", author_id="u", content="x"
                )
            ),
            Status.FAILED_PRECONDITION,
            "send.conversation_id",
        ),
        (
            Chat(typing=message_service_pb2.ChatTyping(conversation_id="c", user_id="u")),
            Status.FAILED_PRECONDITION,
            "typing.conversation_id",
        ),
        (
            Chat(leave=message_service_pb2.ChatLeave(conversation_id="c")),
            Status.FAILED_PRECONDITION,
            "leave.conversation_id",
        ),
        (
            Chat(join=message_service_pb2.ChatJoin(conversation_id="c")),
            Status.INVALID_ARGUMENT,
            "join.user_id",
        ),
    ],
)
async def test_a_bad_chat_request_ends_the_stream_with_its_status(
    app: App, request_: message_service_pb2.ChatStreamRequest, status: Status, field: str
) -> None:
    async with channel(app.port) as opened:
        stub = message_service_grpc.MessageServiceStub(opened)

        async def chat() -> None:
            async with stub.ChatStream.open(timeout=10) as stream:
                await stream.send_message(request_)
                await stream.recv_message()

        await expect_status(chat(), status, field)


async def test_chat_senders_speak_only_as_the_user_who_joined(app: App) -> None:
    async with channel(app.port) as opened:
        stub = message_service_grpc.MessageServiceStub(opened)
        join = message_service_pb2.ChatJoin(conversation_id="c", user_id="me")
        impostor = message_service_pb2.NewMessage(
            idempotency_key="k", conversation_id="c", author_id="someone-else", content="x"
        )

        async def chat() -> None:
            async with stub.ChatStream.open(timeout=10) as stream:
                await stream.send_message(Chat(join=join))
                await stream.send_message(Chat(send=impostor))
                await stream.recv_message()

        await expect_status(chat(), Status.INVALID_ARGUMENT, "send.author_id")


@both_backends
async def test_only_the_author_edits_a_message_and_the_edit_is_stamped(app: App) -> None:
    async with channel(app.port) as opened:
        stub = v1.MessageServiceStub(opened, timeout=10)
        sent = await stub.send_messages(sends(new("k-1", author="author", content="draft")))
        message_id = sent.messages[0].id
        await expect_status(
            stub.edit_message(v1.EditMessageRequest(message_id=message_id, editor_id="other", content="x")),
            Status.PERMISSION_DENIED,
            "editor_id",
        )
        await expect_status(
            stub.edit_message(v1.EditMessageRequest(message_id="absent", editor_id="author", content="x")),
            Status.NOT_FOUND,
        )
        await expect_status(
            stub.edit_message(v1.EditMessageRequest(message_id=message_id, editor_id="author", content="")),
            Status.INVALID_ARGUMENT,
            "content",
        )
        edited = await stub.edit_message(
            v1.EditMessageRequest(message_id=message_id, editor_id="author", content="final")
        )
        assert edited.message is not None and edited.message.content == "final"
        assert edited.message.edited_at is not None and edited.message.created_at is not None
        assert edited.message.edited_at >= edited.message.created_at
        got = await stub.get_message(v1.GetMessageRequest(message_id=message_id))
        assert got.message is not None and got.message.content == "final"
        assert got.message.edited_at == edited.message.edited_at
        # A late retry of the original send is still a retry, not a conflict.
        retry = await stub.send_messages(sends(new("k-1", author="author", content="draft")))
        assert retry.created_count == 0 and retry.messages[0].content == "final"


@both_backends
async def test_acknowledged_messages_survive_a_restart(tmp_path: Path, database: str) -> None:
    first = await build_app(make_config(tmp_path, database=database))
    await first.start()
    try:
        async with channel(first.port) as opened:
            stub = v1.MessageServiceStub(opened, timeout=10)
            sent = await stub.send_messages(sends(*(new(f"k-{i}", content=f"m{i}") for i in range(3))))
            await stub.edit_message(
                v1.EditMessageRequest(message_id=sent.messages[0].id, editor_id="u-1", content="edited")
            )
    finally:
        await first.shutdown()

    second = await build_app(make_config(tmp_path, database=database))
    await second.start()
    try:
        async with channel(second.port) as opened:
            stub = v1.MessageServiceStub(opened, timeout=10)
            listed = await stub.list_messages(v1.ListMessagesRequest(conversation_id="c-1"))
            assert [m.content for m in listed.messages] == ["edited", "m1", "m2"]
            more = await stub.send_messages(sends(new("k-1", content="m1"), new("k-9", content="after")))
            assert more.created_count == 1 and more.messages[1].sequence == 4
    finally:
        await second.shutdown()


async def test_a_follower_cut_off_for_falling_behind_catches_up_from_the_store(app: App) -> None:
    async with channel(app.port) as opened:
        stub = message_service_grpc.MessageServiceStub(opened)
        async with stub.StreamMessages.open(timeout=60) as stream:
            await stream.send_message(
                message_service_pb2.StreamMessagesRequest(conversation_id="busy", follow=True), end=True
            )
            await asyncio.wait_for(until(lambda: hub_listeners(app, "busy") == 1), 5)
            writer = v1.MessageServiceStub(opened, timeout=60)
            for batch in range(2):  # 2 x 1000 events at once: more than a listener queues
                batch_messages = (new(f"b{batch}-{i}", conversation="busy") for i in range(SEND_BATCH_LIMIT))
                await writer.send_messages(sends(*batch_messages))
            sequences: list[int] = []
            while len(sequences) < 2 * SEND_BATCH_LIMIT:
                reply = await asyncio.wait_for(stream.recv_message(), 10)
                assert reply is not None
                sequences.append(reply.message.sequence)
            assert sequences == list(range(1, 2 * SEND_BATCH_LIMIT + 1))
            await stream.cancel()


async def test_joining_again_as_another_user_makes_the_first_one_leave(app: App) -> None:
    async with channel(app.port) as opened:
        stub = message_service_grpc.MessageServiceStub(opened)
        async with stub.ChatStream.open(timeout=20) as watcher, stub.ChatStream.open(timeout=20) as switcher:
            await watcher.send_message(
                Chat(join=message_service_pb2.ChatJoin(conversation_id="r", user_id="w"))
            )
            await asyncio.wait_for(until(lambda: hub_listeners(app, "r") == 1), 5)
            for user in ("first", "second"):
                await switcher.send_message(
                    Chat(join=message_service_pb2.ChatJoin(conversation_id="r", user_id=user))
                )
            events = [(await _next_event(watcher, "presence")).presence for _ in range(3)]
            assert [(e.user_id, e.state) for e in events] == [
                ("first", message_service_pb2.PRESENCE_STATE_JOINED),
                ("first", message_service_pb2.PRESENCE_STATE_LEFT),
                ("second", message_service_pb2.PRESENCE_STATE_JOINED),
            ]
            await switcher.end()
            await watcher.end()
