"""MessageService end to end: the full server on real sockets and a real SQLite file, both client targets.

The dataclass target (``chat_sdk.v1``) and the standard target (``chat.v1`` ``_pb2`` with grpclib
stubs) are both used, often in the same test, so each side reads what the other wrote.
"""

from __future__ import annotations

import asyncio
import base64
import datetime
import gc
import json
from collections.abc import AsyncIterator, Awaitable, Sequence
from pathlib import Path
from typing import TypeVar

import pytest
from google.rpc import error_details_pb2
from grpclib.client import Channel, Stream
from grpclib.const import Status
from grpclib.encoding.proto import ProtoCodec

from chat.v1 import common_pb2, message_service_grpc, message_service_pb2
from chat_sdk import v1
from chat_services.message.model import Profile
from chat_services.message.service import MessageService
from chat_services.server import App, build_app

from .clients import channel as connect
from .clients import expect_status, status_of, until, violated_fields
from .conftest import both_backends, hub_listeners, make_config, service_of

T = TypeVar("T")
STEP = 5.0  # seconds any one call, receive or wait may take before the test fails

pb = message_service_pb2
Chat = message_service_pb2.ChatStreamRequest
PbChatStream = Stream[message_service_pb2.ChatStreamRequest, message_service_pb2.ChatStreamResponse]
JOINED = message_service_pb2.PRESENCE_STATE_JOINED
LEFT = message_service_pb2.PRESENCE_STATE_LEFT


# Helpers ------------------------------------------------------------------------------------------


async def within(awaitable: Awaitable[T], seconds: float = STEP) -> T:
    return await asyncio.wait_for(awaitable, seconds)


async def collect(stream: AsyncIterator[T]) -> list[T]:
    return [item async for item in stream]


async def pump(stream: AsyncIterator[T], into: asyncio.Queue[T]) -> None:
    async for item in stream:
        into.put_nowait(item)


def new(
    key: str,
    conversation: str = "c-1",
    author: str = "u-1",
    content: str = "hi",
    files: Sequence[v1.File] = (),
) -> v1.NewMessage:
    return v1.NewMessage(
        idempotency_key=key,
        conversation_id=conversation,
        author_id=author,
        content=content,
        files=list(files),
    )


def pb_new(key: str, conversation: str = "c-1", author: str = "u-1", content: str = "hi") -> pb.NewMessage:
    return pb.NewMessage(idempotency_key=key, conversation_id=conversation, author_id=author, content=content)


def batch(*messages: v1.NewMessage) -> list[v1.SendMessagesRequest]:
    return [v1.SendMessagesRequest(message=message) for message in messages]


async def send(channel: Channel, *messages: v1.NewMessage) -> v1.SendMessagesResponse:
    """Store ``messages`` in one SendMessages call through the dataclass target."""
    return await v1.MessageServiceStub(channel, timeout=STEP).send_messages(batch(*messages))


async def list_all(channel: Channel, conversation_id: str) -> list[v1.Message]:
    reply = await v1.MessageServiceStub(channel, timeout=STEP).list_messages(
        v1.ListMessagesRequest(conversation_id=conversation_id, page=v1.PageRequest(page_size=1000))
    )
    assert reply.page is not None and not reply.page.next_page_token
    return reply.messages


def pb_join(conversation_id: str, user_id: str) -> pb.ChatStreamRequest:
    return Chat(join=pb.ChatJoin(conversation_id=conversation_id, user_id=user_id))


async def pb_event(stream: PbChatStream) -> pb.ChatStreamResponse:
    """The next event on a standard-target chat stream (not skipping any)."""
    event = await within(stream.recv_message())
    assert event is not None, "the chat stream ended"
    return event


def presence_of(event: pb.ChatStreamResponse) -> tuple[str, str, int]:
    assert event.WhichOneof("event") == "presence", event
    return event.presence.conversation_id, event.presence.user_id, event.presence.state


def message_of(event: pb.ChatStreamResponse) -> pb.Message:
    assert event.WhichOneof("event") == "message", event
    return event.message


class DataclassChat:
    """A ChatStream through the dataclass target: requests from a queue, responses into one."""

    def __init__(self, channel: Channel) -> None:
        self._stub = v1.MessageServiceStub(channel, timeout=4 * STEP)
        self._outgoing: asyncio.Queue[v1.ChatStreamRequest | None] = asyncio.Queue()
        self._incoming: asyncio.Queue[v1.ChatStreamResponse | None] = asyncio.Queue()
        self._call: asyncio.Future[None] | None = None

    async def __aenter__(self) -> DataclassChat:
        self._call = asyncio.ensure_future(self._run())
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._call is not None
        self._call.cancel()  # a no-op once the call ended
        await asyncio.gather(self._call, return_exceptions=True)

    async def _requests(self) -> AsyncIterator[v1.ChatStreamRequest]:
        while (request := await self._outgoing.get()) is not None:
            yield request

    async def _run(self) -> None:
        try:
            async for response in self._stub.chat_stream(self._requests()):
                self._incoming.put_nowait(response)
        finally:
            self._incoming.put_nowait(None)

    def send(self, request: v1.ChatStreamRequest) -> None:
        self._outgoing.put_nowait(request)

    def end(self) -> None:
        """Half-close: the server ends the call once it has sent what it owes."""
        self._outgoing.put_nowait(None)

    async def recv(self) -> v1.ChatStreamResponse | None:
        """The next event, or None once the call ended."""
        return await within(self._incoming.get())

    async def result(self) -> None:
        """Wait for the call to end; raise its ``GRPCError`` if it failed."""
        assert self._call is not None
        await within(asyncio.shield(self._call))


# GetMessage ---------------------------------------------------------------------------------------


