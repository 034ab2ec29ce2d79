"""Documents and their passage vectors in the shared SQLite database; exact cosine search.

Search reads every candidate vector and scores it on the database thread: exact,
and fine up to some hundred thousand passages on one machine. Past that, move
``passages.vector`` to a dedicated vector store (pgvector, Qdrant, FAISS...) behind
the same ``search`` method; documents and their text can stay here.
"""

from __future__ import annotations

import json
import math
import sqlite3
import time
import uuid
from array import array
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum

from chat_services.ai.provider import Passage
from chat_services.errors import AlreadyExists, InvalidArgument, NotFound, PermissionDenied
from chat_services.rag.chunking import split_passages
from chat_services.rag.embedding import Embedder
from chat_services.storage import Database, Migration

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
)


class Visibility(Enum):
    """Who reads a document besides its owner (values as on the wire)."""

    PRIVATE = 1
    SHARED = 2


SQL_ID_LIST_LIMIT = 500  # document_ids filtered in SQL up to this many; longer lists in Python


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
    """Ingest, delete and search documents; also the AI provider's ``PassageSource``."""

    def __init__(self, database: Database, embedder: Embedder) -> None:
        self.database = database
        self.embedder = embedder

    @property
    def dimension(self) -> int:
        return self.embedder.dimension

    async def ingest(self, info: DocumentInfo, text: str, *, replacer: str | None = None) -> StoredDocument:
        """Split, embed and store a document in one transaction; ALREADY_EXISTS for a taken ID.

        ``replacer`` (None: may replace any) is the principal whose documents the caller may
        replace: an ID taken by anyone else is PERMISSION_DENIED instead.
        """
        passages = split_passages(text)
        vectors = [array("f", self.embedder.embed(p)).tobytes() for p in passages]
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

        def write(connection: sqlite3.Connection) -> None:
            try:
                connection.execute(
                    "INSERT INTO documents (document_id, title, source_uri, media_type, metadata_json,"
                    " chunk_count, size_bytes, created_at_ns, owner_id, visibility)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
            except sqlite3.IntegrityError as error:
                (taken_by,) = connection.execute(
                    "SELECT owner_id FROM documents WHERE document_id = ?", (info.document_id,)
                ).fetchone()
                if replacer is not None and taken_by != replacer:
                    raise PermissionDenied(
                        f"document id {info.document_id!r} belongs to another owner; choose another id",
                        field="header.document_id",
                    ) from error
                raise AlreadyExists(
                    f"document {info.document_id!r} exists; delete it first to replace it",
                    field="header.document_id",
                ) from error
            connection.executemany(
                "INSERT INTO passages (document_id, chunk_index, text, vector) VALUES (?, ?, ?, ?)",
                [(info.document_id, i, p, v) for i, (p, v) in enumerate(zip(passages, vectors, strict=True))],
            )

        await self.database.transaction(write)
        return document

    async def delete(self, document_id: str, *, owner: str | None = None) -> int:
        """Remove a document and its passages; the number of passages removed.

        ``owner`` (None: any document) is the principal whose documents may be deleted; a
        private document of another owner is NOT_FOUND, as one that does not exist.
        """

        def remove(connection: sqlite3.Connection) -> int:
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

        return await self.database.transaction(remove)

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
        return await self.database.call(
            lambda c: _exact_search(c, unit, top_k, min_score, list(document_ids), reader)
        )

    async def search_text(
        self, text: str, top_k: int, min_score: float, *, reader: str | None = None
    ) -> list[Passage]:
        """Search with the embedding of ``text``; nothing when the text has no words."""
        vector = self.embedder.embed(text)
        if not any(vector):
            return []
        return await self.search(vector, top_k, min_score, reader=reader)


def _exact_search(
    connection: sqlite3.Connection,
    unit: list[float],
    top_k: int,
    min_score: float,
    document_ids: list[str],
    reader: str | None,
) -> list[Passage]:
    sql = "SELECT p.document_id, p.chunk_index, p.text, p.vector FROM passages p"
    conditions: list[str] = []
    parameters: list[object] = []
    if reader is not None:
        sql += " JOIN documents d USING (document_id)"
        conditions.append("(d.owner_id = ? OR d.visibility = ?)")
        parameters += [reader, Visibility.SHARED.value]
    wanted = set(document_ids)
    if wanted and len(wanted) <= SQL_ID_LIST_LIMIT:
        conditions.append(f"p.document_id IN ({','.join('?' * len(wanted))})")
        parameters += sorted(wanted)
    if conditions:
        sql += " WHERE " + " AND ".join(conditions)
    scored: list[Passage] = []
    for row in connection.execute(sql, parameters):
        if wanted and row["document_id"] not in wanted:
            continue  # a list too long for one SQL statement is filtered here
        stored = array("f")
        stored.frombytes(row["vector"])
        # Stored vectors are float32: clamp the rounding error so scores stay within [-1, 1].
        score = max(-1.0, min(1.0, sum(a * b for a, b in zip(unit, stored, strict=True))))
        if score >= min_score:
            scored.append(Passage(row["document_id"], row["chunk_index"], row["text"], score))
    scored.sort(key=lambda p: (-p.score, p.document_id, p.chunk_index))
    return scored[:top_k]
