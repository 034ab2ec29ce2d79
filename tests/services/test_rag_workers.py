"""Heavy RAG work stays off the event loop: other calls are answered while it runs.

Each test asserts an order of events, never a duration: a health check (or another
client's GetMessage) is answered while the document is still being embedded (or
while searches are still queued), which fails whenever that work holds the loop or
the database thread.
"""

from __future__ import annotations

import asyncio
import os

import numpy as np
from grpclib.health.v1.health_grpc import HealthStub
from grpclib.health.v1.health_pb2 import HealthCheckRequest, HealthCheckResponse

from chat.v1 import message_service_grpc, message_service_pb2, rag_service_grpc, rag_service_pb2
from chat_services.rag.chunking import split_passages
from chat_services.rag.embedding import HashingEmbedder
from chat_services.rag.service import DOCUMENT_MAX_BYTES, RagService
from chat_services.rag.store import DocumentStore, Visibility
from chat_services.rag.workers import EmbeddingWorkers
from chat_services.server import App
from chat_services.storage import Connection

from .clients import channel, until
from .conftest import service_of

SENTENCE = "Retries use exponential backoff with jitter, and every retry waits longer than the last one. "
PIECE_BYTES = 1024 * 1024  # well under the 4 MiB message limit
INGEST_TIMEOUT = 600.0  # embedding 16 MiB takes a worker many seconds on a loaded machine


def store_of(app: App) -> DocumentStore:
    return service_of(app, RagService).store


async def test_health_is_answered_while_a_16_mib_document_is_embedded(app: App) -> None:
    text = (SENTENCE * (DOCUMENT_MAX_BYTES // len(SENTENCE) + 1))[:DOCUMENT_MAX_BYTES]
    assert len(text.encode()) == DOCUMENT_MAX_BYTES  # the documented maximum, exactly
    store = store_of(app)
    async with channel(app.port) as ingesting, channel(app.port) as checking:
        stub = rag_service_grpc.RAGServiceStub(ingesting)
        async with stub.IngestDocument.open(timeout=INGEST_TIMEOUT) as stream:
            await stream.send_message(
                rag_service_pb2.IngestDocumentRequest(
                    header=rag_service_pb2.DocumentHeader(document_id="big")
                )
            )
            for start in range(0, len(text), PIECE_BYTES):
                await stream.send_message(
                    rag_service_pb2.IngestDocumentRequest(text=text[start : start + PIECE_BYTES])
                )
            await stream.end()
            reply = asyncio.ensure_future(stream.recv_message())
            # The whole document is with the server, and a worker is splitting and embedding it.
            await until(lambda: store.indexing == 1, timeout=60)
            health = await HealthStub(checking).Check(HealthCheckRequest(), timeout=30)
            assert health.status == HealthCheckResponse.SERVING
            assert store.indexing == 1 and not reply.done(), "health waited for the embedding"
            answer = await asyncio.wait_for(reply, INGEST_TIMEOUT)
    assert answer is not None
    assert answer.document.size_bytes == DOCUMENT_MAX_BYTES
    assert answer.document.chunk_count == len(split_passages(text))
    assert store.indexing == 0


PASSAGES = 60_000  # enough that a queue of searches keeps the index thread busy for a while
SEARCHES = 24


async def write_corpus(store: DocumentStore) -> None:
    """``PASSAGES`` random unit vectors in 600 documents, written straight into SQLite."""
    rng = np.random.default_rng(21)
    vectors = rng.standard_normal((PASSAGES, store.dimension), dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    per_document = PASSAGES // 600

    def write(connection: Connection) -> None:
        connection.executemany(
            "INSERT INTO documents (document_id, title, source_uri, media_type, metadata_json,"
            " chunk_count, size_bytes, created_at_ns, owner_id, visibility)"
            " VALUES (?, '', '', 'text/plain', '{}', ?, 1, 1, '', ?)",
            [(f"d{d}", per_document, Visibility.SHARED.value) for d in range(600)],
        )
        connection.executemany(
            "INSERT INTO passages (document_id, chunk_index, text, vector) VALUES (?, ?, ?, ?)",
            [
                (f"d{row // per_document}", row % per_document, f"passage {row}", vectors[row].tobytes())
                for row in range(PASSAGES)
            ],
        )

    await store.database.transaction(write)


async def test_another_clients_get_message_is_answered_while_searches_are_queued(app: App) -> None:
    store = store_of(app)
    await write_corpus(store)
    async with channel(app.port) as searching, channel(app.port) as reading:
        messages = message_service_grpc.MessageServiceStub(reading)
        sent = await messages.SendMessages(
            [
                message_service_pb2.SendMessagesRequest(
                    message=message_service_pb2.NewMessage(
                        idempotency_key="k", conversation_id="c", author_id="u", content="hello"
                    )
                )
            ],
            timeout=30,
        )
        search_stub = rag_service_grpc.RAGServiceStub(searching)
        query = rag_service_pb2.SearchDocumentsRequest(
            vector=rag_service_pb2.Vector(values=[1.0] * store.dimension)
        )
        first = await search_stub.SearchDocuments(query, timeout=60)  # loads the index from SQLite
        assert len(first.passages) == 5
        searches = [
            asyncio.ensure_future(search_stub.SearchDocuments(query, timeout=60)) for _ in range(SEARCHES)
        ]
        # Enough of them reached the index thread (the first may finish before the last arrives).
        await until(lambda: store.searching >= SEARCHES // 3, timeout=30)
        got = await messages.GetMessage(
            message_service_pb2.GetMessageRequest(message_id=sent.messages[0].id), timeout=30
        )
        assert got.message.content == "hello"
        assert store.searching > 0, "GetMessage waited for every search"
        assert not all(search.done() for search in searches)
        results = await asyncio.gather(*searches)
    assert all(result.passages == first.passages for result in results)


async def _embedded_by_workers(text: str) -> list[float]:
    workers = EmbeddingWorkers(HashingEmbedder())
    try:
        return await workers.embed(text)
    finally:
        await workers.close()


def test_a_process_forked_after_its_parent_started_workers_still_gets_its_own() -> None:
    # The parent's fork server is not the forked child's child: the child once failed to
    # start a worker with ChildProcessError (mutmut runs each mutant in such a child).
    expected = asyncio.run(_embedded_by_workers("hello workers"))
    child = os.fork()
    if child == 0:  # the child reports through its exit status only
        try:
            os._exit(0 if asyncio.run(_embedded_by_workers("hello workers")) == expected else 2)
        except BaseException:
            os._exit(1)
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0
