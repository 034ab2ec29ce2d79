"""RAGService over real sockets and a real SQLite file, through both client targets.

Ingestion (streamed and whole), what the stored Document says, search by text and by
vector with its limits and filters, deletion, and documents outliving a restart.
"""

from __future__ import annotations

import asyncio
import datetime
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from grpclib.const import Status
from grpclib.exceptions import GRPCError

from chat.v1 import rag_service_grpc, rag_service_pb2
from chat_sdk import v1
from chat_services.rag.embedding import HashingEmbedder
from chat_services.rag.service import RagService
from chat_services.rag.store import MIGRATIONS, DocumentStore
from chat_services.server import App, build_app
from chat_services.storage import Database

from .clients import channel, expect_status, until
from .conftest import both_backends, make_config
from .harness import serve

RETRIES = "Retries use exponential backoff with jitter. Each retry waits longer than the last."
DEADLINES = "Deadlines bound every call. A call past its deadline fails with DEADLINE_EXCEEDED."
COOKING = "Bread needs flour, water, salt and yeast. Knead the dough for ten minutes."
TIMEOUT = 10.0


def header(document_id: str = "") -> v1.DocumentHeader:
    return v1.DocumentHeader(document_id=document_id)


async def parts(first: v1.DocumentHeader | None, *texts: str) -> AsyncIterator[v1.IngestDocumentRequest]:
    """A document as a client streams it: the header alone, then each text piece as it is read."""
    if first is not None:
        yield v1.IngestDocumentRequest(header=first)
    for text in texts:
        await asyncio.sleep(0)  # as if reading the next piece of a file
        yield v1.IngestDocumentRequest(text=text)


async def ingest(stub: v1.RagServiceStub, document_id: str, text: str) -> v1.Document:
    reply = await stub.ingest_document([v1.IngestDocumentRequest(header=header(document_id), text=text)])
    assert reply.document is not None
    return reply.document


def long_text(topic: str, count: int) -> str:
    """``count`` sentences of about 500 characters, each of which becomes a passage of its own."""
    return " ".join(
        f"Part {i} is about {topic} " + "with filler words " * 27 + "to the end." for i in range(count)
    )


def ranked(passages: list[v1.ScoredPassage]) -> list[tuple[str, int]]:
    return [(p.document_id, p.chunk_index) for p in passages]


# --- Ingestion ---------------------------------------------------------------------------------


@both_backends
async def test_a_streamed_document_is_described_by_what_was_sent(app: App) -> None:
    text = "Résumé ✓: " + long_text("retries", 3)
    pieces = [text[:3], text[3:600], "", text[600:]]  # "Résumé" is cut across two requests; one is empty
    metadata = {"team": "platform", "lang": "en"}
    first = v1.DocumentHeader(
        document_id="doc-1",
        title="Retry guide",
        source_uri="https://example.com/retries.md",
        media_type="text/markdown",
        metadata=metadata,
    )
    async with channel(app.port) as opened:
        stub = v1.RagServiceStub(opened, timeout=TIMEOUT)
        reply = await asyncio.wait_for(stub.ingest_document(parts(first, *pieces)), TIMEOUT)
    document = reply.document
    assert document is not None
    assert document.document_id == "doc-1" and document.title == "Retry guide"
    assert document.source_uri == "https://example.com/retries.md"
    assert document.media_type == "text/markdown" and document.metadata == metadata
    assert document.size_bytes == len(text.encode()) == len(text) + 4  # é twice and ✓: UTF-8 bytes
    assert document.chunk_count == 3
    assert document.created_at is not None and document.created_at.tzinfo is not None
    age = datetime.datetime.now(datetime.UTC) - document.created_at
    assert datetime.timedelta(0) <= age < datetime.timedelta(minutes=1)