@both_backends
async def test_get_message_returns_the_stored_message(app: App) -> None:
    async with connect(app.port) as channel:
        sent = await send(channel, new("k-1", author="u-7", content="hello there"))
        [stored] = sent.messages

        got = await v1.MessageServiceStub(channel, timeout=STEP).get_message(
            v1.GetMessageRequest(message_id=stored.id)
        )
        assert got.message == stored
        assert got.message.conversation_id == "c-1" and got.message.author_id == "u-7"
        assert got.message.sequence == 1 and got.message.idempotency_key == "k-1"
        assert got.message.created_at is not None and got.message.edited_at is None

        standard = await message_service_grpc.MessageServiceStub(channel).GetMessage(
            pb.GetMessageRequest(message_id=stored.id), timeout=STEP
        )
        assert standard.message.id == stored.id and standard.message.content == "hello there"
        assert not standard.message.HasField("author") and not standard.message.HasField("edited_at")
        assert stored.created_at is not None
        assert standard.message.created_at.ToDatetime(tzinfo=datetime.UTC) == stored.created_at


@both_backends
async def test_include_user_fills_the_author_whose_display_name_defaults_to_the_user_id(app: App) -> None:
    await service_of(app, MessageService).store.save_profile(
        Profile("ada", "Ada Lovelace", "https://avatars/ada.png")
    )
    async with connect(app.port) as channel:
        sent = await send(channel, new("k-1", author="u-7"), new("k-2", author="ada"))
        anonymous, known = (m.id for m in sent.messages)
        stub = v1.MessageServiceStub(channel, timeout=STEP)

        plain = await stub.get_message(v1.GetMessageRequest(message_id=anonymous))
        assert plain.message is not None and plain.message.author is None

        with_user = await stub.get_message(v1.GetMessageRequest(message_id=anonymous, include_user=True))
        assert with_user.message is not None
        assert with_user.message.author == v1.User(user_id="u-7", display_name="u-7", avatar_url="")

        standard = await message_service_grpc.MessageServiceStub(channel).GetMessage(
            pb.GetMessageRequest(message_id=known, include_user=True), timeout=STEP
        )
        assert standard.message.HasField("author")
        author = standard.message.author
        assert (author.user_id, author.display_name, author.avatar_url) == (
            "ada",
            "Ada Lovelace",
            "https://avatars/ada.png",
        )
        assert len(standard.message.files) == 0


async def test_include_files_fills_the_files_only_when_asked(app: App) -> None:
    files = [
        v1.File(file_id="f-2", name="b.png", media_type="image/png", size_bytes=10, url="https://f/2"),
        v1.File(file_id="f-1", name="a.pdf", media_type="application/pdf", size_bytes=2048, sha256="ab" * 32),
    ]
    async with connect(app.port) as channel:
        sent = await send(channel, new("k-1", content="see attached", files=files))
        message_id = sent.messages[0].id
        stub = v1.MessageServiceStub(channel, timeout=STEP)

        bare = await stub.get_message(v1.GetMessageRequest(message_id=message_id))
        assert bare.message is not None and bare.message.files == []

        full = await stub.get_message(v1.GetMessageRequest(message_id=message_id, include_files=True))
        assert full.message is not None
        assert full.message.files == files  # every field, in the order attached
        assert full.message.author is None  # include_files does not imply include_user

        standard_stub = message_service_grpc.MessageServiceStub(channel)
        standard = await standard_stub.GetMessage(
            pb.GetMessageRequest(message_id=message_id, include_files=True, include_user=True), timeout=STEP
        )
        assert [(f.file_id, f.size_bytes, f.sha256) for f in standard.message.files] == [
            ("f-2", 10, ""),
            ("f-1", 2048, "ab" * 32),
        ]
        assert standard.message.author.display_name == "u-1"


async def test_get_message_of_an_unknown_id_is_not_found(app: App) -> None:
    async with connect(app.port) as channel:
        await send(channel, new("k-1"))
        error = await expect_status(
            v1.MessageServiceStub(channel, timeout=STEP).get_message(
                v1.GetMessageRequest(message_id="absent")
            ),
            Status.NOT_FOUND,
            "message_id",
        )
        assert "absent" in (error.message or "")
        await expect_status(
            message_service_grpc.MessageServiceStub(channel).GetMessage(
                pb.GetMessageRequest(message_id="also-absent"), timeout=STEP
            ),
            Status.NOT_FOUND,
        )


async def test_an_empty_message_id_is_invalid_argument_with_a_field_violation(app: App) -> None:
    async with connect(app.port) as channel:
        for call in (
            v1.MessageServiceStub(channel, timeout=STEP).get_message(v1.GetMessageRequest()),
            message_service_grpc.MessageServiceStub(channel).GetMessage(pb.GetMessageRequest(), timeout=STEP),
        ):
            error = await status_of(call)
            assert error.status is Status.INVALID_ARGUMENT
            [detail] = error.details or []
            assert isinstance(detail, error_details_pb2.BadRequest)
            [violation] = detail.field_violations
            assert violation.field == "message_id"
            assert violation.description == "value length must be at least 1 characters"
            assert error.message == f"invalid chat.v1.GetMessageRequest: message_id: {violation.description}"


async def test_which_client_channels_decode_the_error_details(app: App) -> None:
    # grpclib's Channel picks ProtoStatusDetailsCodec itself when googleapis-common-protos is
    # installed and no codec is given; a channel given its own codec must also be given that one.
    request = v1.GetMessageRequest(message_id="")
    async with Channel("127.0.0.1", app.port) as default:
        error = await status_of(v1.MessageServiceStub(default, timeout=STEP).get_message(request))
    assert violated_fields(error) == ["message_id"]
    async with Channel("127.0.0.1", app.port, codec=ProtoCodec()) as without_details:
        error = await status_of(v1.MessageServiceStub(without_details, timeout=STEP).get_message(request))
    assert error.status is Status.INVALID_ARGUMENT
    assert (
        error.message
        == "invalid chat.v1.GetMessageRequest: message_id: value length must be at least 1 characters"
    )
    assert error.details is None


