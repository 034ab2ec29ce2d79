"""RAGService and AIService over real sockets and SQLite, through both SDK client targets."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from grpclib.const import Status

from chat.v1 import ai_service_grpc, ai_service_pb2, rag_service_grpc, rag_service_pb2
from chat_sdk import v1
from chat_services.ai.local import LocalGroundedProvider
from chat_services.ai.service import AiService
from chat_services.rag.embedding import HashingEmbedder
from chat_services.server import App, build_app

from .clients import channel, expect_status
from .conftest import make_config

RETRIES = "Retries use exponential backoff with jitter. Each retry waits longer than the last."
DEADLINES = "Deadlines bound every call. A call past its deadline fails with DEADLINE_EXCEEDED."
COOKING = "Bread needs flour, water, salt and yeast. Knead the dough for ten minutes."


def header(document_id: str = "", title: str = "") -> v1.DocumentHeader:
    return v1.DocumentHeader(document_id=document_id, title=title, metadata={"team": "platform"})


async def ingest(stub: v1.RagServiceStub, document_id: str, *texts: str) -> v1.Document:
    parts = [v1.IngestDocumentRequest(header=header(document_id, document_id.title()), text=texts[0])]
    parts += [v1.IngestDocumentRequest(text=t) for t in texts[1:]]
    reply = await stub.ingest_document(parts)
    assert reply.document is not None
    return reply.document


async def test_a_streamed_document_is_stored_split_and_described(app: App) -> None:
    async with channel(app.port) as opened:
        stub = v1.RagServiceStub(opened, timeout=10)
        text = RETRIES + " " + "Résumé: backoff ✓. " * 80
        document = await ingest(stub, "doc-1", text[:100], text[100:])
        assert document.document_id == "doc-1" and document.title == "Doc-1"
        assert document.size_bytes == len(text.encode()) > len(text)
        assert document.chunk_count >= 2  # longer than one passage
        assert document.metadata == {"team": "platform"} and document.media_type == "text/plain"
        assert document.created_at is not None

        assigned = await stub.ingest_document(
            [v1.IngestDocumentRequest(header=v1.DocumentHeader(), text=COOKING)]
        )
        assert assigned.document is not None and len(assigned.document.document_id) == 32


async def test_ingestion_errors_name_the_field(app: App) -> None:
    async with channel(app.port) as opened:
        stub = v1.RagServiceStub(opened, timeout=10)
        await ingest(stub, "doc-1", RETRIES)
        await expect_status(
            stub.ingest_document([v1.IngestDocumentRequest(header=header("doc-1"), text=RETRIES)]),
            Status.ALREADY_EXISTS,
            "header.document_id",
        )
        await expect_status(
            stub.ingest_document([v1.IngestDocumentRequest(text=RETRIES)]), Status.INVALID_ARGUMENT, "header"
        )
        await expect_status(
            stub.ingest_document(
                [
                    v1.IngestDocumentRequest(header=header("doc-2"), text=RETRIES),
                    v1.IngestDocumentRequest(header=header("doc-2"), text=RETRIES),
                ]
            ),
            Status.INVALID_ARGUMENT,
            "header",
        )
        await expect_status(
            stub.ingest_document([v1.IngestDocumentRequest(header=header("doc-3"), text="  ")]),
            Status.INVALID_ARGUMENT,
            "text",
        )
        await expect_status(
            stub.ingest_document([v1.IngestDocumentRequest(header=header("d" * 129), text=RETRIES)]),
            Status.INVALID_ARGUMENT,
            "header.document_id",
        )
        await expect_status(stub.ingest_document([]), Status.INVALID_ARGUMENT, "header")


async def test_search_finds_the_relevant_document_first_with_sane_scores(app: App) -> None:
    async with channel(app.port) as opened:
        stub = v1.RagServiceStub(opened, timeout=10)
        for document_id, text in (("retries", RETRIES), ("deadlines", DEADLINES), ("bread", COOKING)):
            await ingest(stub, document_id, text)
        found = await stub.search_documents(v1.SearchDocumentsRequest(text="how does retry backoff work"))
        assert found.passages[0].document_id == "retries"
        scores = [p.score for p in found.passages]
        assert scores == sorted(scores, reverse=True) and all(0 <= s <= 1 for s in scores)
        assert found.passages[0].text.startswith("Retries use exponential backoff")

        restricted = await stub.search_documents(
            v1.SearchDocumentsRequest(
                text="how does retry backoff work", document_ids=["bread", "unknown"], min_score=-1
            )
        )
        assert {p.document_id for p in restricted.passages} == {"bread"}
        strict = await stub.search_documents(v1.SearchDocumentsRequest(text="retry backoff", min_score=0.99))
        assert strict.passages == []


async def test_search_limits_top_k(app: App) -> None:
    async with channel(app.port) as opened:
        stub = v1.RagServiceStub(opened, timeout=10)
        sentences = " ".join(
            f"Passage {i} talks about retries and backoff. " + "filler " * 120 for i in range(8)
        )
        document = await ingest(stub, "long", sentences)
        assert document.chunk_count > 5
        default = await stub.search_documents(v1.SearchDocumentsRequest(text="retries backoff", min_score=-1))
        assert len(default.passages) == 5
        one = await stub.search_documents(
            v1.SearchDocumentsRequest(text="retries backoff", top_k=1, min_score=-1)
        )
        assert len(one.passages) == 1
        many = await stub.search_documents(
            v1.SearchDocumentsRequest(text="retries backoff", top_k=1000, min_score=-1)
        )
        assert len(many.passages) == document.chunk_count  # every passage (fewer than the cap of 100)


async def test_a_vector_query_matches_a_passage_with_its_own_embedding(app: App) -> None:
    async with channel(app.port) as opened:
        stub = rag_service_grpc.RAGServiceStub(opened)
        ingest_request = rag_service_pb2.IngestDocumentRequest(
            header=rag_service_pb2.DocumentHeader(document_id="d"), text=DEADLINES
        )
        await stub.IngestDocument([ingest_request])
        vector = rag_service_pb2.Vector(values=HashingEmbedder().embed(DEADLINES))
        found = await stub.SearchDocuments(rag_service_pb2.SearchDocumentsRequest(vector=vector, top_k=1))
        assert found.passages[0].document_id == "d"
        assert found.passages[0].score == pytest.approx(1.0, abs=1e-5)


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        (rag_service_pb2.SearchDocumentsRequest(), "query"),
        (rag_service_pb2.SearchDocumentsRequest(text=" "), "text"),
        (rag_service_pb2.SearchDocumentsRequest(text="!!!"), "text"),
        (
            rag_service_pb2.SearchDocumentsRequest(vector=rag_service_pb2.Vector(values=[1.0, 2.0])),
            "vector.values",
        ),
        (
            rag_service_pb2.SearchDocumentsRequest(vector=rag_service_pb2.Vector(values=[0.0] * 256)),
            "vector.values",
        ),
        (rag_service_pb2.SearchDocumentsRequest(text="retries", top_k=-1), "top_k"),
        (rag_service_pb2.SearchDocumentsRequest(text="retries", min_score=float("nan")), "min_score"),
    ],
)
async def test_a_bad_search_is_invalid_argument(
    app: App, request_: rag_service_pb2.SearchDocumentsRequest, field: str
) -> None:
    async with channel(app.port) as opened:
        stub = rag_service_grpc.RAGServiceStub(opened)
        await expect_status(stub.SearchDocuments(request_), Status.INVALID_ARGUMENT, field)


async def test_a_deleted_document_is_gone_from_search(app: App) -> None:
    async with channel(app.port) as opened:
        stub = v1.RagServiceStub(opened, timeout=10)
        document = await ingest(stub, "retries", RETRIES)
        deleted = await stub.delete_document(v1.DeleteDocumentRequest(document_id="retries"))
        assert deleted.deleted_chunk_count == document.chunk_count >= 1
        found = await stub.search_documents(v1.SearchDocumentsRequest(text="retry backoff", min_score=-1))
        assert found.passages == []
        await expect_status(
            stub.delete_document(v1.DeleteDocumentRequest(document_id="retries")), Status.NOT_FOUND
        )
        await expect_status(
            stub.delete_document(v1.DeleteDocumentRequest()), Status.INVALID_ARGUMENT, "document_id"
        )
        await ingest(stub, "retries", RETRIES)  # the ID is free again


async def test_documents_survive_a_restart(tmp_path: Path) -> None:
    for round_ in range(2):
        app = await build_app(make_config(tmp_path))
        await app.start()
        try:
            async with channel(app.port) as opened:
                stub = v1.RagServiceStub(opened, timeout=10)
                if round_ == 0:
                    await ingest(stub, "retries", RETRIES)
                else:
                    found = await stub.search_documents(v1.SearchDocumentsRequest(text="retry backoff"))
                    assert [p.document_id for p in found.passages] == ["retries"]
        finally:
            await app.shutdown()


def provider_of(app: App) -> LocalGroundedProvider:
    [service] = [s for s in app.services if isinstance(s, AiService)]
    assert isinstance(service.provider, LocalGroundedProvider)
    return service.provider


async def test_a_streamed_completion_matches_the_unary_one(app: App) -> None:
    async with channel(app.port) as opened:
        stub = v1.AiServiceStub(opened, timeout=20)
        request = v1.StreamCompletionRequest(prompt="Summarise our retry policy")
        events = [e async for e in stub.stream_completion(request)]
        chunks = [e.chunk for e in events[:-1]]
        assert all(c is not None for c in chunks) and len(chunks) > 1
        assert [c.index for c in chunks if c] == list(range(len(chunks)))
        done = events[-1].done
        assert done is not None and done.usage is not None
        assert done.finish_reason == v1.FinishReason.STOP
        assert done.usage.total_tokens == done.usage.prompt_tokens + done.usage.completion_tokens
        assert done.usage.completion_tokens > 0 and done.citations == []

        standard = ai_service_grpc.AIServiceStub(opened)
        whole = await standard.Complete(ai_service_pb2.CompleteRequest(prompt="Summarise our retry policy"))
        assert whole.text == "".join(c.text for c in chunks if c)
        assert whole.usage.completion_tokens == done.usage.completion_tokens


async def test_retrieval_grounds_the_answer_and_cites_passages(app: App) -> None:
    async with channel(app.port) as opened:
        rag = v1.RagServiceStub(opened, timeout=10)
        await ingest(rag, "retries", RETRIES)
        await ingest(rag, "bread", COOKING)
        stub = ai_service_grpc.AIServiceStub(opened)
        reply = await stub.Complete(
            ai_service_pb2.CompleteRequest(prompt="How does retry backoff work?", use_retrieval=True)
        )
        assert reply.citations[0].document_id == "retries"
        assert "Retries use exponential backoff with jitter." in reply.text
        assert reply.usage.prompt_tokens > len(["How", "does", "retry", "backoff", "work?"])


async def test_the_conversation_is_context_for_the_answer(app: App) -> None:
    async with channel(app.port) as opened:
        messages = v1.MessageServiceStub(opened, timeout=10)
        new = v1.NewMessage(
            idempotency_key="k", conversation_id="c-1", author_id="ana", content="Ship it Friday."
        )
        await messages.send_messages([v1.SendMessagesRequest(message=new)])
        reply = await v1.AiServiceStub(opened, timeout=10).complete(
            v1.CompleteRequest(conversation_id="c-1", prompt="When do we ship?")
        )
        assert "from ana" in reply.text and "Ship it Friday." in reply.text


async def test_max_tokens_cuts_the_answer_with_finish_reason_length(app: App) -> None:
    async with channel(app.port) as opened:
        reply = await ai_service_grpc.AIServiceStub(opened).Complete(
            ai_service_pb2.CompleteRequest(prompt="Tell me everything", max_tokens=3)
        )
        assert reply.finish_reason == ai_service_pb2.FINISH_REASON_LENGTH
        assert reply.usage.completion_tokens == 3


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        (ai_service_pb2.CompleteRequest(prompt=""), "prompt"),
        (ai_service_pb2.CompleteRequest(prompt="hi", max_tokens=-1), "max_tokens"),
        (ai_service_pb2.CompleteRequest(prompt="hi", model="gpt-nothing"), "model"),
        (ai_service_pb2.CompleteRequest(prompt="hi", conversation_id="c" * 65), "conversation_id"),
    ],
)
async def test_a_bad_completion_request_is_invalid_argument(
    app: App, request_: ai_service_pb2.CompleteRequest, field: str
) -> None:
    async with channel(app.port) as opened:
        await expect_status(
            ai_service_grpc.AIServiceStub(opened).Complete(request_), Status.INVALID_ARGUMENT, field
        )


async def test_a_cancelled_stream_stops_generation(tmp_path: Path) -> None:
    app = await build_app(make_config(tmp_path, completion_chunk_delay=0.05))
    await app.start()
    try:
        provider = provider_of(app)
        async with channel(app.port) as opened:
            stub = ai_service_grpc.AIServiceStub(opened)
            async with stub.StreamCompletion.open(timeout=30) as stream:
                await stream.send_message(
                    ai_service_pb2.StreamCompletionRequest(prompt="a long answer please " * 30), end=True
                )
                for _ in range(2):
                    assert await asyncio.wait_for(stream.recv_message(), 5) is not None
                await stream.cancel()
            await asyncio.wait_for(_until(lambda: app.lifecycle.active_calls == 0), 5)
            stopped_at = provider.pieces_generated
            await asyncio.sleep(0.3)  # six chunk delays: a running generator would have moved on
            assert provider.pieces_generated == stopped_at
    finally:
        await app.shutdown()


async def test_draining_ends_a_stream_with_finish_reason_cancelled(tmp_path: Path) -> None:
    app = await build_app(make_config(tmp_path, completion_chunk_delay=0.05))
    await app.start()
    try:
        async with channel(app.port) as opened:
            stub = v1.AiServiceStub(opened, timeout=30)
            events = stub.stream_completion(v1.StreamCompletionRequest(prompt="a long answer please " * 30))
            first = await asyncio.wait_for(anext(events), 5)
            assert first.chunk is not None
            app.begin_draining()
            rest = [e async for e in events]
            assert rest[-1].done is not None
            assert rest[-1].done.finish_reason == v1.FinishReason.CANCELLED
            assert rest[-1].done.usage is not None
            assert rest[-1].done.usage.completion_tokens < 30 * 4
    finally:
        await app.shutdown()


async def _until(condition: object) -> None:
    while not condition():  # type: ignore[operator]
        await asyncio.sleep(0.01)