async def test_streamed_and_whole_ingestion_store_the_same_passages(app: App) -> None:
    text = long_text("deadlines", 4)
    async with channel(app.port) as opened:
        stub = v1.RagServiceStub(opened, timeout=TIMEOUT)
        cut = [text[i : i + 97] for i in range(0, len(text), 97)]  # cuts fall inside words
        streamed = await stub.ingest_document(parts(header("streamed"), *cut))
        whole = await ingest(stub, "whole", text)
        assert streamed.document is not None
        assert (streamed.document.chunk_count, streamed.document.size_bytes) == (
            whole.chunk_count,
            whole.size_bytes,
        )
        found = await stub.search_documents(
            v1.SearchDocumentsRequest(text="deadlines", top_k=100, min_score=-1)
        )
        by_document: dict[str, list[tuple[int, str, float]]] = {"streamed": [], "whole": []}
        for p in found.passages:
            by_document[p.document_id].append((p.chunk_index, p.text, p.score))
        assert sorted(by_document["streamed"]) == sorted(by_document["whole"])
        assert len(by_document["whole"]) == whole.chunk_count


async def test_one_request_with_header_and_text_is_a_whole_document(app: App) -> None:
    async with channel(app.port) as opened:
        stub = rag_service_grpc.RAGServiceStub(opened)
        request = rag_service_pb2.IngestDocumentRequest(
            header=rag_service_pb2.DocumentHeader(document_id="d", metadata={"k": "v"}), text=DEADLINES
        )
        reply = await stub.IngestDocument([request], timeout=TIMEOUT)
        assert reply.document.document_id == "d" and dict(reply.document.metadata) == {"k": "v"}
        assert reply.document.media_type == "text/plain"  # empty means text/plain
        assert reply.document.title == "" and reply.document.source_uri == ""
        assert (reply.document.chunk_count, reply.document.size_bytes) == (1, len(DEADLINES))
        assert reply.document.HasField("created_at")
        now = datetime.datetime.now(datetime.UTC)
        assert abs(reply.document.created_at.ToDatetime(datetime.UTC) - now) < datetime.timedelta(minutes=1)


async def test_the_server_assigns_an_id_when_none_is_given(app: App) -> None:
    async with channel(app.port) as opened:
        stub = v1.RagServiceStub(opened, timeout=TIMEOUT)
        first = await ingest(stub, "", RETRIES)
        second = await ingest(stub, "", RETRIES)
        assert re.fullmatch(r"[0-9a-f]{32}", first.document_id)
        assert first.document_id != second.document_id
        found = await stub.search_documents(
            v1.SearchDocumentsRequest(text="retry", document_ids=[second.document_id])
        )
        assert ranked(found.passages) == [(second.document_id, 0)]
        deleted = await stub.delete_document(v1.DeleteDocumentRequest(document_id=first.document_id))
        assert deleted.deleted_chunk_count == 1


async def test_the_response_comes_after_the_client_closes_its_side(app: App) -> None:
    search = rag_service_pb2.SearchDocumentsRequest(text="jitter backoff", min_score=-1)
    async with channel(app.port) as opened:
        stub = rag_service_grpc.RAGServiceStub(opened)
        async with stub.IngestDocument.open(timeout=TIMEOUT) as stream:
            await stream.send_message(
                rag_service_pb2.IngestDocumentRequest(
                    header=rag_service_pb2.DocumentHeader(document_id="r"), text=RETRIES
                )
            )
            # The server has the call in hand, but the document is not done: nothing is searchable.
            await asyncio.wait_for(until(lambda: app.lifecycle.active_calls == 1), TIMEOUT)
            assert (await stub.SearchDocuments(search, timeout=TIMEOUT)).passages == []
            await stream.send_message(rag_service_pb2.IngestDocumentRequest(text=" " + DEADLINES), end=True)
            reply = await asyncio.wait_for(stream.recv_message(), TIMEOUT)
        assert reply is not None and reply.document.chunk_count == 1
        found = await stub.SearchDocuments(search, timeout=TIMEOUT)  # searchable once answered
        assert [(p.document_id, p.text) for p in found.passages] == [("r", f"{RETRIES} {DEADLINES}")]