# ListMessages -------------------------------------------------------------------------------------


@both_backends
async def test_list_messages_pages_through_every_message_once_in_order(app: App) -> None:
    async with connect(app.port) as channel:
        # Another conversation's messages are interleaved in the same batches; they never show up.
        for start in (0, 5):
            await send(
                channel,
                *(new(f"k-{i}", content=f"m{i}") for i in range(start, start + 5)),
                new(f"other-{start}", conversation="c-2"),
            )
        stub = v1.MessageServiceStub(channel, timeout=STEP)
        seen: list[v1.Message] = []
        sizes: list[int] = []
        tokens: list[str] = []
        token = ""
        while True:
            page = await stub.list_messages(
                v1.ListMessagesRequest(
                    conversation_id="c-1", page=v1.PageRequest(page_size=3, page_token=token)
                )
            )
            seen += page.messages
            sizes.append(len(page.messages))
            assert page.page is not None  # present even on the last page
            token = page.page.next_page_token
            if not token:
                break
            tokens.append(token)
            assert len(sizes) < 10, "paging does not end"
        assert sizes == [3, 3, 3, 1]
        assert [m.content for m in seen] == [f"m{i}" for i in range(10)]
        assert [m.sequence for m in seen] == list(range(1, 11))
        assert len({m.id for m in seen}) == 10
        assert len(set(tokens)) == 3

        # The standard target walks the same list with another page size.
        standard = message_service_grpc.MessageServiceStub(channel)
        pages: list[list[str]] = []
        token = ""
        while True:
            reply = await standard.ListMessages(
                pb.ListMessagesRequest(
                    conversation_id="c-1", page=common_pb2.PageRequest(page_size=4, page_token=token)
                ),
                timeout=STEP,
            )
            assert reply.HasField("page")
            pages.append([m.id for m in reply.messages])
            token = reply.page.next_page_token
            if not token:
                break
        assert pages == [[m.id for m in seen[i : i + 4]] for i in (0, 4, 8)]


async def test_a_page_size_of_zero_means_fifty(app: App) -> None:
    async with connect(app.port) as channel:
        await send(channel, *(new(f"k-{i}") for i in range(51)))
        stub = v1.MessageServiceStub(channel, timeout=STEP)
        first = await stub.list_messages(v1.ListMessagesRequest(conversation_id="c-1"))
        assert len(first.messages) == 50
        assert first.page is not None and first.page.next_page_token
        rest = await stub.list_messages(
            v1.ListMessagesRequest(
                conversation_id="c-1", page=v1.PageRequest(page_token=first.page.next_page_token)
            )
        )
        assert [m.sequence for m in rest.messages] == [51]
        assert rest.page is not None and rest.page.next_page_token == ""


async def test_a_page_token_from_another_conversation_is_refused(app: App) -> None:
    async with connect(app.port) as channel:
        await send(
            channel,
            *(new(f"a-{i}") for i in range(3)),
            *(new(f"b-{i}", conversation="c-2") for i in range(3)),
        )
        stub = v1.MessageServiceStub(channel, timeout=STEP)
        first = await stub.list_messages(
            v1.ListMessagesRequest(conversation_id="c-1", page=v1.PageRequest(page_size=1))
        )
        assert first.page is not None
        token = first.page.next_page_token
        await expect_status(
            stub.list_messages(
                v1.ListMessagesRequest(
                    conversation_id="c-2", page=v1.PageRequest(page_size=1, page_token=token)
                )
            ),
            Status.INVALID_ARGUMENT,
            "page.page_token",
        )
        await expect_status(
            message_service_grpc.MessageServiceStub(channel).ListMessages(
                pb.ListMessagesRequest(conversation_id="c-1", page=common_pb2.PageRequest(page_token="%%%")),
                timeout=STEP,
            ),
            Status.INVALID_ARGUMENT,
            "page.page_token",
        )
        # The token still works for the list it came from.
        second = await stub.list_messages(
            v1.ListMessagesRequest(conversation_id="c-1", page=v1.PageRequest(page_size=1, page_token=token))
        )
        assert [m.idempotency_key for m in second.messages] == ["a-1"]


async def test_a_negative_page_size_is_refused(app: App) -> None:
    async with connect(app.port) as channel:
        await send(channel, new("k-1"))
        await expect_status(
            v1.MessageServiceStub(channel, timeout=STEP).list_messages(
                v1.ListMessagesRequest(conversation_id="c-1", page=v1.PageRequest(page_size=-1))
            ),
            Status.INVALID_ARGUMENT,
            "page.page_size",
        )


async def test_listing_a_conversation_without_messages_is_an_empty_page(app: App) -> None:
    async with connect(app.port) as channel:
        await send(channel, new("k-1"))
        empty = await v1.MessageServiceStub(channel, timeout=STEP).list_messages(
            v1.ListMessagesRequest(conversation_id="nobody-here")
        )
        assert empty.messages == [] and empty.page is not None and not empty.page.next_page_token
        await expect_status(
            message_service_grpc.MessageServiceStub(channel).ListMessages(
                pb.ListMessagesRequest(), timeout=STEP
            ),
            Status.INVALID_ARGUMENT,
            "conversation_id",
        )


