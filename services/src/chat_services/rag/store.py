"""Documents and their passage vectors in the shared database; exact cosine search.

The database (SQLite, or PostgreSQL where vectors are ``bytea``: pgvector is not assumed)
keeps documents, passages and vectors. Splitting and embedding run in worker
processes (:mod:`.workers`); search scores every readable passage at once with numpy
over an in-memory copy of the vectors (:mod:`.index`), on a thread of its own, and
reads only the winners' text from SQLite. Neither the event loop nor the database
thread scans the corpus. The in-memory index costs 4 bytes per dimension per passage
(1 KiB at 256 dimensions); past some million passages, move ``passages.vector`` to a
dedicated vector store (pgvector, Qdrant, FAISS...) behind the same ``search`` method.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from enum import Enum
from typing import TypeVar

import numpy as np
import numpy.typing as npt

from chat_services.ai.provider import Passage
from chat_services.errors import AlreadyExists, InvalidArgument, NotFound, PermissionDenied
from chat_services.rag.embedding import Embedder
from chat_services.rag.index import Hit, VectorIndex, load_index, vectors_of
from chat_services.rag.workers import EmbeddingWorkers
from chat_services.storage import Connection, Migration, Storage

MIGRATIONS = (
    Migration(
        "rag-001",
        """
        CREATE TABLE documents (
            document_id TEXT PRIMARY KEY,
            title TEXT NOT NULL,
            source_uri TEXT NOT NULL,
            media_type TEXT NOT NULL,
            metadata_json TEXT NOT NULL,
            chunk_count INTEGER NOT NULL,
            size_bytes INTEGER NOT NULL,
            created_at_ns INTEGER NOT NULL
        );
        CREATE TABLE passages (
            document_id TEXT NOT NULL REFERENCES documents (document_id) ON DELETE CASCADE,
            chunk_index INTEGER NOT NULL,
            text TEXT NOT NULL,
            vector BLOB NOT NULL,
            PRIMARY KEY (document_id, chunk_index)
        )
        """,
    ),
    # Owners and visibility. Documents stored before owners existed were readable by every
    # caller: they stay so (shared), with no owner, so only an admin service deletes them.
    Migration(
        "rag-002",
        """
        ALTER TABLE documents ADD COLUMN owner_id TEXT NOT NULL DEFAULT '';
        ALTER TABLE documents ADD COLUMN visibility INTEGER NOT NULL DEFAULT 2
        """,
    ),
    # PostgreSQL only: a document stored or deleted notifies "chat_documents" (its ID, at
    # most 128 characters) at commit, from the database itself: an instance that dies after
    # its commit cannot leave the others' vector indexes without the change.
    Migration(
        "rag-003",
        "",
        postgres="""
        CREATE FUNCTION notify_chat_document() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP = 'DELETE' THEN
                PERFORM pg_notify('chat_documents', OLD.document_id);
            ELSE
                PERFORM pg_notify('chat_documents', NEW.document_id);
            END IF;
            RETURN NULL;
        END;
        $$;
        CREATE TRIGGER documents_notify AFTER INSERT OR DELETE ON documents
            FOR EACH ROW EXECUTE FUNCTION notify_chat_document()
        """,
    ),
)


class Visibility(Enum):
    """Who reads a document besides its owner (values as on the wire)."""

    PRIVATE = 1
    SHARED = 2


# A query text this short is embedded on the event loop (well under a millisecond); a longer
# one goes to the workers, where it could wait behind a document being embedded.
INLINE_QUERY_CHARS = 2000
T = TypeVar("T")


@dataclass(frozen=True)
class DocumentInfo:
    """What describes a document, given at ingestion."""

    document_id: str = ""
    title: str = ""
    source_uri: str = ""
    media_type: str = ""
    metadata: Mapping[str, str] = field(default_factory=dict)
    visibility: Visibility = Visibility.PRIVATE
    owner_id: str = ""  # the ingesting caller's principal; empty on an open server


@dataclass(frozen=True)
class StoredDocument:
    """A stored document and what ingestion measured."""

    info: DocumentInfo
    chunk_count: int
    size_bytes: int
    created_at_ns: int


class DocumentStore:
    """Ingest, delete and search documents; also the AI provider's ``PassageSource``.

    ``workers`` processes split and embed; :meth:`close` stops them and the index thread.
    """

    def __init__(self, database: Storage, embedder: Embedder, *, workers: int = 1) -> None:
        self.database = database
        self.embedder = embedder
        self.embedding = EmbeddingWorkers(embedder, workers)
        self.searching = 0  # searches waiting for or running on the index thread
        self._index_thread = ThreadPoolExecutor(1, thread_name_prefix="rag-index")
        self._index: VectorIndex | None = None
        self._loading = asyncio.Lock()
        # Told a document's ID once it was ingested or deleted here (other instances then refresh it).

    @property
    def dimension(self) -> int:
        return self.embedder.dimension

    @property
    def indexing(self) -> int:
        """Texts (documents or long queries) being split and embedded by the workers now."""
        return self.embedding.running

    async def ingest(self, info: DocumentInfo, text: str, *, replacer: str | None = None) -> StoredDocument:
        """Split, embed and store a document in one transaction; ALREADY_EXISTS for a taken ID.

        ``replacer`` (None: may replace any) is the principal whose documents the caller may
        replace: an ID taken by anyone else is PERMISSION_DENIED instead.
        """
        embedded = await self.embedding.split_and_embed(text)
        passages, vectors = embedded.passages, embedded.vectors
        info = DocumentInfo(
            document_id=info.document_id or uuid.uuid4().hex,
            title=info.title,
            source_uri=info.source_uri,
            media_type=info.media_type or "text/plain",
            metadata=dict(info.metadata),
            visibility=info.visibility,
            owner_id=info.owner_id,
        )
        document = StoredDocument(info, len(passages), len(text.encode()), time.time_ns())

        def write(connection: Connection) -> None:
            inserted = connection.execute(
                "INSERT INTO documents (document_id, title, source_uri, media_type, metadata_json,"
                " chunk_count, size_bytes, created_at_ns, owner_id, visibility)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (document_id) DO NOTHING",
                (
                    info.document_id,
                    info.title,
                    info.source_uri,
                    info.media_type,
                    json.dumps(info.metadata, sort_keys=True),
                    document.chunk_count,
                    document.size_bytes,
                    document.created_at_ns,
                    info.owner_id,
                    info.visibility.value,
                ),
            )
            if inserted.rowcount == 0:  # the ID is taken (a conflict leaves the transaction usable)
                (taken_by,) = connection.execute(
                    "SELECT owner_id FROM documents WHERE document_id = ?", (info.document_id,)
                ).fetchone()
                if replacer is not None and taken_by != replacer:
                    raise PermissionDenied(
                        f"document id {info.document_id!r} belongs to another owner; choose another id",
                        field="header.document_id",
                    )
                raise AlreadyExists(
                    f"document {info.document_id!r} exists; delete it first to replace it",
                    field="header.document_id",
                )
            connection.executemany(
                "INSERT INTO passages (document_id, chunk_index, text, vector) VALUES (?, ?, ?, ?)",
                [(info.document_id, i, p, vectors[i].tobytes()) for i, p in enumerate(passages)],
            )

        shared = info.visibility is Visibility.SHARED
        await self._commit_and_index(
            write, lambda index: index.add(info.document_id, info.owner_id, shared, vectors)
        )
        return document

    async def delete(self, document_id: str, *, owner: str | None = None) -> int:
        """Remove a document and its passages; the number of passages removed.

        ``owner`` (None: any document) is the principal whose documents may be deleted; a
        private document of another owner is NOT_FOUND, as one that does not exist.
        """

        def remove(connection: Connection) -> int:
            row = connection.execute(
                "SELECT chunk_count, owner_id, visibility FROM documents WHERE document_id = ?",
                (document_id,),
            ).fetchone()
            missing = NotFound(f"no document has id {document_id!r}", field="document_id")
            if row is None:
                raise missing
            if owner is not None and row["owner_id"] != owner:
                if row["visibility"] != Visibility.SHARED.value:
                    raise missing
                raise PermissionDenied("only the document's owner may delete it", field="document_id")
            connection.execute("DELETE FROM documents WHERE document_id = ?", (document_id,))
            return int(row["chunk_count"])

        return await self._commit_and_index(remove, lambda index: index.remove(document_id))

    async def refresh(self, document_id: str) -> None:
        """Make the in-memory index agree with the store about one document (changed by another instance)."""
        if self._index is None and not self._loading.locked():
            return  # not loaded yet: the first search loads what is stored then
        dimension, shared = self.dimension, Visibility.SHARED.value
        found = await self.database.call(
            lambda connection: _document_vectors(connection, document_id, dimension, shared)
        )
        if found is None:
            await self._on_index(lambda index: index.remove(document_id))
        else:
            owner_id, is_shared, vectors = found
            await self._on_index(lambda index: index.add(document_id, owner_id, is_shared, vectors))

    def reload(self) -> None:
        """Forget the in-memory index: the next search loads it again (changes may have been missed)."""
        self._index = None

    async def search(
        self,
        query: Sequence[float],
        top_k: int,
        min_score: float,
        document_ids: Sequence[str] = (),
        *,
        reader: str | None = None,
    ) -> list[Passage]:
        """The ``top_k`` passages most similar to ``query`` scoring at least ``min_score``, best first.

        ``reader`` (None: every document) is a principal: only its own and shared documents are searched.
        """
        if len(query) != self.dimension:
            raise InvalidArgument(
                f"the vector has {len(query)} values; this server's embeddings have {self.dimension}",
                field="vector.values",
            )
        if not all(math.isfinite(v) for v in query):
            raise InvalidArgument("the vector holds NaN or infinite values", field="vector.values")
        norm = math.sqrt(sum(v * v for v in query))
        if norm == 0:
            raise InvalidArgument("the vector is all zeros and has no direction", field="vector.values")
        unit = [v / norm for v in query]
        wanted = list(document_ids)
        self.searching += 1
        try:
            hits = await self._on_index(lambda index: index.search(unit, top_k, min_score, wanted, reader))
        finally:
            self.searching -= 1
        if not hits:
            return []
        texts = await self.database.call(lambda connection: _texts(connection, hits))
        # A document deleted since the index was read has no text left: it is not reported.
        return [
            Passage(hit.document_id, hit.chunk_index, texts[hit.document_id, hit.chunk_index], hit.score)
            for hit in hits
            if (hit.document_id, hit.chunk_index) in texts
        ]

    async def search_text(
        self, text: str, top_k: int, min_score: float, *, reader: str | None = None
    ) -> list[Passage]:
        """Search with the embedding of ``text``; nothing when the text has no words."""
        vector = await self.embed_query(text)
        if not any(vector):
            return []
        return await self.search(vector, top_k, min_score, reader=reader)

    async def embed_query(self, text: str) -> list[float]:
        """The embedding of a search text: a short one at once, a long one by a worker."""
        if len(text) <= INLINE_QUERY_CHARS:
            return self.embedder.embed(text)
        return await self.embedding.embed(text)

    async def close(self) -> None:
        """Stop the embedding workers and the index thread; the database stays open."""
        await self.embedding.close()
        await asyncio.to_thread(self._index_thread.shutdown, wait=True)

    async def _commit_and_index(
        self, write: Callable[[Connection], T], update: Callable[[VectorIndex], None]
    ) -> T:
        """Commit ``write``, then apply ``update`` to the index, even if the caller is cancelled meanwhile.

        A call cancelled while its transaction runs still commits it; the index must follow,
        or a stored document would stay unsearchable (or a deleted one found) until a restart.
        """

        async def both() -> T:
            result = await self.database.transaction(write)
            await self._on_index(update)
            return result

        task = asyncio.ensure_future(both())
        # A caller cancelled meanwhile never reads the outcome; reading it here keeps asyncio quiet.
        task.add_done_callback(lambda done: done.cancelled() or done.exception())
        return await asyncio.shield(task)

    async def _on_index(self, work: Callable[[VectorIndex], T]) -> T:
        """Run ``work`` on the index thread, loading the index from the database the first time."""
        if self._index is None:
            async with self._loading:
                if self._index is None:
                    dimension, shared = self.dimension, Visibility.SHARED.value
                    self._index = await self.database.call(
                        lambda connection: load_index(connection, dimension, shared)
                    )
        index = self._index
        return await asyncio.get_running_loop().run_in_executor(self._index_thread, work, index)


def _document_vectors(
    connection: Connection, document_id: str, dimension: int, shared_visibility: int
) -> tuple[str, bool, npt.NDArray[np.float32]] | None:
    """A stored document's owner, whether it is shared, and its passage vectors; None if not stored."""
    row = connection.execute(
        "SELECT owner_id, visibility FROM documents WHERE document_id = ?", (document_id,)
    ).fetchone()
    if row is None:
        return None
    blobs = connection.execute(
        "SELECT vector FROM passages WHERE document_id = ? ORDER BY chunk_index", (document_id,)
    )
    return str(row[0]), row[1] == shared_visibility, vectors_of((blob[0] for blob in blobs), dimension)


def _texts(connection: Connection, hits: Sequence[Hit]) -> dict[tuple[str, int], str]:
    """The text of each hit's passage, by (document ID, chunk index).

    One primary-key lookup per hit (at most ``top_k``): SQLite plans a row-value ``IN``
    list over this table as a scan of every passage.
    """
    texts = {}
    for hit in hits:
        row = connection.execute(
            "SELECT text FROM passages WHERE document_id = ? AND chunk_index = ?",
            (hit.document_id, hit.chunk_index),
        ).fetchone()
        if row is not None:
            texts[hit.document_id, hit.chunk_index] = row["text"]
    return texts