async def test_a_cancelled_ingestion_stores_nothing(app: App) -> None:
    async with channel(app.port) as opened:
        stub = rag_service_grpc.RAGServiceStub(opened)
        async with stub.IngestDocument.open(timeout=TIMEOUT) as stream:
            await stream.send_message(
                rag_service_pb2.IngestDocumentRequest(
                    header=rag_service_pb2.DocumentHeader(document_id="r"), text=RETRIES
                )
            )
            await asyncio.wait_for(until(lambda: app.lifecycle.active_calls == 1), TIMEOUT)
            await stream.cancel()
        await asyncio.wait_for(until(lambda: app.lifecycle.active_calls == 0), TIMEOUT)
        search = rag_service_pb2.SearchDocumentsRequest(text="retry", min_score=-1)
        assert (await stub.SearchDocuments(search, timeout=TIMEOUT)).passages == []
        request = rag_service_pb2.IngestDocumentRequest(
            header=rag_service_pb2.DocumentHeader(document_id="r"), text=RETRIES
        )
        assert (await stub.IngestDocument([request], timeout=TIMEOUT)).document.document_id == "r"


@both_backends
async def test_a_taken_id_is_already_exists_and_keeps_the_first_document(app: App) -> None:
    async with channel(app.port) as opened:
        stub = v1.RagServiceStub(opened, timeout=TIMEOUT)
        await ingest(stub, "doc", RETRIES)
        await expect_status(
            stub.ingest_document(parts(header("doc"), COOKING)), Status.ALREADY_EXISTS, "header.document_id"
        )
        found = await stub.search_documents(v1.SearchDocumentsRequest(text="bread flour", min_score=-1))
        assert [(p.document_id, p.text) for p in found.passages] == [("doc", RETRIES)]


@both_backends
async def test_concurrent_ingestions_of_one_id_store_it_once(app: App) -> None:
    async with channel(app.port) as opened:
        stub = v1.RagServiceStub(opened, timeout=TIMEOUT)
        results = await asyncio.wait_for(
            asyncio.gather(
                *(ingest(stub, "same", text) for text in (RETRIES, COOKING)), return_exceptions=True
            ),
            TIMEOUT,
        )
    documents = [r for r in results if isinstance(r, v1.Document)]
    errors = [r for r in results if isinstance(r, GRPCError)]
    assert len(documents) == 1 and len(errors) == 1, results
    assert errors[0].status is Status.ALREADY_EXISTS


@pytest.mark.parametrize(
    ("requests", "field"),
    [
        pytest.param([v1.IngestDocumentRequest(text=RETRIES)], "header", id="no-header"),
        pytest.param(
            [
                v1.IngestDocumentRequest(header=header("d")),
                v1.IngestDocumentRequest(text=RETRIES),
                v1.IngestDocumentRequest(header=header("d"), text=DEADLINES),
            ],
            "header",
            id="header-on-a-later-request",
        ),
        pytest.param(
            [
                v1.IngestDocumentRequest(header=header("d")),
                v1.IngestDocumentRequest(header=v1.DocumentHeader()),
            ],
            "header",
            id="empty-header-on-a-later-request",
        ),
        pytest.param([], "header", id="no-request"),
        pytest.param([v1.IngestDocumentRequest(header=header("d"))], "text", id="header-only"),
        pytest.param(
            [v1.IngestDocumentRequest(header=header("d"), text=""), v1.IngestDocumentRequest(text=" \n\t ")],
            "text",
            id="whitespace-text",
        ),
        pytest.param(
            [v1.IngestDocumentRequest(header=header("d" * 129), text=RETRIES)],
            "header.document_id",
            id="id-too-long",
        ),
    ],
)
async def test_a_malformed_ingestion_is_invalid_argument_naming_the_field(
    app: App, requests: list[v1.IngestDocumentRequest], field: str
) -> None:
    async with channel(app.port) as opened:
        stub = v1.RagServiceStub(opened, timeout=TIMEOUT)
        await expect_status(stub.ingest_document(requests), Status.INVALID_ARGUMENT, field)
        found = await stub.search_documents(v1.SearchDocumentsRequest(text="retry deadline", min_score=-1))
        assert found.passages == []  # nothing half-stored


async def test_a_document_id_of_128_characters_is_accepted(app: App) -> None:
    async with channel(app.port) as opened:
        stub = v1.RagServiceStub(opened, timeout=TIMEOUT)
        assert (await ingest(stub, "d" * 128, RETRIES)).document_id == "d" * 128