async def test_listed_messages_carry_author_and_files_only_when_asked(app: App) -> None:
    async with connect(app.port) as channel:
        await send(channel, new("k-1", author="ann", files=[v1.File(file_id="f-1")]), new("k-2", author="bo"))
        stub = v1.MessageServiceStub(channel, timeout=STEP)
        bare = await stub.list_messages(v1.ListMessagesRequest(conversation_id="c-1"))
        assert [(m.author, m.files) for m in bare.messages] == [(None, []), (None, [])]
        full = await stub.list_messages(
            v1.ListMessagesRequest(conversation_id="c-1", include_user=True, include_files=True)
        )
        assert [(m.author.display_name if m.author else None, len(m.files)) for m in full.messages] == [
            ("ann", 1),
            ("bo", 0),
        ]


async def test_a_page_token_with_a_malformed_position_is_invalid_argument(app: App) -> None:
    async with connect(app.port) as channel:
        await send(channel, *(new(f"k-{i}") for i in range(3)))
        position = json.dumps({"after": "two", "conversation": "c-1"}).encode()
        token = base64.urlsafe_b64encode(position).decode().rstrip("=")
        await expect_status(
            v1.MessageServiceStub(channel, timeout=STEP).list_messages(
                v1.ListMessagesRequest(conversation_id="c-1", page=v1.PageRequest(page_token=token))
            ),
            Status.INVALID_ARGUMENT,
            "page.page_token",
        )


# SendMessages -------------------------------------------------------------------------------------


@both_backends
async def test_send_messages_stores_a_batch_in_request_order(app: App) -> None:
    async with connect(app.port) as channel:
        stub = message_service_grpc.MessageServiceStub(channel)
        only_a_file = pb.NewMessage(
            idempotency_key="k-3",
            conversation_id="c-1",
            author_id="u-2",
            files=[common_pb2.File(file_id="f-1", name="photo.jpg")],
        )
        reply = await stub.SendMessages(
            [
                pb.SendMessagesRequest(message=pb_new("k-1", content="first")),
                pb.SendMessagesRequest(message=pb_new("k-2", conversation="c-2", content="elsewhere")),
                pb.SendMessagesRequest(message=only_a_file),
            ],
            timeout=STEP,
        )
        assert reply.created_count == 3
        assert [(m.idempotency_key, m.conversation_id, m.sequence) for m in reply.messages] == [
            ("k-1", "c-1", 1),
            ("k-2", "c-2", 1),
            ("k-3", "c-1", 2),
        ]
        assert reply.messages[2].content == "" and reply.messages[2].files[0].name == "photo.jpg"
        listed = await list_all(channel, "c-1")
        assert [m.id for m in listed] == [reply.messages[0].id, reply.messages[2].id]


async def test_one_invalid_message_in_a_batch_stores_nothing(app: App) -> None:
    async with connect(app.port) as channel:
        stub = v1.MessageServiceStub(channel, timeout=STEP)
        await expect_status(
            stub.send_messages(batch(new("k-1"), new("k-2"), new("k-3", content=""))),
            Status.INVALID_ARGUMENT,
            "message.content",
        )
        assert await list_all(channel, "c-1") == []
        # The keys are still free.
        reply = await stub.send_messages(batch(new("k-1"), new("k-2")))
        assert reply.created_count == 2 and [m.sequence for m in reply.messages] == [1, 2]


@both_backends
async def test_a_conflict_late_in_a_batch_rolls_back_the_messages_before_it(app: App) -> None:
    async with connect(app.port) as channel:
        stub = v1.MessageServiceStub(channel, timeout=STEP)
        original = await stub.send_messages(batch(new("taken", content="original")))
        await expect_status(
            stub.send_messages(
                batch(new("k-1"), new("k-2", conversation="c-2"), new("taken", content="clash"))
            ),
            Status.ALREADY_EXISTS,
            "message.idempotency_key",
        )
        assert [m.id for m in await list_all(channel, "c-1")] == [original.messages[0].id]
        assert await list_all(channel, "c-2") == []
        after = await stub.send_messages(batch(new("k-1")))
        assert after.messages[0].sequence == 2  # the rolled-back batch used up no sequence numbers


@both_backends
async def test_a_retried_batch_returns_the_same_messages_and_creates_none(app: App) -> None:
    async with connect(app.port) as channel:
        messages = (new("k-1", content="one"), new("k-2", content="two", files=[v1.File(file_id="f")]))
        first = await send(channel, *messages)
        assert first.created_count == 2

        retry = await send(channel, *messages)
        assert retry.created_count == 0
        assert retry.messages == first.messages  # same ids, sequences, timestamps and files

        standard = await message_service_grpc.MessageServiceStub(channel).SendMessages(
            [pb.SendMessagesRequest(message=pb_new("k-1", content="one"))], timeout=STEP
        )
        assert standard.created_count == 0 and standard.messages[0].id == first.messages[0].id
        assert [m.id for m in await list_all(channel, "c-1")] == [m.id for m in first.messages]


@pytest.mark.parametrize(
    "changed",
    [new("k-1", content="something else"), new("k-1", conversation="c-2")],
    ids=["content", "conversation"],
)
async def test_the_same_key_for_a_different_message_is_already_exists(
    app: App, changed: v1.NewMessage
) -> None:
    async with connect(app.port) as channel:
        original = await send(channel, new("k-1", content="original"))
        error = await expect_status(send(channel, changed), Status.ALREADY_EXISTS, "message.idempotency_key")
        assert "k-1" in (error.message or "")
        [kept] = await list_all(channel, "c-1")
        assert kept == original.messages[0]


@both_backends
async def test_idempotency_keys_are_scoped_by_author(app: App) -> None:
    """Two authors may use the same key; one author's keys say nothing about another's."""
    async with connect(app.port) as channel:
        first = await send(channel, new("k-1", content="from u-1"))
        second = await send(channel, new("k-1", author="u-2", content="from u-2"))
        assert first.created_count == second.created_count == 1
        assert first.messages[0].id != second.messages[0].id
        retried = await send(channel, new("k-1", author="u-2", content="from u-2"))
        assert retried.created_count == 0 and retried.messages[0].id == second.messages[0].id
        assert [m.content for m in await list_all(channel, "c-1")] == ["from u-1", "from u-2"]


