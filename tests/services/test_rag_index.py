"""The in-memory vector index: the same answers as scoring every passage one by one, filters exact."""

from __future__ import annotations

import math
import random

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chat_services.rag.index import Hit, VectorIndex, vectors_of

DIMENSION = 8


def unit_rows(rng: random.Random, count: int) -> npt.NDArray[np.float32]:
    rows = np.array([[rng.gauss(0, 1) for _ in range(DIMENSION)] for _ in range(count)], dtype=np.float32)
    units: npt.NDArray[np.float32] = rows / np.linalg.norm(rows, axis=1, keepdims=True)
    return units


def brute_force(
    documents: dict[str, tuple[str, bool, npt.NDArray[np.float32]]],
    unit: list[float],
    top_k: int,
    min_score: float,
    document_ids: list[str],
    reader: str | None,
) -> list[Hit]:
    """What the store did before the index: every readable passage scored in Python, in float64."""
    hits = []
    for document_id, (owner, shared, vectors) in documents.items():
        if document_ids and document_id not in document_ids:
            continue
        if reader is not None and not shared and owner != reader:
            continue
        for chunk, vector in enumerate(vectors.tolist()):
            score = max(-1.0, min(1.0, math.fsum(a * b for a, b in zip(unit, vector, strict=True))))
            if score >= min_score:
                hits.append(Hit(document_id, chunk, score))
    hits.sort(key=lambda hit: (-hit.score, hit.document_id, hit.chunk_index))
    return hits[:top_k]


def same_hits(found: list[Hit], expected: list[Hit]) -> bool:
    return [(h.document_id, h.chunk_index) for h in found] == [
        (h.document_id, h.chunk_index) for h in expected
    ] and all(math.isclose(a.score, b.score, abs_tol=1e-12) for a, b in zip(found, expected, strict=True))


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    top_k=st.integers(1, 30),
    min_score=st.sampled_from([-1.0, -0.2, 0.0, 0.3]),
    reader=st.sampled_from([None, "alice", "bob", "nobody"]),
    narrow=st.booleans(),
    removals=st.integers(0, 6),
)
def test_search_matches_scoring_every_readable_passage(
    seed: int, top_k: int, min_score: float, reader: str | None, narrow: bool, removals: int
) -> None:
    rng = random.Random(seed)
    index = VectorIndex(DIMENSION)
    documents: dict[str, tuple[str, bool, npt.NDArray[np.float32]]] = {}
    for number in range(12):
        document_id = f"d{rng.randrange(20)}"  # some IDs come twice: the second replaces the first
        owner, shared = rng.choice(["alice", "bob"]), rng.random() < 0.4
        vectors = unit_rows(rng, rng.randrange(1, 15))
        if number % 4 == 0:
            vectors[0] = vectors[-1]  # equal vectors in one document tie: chunk order decides
        documents[document_id] = (owner, shared, vectors)
        index.add(document_id, owner, shared, vectors)
    for document_id in rng.sample(sorted(documents), min(removals, len(documents))):
        index.remove(document_id)
        del documents[document_id]
    choices = [*sorted(documents), "absent"]
    wanted = rng.sample(choices, min(3, len(choices))) if narrow else []
    query = unit_rows(rng, 1)[0].astype(np.float64).tolist()
    found = index.search(query, top_k, min_score, wanted, reader)
    assert same_hits(found, brute_force(documents, query, top_k, min_score, wanted, reader))
    assert len(index) == sum(len(vectors) for _, _, vectors in documents.values())


def test_a_reader_sees_its_own_and_shared_documents_only() -> None:
    index = VectorIndex(2)
    same = np.array([[1.0, 0.0]], dtype=np.float32)
    index.add("alice-private", "alice", False, same)
    index.add("bob-private", "bob", False, same)
    index.add("bob-shared", "bob", True, same)
    readable = {hit.document_id for hit in index.search([1.0, 0.0], 10, -1.0, reader="alice")}
    assert readable == {"alice-private", "bob-shared"}
    assert {h.document_id for h in index.search([1.0, 0.0], 10, -1.0, reader="carol")} == {"bob-shared"}
    everything = {h.document_id for h in index.search([1.0, 0.0], 10, -1.0)}
    assert everything == {"alice-private", "bob-private", "bob-shared"}
    # document_ids narrow what the reader may see; they never widen it.
    assert index.search([1.0, 0.0], 10, -1.0, ["bob-private"], reader="alice") == []


def test_equal_scores_are_ordered_by_document_then_chunk_and_cut_at_top_k() -> None:
    index = VectorIndex(2)
    same = np.array([[0.6, 0.8]] * 3, dtype=np.float32)
    for document_id in ("c", "a", "b"):
        index.add(document_id, "", True, same)
    found = index.search([0.6, 0.8], 4, 0.0)
    assert [(h.document_id, h.chunk_index) for h in found] == [("a", 0), ("a", 1), ("a", 2), ("b", 0)]
    assert len({h.score for h in found}) == 1


def test_removing_most_documents_compacts_and_keeps_the_rest_searchable() -> None:
    index = VectorIndex(2)
    for number in range(10):
        index.add(f"d{number}", "", True, np.array([[1.0, 0.0]] * 100, dtype=np.float32))
    for number in range(8):
        index.remove(f"d{number}")
    index.remove("never-added")
    assert len(index) == 200
    found = index.search([1.0, 0.0], 300, 0.0)
    assert {h.document_id for h in found} == {"d8", "d9"} and len(found) == 200
    index.add("d8", "", True, np.array([[0.0, 1.0]], dtype=np.float32))  # replaced: one passage now
    assert [h.document_id for h in index.search([0.0, 1.0], 1, 0.5)] == ["d8"]
    assert len(index) == 101


def test_stored_vectors_of_another_dimension_are_refused() -> None:
    blob = np.ones(3, dtype=np.float32).tobytes()
    assert vectors_of([blob, blob], 3).shape == (2, 3)
    with pytest.raises(ValueError, match="re-ingest"):
        vectors_of([blob], 4)