async def test_a_document_over_the_size_limit_is_resource_exhausted(tmp_path: Path) -> None:
    database = Database(tmp_path / "rag.db")
    await database.open(MIGRATIONS)
    try:
        service = RagService(DocumentStore(database, HashingEmbedder()), max_document_bytes=20)
        async with serve([service]) as port, channel(port) as opened:
            stub = v1.RagServiceStub(opened, timeout=TIMEOUT)
            exact = await stub.ingest_document(parts(header("fits"), "é" * 5, "é" * 5))  # 20 bytes
            assert exact.document is not None and exact.document.size_bytes == 20
            await expect_status(
                stub.ingest_document(parts(header("over"), "é" * 5, "é" * 5, "a")),
                Status.RESOURCE_EXHAUSTED,
                "text",
            )
            found = await stub.search_documents(v1.SearchDocumentsRequest(text="é" * 5, min_score=-1))
            assert [p.document_id for p in found.passages] == ["fits"]
    finally:
        await database.close()


# --- Search ------------------------------------------------------------------------------------


@both_backends
async def test_a_text_search_puts_the_relevant_document_first(app: App) -> None:
    async with channel(app.port) as opened:
        stub = v1.RagServiceStub(opened, timeout=TIMEOUT)
        for document_id, text in (("bread", COOKING), ("deadlines", DEADLINES), ("retries", RETRIES)):
            await ingest(stub, document_id, text)
        found = await stub.search_documents(v1.SearchDocumentsRequest(text="how long does each retry wait"))
        assert found.passages and found.passages[0].document_id == "retries"
        assert found.passages[0].text == RETRIES and found.passages[0].chunk_index == 0
        scores = [p.score for p in found.passages]
        assert scores == sorted(scores, reverse=True)
        assert all(0 <= s <= 1 for s in scores)  # the default min_score 0 drops negative scores
        assert scores[0] > 0.2

        everything = await stub.search_documents(
            v1.SearchDocumentsRequest(text="how long does each retry wait", min_score=-1)
        )
        assert {p.document_id for p in everything.passages} == {"bread", "deadlines", "retries"}
        assert all(-1 <= p.score <= 1 for p in everything.passages)


async def test_both_targets_and_text_or_vector_queries_agree(app: App) -> None:
    query = "deadline exceeded calls"
    async with channel(app.port) as opened:
        stub = v1.RagServiceStub(opened, timeout=TIMEOUT)
        await ingest(stub, "deadlines", long_text("deadline calls", 3))
        await ingest(stub, "retries", RETRIES)
        await ingest(stub, "exact", DEADLINES)
        by_text = await stub.search_documents(v1.SearchDocumentsRequest(text=query, min_score=-1))
        standard = rag_service_grpc.RAGServiceStub(opened)
        vector = rag_service_pb2.Vector(values=HashingEmbedder().embed(query))
        by_vector = await standard.SearchDocuments(
            rag_service_pb2.SearchDocumentsRequest(vector=vector, min_score=-1), timeout=TIMEOUT
        )
    assert ranked(by_text.passages)[0] == ("exact", 0)
    assert len(by_text.passages) == 5
    text_scores = {(p.document_id, p.chunk_index): p.score for p in by_text.passages}
    vector_scores = {(p.document_id, p.chunk_index): p.score for p in by_vector.passages}
    assert vector_scores == pytest.approx(text_scores, abs=1e-6)
    for reply in (by_text, by_vector):
        assert [p.score for p in reply.passages] == sorted((p.score for p in reply.passages), reverse=True)


async def test_top_k_defaults_to_five_and_is_capped_at_one_hundred(app: App) -> None:
    async with channel(app.port) as opened:
        stub = v1.RagServiceStub(opened, timeout=TIMEOUT)
        document = await ingest(stub, "long", long_text("retries", 120))
        assert document.chunk_count == 120

        async def count(top_k: int) -> int:
            reply = await stub.search_documents(
                v1.SearchDocumentsRequest(text="retries", top_k=top_k, min_score=-1)
            )
            return len(reply.passages)

        assert [await count(k) for k in (0, 1, 7, 100, 101, 5000)] == [5, 1, 7, 100, 100, 100]
        await expect_status(
            stub.search_documents(v1.SearchDocumentsRequest(text="retries", top_k=-1)),
            Status.INVALID_ARGUMENT,
            "top_k",
        )