@pytest.mark.parametrize(
    ("message", "field"),
    [
        (new(""), "message.idempotency_key"),
        (new("k-1", content="x" * (64 * 1024 + 1)), "message.content"),
        (new("k-1", content="é" * (32 * 1024 + 1)), "message.content"),  # 65,538 UTF-8 bytes
        (new("k-1", content=""), "message.content"),
    ],
    ids=["no-idempotency-key", "content-over-64KiB", "content-over-64KiB-in-utf8", "no-content-no-files"],
)
async def test_an_invalid_message_is_refused_naming_the_field(
    app: App, message: v1.NewMessage, field: str
) -> None:
    async with connect(app.port) as channel:
        await expect_status(send(channel, message), Status.INVALID_ARGUMENT, field)


async def test_content_of_exactly_64_kib_is_accepted(app: App) -> None:
    async with connect(app.port) as channel:
        reply = await send(channel, new("k-1", content="é" * (32 * 1024)))
        got = await v1.MessageServiceStub(channel, timeout=STEP).get_message(
            v1.GetMessageRequest(message_id=reply.messages[0].id)
        )
        assert got.message is not None and len(got.message.content.encode()) == 64 * 1024


async def test_a_request_without_a_message_is_refused(app: App) -> None:
    async with connect(app.port) as channel:
        stub = message_service_grpc.MessageServiceStub(channel)
        error = await expect_status(
            stub.SendMessages(
                [pb.SendMessagesRequest(message=pb_new("k-1")), pb.SendMessagesRequest()], timeout=STEP
            ),
            Status.INVALID_ARGUMENT,
            "message",
        )
        assert "message: value is required" in (error.message or "")
        assert await list_all(channel, "c-1") == []


async def test_an_empty_batch_stores_nothing_and_succeeds(app: App) -> None:
    async with connect(app.port) as channel:
        reply = await v1.MessageServiceStub(channel, timeout=STEP).send_messages([])
        assert reply.messages == [] and reply.created_count == 0


# StreamMessages -----------------------------------------------------------------------------------


async def test_stream_messages_resumes_after_the_last_sequence_without_gaps(app: App) -> None:
    async with connect(app.port) as channel:
        await send(channel, *(new(f"k-{i}", content=f"m{i}") for i in range(8)))
        standard = message_service_grpc.MessageServiceStub(channel)
        # A following client reads three messages, then goes away (it cancels the call).
        first_part: list[int] = []
        async with standard.StreamMessages.open(timeout=2 * STEP) as stream:
            await stream.send_message(pb.StreamMessagesRequest(conversation_id="c-1", follow=True), end=True)
            for _ in range(3):
                response = await within(stream.recv_message())
                assert response is not None
                first_part.append(response.message.sequence)
            await stream.cancel()
        assert first_part == [1, 2, 3]

        stub = v1.MessageServiceStub(channel, timeout=STEP)
        resumed = await within(
            collect(stub.stream_messages(v1.StreamMessagesRequest(conversation_id="c-1", after_sequence=3)))
        )
        sequences = [r.message.sequence for r in resumed if r.message is not None]
        assert sequences == [4, 5, 6, 7, 8]
        assert first_part + sequences == list(range(1, 9))
        assert [r.message.content for r in resumed if r.message] == [f"m{i}" for i in range(3, 8)]

        at_the_end = stub.stream_messages(v1.StreamMessagesRequest(conversation_id="c-1", after_sequence=8))
        assert await within(collect(at_the_end)) == []
        unknown = stub.stream_messages(v1.StreamMessagesRequest(conversation_id="nobody"))
        assert await within(collect(unknown)) == []


async def test_stream_messages_refuses_a_negative_resume_point_or_no_conversation(app: App) -> None:
    async with connect(app.port) as channel:
        stub = v1.MessageServiceStub(channel, timeout=STEP)
        await expect_status(
            collect(stub.stream_messages(v1.StreamMessagesRequest(conversation_id="c-1", after_sequence=-1))),
            Status.INVALID_ARGUMENT,
            "after_sequence",
        )
        await expect_status(
            collect(stub.stream_messages(v1.StreamMessagesRequest(follow=True))),
            Status.INVALID_ARGUMENT,
            "conversation_id",
        )
        assert hub_listeners(app, "") == 0


