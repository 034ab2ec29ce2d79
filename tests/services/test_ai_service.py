"""AIService over real sockets and a real SQLite file, through both client targets.

The local provider is deterministic, so a streamed answer can be compared with a
unary one; it grounds answers in RAGService documents and MessageService
conversations, which the tests fill through those services' own APIs.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import pytest
from grpclib.client import Channel
from grpclib.const import Status
from grpclib.exceptions import GRPCError

from chat.v1 import ai_service_grpc, ai_service_pb2, rag_service_grpc, rag_service_pb2
from chat_sdk import v1
from chat_services.ai.local import MODEL, TOKENS_PER_CHUNK, LocalGroundedProvider, count_tokens
from chat_services.ai.provider import (
    CompletionRequest,
    ConversationTurn,
    Finished,
    FinishReason,
    Passage,
    TextPiece,
)
from chat_services.ai.service import DEFAULT_MAX_TOKENS, AiService
from chat_services.server import App, build_app

from .clients import channel, expect_status, until
from .conftest import make_config, service_of

RETRIES = "Retries use exponential backoff with jitter. Each retry waits longer than the last."
DEADLINES = "Deadlines bound every call. A call past its deadline fails with DEADLINE_EXCEEDED."
COOKING = "Bread needs flour, water, salt and yeast. Knead the dough for ten minutes."
PROMPT = "How does retry backoff work?"
LONG_PROMPT = "please give a long answer " * 25  # the answer restates it: over a hundred tokens
TIMEOUT = 10.0
CHUNK_DELAY = 0.05


def provider_of(app: App) -> LocalGroundedProvider:
    provider = service_of(app, AiService).provider
    assert isinstance(provider, LocalGroundedProvider)
    return provider


@pytest.fixture
async def slow_app(tmp_path: Path) -> AsyncIterator[App]:
    """A server that pauses between answer chunks, so that a stream can be interrupted midway."""
    built = await build_app(make_config(tmp_path / "slow", completion_chunk_delay=CHUNK_DELAY))
    await built.start()
    try:
        yield built
    finally:
        await built.shutdown()


async def split_stream(
    events: AsyncIterator[v1.StreamCompletionResponse],
) -> tuple[list[v1.CompletionChunk], v1.CompletionDone]:
    """The chunks and the done event of a finished stream, checking that done comes once, last."""
    chunks: list[v1.CompletionChunk] = []
    done: list[v1.CompletionDone] = []
    async for event in events:
        assert not done, "nothing follows done"
        assert (event.chunk is None) != (event.done is None), "exactly one event is set"
        if event.chunk is not None:
            chunks.append(event.chunk)
        elif event.done is not None:
            done.append(event.done)
    assert len(done) == 1, "a successful stream ends with done"
    return chunks, done[0]


async def standard_events(
    stub: ai_service_grpc.AIServiceStub, request: ai_service_pb2.StreamCompletionRequest
) -> list[ai_service_pb2.StreamCompletionResponse]:
    async with stub.StreamCompletion.open(timeout=TIMEOUT) as stream:
        await stream.send_message(request, end=True)
        return [event async for event in stream]


async def ingest(opened: Channel, *documents: tuple[str, str]) -> None:
    rag = v1.RagServiceStub(opened, timeout=TIMEOUT)
    for document_id, text in documents:
        header = v1.DocumentHeader(document_id=document_id)
        await rag.ingest_document([v1.IngestDocumentRequest(header=header, text=text)])


async def say(opened: Channel, conversation_id: str, *messages: tuple[str, str]) -> None:
    """Send (author, content) messages to a conversation through MessageService."""
    stub = v1.MessageServiceStub(opened, timeout=TIMEOUT)
    await stub.send_messages(
        [
            v1.SendMessagesRequest(
                message=v1.NewMessage(
                    idempotency_key=f"{conversation_id}-{i}",
                    conversation_id=conversation_id,
                    author_id=author,
                    content=content,
                )
            )
            for i, (author, content) in enumerate(messages)
        ]
    )


def usage_of(usage: v1.Usage | None) -> tuple[int, int, int]:
    assert usage is not None
    return usage.prompt_tokens, usage.completion_tokens, usage.total_tokens


# --- Streaming and unary answers ---------------------------------------------------------------


async def test_a_stream_is_indexed_chunks_then_one_done(app: App) -> None:
    async with channel(app.port) as opened:
        stub = v1.AiServiceStub(opened, timeout=TIMEOUT)
        chunks, done = await asyncio.wait_for(
            split_stream(stub.stream_completion(v1.StreamCompletionRequest(prompt=PROMPT))), TIMEOUT
        )
    assert len(chunks) > 1
    assert [c.index for c in chunks] == list(range(len(chunks)))
    assert all(c.text for c in chunks)
    text = "".join(c.text for c in chunks)
    assert text.startswith(f'About "{PROMPT}":')
    assert done.finish_reason == v1.FinishReason.STOP
    prompt_tokens, completion_tokens, total_tokens = usage_of(done.usage)
    assert completion_tokens > 0 and total_tokens == prompt_tokens + completion_tokens
    assert prompt_tokens == count_tokens(PROMPT)  # no conversation, no retrieval: the prompt alone
    assert completion_tokens == count_tokens(text)
    assert done.citations == []


@pytest.mark.parametrize("use_retrieval", [False, True], ids=["alone", "retrieval"])
async def test_the_streamed_chunks_make_the_complete_text(app: App, use_retrieval: bool) -> None:
    async with channel(app.port) as opened:
        await ingest(opened, ("retries", RETRIES), ("deadlines", DEADLINES), ("bread", COOKING))
        await say(opened, "c-1", ("ana", "We retry too often. Can we back off?"))
        standard = ai_service_grpc.AIServiceStub(opened)
        streamed = ai_service_pb2.StreamCompletionRequest(
            conversation_id="c-1", prompt=PROMPT, use_retrieval=use_retrieval
        )
        events = await asyncio.wait_for(standard_events(standard, streamed), TIMEOUT)
        whole = await v1.AiServiceStub(opened, timeout=TIMEOUT).complete(
            v1.CompleteRequest(conversation_id="c-1", prompt=PROMPT, use_retrieval=use_retrieval)
        )
        again = await standard.Complete(
            ai_service_pb2.CompleteRequest(conversation_id="c-1", prompt=PROMPT, use_retrieval=use_retrieval),
            timeout=TIMEOUT,
        )

    assert [e.WhichOneof("event") for e in events] == ["chunk"] * (len(events) - 1) + ["done"]
    chunks, done = [e.chunk for e in events[:-1]], events[-1].done
    assert [c.index for c in chunks] == list(range(len(chunks)))
    assert "".join(c.text for c in chunks) == whole.text == again.text
    assert done.finish_reason == ai_service_pb2.FINISH_REASON_STOP
    assert whole.finish_reason == v1.FinishReason.STOP
    streamed_usage = (done.usage.prompt_tokens, done.usage.completion_tokens, done.usage.total_tokens)
    assert streamed_usage == usage_of(whole.usage)
    assert [(c.document_id, c.chunk_index, c.score) for c in done.citations] == [
        (c.document_id, c.chunk_index, c.score) for c in whole.citations
    ]
    assert bool(whole.citations) is use_retrieval


async def test_the_same_request_gives_the_same_answer(app: App) -> None:
    async with channel(app.port) as opened:
        await ingest(opened, ("retries", RETRIES))
        stub = v1.AiServiceStub(opened, timeout=TIMEOUT)
        request = v1.CompleteRequest(prompt=PROMPT, use_retrieval=True, model=MODEL)
        replies = [await stub.complete(request) for _ in range(3)]
    assert replies[0] == replies[1] == replies[2]
    assert replies[0].text and replies[0].citations


async def test_each_chunk_is_a_few_whole_tokens(app: App) -> None:
    prompt = "Naïve café — 東京 résumé? Ünïcödé ✓ fine!"
    async with channel(app.port) as opened:
        stub = ai_service_grpc.AIServiceStub(opened)
        events = await asyncio.wait_for(
            standard_events(stub, ai_service_pb2.StreamCompletionRequest(prompt=prompt)), TIMEOUT
        )
    chunks = [e.chunk.text for e in events[:-1]]
    assert "".join(chunks).startswith(f'About "{prompt}":')
    assert sum(count_tokens(c) for c in chunks) == events[-1].done.usage.completion_tokens
    assert all(1 <= count_tokens(c) <= TOKENS_PER_CHUNK for c in chunks)


# --- max_tokens and models ---------------------------------------------------------------------


async def test_max_tokens_cuts_the_answer_with_finish_reason_length(app: App) -> None:
    async with channel(app.port) as opened:
        stub = v1.AiServiceStub(opened, timeout=TIMEOUT)
        full = await stub.complete(v1.CompleteRequest(prompt=PROMPT))
        _, natural, _ = usage_of(full.usage)
        assert full.finish_reason == v1.FinishReason.STOP and natural > 4

        exact = await stub.complete(v1.CompleteRequest(prompt=PROMPT, max_tokens=natural))
        assert exact.finish_reason == v1.FinishReason.STOP and exact.text == full.text

        for limit in (natural - 1, 5, 1):
            cut = await stub.complete(v1.CompleteRequest(prompt=PROMPT, max_tokens=limit))
            assert cut.finish_reason == v1.FinishReason.LENGTH
            assert usage_of(cut.usage)[1] == limit == count_tokens(cut.text)
            assert full.text.startswith(cut.text) and len(cut.text) < len(full.text)

        chunks, done = await asyncio.wait_for(
            split_stream(stub.stream_completion(v1.StreamCompletionRequest(prompt=PROMPT, max_tokens=3))),
            TIMEOUT,
        )
        assert done.finish_reason == v1.FinishReason.LENGTH
        assert usage_of(done.usage)[1] == 3
        assert [c.index for c in chunks] == [0] and chunks[0].text == 'About "How'


async def test_max_tokens_zero_means_the_server_default(app: App) -> None:
    async with channel(app.port) as opened:
        stub = ai_service_grpc.AIServiceStub(opened)
        long_prompt = "word " * (DEFAULT_MAX_TOKENS + 50)

        async def complete(max_tokens: int) -> ai_service_pb2.CompleteResponse:
            request = ai_service_pb2.CompleteRequest(prompt=long_prompt, max_tokens=max_tokens)
            return await stub.Complete(request, timeout=TIMEOUT)

        default = await complete(0)
        assert default == await complete(DEFAULT_MAX_TOKENS)
        assert default.finish_reason == ai_service_pb2.FINISH_REASON_LENGTH
        assert default.usage.completion_tokens == DEFAULT_MAX_TOKENS
        generous = await complete(2**31 - 1)  # far above any limit: capped, not refused
        assert generous.finish_reason == ai_service_pb2.FINISH_REASON_STOP
        assert generous.text.startswith(default.text) and len(generous.text) > len(default.text)


async def test_the_default_model_can_be_named(app: App) -> None:
    async with channel(app.port) as opened:
        stub = v1.AiServiceStub(opened, timeout=TIMEOUT)
        named = await stub.complete(v1.CompleteRequest(prompt=PROMPT, model=MODEL))
        default = await stub.complete(v1.CompleteRequest(prompt=PROMPT))
    assert named == default


# --- Grounding: retrieval and conversation -----------------------------------------------------


async def test_retrieval_cites_the_passages_search_finds_and_quotes_them(app: App) -> None:
    async with channel(app.port) as opened:
        await ingest(opened, ("retries", RETRIES), ("deadlines", DEADLINES), ("bread", COOKING))
        rag = rag_service_grpc.RAGServiceStub(opened)
        found = await rag.SearchDocuments(
            rag_service_pb2.SearchDocumentsRequest(text=PROMPT, top_k=3), timeout=TIMEOUT
        )
        stub = v1.AiServiceStub(opened, timeout=TIMEOUT)
        grounded = await stub.complete(v1.CompleteRequest(prompt=PROMPT, use_retrieval=True))
        alone = await stub.complete(v1.CompleteRequest(prompt=PROMPT))

    assert grounded.citations and len(grounded.citations) <= 3
    assert grounded.citations[0].document_id == "retries" and grounded.citations[0].chunk_index == 0
    assert {c.document_id for c in grounded.citations} <= {"retries", "deadlines", "bread"}
    scores = [c.score for c in grounded.citations]
    assert scores == sorted(scores, reverse=True) and all(-1 <= s <= 1 for s in scores)
    assert [(c.document_id, c.chunk_index) for c in grounded.citations] == [
        (p.document_id, p.chunk_index) for p in found.passages
    ]
    assert scores == pytest.approx([p.score for p in found.passages], abs=1e-6)
    assert "Retries use exponential backoff with jitter. [1]" in grounded.text
    passages_tokens = sum(count_tokens(p.text) for p in found.passages)
    assert usage_of(grounded.usage)[0] == count_tokens(PROMPT) + passages_tokens

    assert alone.citations == [] and "Retries use" not in alone.text
    assert "no stored document covers this" in alone.text
    assert usage_of(alone.usage)[0] == count_tokens(PROMPT)


async def test_a_streamed_answer_with_retrieval_ends_with_its_citations(app: App) -> None:
    async with channel(app.port) as opened:
        await ingest(opened, ("deadlines", DEADLINES), ("bread", COOKING))
        stub = v1.AiServiceStub(opened, timeout=TIMEOUT)
        request = v1.StreamCompletionRequest(prompt="What happens past a call deadline?", use_retrieval=True)
        chunks, done = await asyncio.wait_for(split_stream(stub.stream_completion(request)), TIMEOUT)
    assert done.citations and done.citations[0].document_id == "deadlines"
    assert "Deadlines bound every call. [1]" in "".join(c.text for c in chunks)


async def test_retrieval_without_documents_cites_nothing(app: App) -> None:
    async with channel(app.port) as opened:
        reply = await v1.AiServiceStub(opened, timeout=TIMEOUT).complete(
            v1.CompleteRequest(prompt=PROMPT, use_retrieval=True)
        )
    assert reply.citations == [] and "no stored document covers this" in reply.text
    assert reply.finish_reason == v1.FinishReason.STOP


async def test_the_conversation_is_context_and_its_latest_message_is_quoted(app: App) -> None:
    async with channel(app.port) as opened:
        await say(
            opened,
            "c-1",
            ("ana", "Deploys are slow."),
            ("bob", "The retry loop has no backoff. It hammers the API."),
            ("cleo", "Then add jitter today! Ship it Friday."),
        )
        await say(opened, "c-2", ("dan", "Unrelated chatter about lunch."))
        stub = v1.AiServiceStub(opened, timeout=TIMEOUT)
        reply = await stub.complete(v1.CompleteRequest(conversation_id="c-1", prompt="What did we decide?"))
        chunks, done = await asyncio.wait_for(
            split_stream(
                stub.stream_completion(
                    v1.StreamCompletionRequest(conversation_id="c-1", prompt="What did we decide?")
                )
            ),
            TIMEOUT,
        )
    latest = 'The conversation has 3 recent messages; the latest, from cleo, says: "Then add jitter today!"'
    assert latest in reply.text
    assert "lunch" not in reply.text and "dan" not in reply.text
    assert "".join(c.text for c in chunks) == reply.text
    context_tokens = sum(
        count_tokens(t)
        for t in (
            "Deploys are slow.",
            "The retry loop has no backoff. It hammers the API.",
            "Then add jitter today! Ship it Friday.",
        )
    )
    assert usage_of(reply.usage)[0] == count_tokens("What did we decide?") + context_tokens
    assert usage_of(done.usage) == usage_of(reply.usage)


async def test_only_the_twenty_latest_messages_are_context(app: App) -> None:
    async with channel(app.port) as opened:
        await say(opened, "c-1", *((f"user-{i}", f"Message number {i}.") for i in range(25)))
        reply = await v1.AiServiceStub(opened, timeout=TIMEOUT).complete(
            v1.CompleteRequest(conversation_id="c-1", prompt="Summarise")
        )
    assert 'has 20 recent messages; the latest, from user-24, says: "Message number 24."' in reply.text
    # Only the last 20 count as read: each message is three words and a full stop.
    assert usage_of(reply.usage)[0] == count_tokens("Summarise") + 20 * 4


async def test_an_empty_conversation_adds_nothing(app: App) -> None:
    async with channel(app.port) as opened:
        stub = v1.AiServiceStub(opened, timeout=TIMEOUT)
        unknown = await stub.complete(v1.CompleteRequest(conversation_id="nobody-here", prompt=PROMPT))
        none = await stub.complete(v1.CompleteRequest(prompt=PROMPT))
    assert unknown == none
    assert "conversation has" not in unknown.text


# --- Invalid requests --------------------------------------------------------------------------


@dataclass(frozen=True)
class Fields:
    """The fields StreamCompletionRequest and CompleteRequest share."""

    prompt: str = "hi"
    max_tokens: int = 0
    model: str = ""
    conversation_id: str = ""
    use_retrieval: bool = False


BAD_REQUESTS = [
    pytest.param(Fields(prompt=""), "prompt", id="empty-prompt"),
    pytest.param(Fields(prompt=" \n\t"), "prompt", id="blank-prompt"),
    pytest.param(Fields(max_tokens=-1), "max_tokens", id="negative-max-tokens"),
    pytest.param(Fields(max_tokens=-(2**31)), "max_tokens", id="most-negative-max-tokens"),
    pytest.param(Fields(model="gpt-nothing"), "model", id="unknown-model"),
    pytest.param(Fields(model=MODEL.upper()), "model", id="model-names-are-exact"),
    pytest.param(Fields(conversation_id="c" * 65), "conversation_id", id="long-conversation-id"),
    pytest.param(Fields(prompt="", use_retrieval=True), "prompt", id="empty-prompt-with-retrieval"),
]


async def _standard_stream(opened: Channel, fields: Fields) -> object:
    request = ai_service_pb2.StreamCompletionRequest(**asdict(fields))
    return await standard_events(ai_service_grpc.AIServiceStub(opened), request)


async def _standard_complete(opened: Channel, fields: Fields) -> object:
    request = ai_service_pb2.CompleteRequest(**asdict(fields))
    return await ai_service_grpc.AIServiceStub(opened).Complete(request, timeout=TIMEOUT)


async def _dataclass_stream(opened: Channel, fields: Fields) -> object:
    stub = v1.AiServiceStub(opened, timeout=TIMEOUT)
    return [e async for e in stub.stream_completion(v1.StreamCompletionRequest(**asdict(fields)))]


async def _dataclass_complete(opened: Channel, fields: Fields) -> object:
    return await v1.AiServiceStub(opened, timeout=TIMEOUT).complete(v1.CompleteRequest(**asdict(fields)))


CALLS = [
    pytest.param(_standard_stream, id="standard-stream"),
    pytest.param(_standard_complete, id="standard-complete"),
    pytest.param(_dataclass_stream, id="dataclass-stream"),
    pytest.param(_dataclass_complete, id="dataclass-complete"),
]


@pytest.mark.parametrize("call", CALLS)
@pytest.mark.parametrize(("fields", "field"), BAD_REQUESTS)
async def test_a_bad_request_is_invalid_argument_naming_the_field(
    app: App,
    call: Callable[[Channel, Fields], Awaitable[object]],
    fields: Fields,
    field: str,
) -> None:
    async with channel(app.port) as opened:
        await asyncio.wait_for(expect_status(call(opened, fields), Status.INVALID_ARGUMENT, field), TIMEOUT)
    assert provider_of(app).pieces_generated == 0  # refused before generating anything


# --- Cancellation, deadlines and draining ------------------------------------------------------


async def wait_until_generation_stops(app: App) -> int:
    """Once the call has ended, generation must not move on, even while another answer streams.

    A generator left running would add pieces during the second answer (which takes at
    least as many chunk delays as it has chunks); the count must grow by that answer only.
    """
    await asyncio.wait_for(until(lambda: app.lifecycle.active_calls == 0), TIMEOUT)
    provider = provider_of(app)
    stopped_at = provider.pieces_generated
    async with channel(app.port) as opened:
        reply = await ai_service_grpc.AIServiceStub(opened).Complete(
            ai_service_pb2.CompleteRequest(prompt=PROMPT), timeout=TIMEOUT
        )
    assert reply is not None and reply.usage.completion_tokens > 2 * TOKENS_PER_CHUNK
    assert provider.pieces_generated == stopped_at + reply.usage.completion_tokens
    return stopped_at


async def test_cancelling_a_stream_stops_generation(slow_app: App) -> None:
    assert count_tokens(f'About "{LONG_PROMPT}"') > 100  # the answer is far longer than what is read
    async with channel(slow_app.port) as opened:
        stub = ai_service_grpc.AIServiceStub(opened)
        async with stub.StreamCompletion.open(timeout=TIMEOUT) as stream:
            await stream.send_message(ai_service_pb2.StreamCompletionRequest(prompt=LONG_PROMPT), end=True)
            received: list[ai_service_pb2.CompletionChunk] = []
            for _ in range(2):
                event = await asyncio.wait_for(stream.recv_message(), TIMEOUT)
                assert event is not None and event.WhichOneof("event") == "chunk"
                received.append(event.chunk)
            await stream.cancel()
        assert [c.index for c in received] == [0, 1]
        generated = await wait_until_generation_stops(slow_app)
    assert generated <= sum(count_tokens(c.text) for c in received) + 2 * TOKENS_PER_CHUNK  # two more at most


async def test_cancelling_the_dataclass_iterator_stops_generation(slow_app: App) -> None:
    async with channel(slow_app.port) as opened:
        stub = v1.AiServiceStub(opened, timeout=TIMEOUT)
        received: list[v1.StreamCompletionResponse] = []
        two = asyncio.Event()

        async def consume() -> None:
            async for event in stub.stream_completion(v1.StreamCompletionRequest(prompt=LONG_PROMPT)):
                received.append(event)
                if len(received) == 2:
                    two.set()

        task = asyncio.ensure_future(consume())
        await asyncio.wait_for(two.wait(), TIMEOUT)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, TIMEOUT)
        generated = await wait_until_generation_stops(slow_app)
    assert 2 * TOKENS_PER_CHUNK <= generated <= (len(received) + 2) * TOKENS_PER_CHUNK


async def test_cancelling_a_unary_completion_stops_generation(slow_app: App) -> None:
    provider = provider_of(slow_app)
    async with channel(slow_app.port) as opened:
        stub = ai_service_grpc.AIServiceStub(opened)
        call = asyncio.ensure_future(
            stub.Complete(ai_service_pb2.CompleteRequest(prompt=LONG_PROMPT), timeout=TIMEOUT)
        )
        await asyncio.wait_for(until(lambda: provider.pieces_generated >= 2 * TOKENS_PER_CHUNK), TIMEOUT)
        call.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(call, TIMEOUT)
        generated = await wait_until_generation_stops(slow_app)
    assert generated <= 4 * TOKENS_PER_CHUNK  # the two awaited and two more at most


async def test_a_deadline_ends_a_slow_completion_and_its_generation(slow_app: App) -> None:
    async with channel(slow_app.port) as opened:
        stub = ai_service_grpc.AIServiceStub(opened)
        with pytest.raises((GRPCError, asyncio.TimeoutError)) as raised:
            await asyncio.wait_for(
                stub.Complete(ai_service_pb2.CompleteRequest(prompt=LONG_PROMPT), timeout=0.3), TIMEOUT
            )
        if isinstance(raised.value, GRPCError):
            assert raised.value.status is Status.DEADLINE_EXCEEDED
        generated = await wait_until_generation_stops(slow_app)
    assert 0 < generated < count_tokens(f'About "{LONG_PROMPT}"')


async def test_draining_ends_a_stream_with_finish_reason_cancelled(slow_app: App, tmp_path: Path) -> None:
    request = v1.StreamCompletionRequest(prompt=LONG_PROMPT)
    fast = await build_app(make_config(tmp_path / "fast"))
    await fast.start()
    try:
        async with channel(fast.port) as opened:
            stub = v1.AiServiceStub(opened, timeout=TIMEOUT)
            full_chunks, full_done = await asyncio.wait_for(
                split_stream(stub.stream_completion(request)), TIMEOUT
            )
    finally:
        await fast.shutdown()
    full_text = "".join(c.text for c in full_chunks)

    async with channel(slow_app.port) as opened:
        stub = v1.AiServiceStub(opened, timeout=TIMEOUT)
        events = stub.stream_completion(request)
        first = await asyncio.wait_for(anext(events), TIMEOUT)
        assert first.chunk is not None and first.chunk.index == 0
        slow_app.begin_draining()
        rest_chunks, done = await asyncio.wait_for(split_stream(events), TIMEOUT)
        # New calls are refused meanwhile.
        await expect_status(stub.complete(v1.CompleteRequest(prompt=PROMPT)), Status.UNAVAILABLE)

    chunks = [first.chunk, *rest_chunks]
    assert [c.index for c in chunks] == list(range(len(chunks)))
    text = "".join(c.text for c in chunks)
    assert done.finish_reason == v1.FinishReason.CANCELLED
    prompt_tokens, completion_tokens, total_tokens = usage_of(done.usage)
    assert full_text.startswith(text) and len(text) < len(full_text)
    assert completion_tokens == count_tokens(text) < usage_of(full_done.usage)[1]
    assert prompt_tokens == usage_of(full_done.usage)[0] and total_tokens == prompt_tokens + completion_tokens


async def test_draining_ends_a_unary_completion_early_with_the_text_so_far(slow_app: App) -> None:
    provider = provider_of(slow_app)
    async with channel(slow_app.port) as opened:
        stub = ai_service_grpc.AIServiceStub(opened)
        call = asyncio.ensure_future(
            stub.Complete(ai_service_pb2.CompleteRequest(prompt=LONG_PROMPT), timeout=TIMEOUT)
        )
        await asyncio.wait_for(until(lambda: provider.pieces_generated >= 2 * TOKENS_PER_CHUNK), TIMEOUT)
        slow_app.begin_draining()
        reply = await asyncio.wait_for(call, TIMEOUT)
    assert reply.finish_reason == ai_service_pb2.FINISH_REASON_CANCELLED
    assert reply.text.startswith('About "please give a long answer')
    assert 2 * TOKENS_PER_CHUNK <= reply.usage.completion_tokens == count_tokens(reply.text)
    assert reply.usage.completion_tokens < count_tokens(LONG_PROMPT)
    assert reply.usage.total_tokens == reply.usage.prompt_tokens + reply.usage.completion_tokens


class _NoSources:
    """A provider's conversations and passages when the request reads neither."""

    async def recent_messages(self, conversation_id: str, limit: int) -> list[ConversationTurn]:
        raise AssertionError("a request without a conversation reads no turns")

    async def search_text(
        self, text: str, top_k: int, min_score: float, *, reader: str | None = None
    ) -> list[Passage]:
        raise AssertionError("a request without retrieval reads no passages")


async def test_with_no_chunk_delay_a_drain_between_two_chunks_still_ends_the_answer() -> None:
    provider = LocalGroundedProvider(conversations=_NoSources(), passages=_NoSources(), chunk_delay=0.0)
    request = CompletionRequest("How do I reset a password?", "", 64, MODEL, use_retrieval=False)
    stop = asyncio.Event()
    items: list[TextPiece | Finished] = []
    async for item in provider.stream(request, stop):
        items.append(item)
        if len(items) == 1:
            asyncio.get_running_loop().call_soon(stop.set)  # as a drain would, from another task
    assert isinstance(items[0], TextPiece)
    assert len(items) == 2 and isinstance(items[1], Finished)
    assert items[1].reason is FinishReason.CANCELLED
    assert items[1].usage.completion_tokens == TOKENS_PER_CHUNK
    whole = [item async for item in provider.stream(request, asyncio.Event())]
    assert len(whole) > 2 and isinstance(whole[-1], Finished) and whole[-1].reason is FinishReason.STOP
