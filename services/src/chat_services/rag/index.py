"""Every stored passage vector in one float32 matrix: exact search with numpy, off the event loop.

One matrix product scores every passage (numpy releases the GIL while it runs); the
readers' filter (owner or shared, and ``document_ids``) is a boolean mask over the
rows, so it stays exact. Scores are computed in float32 to pick candidates, then the
candidates are scored again in float64, as the stored float32 vectors against the
float64 query, so ``min_score`` and ties compare exact values.

The index is owned by one thread (the store's index thread): it is never touched from
two threads at once, so it needs no lock. Deleting marks a document's rows dead; they
are dropped when dead rows outnumber live ones.
"""

from __future__ import annotations

import itertools
import operator
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from chat_services.storage import Connection

# Candidates within this much of a cut-off (min_score or the k-th score) in float32 are
# scored again exactly: a float32 dot product of 256 unit values errs by far less.
FLOAT32_SLACK = 1e-4
_RESCORE_ROWS = 8192  # rows converted to float64 at once, so a mass of ties cannot spike memory


@dataclass(frozen=True)
class Hit:
    """A passage the index found: which document, which chunk, and its exact score."""

    document_id: str
    chunk_index: int
    score: float


@dataclass
class _Document:
    document_id: str
    owner: int  # the owner's code in ``VectorIndex._owners``
    shared: bool
    alive: bool = True


@dataclass(frozen=True)
class _SlotFlags:
    """Per document slot, as arrays, so that a search filters without a Python loop."""

    alive: npt.NDArray[np.bool_]
    shared: npt.NDArray[np.bool_]
    owner: npt.NDArray[np.int32]