@both_backends
async def test_a_follower_receives_messages_another_client_sends_afterwards(app: App) -> None:
    async with connect(app.port) as follower_channel, connect(app.port) as writer_channel:
        await send(writer_channel, new("k-1", author="ann"), new("k-2", author="bo"))

        received: asyncio.Queue[v1.StreamMessagesResponse] = asyncio.Queue()
        request = v1.StreamMessagesRequest(conversation_id="c-1", follow=True, include_user=True)
        follower = asyncio.ensure_future(
            pump(v1.MessageServiceStub(follower_channel, timeout=4 * STEP).stream_messages(request), received)
        )
        try:
            replayed = [await within(received.get()) for _ in range(2)]
            assert [r.message.sequence for r in replayed if r.message] == [1, 2]
            await until(lambda: hub_listeners(app, "c-1") == 1)

            # Another client: a SendMessages batch through the standard target, sent twice (the
            # second time as a retry that creates nothing), then a chat message.
            live_batch = [
                pb.SendMessagesRequest(message=pb_new("k-3", author="cy", content="live 3")),
                pb.SendMessagesRequest(message=pb_new("k-4", author="cy", content="live 4")),
            ]
            for expected_created in (2, 0):
                reply = await message_service_grpc.MessageServiceStub(writer_channel).SendMessages(
                    live_batch, timeout=STEP
                )
                assert reply is not None and reply.created_count == expected_created
            async with message_service_grpc.MessageServiceStub(writer_channel).ChatStream.open(
                timeout=2 * STEP
            ) as chat:
                await chat.send_message(pb_join("c-1", "dee"))
                await chat.send_message(Chat(send=pb_new("k-5", author="dee", content="live 5")))
                assert message_of(await pb_event(chat)).sequence == 5
                await chat.end()
                assert await within(chat.recv_message()) is None

            live = [await within(received.get()) for _ in range(3)]
            assert [
                (
                    r.message.sequence,
                    r.message.content,
                    r.message.author.user_id if r.message.author else None,
                )
                for r in live
                if r.message
            ] == [(3, "live 3", "cy"), (4, "live 4", "cy"), (5, "live 5", "dee")]
            # No duplicates of the replayed messages or of the retried batch, no chat presence.
            assert received.empty()
            assert not follower.done()
        finally:
            follower.cancel()
            await asyncio.gather(follower, return_exceptions=True)
        await until(lambda: hub_listeners(app, "c-1") == 0)


async def test_a_follower_ends_unavailable_with_its_resume_point_when_the_server_drains(app: App) -> None:
    async with connect(app.port) as channel:
        await send(channel, new("k-1"), new("k-2"))
        stub = v1.MessageServiceStub(channel, timeout=4 * STEP)
        received: list[int] = []

        async def follow() -> None:
            request = v1.StreamMessagesRequest(conversation_id="c-1", follow=True)
            async for response in stub.stream_messages(request):
                assert response.message is not None
                received.append(response.message.sequence)
                if len(received) == 2:
                    app.begin_draining()

        error = await expect_status(follow(), Status.UNAVAILABLE)
        assert received == [1, 2]
        assert "after_sequence=2" in (error.message or "")
        await until(lambda: hub_listeners(app, "c-1") == 0)
        # While draining, new calls are refused too.
        await expect_status(
            stub.stream_messages(v1.StreamMessagesRequest(conversation_id="c-1")).__anext__(),
            Status.UNAVAILABLE,
        )


async def test_cancelling_a_follower_releases_the_server(app: App) -> None:
    async with connect(app.port) as channel:
        await send(channel, new("k-1"))
        follow = pb.StreamMessagesRequest(conversation_id="c-1", follow=True)

        # Standard target: the client cancels the call.
        async with message_service_grpc.MessageServiceStub(channel).StreamMessages.open(
            timeout=4 * STEP
        ) as stream:
            await stream.send_message(follow, end=True)
            assert await within(stream.recv_message()) is not None
            assert hub_listeners(app, "c-1") == 1 and app.lifecycle.active_calls == 1
            await stream.cancel()
        await until(lambda: hub_listeners(app, "c-1") == 0 and app.lifecycle.active_calls == 0)

        # Dataclass target: the task reading the stream is cancelled.
        received: asyncio.Queue[v1.StreamMessagesResponse] = asyncio.Queue()
        stub = v1.MessageServiceStub(channel, timeout=4 * STEP)
        reader = asyncio.ensure_future(
            pump(stub.stream_messages(v1.StreamMessagesRequest(conversation_id="c-1", follow=True)), received)
        )
        await within(received.get())
        await until(lambda: hub_listeners(app, "c-1") == 1)
        reader.cancel()
        await asyncio.gather(reader, return_exceptions=True)
        await until(lambda: hub_listeners(app, "c-1") == 0 and app.lifecycle.active_calls == 0)

        # The server carries on: new messages are stored and read back.
        await send(channel, new("k-2"))
        replay = await within(collect(stub.stream_messages(v1.StreamMessagesRequest(conversation_id="c-1"))))
        assert [r.message.sequence for r in replay if r.message] == [1, 2]


def waiting_reads() -> list[asyncio.Task[object]]:
    """Tasks still waiting for a live listener's next event."""
    return [
        task
        for task in asyncio.all_tasks()
        if not task.done() and getattr(task.get_coro(), "__qualname__", "") == "Listener.next"
    ]


async def test_a_cancelled_follower_leaves_no_task_waiting_behind(app: App) -> None:
    gc.disable()  # the orphan sits in a reference cycle; keep it observable until it is looked for
    try:
        async with connect(app.port) as channel:
            standard = message_service_grpc.MessageServiceStub(channel)
            async with standard.StreamMessages.open(timeout=4 * STEP) as stream:
                await stream.send_message(
                    pb.StreamMessagesRequest(conversation_id="c-9", follow=True), end=True
                )
                await until(lambda: len(waiting_reads()) == 1)  # the handler waits for news
                await stream.cancel()
            await until(lambda: hub_listeners(app, "c-9") == 0 and app.lifecycle.active_calls == 0)
            try:
                # A read left behind would wait forever; one being cancelled is gone within the bound.
                await until(lambda: not waiting_reads(), timeout=STEP)
            finally:
                orphans = waiting_reads()
                for orphan in orphans:
                    orphan.cancel()
                await asyncio.gather(*orphans, return_exceptions=True)
            assert orphans == []
    finally:
        gc.enable()


# ChatStream ---------------------------------------------------------------------------------------