async def test_min_score_drops_passages_scoring_below_it(app: App) -> None:
    async with channel(app.port) as opened:
        stub = v1.RagServiceStub(opened, timeout=TIMEOUT)
        for document_id, text in (("bread", COOKING), ("deadlines", DEADLINES), ("retries", RETRIES)):
            await ingest(stub, document_id, text)
        query = "each retry call waits"

        async def above(min_score: float) -> list[v1.ScoredPassage]:
            reply = await stub.search_documents(
                v1.SearchDocumentsRequest(text=query, top_k=100, min_score=min_score)
            )
            return reply.passages

        everything = await above(-1)
        assert len(everything) == 3
        middle = everything[1].score
        assert 0 < middle < everything[0].score
        kept = await above(middle - 1e-6)
        assert ranked(kept) == ranked(everything[:2])
        assert await above(everything[0].score + 1e-6) == []
        assert await above(1.5) == []
        await expect_status(
            stub.search_documents(v1.SearchDocumentsRequest(text=query, min_score=float("inf"))),
            Status.INVALID_ARGUMENT,
            "min_score",
        )


async def test_document_ids_restrict_the_search(app: App) -> None:
    async with channel(app.port) as opened:
        stub = v1.RagServiceStub(opened, timeout=TIMEOUT)
        for document_id, text in (("bread", COOKING), ("deadlines", DEADLINES), ("retries", RETRIES)):
            await ingest(stub, document_id, text)

        async def within(*document_ids: str) -> set[str]:
            reply = await stub.search_documents(
                v1.SearchDocumentsRequest(
                    text="retry deadline bread", min_score=-1, document_ids=list(document_ids)
                )
            )
            return {p.document_id for p in reply.passages}

        assert await within() == {"bread", "deadlines", "retries"}
        assert await within("bread", "deadlines") == {"bread", "deadlines"}
        assert await within("retries", "unknown", "retries") == {"retries"}
        assert await within("unknown") == set()


async def test_a_vector_equal_to_a_passage_embedding_scores_one(app: App) -> None:
    text = long_text("cooking", 3)
    async with channel(app.port) as opened:
        stub = v1.RagServiceStub(opened, timeout=TIMEOUT)
        await ingest(stub, "long", text)
        await ingest(stub, "retries", RETRIES)
        everything = await stub.search_documents(
            v1.SearchDocumentsRequest(text="cooking", top_k=100, min_score=-1)
        )
        second = next(p for p in everything.passages if p.chunk_index == 1)
        vector = v1.Vector(values=HashingEmbedder().embed(second.text))
        found = await stub.search_documents(v1.SearchDocumentsRequest(vector=vector, top_k=2))
        assert ranked(found.passages)[0] == ("long", 1) and found.passages[0].text == second.text
        assert found.passages[0].score == pytest.approx(1.0, abs=1e-5)
        assert found.passages[1].score < found.passages[0].score
        scaled = v1.Vector(values=[-0.25 * v for v in vector.values])  # the opposite direction
        opposite = await stub.search_documents(
            v1.SearchDocumentsRequest(vector=scaled, top_k=100, min_score=-1.5)
        )
        assert ranked(opposite.passages)[-1] == ("long", 1)
        assert opposite.passages[-1].score == pytest.approx(-1.0, abs=1e-5)