class VectorIndex:
    """Passage vectors of every document, with each document's owner and visibility."""

    def __init__(self, dimension: int) -> None:
        self.dimension = dimension
        self._matrix: npt.NDArray[np.float32] = np.empty((0, dimension), dtype=np.float32)
        self._row_document: npt.NDArray[np.int32] = np.empty(0, dtype=np.int32)
        self._row_chunk: npt.NDArray[np.int32] = np.empty(0, dtype=np.int32)
        self._rows = 0  # rows in use; the arrays hold spare capacity beyond them
        self._dead_rows = 0
        self._documents: list[_Document] = []
        self._slot: dict[str, int] = {}
        self._owners: dict[str, int] = {}
        self._flags: _SlotFlags | None = None  # rebuilt after a change, on the next search

    def __len__(self) -> int:
        """Live passages."""
        return self._rows - self._dead_rows

    def add(self, document_id: str, owner_id: str, shared: bool, vectors: npt.NDArray[np.float32]) -> None:
        """Index a document's passage vectors (row ``i`` is chunk ``i``), replacing any it had."""
        self.remove(document_id)
        count = len(vectors)
        self._reserve(self._rows + count)
        slot = len(self._documents)
        owner = self._owners.setdefault(owner_id, len(self._owners))
        self._documents.append(_Document(document_id, owner, shared))
        self._flags = None
        self._slot[document_id] = slot
        end = self._rows + count
        self._matrix[self._rows : end] = vectors
        self._row_document[self._rows : end] = slot
        self._row_chunk[self._rows : end] = np.arange(count, dtype=np.int32)
        self._rows = end

    def remove(self, document_id: str) -> None:
        """Forget a document; nothing happens when it is not indexed."""
        slot = self._slot.pop(document_id, None)
        if slot is None:
            return
        self._documents[slot].alive = False
        self._flags = None
        self._dead_rows += int(np.count_nonzero(self._row_document[: self._rows] == slot))
        if self._dead_rows > self._rows // 2:
            self._compact()

    def search(
        self,
        unit: Sequence[float],
        top_k: int,
        min_score: float,
        document_ids: Sequence[str] = (),
        reader: str | None = None,
    ) -> list[Hit]:
        """The ``top_k`` best passages scoring at least ``min_score`` for a unit query, best first.

        Ties are ordered by document ID, then chunk index. ``reader`` (None: every document)
        sees its own documents and shared ones; ``document_ids`` (empty: all) narrows further.
        """
        rows = self._rows
        if rows == 0 or top_k <= 0:
            return []
        allowed = self._allowed(document_ids, reader)
        if not allowed.any():
            return []
        query64 = np.asarray(unit, dtype=np.float64)
        scores = self._matrix[:rows] @ query64.astype(np.float32)
        mask = allowed[self._row_document[:rows]]
        mask &= scores >= min_score - FLOAT32_SLACK
        candidates = np.flatnonzero(mask)
        if len(candidates) > top_k:
            # The k-th best float32 score, less the slack, keeps every row that may tie with it.
            kth = np.partition(scores[candidates], len(candidates) - top_k)[len(candidates) - top_k]
            candidates = candidates[scores[candidates] >= kth - 2 * FLOAT32_SLACK]
        exact = self._rescore(candidates, query64)
        hits = [
            Hit(self._documents[self._row_document[row]].document_id, int(self._row_chunk[row]), score)
            for row, score in zip(candidates.tolist(), exact, strict=True)
            if score >= min_score
        ]
        hits.sort(key=lambda hit: (-hit.score, hit.document_id, hit.chunk_index))
        return hits[:top_k]

    def _allowed(self, document_ids: Sequence[str], reader: str | None) -> npt.NDArray[np.bool_]:
        """One flag per document slot: may this search see it?"""
        flags = self._slot_flags()
        if document_ids:
            allowed = np.zeros(len(self._documents), dtype=bool)
            allowed[[self._slot[d] for d in set(document_ids) if d in self._slot]] = True
        else:
            allowed = flags.alive.copy()
        if reader is not None:
            allowed &= flags.shared | (flags.owner == self._owners.get(reader, -1))
        return allowed

    def _slot_flags(self) -> _SlotFlags:
        if self._flags is None:
            documents = self._documents
            self._flags = _SlotFlags(
                alive=np.array([d.alive for d in documents], dtype=bool),
                shared=np.array([d.shared for d in documents], dtype=bool),
                owner=np.array([d.owner for d in documents], dtype=np.int32),
            )
        return self._flags

    def _rescore(self, rows: npt.NDArray[np.intp], query64: npt.NDArray[np.float64]) -> list[float]:
        """Exact scores: the stored float32 values against the float64 query, clamped to [-1, 1]."""
        scores: list[float] = []
        for start in range(0, len(rows), _RESCORE_ROWS):
            block = self._matrix[rows[start : start + _RESCORE_ROWS]].astype(np.float64)
            scores += np.clip(block @ query64, -1.0, 1.0).tolist()
        return scores

    def _reserve(self, rows: int) -> None:
        capacity = len(self._matrix)
        if rows <= capacity:
            return
        grown = max(rows, 2 * capacity, 1024)
        matrix = np.empty((grown, self.dimension), dtype=np.float32)
        matrix[: self._rows] = self._matrix[: self._rows]
        row_document = np.empty(grown, dtype=np.int32)
        row_document[: self._rows] = self._row_document[: self._rows]
        row_chunk = np.empty(grown, dtype=np.int32)
        row_chunk[: self._rows] = self._row_chunk[: self._rows]
        self._matrix, self._row_document, self._row_chunk = matrix, row_document, row_chunk

    def _compact(self) -> None:
        """Drop dead rows and documents; slots are renumbered."""
        live_slots = [slot for slot, d in enumerate(self._documents) if d.alive]
        renumber = np.full(len(self._documents), -1, dtype=np.int32)
        renumber[live_slots] = np.arange(len(live_slots), dtype=np.int32)
        keep = np.flatnonzero(renumber[self._row_document[: self._rows]] >= 0)
        self._matrix = self._matrix[keep]
        self._row_document = renumber[self._row_document[keep]]
        self._row_chunk = self._row_chunk[keep]
        self._rows, self._dead_rows = len(keep), 0
        self._documents = [self._documents[slot] for slot in live_slots]
        self._slot = {d.document_id: slot for slot, d in enumerate(self._documents)}
        self._flags = None


def load_index(connection: Connection, dimension: int, shared_visibility: int) -> VectorIndex:
    """Build the index from every stored passage (run on the database thread, once per process)."""
    index = VectorIndex(dimension)
    documents = {
        row[0]: (row[1], row[2] == shared_visibility)
        for row in connection.execute("SELECT document_id, owner_id, visibility FROM documents")
    }
    rows = connection.execute("SELECT document_id, vector FROM passages ORDER BY document_id, chunk_index")
    for document_id, passages in itertools.groupby(rows, key=operator.itemgetter(0)):
        owner_id, shared = documents[document_id]
        index.add(document_id, owner_id, shared, vectors_of((row[1] for row in passages), dimension))
    return index


def vectors_of(blobs: Iterable[bytes], dimension: int) -> npt.NDArray[np.float32]:
    """Stored float32 blobs as one matrix (a vector of another dimension is refused)."""
    joined = b"".join(blobs)
    if len(joined) % (4 * dimension):
        raise ValueError(f"stored vectors do not have {dimension} float32 values each; re-ingest them")
    return np.frombuffer(joined, dtype=np.float32).reshape(-1, dimension)