@both_backends
async def test_two_participants_share_presence_messages_and_typing(app: App) -> None:
    async with connect(app.port) as channel:
        standard = message_service_grpc.MessageServiceStub(channel)
        async with standard.ChatStream.open(timeout=4 * STEP) as alice, DataclassChat(channel) as bob:
            await alice.send_message(pb_join("room", "alice"))
            await until(lambda: hub_listeners(app, "room") == 1)
            bob.send(v1.ChatStreamRequest(join=v1.ChatJoin(conversation_id="room", user_id="bob")))
            assert presence_of(await pb_event(alice)) == ("room", "bob", JOINED)

            # A message reaches both participants; the sender's copy is its acknowledgement.
            await alice.send_message(Chat(send=pb_new("a-1", "room", "alice", "hi bob")))
            acknowledged = message_of(await pb_event(alice))
            at_bob = await bob.recv()
            assert at_bob is not None and at_bob.message is not None
            assert (at_bob.message.id, at_bob.message.sequence, at_bob.message.author_id) == (
                acknowledged.id,
                1,
                "alice",
            )
            assert at_bob.message.content == acknowledged.content == "hi bob"

            bob.send(v1.ChatStreamRequest(send=new("b-1", "room", "bob", "hi alice")))
            own = await bob.recv()
            assert own is not None and own.message is not None and own.message.sequence == 2
            assert message_of(await pb_event(alice)).id == own.message.id

            # Typing reaches the other participant only.
            bob.send(
                v1.ChatStreamRequest(typing=v1.ChatTyping(conversation_id="room", user_id="bob", typing=True))
            )
            typing = await pb_event(alice)
            assert typing.WhichOneof("event") == "typing"
            assert (typing.typing.user_id, typing.typing.typing) == ("bob", True)
            bob.send(v1.ChatStreamRequest(send=new("b-2", "room", "bob", "still here")))
            next_for_bob = await bob.recv()  # his own message, not an echo of his typing
            assert next_for_bob is not None and next_for_bob.message is not None
            assert next_for_bob.message.content == "still here"
            assert message_of(await pb_event(alice)).content == "still here"

            # Leaving: the other participant is told, and the leaver hears nothing more.
            bob.send(v1.ChatStreamRequest(leave=v1.ChatLeave(conversation_id="room")))
            assert presence_of(await pb_event(alice)) == ("room", "bob", LEFT)
            assert hub_listeners(app, "room") == 1
            await alice.send_message(Chat(send=pb_new("a-2", "room", "alice", "bye")))
            assert message_of(await pb_event(alice)).sequence == 4
            bob.end()
            assert await bob.recv() is None
            await bob.result()  # ended OK

            await alice.end()
            assert await within(alice.recv_message()) is None
        await until(lambda: hub_listeners(app, "room") == 0)
        assert [m.content for m in await list_all(channel, "room")] == [
            "hi bob",
            "hi alice",
            "still here",
            "bye",
        ]


async def test_sending_before_joining_is_failed_precondition(app: App) -> None:
    async with connect(app.port) as channel:
        standard = message_service_grpc.MessageServiceStub(channel)

        async def chat() -> None:
            async with standard.ChatStream.open(timeout=2 * STEP) as stream:
                await stream.send_message(Chat(send=pb_new("k-1", "room", "alice", "too early")))
                await stream.recv_message()

        await expect_status(chat(), Status.FAILED_PRECONDITION, "send.conversation_id")

        dataclass_stub = v1.MessageServiceStub(channel, timeout=2 * STEP)
        # Joined, but another conversation than the one sent to.
        requests = [
            v1.ChatStreamRequest(join=v1.ChatJoin(conversation_id="lobby", user_id="alice")),
            v1.ChatStreamRequest(send=new("k-2", "room", "alice", "wrong room")),
        ]
        await expect_status(
            collect(dataclass_stub.chat_stream(requests)), Status.FAILED_PRECONDITION, "send.conversation_id"
        )
        assert await list_all(channel, "room") == []
        await until(lambda: hub_listeners(app, "lobby") == 0)


async def test_an_empty_chat_event_is_invalid_argument(app: App) -> None:
    async with connect(app.port) as channel:
        standard = message_service_grpc.MessageServiceStub(channel)

        async def chat() -> None:
            async with standard.ChatStream.open(timeout=2 * STEP) as stream:
                await stream.send_message(pb_join("room", "alice"))
                await stream.send_message(Chat())
                await stream.recv_message()

        await expect_status(chat(), Status.INVALID_ARGUMENT, "event")
        await expect_status(
            collect(v1.MessageServiceStub(channel, timeout=2 * STEP).chat_stream([v1.ChatStreamRequest()])),
            Status.INVALID_ARGUMENT,
            "event",
        )
        await until(lambda: hub_listeners(app, "room") == 0)


async def test_a_closed_or_cancelled_chat_stream_tells_the_others_it_left(app: App) -> None:
    async with connect(app.port) as channel:
        standard = message_service_grpc.MessageServiceStub(channel)
        async with standard.ChatStream.open(timeout=4 * STEP) as alice:
            await alice.send_message(pb_join("room", "alice"))
            await until(lambda: hub_listeners(app, "room") == 1)

            # Bob's client goes away without a word: the call is cancelled.
            async with standard.ChatStream.open(timeout=4 * STEP) as bob:
                await bob.send_message(pb_join("room", "bob"))
                assert presence_of(await pb_event(alice)) == ("room", "bob", JOINED)
                await bob.cancel()
            assert presence_of(await pb_event(alice)) == ("room", "bob", LEFT)

            # Carol half-closes her side: the call ends normally.
            async with DataclassChat(channel) as carol:
                carol.send(v1.ChatStreamRequest(join=v1.ChatJoin(conversation_id="room", user_id="carol")))
                assert presence_of(await pb_event(alice)) == ("room", "carol", JOINED)
                carol.end()
                assert await carol.recv() is None
                await carol.result()
            assert presence_of(await pb_event(alice)) == ("room", "carol", LEFT)
            assert hub_listeners(app, "room") == 1
            await alice.end()
            assert await within(alice.recv_message()) is None
        await until(lambda: hub_listeners(app, "room") == 0 and app.lifecycle.active_calls == 0)