async def test_min_score_minus_one_keeps_a_passage_of_opposite_direction(app: App) -> None:
    async with channel(app.port) as opened:
        stub = v1.RagServiceStub(opened, timeout=TIMEOUT)
        await ingest(stub, "deadlines", DEADLINES)
        opposite = v1.Vector(values=[-v for v in HashingEmbedder().embed(DEADLINES)])
        found = await stub.search_documents(v1.SearchDocumentsRequest(vector=opposite, min_score=-1))
        assert ranked(found.passages) == [("deadlines", 0)]  # a score is never below -1


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        pytest.param(rag_service_pb2.SearchDocumentsRequest(), "query", id="neither-text-nor-vector"),
        pytest.param(rag_service_pb2.SearchDocumentsRequest(top_k=3, min_score=0.5), "query", id="no-query"),
        pytest.param(rag_service_pb2.SearchDocumentsRequest(text=""), "text", id="empty-text"),
        pytest.param(rag_service_pb2.SearchDocumentsRequest(text="?! ..."), "text", id="text-without-words"),
        pytest.param(
            rag_service_pb2.SearchDocumentsRequest(vector=rag_service_pb2.Vector(values=[0.5] * 255)),
            "vector.values",
            id="vector-too-short",
        ),
        pytest.param(
            rag_service_pb2.SearchDocumentsRequest(vector=rag_service_pb2.Vector(values=[0.5] * 257)),
            "vector.values",
            id="vector-too-long",
        ),
        pytest.param(
            rag_service_pb2.SearchDocumentsRequest(vector=rag_service_pb2.Vector()),
            "vector.values",
            id="vector-empty",
        ),
        pytest.param(
            rag_service_pb2.SearchDocumentsRequest(vector=rag_service_pb2.Vector(values=[0.0] * 256)),
            "vector.values",
            id="zero-vector",
        ),
        pytest.param(
            rag_service_pb2.SearchDocumentsRequest(
                vector=rag_service_pb2.Vector(values=[float("nan")] + [0.5] * 255)
            ),
            "vector.values",
            id="nan-in-vector",
        ),
        pytest.param(
            rag_service_pb2.SearchDocumentsRequest(text="retry", top_k=-5), "top_k", id="negative-top-k"
        ),
        pytest.param(
            rag_service_pb2.SearchDocumentsRequest(text="retry", min_score=float("nan")),
            "min_score",
            id="nan-min",
        ),
    ],
)
async def test_a_bad_search_is_invalid_argument_naming_the_field(
    app: App, request_: rag_service_pb2.SearchDocumentsRequest, field: str
) -> None:
    async with channel(app.port) as opened:
        await ingest(v1.RagServiceStub(opened, timeout=TIMEOUT), "retries", RETRIES)
        stub = rag_service_grpc.RAGServiceStub(opened)
        await expect_status(stub.SearchDocuments(request_, timeout=TIMEOUT), Status.INVALID_ARGUMENT, field)


async def test_the_dataclass_target_gets_the_same_search_errors(app: App) -> None:
    async with channel(app.port) as opened:
        stub = v1.RagServiceStub(opened, timeout=TIMEOUT)
        await expect_status(
            stub.search_documents(v1.SearchDocumentsRequest()), Status.INVALID_ARGUMENT, "query"
        )
        await expect_status(
            stub.search_documents(v1.SearchDocumentsRequest(vector=v1.Vector(values=[1.0, 2.0]))),
            Status.INVALID_ARGUMENT,
            "vector.values",
        )
        await expect_status(
            stub.search_documents(v1.SearchDocumentsRequest(vector=v1.Vector(values=[0.0] * 256))),
            Status.INVALID_ARGUMENT,
            "vector.values",
        )


async def test_a_long_list_of_document_ids_still_restricts_the_search(app: App) -> None:
    ids = [f"x{i}" for i in range(250_000)] + ["retries"]  # about 2.3 MB: well under the message limit
    async with channel(app.port) as opened:
        stub = v1.RagServiceStub(opened, timeout=TIMEOUT)
        await ingest(stub, "retries", RETRIES)
        await ingest(stub, "bread", COOKING)
        request = rag_service_pb2.SearchDocumentsRequest(text="retry", document_ids=ids, min_score=-1)
        outcome: rag_service_pb2.SearchDocumentsResponse | GRPCError
        try:
            outcome = await rag_service_grpc.RAGServiceStub(opened).SearchDocuments(request, timeout=TIMEOUT)
        except GRPCError as error:
            outcome = error
    if isinstance(outcome, GRPCError):
        # Refusing an over-long list as the client's mistake would keep the contract too; INTERNAL does not.
        assert outcome.status is Status.INVALID_ARGUMENT, (outcome.status, outcome.message)
    else:
        assert [p.document_id for p in outcome.passages] == ["retries"]