async def test_a_retried_chat_send_is_acknowledged_to_the_sender_only(app: App) -> None:
    async with connect(app.port) as channel:
        standard = message_service_grpc.MessageServiceStub(channel)
        await send(channel, new("sent-before", "room", "bob", "from SendMessages"))
        async with standard.ChatStream.open(timeout=4 * STEP) as alice, DataclassChat(channel) as bob:
            await alice.send_message(pb_join("room", "alice"))
            await until(lambda: hub_listeners(app, "room") == 1)
            bob.send(v1.ChatStreamRequest(join=v1.ChatJoin(conversation_id="room", user_id="bob")))
            assert presence_of(await pb_event(alice)) == ("room", "bob", JOINED)

            for _ in range(2):
                bob.send(v1.ChatStreamRequest(send=new("b-1", "room", "bob", "once")))
            bob.send(v1.ChatStreamRequest(send=new("sent-before", "room", "bob", "from SendMessages")))
            acks = [await bob.recv() for _ in range(3)]
            assert [(a.message.sequence, a.message.idempotency_key) for a in acks if a and a.message] == [
                (2, "b-1"),
                (2, "b-1"),
                (1, "sent-before"),
            ]
            bob.send(v1.ChatStreamRequest(send=new("b-2", "room", "bob", "twice")))
            # Alice saw the first send once, then the next new message: no retry reached her.
            assert [message_of(await pb_event(alice)).idempotency_key for _ in range(2)] == ["b-1", "b-2"]
            bob.end()
            await alice.end()
        assert [m.idempotency_key for m in await list_all(channel, "room")] == ["sent-before", "b-1", "b-2"]


async def test_a_retried_send_messages_batch_does_not_reach_chat_participants_again(app: App) -> None:
    async with connect(app.port) as channel:
        standard = message_service_grpc.MessageServiceStub(channel)
        async with standard.ChatStream.open(timeout=4 * STEP) as alice:
            await alice.send_message(pb_join("room", "alice"))
            await until(lambda: hub_listeners(app, "room") == 1)
            for created in (1, 0):  # the batch, then its retry, which creates nothing
                assert (await send(channel, new("s-1", "room", "bob", "batch"))).created_count == created
            await send(channel, new("s-2", "room", "bob", "next"))
            # Alice hears the batch once, then the next new message: the retry never reached her.
            assert [message_of(await pb_event(alice)).idempotency_key for _ in range(2)] == ["s-1", "s-2"]
            await alice.end()
            assert await within(alice.recv_message()) is None


async def test_chat_streams_end_unavailable_when_the_server_drains(app: App) -> None:
    async with connect(app.port) as channel:
        standard = message_service_grpc.MessageServiceStub(channel)

        async def chat() -> None:
            async with standard.ChatStream.open(timeout=4 * STEP) as stream:
                await stream.send_message(pb_join("room", "alice"))
                await until(lambda: hub_listeners(app, "room") == 1)
                app.begin_draining()
                assert await within(stream.recv_message()) is None

        await expect_status(chat(), Status.UNAVAILABLE)
        await until(lambda: hub_listeners(app, "room") == 0)


async def test_an_invalid_chat_send_names_the_chat_request_field(app: App) -> None:
    async with connect(app.port) as channel:
        standard = message_service_grpc.MessageServiceStub(channel)

        async def chat() -> None:
            async with standard.ChatStream.open(timeout=2 * STEP) as stream:
                await stream.send_message(pb_join("room", "alice"))
                await stream.send_message(Chat(send=pb_new("k-1", "room", "alice", content="")))
                await stream.recv_message()

        await expect_status(chat(), Status.INVALID_ARGUMENT, "send.content")


# Restart ------------------------------------------------------------------------------------------


@both_backends
async def test_every_acknowledged_message_is_there_after_a_restart(tmp_path: Path, database: str) -> None:
    first = await build_app(make_config(tmp_path, database=database))
    await first.start()
    try:
        async with connect(first.port) as channel:
            sent = await send(channel, *(new(f"k-{i}", content=f"batch {i}") for i in range(3)))
            acknowledged = [m.id for m in sent.messages]
            async with message_service_grpc.MessageServiceStub(channel).ChatStream.open(
                timeout=4 * STEP
            ) as chat:
                await chat.send_message(pb_join("c-1", "u-1"))
                for i in range(2):
                    await chat.send_message(Chat(send=pb_new(f"chat-{i}", content=f"chat {i}")))
                    acknowledged.append(message_of(await pb_event(chat)).id)
                await chat.end()
                assert await within(chat.recv_message()) is None
    finally:
        await first.shutdown()

    second = await build_app(make_config(tmp_path, database=database))
    assert second.config.database == first.config.database
    await second.start()
    try:
        async with connect(second.port) as channel:
            listed = await list_all(channel, "c-1")
            assert [m.id for m in listed] == acknowledged
            assert [m.sequence for m in listed] == [1, 2, 3, 4, 5]
            assert [m.content for m in listed] == ["batch 0", "batch 1", "batch 2", "chat 0", "chat 1"]
            got = await message_service_grpc.MessageServiceStub(channel).GetMessage(
                pb.GetMessageRequest(message_id=acknowledged[-1]), timeout=STEP
            )
            assert got.message.idempotency_key == "chat-1"
            # Idempotency keys and sequence numbers carry on from before the restart.
            more = await send(channel, new("chat-0", content="chat 0"), new("k-9", content="after"))
            assert more.created_count == 1
            assert [(m.id, m.sequence) for m in more.messages] == [
                (acknowledged[3], 4),
                (more.messages[1].id, 6),
            ]
    finally:
        await second.shutdown()