# --- Deletion and restarts ---------------------------------------------------------------------


@both_backends
async def test_deleting_returns_the_passage_count_and_removes_the_document_from_search(app: App) -> None:
    async with channel(app.port) as opened:
        stub = v1.RagServiceStub(opened, timeout=TIMEOUT)
        document = await ingest(stub, "long", long_text("retries", 4))
        await ingest(stub, "retries", RETRIES)
        deleted = await stub.delete_document(v1.DeleteDocumentRequest(document_id="long"))
        assert deleted.deleted_chunk_count == document.chunk_count == 4

        everywhere = await stub.search_documents(v1.SearchDocumentsRequest(text="retries", min_score=-1))
        assert {p.document_id for p in everywhere.passages} == {"retries"}
        only = await stub.search_documents(
            v1.SearchDocumentsRequest(text="retries", min_score=-1, document_ids=["long"])
        )
        assert only.passages == []
        vector = v1.Vector(values=HashingEmbedder().embed("Part 0 is about retries with filler words"))
        by_vector = await stub.search_documents(v1.SearchDocumentsRequest(vector=vector, min_score=-1))
        assert {p.document_id for p in by_vector.passages} == {"retries"}

        await expect_status(
            stub.delete_document(v1.DeleteDocumentRequest(document_id="long")),
            Status.NOT_FOUND,
            "document_id",
        )
        assert (await ingest(stub, "long", COOKING)).chunk_count == 1  # the ID is free again


async def test_deleting_an_unknown_or_missing_id_fails(app: App) -> None:
    async with channel(app.port) as opened:
        stub = rag_service_grpc.RAGServiceStub(opened)
        error = await expect_status(
            stub.DeleteDocument(rag_service_pb2.DeleteDocumentRequest(document_id="nope"), timeout=TIMEOUT),
            Status.NOT_FOUND,
            "document_id",
        )
        assert "nope" in (error.message or "")
        await expect_status(
            stub.DeleteDocument(rag_service_pb2.DeleteDocumentRequest(), timeout=TIMEOUT),
            Status.INVALID_ARGUMENT,
            "document_id",
        )
        await expect_status(
            stub.DeleteDocument(
                rag_service_pb2.DeleteDocumentRequest(document_id="d" * 129), timeout=TIMEOUT
            ),
            Status.INVALID_ARGUMENT,
            "document_id",
        )


@both_backends
async def test_documents_survive_a_restart(tmp_path: Path, database: str) -> None:
    query = v1.SearchDocumentsRequest(text="retries deadlines", top_k=100, min_score=-1)
    first = await build_app(make_config(tmp_path, database=database))
    await first.start()
    try:
        async with channel(first.port) as opened:
            stub = v1.RagServiceStub(opened, timeout=TIMEOUT)
            long = await stub.ingest_document(parts(header("long"), long_text("deadlines", 2), " ", RETRIES))
            await ingest(stub, "short", RETRIES)
            await ingest(stub, "gone", COOKING)
            await stub.delete_document(v1.DeleteDocumentRequest(document_id="gone"))
            before = await stub.search_documents(query)
    finally:
        await first.shutdown()
    assert long.document is not None and long.document.chunk_count >= 2

    second = await build_app(make_config(tmp_path, database=database))
    await second.start()
    try:
        async with channel(second.port) as opened:
            stub = v1.RagServiceStub(opened, timeout=TIMEOUT)
            after = await stub.search_documents(query)
            assert [(p.document_id, p.chunk_index, p.text, p.score) for p in after.passages] == [
                (p.document_id, p.chunk_index, p.text, p.score) for p in before.passages
            ]
            assert {p.document_id for p in after.passages} == {"long", "short"}
            await expect_status(
                stub.ingest_document([v1.IngestDocumentRequest(header=header("short"), text=RETRIES)]),
                Status.ALREADY_EXISTS,
                "header.document_id",
            )
            deleted = await stub.delete_document(v1.DeleteDocumentRequest(document_id="long"))
            assert deleted.deleted_chunk_count == long.document.chunk_count
            assert (await ingest(stub, "gone", COOKING)).chunk_count == 1
    finally:
        await second.shutdown()
