"""The RAG domain without the wire: passage splitting, the hashing embedder, the SQLite document store."""

from __future__ import annotations

import asyncio
import functools
import json
import math
import os
import re
import subprocess
import sys
import time
from collections.abc import AsyncIterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chat_services.errors import AlreadyExists, InvalidArgument, NotFound
from chat_services.rag.chunking import PASSAGE_MAX_CHARS, split_passages
from chat_services.rag.embedding import HashingEmbedder, cosine
from chat_services.rag.store import MIGRATIONS, DocumentInfo, DocumentStore
from chat_services.storage import Storage, open_storage

from .clients import until

RETRIES = "Retries use exponential backoff with jitter. Each retry waits longer than the last."
DEADLINES = "Deadlines bound every call. A call past its deadline fails with DEADLINE_EXCEEDED."
COOKING = "Bread needs flour, water, salt and yeast. Knead the dough for ten minutes."


# --- Splitting into passages -------------------------------------------------------------------


def test_no_text_gives_no_passages() -> None:
    assert split_passages("") == []
    assert split_passages("  \n\t \n\n ") == []


def test_a_short_text_is_one_passage_with_whitespace_normalised() -> None:
    assert split_passages("One.  Two!\n Three?\tFour") == ["One. Two! Three? Four"]


def test_the_default_passage_size_is_800_characters() -> None:
    sentence = "A sentence of exactly forty characters.."
    assert len(sentence) == 40
    passages = split_passages(" ".join([sentence] * 100))
    assert PASSAGE_MAX_CHARS == 800
    assert all(len(p) <= 800 for p in passages)
    # 19 sentences and their 18 separating spaces make 778 characters; a 20th would not fit.
    assert [len(p) for p in passages[:-1]] == [19 * 40 + 18] * (len(passages) - 1)


def test_sentences_are_packed_whole_into_passages() -> None:
    first, second, third = "a" * 24 + ".", "b" * 24 + "!", "c" * 24 + "?"
    assert split_passages(f"{first} {second} {third}", max_chars=60) == [f"{first} {second}", third]
    # A sentence that fits nowhere but a new passage starts one; none is split to fill space.
    assert split_passages(f"{first} {second} {third}", max_chars=50) == [first, second, third]


def test_a_blank_line_ends_a_sentence_even_without_punctuation() -> None:
    heading, body = "Retry policy", "word00 word01 word02 word03"
    assert split_passages(f"{heading}\n\n{body}", max_chars=20) == [heading, "word00 word01 word02", "word03"]
    # A single newline is only whitespace: the heading runs on into the same sentence.
    assert split_passages(f"{heading}\n{body}", max_chars=20) == [
        "Retry policy word00",
        "word01 word02 word03",
    ]


def test_an_overlong_sentence_is_cut_between_words() -> None:
    words = [f"word{i:02d}" for i in range(20)]  # six characters each
    passages = split_passages(" ".join(words), max_chars=20)
    assert all(len(p) <= 20 for p in passages)
    assert " ".join(passages).split() == words  # every word kept, none cut
    assert passages[0] == "word00 word01 word02"


def test_a_word_longer_than_a_passage_is_cut_hard() -> None:
    assert split_passages("x" * 100, max_chars=40) == ["x" * 40, "x" * 40, "x" * 20]


_words = st.text(alphabet=st.characters(categories=("L", "N")), min_size=1, max_size=25)
_separators = st.sampled_from([" ", "  ", "\n", "\t", ". ", "! ", "? ", ".\n\n", "\n\n", ", "])
_texts = st.lists(st.tuples(_words, _separators), max_size=60).map(
    lambda parts: "".join(a + b for a, b in parts)
)


@settings(max_examples=200, deadline=None, database=None)
@given(text=_texts, max_chars=st.integers(min_value=30, max_value=300))
def test_splitting_keeps_every_word_in_order_within_the_size_limit(text: str, max_chars: int) -> None:
    passages = split_passages(text, max_chars=max_chars)
    assert all(0 < len(p) <= max_chars for p in passages)
    assert all(p == " ".join(p.split()) for p in passages)  # trimmed, single spaces, no newlines
    assert " ".join(passages).split() == text.split()


# --- The hashing embedder ----------------------------------------------------------------------


def test_an_embedding_is_a_unit_vector_of_the_configured_dimension() -> None:
    for dimension in (256, 64, 7):
        vector = HashingEmbedder(dimension).embed(RETRIES)
        assert len(vector) == dimension
        assert math.sqrt(sum(v * v for v in vector)) == pytest.approx(1.0)
    assert HashingEmbedder().dimension == 256


def test_text_without_words_embeds_as_the_zero_vector() -> None:
    embedder = HashingEmbedder()
    for text in ("", "   ", "!!! ??? ...", "—"):
        assert embedder.embed(text) == [0.0] * 256, text


def test_embeddings_are_deterministic_across_instances() -> None:
    assert HashingEmbedder().embed(RETRIES) == HashingEmbedder().embed(RETRIES)


def test_embeddings_are_the_same_in_another_process_with_another_hash_seed() -> None:
    """Stored vectors outlive the process: a restarted server must embed queries the same way."""
    script = (
        "import json, sys\n"
        "from chat_services.rag.embedding import HashingEmbedder\n"
        "print(json.dumps(HashingEmbedder().embed(sys.argv[1])))\n"
    )
    here = HashingEmbedder().embed(RETRIES)
    for seed in ("0", "12345"):
        result = subprocess.run(
            [sys.executable, "-c", script, RETRIES],
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
            env={**os.environ, "PYTHONHASHSEED": seed},
        )
        assert json.loads(result.stdout) == here, seed


def test_case_punctuation_and_plurals_do_not_change_the_embedding() -> None:
    embedder = HashingEmbedder()
    assert embedder.embed("Retry BACKOFF") == embedder.embed("retry backoff")
    assert embedder.embed("retry, backoff!") == embedder.embed("retry backoff")
    assert embedder.embed("retries") == embedder.embed("retry")
    assert embedder.embed("calls") == embedder.embed("call")
    assert embedder.embed("class") != embedder.embed("clas")  # a double s is not a plural


def test_word_order_matters_through_word_pairs_but_shared_words_dominate() -> None:
    embedder = HashingEmbedder()
    forward, backward = embedder.embed("retry backoff"), embedder.embed("backoff retry")
    assert forward != backward
    assert 0.3 < cosine(forward, backward) < 1.0


def test_similarity_ranks_the_text_that_shares_vocabulary_first() -> None:
    embedder = HashingEmbedder()
    query = embedder.embed("how long does each retry wait with backoff")
    texts = {"retries": RETRIES, "deadlines": DEADLINES, "cooking": COOKING}
    ranked = sorted(texts, key=lambda name: -cosine(query, embedder.embed(texts[name])))
    assert ranked[0] == "retries"
    assert cosine(query, embedder.embed(RETRIES)) > 0.2
    assert cosine(embedder.embed(RETRIES), embedder.embed(RETRIES)) == pytest.approx(1.0)


def test_cosine() -> None:
    a, b = [1.0, 2.0, 0.0], [0.0, 0.0, 3.0]
    assert cosine(a, a) == pytest.approx(1.0)
    assert cosine(a, [-x for x in a]) == pytest.approx(-1.0)
    assert cosine(a, [10 * x for x in a]) == pytest.approx(1.0)
    assert cosine(a, b) == 0.0
    assert cosine(a, [0.0, 0.0, 0.0]) == 0.0
    with pytest.raises(ValueError, match="zip"):
        cosine(a, [1.0, 2.0])


# --- The document store on a real SQLite file and a real PostgreSQL database -------------------


async def open_store(target: str) -> tuple[Storage, DocumentStore]:
    database = open_storage(target)
    await database.open(MIGRATIONS)
    return database, DocumentStore(database, HashingEmbedder())


@pytest.fixture
async def store(database_target: str) -> AsyncIterator[DocumentStore]:
    database, opened = await open_store(database_target)
    try:
        yield opened
    finally:
        await opened.close()
        await database.close()


async def passage_rows(store: DocumentStore, document_id: str) -> list[tuple[int, str, int]]:
    """(chunk_index, text, vector size in bytes) of every stored passage of a document."""
    return await store.database.call(
        lambda c: [
            (row["chunk_index"], row["text"], len(row["vector"]))
            for row in c.execute(
                "SELECT chunk_index, text, vector FROM passages WHERE document_id = ? ORDER BY chunk_index",
                (document_id,),
            )
        ]
    )


def long_text(topic: str, sentences: int) -> str:
    """Sentences of about 500 characters, so that each becomes a passage of its own."""
    return " ".join(
        f"Part {i} is about {topic} " + "with filler words " * 27 + "to the end." for i in range(sentences)
    )


async def test_ingest_stores_every_passage_with_its_vector(store: DocumentStore) -> None:
    text = long_text("retries", 3)
    before = time.time_ns()
    stored = await store.ingest(DocumentInfo(document_id="d-1", title="T", metadata={"k": "v"}), text)
    assert before <= stored.created_at_ns <= time.time_ns()
    assert stored.info.document_id == "d-1" and stored.info.title == "T"
    assert stored.info.metadata == {"k": "v"} and stored.info.media_type == "text/plain"
    assert stored.chunk_count == 3 and stored.size_bytes == len(text)
    rows = await passage_rows(store, "d-1")
    assert [(i, t) for i, t, _ in rows] == list(enumerate(split_passages(text)))
    assert {size for _, _, size in rows} == {4 * 256}  # float32 per dimension


async def test_ingest_assigns_an_id_keeps_the_media_type_and_counts_utf8_bytes(store: DocumentStore) -> None:
    text = "Café ✓ déjà vu. " * 3
    stored = await store.ingest(DocumentInfo(media_type="text/markdown"), text)
    assert re.fullmatch(r"[0-9a-f]{32}", stored.info.document_id)
    assert stored.info.media_type == "text/markdown"
    assert stored.size_bytes == len(text.encode()) == len(text) + 3 * 5
    other = await store.ingest(DocumentInfo(), text)
    assert other.info.document_id != stored.info.document_id


async def test_a_taken_id_is_already_exists_and_changes_nothing(store: DocumentStore) -> None:
    await store.ingest(DocumentInfo(document_id="d-1"), RETRIES)
    before = await passage_rows(store, "d-1")
    with pytest.raises(AlreadyExists) as raised:
        await store.ingest(DocumentInfo(document_id="d-1"), long_text("cooking", 4))
    assert raised.value.field == "header.document_id"
    assert await passage_rows(store, "d-1") == before
    [found] = await store.search(store.embedder.embed(RETRIES), 5, 0.5)
    assert found.text == RETRIES


async def test_delete_removes_the_passages_and_counts_them(store: DocumentStore) -> None:
    stored = await store.ingest(DocumentInfo(document_id="d-1"), long_text("retries", 4))
    await store.ingest(DocumentInfo(document_id="d-2"), RETRIES)
    assert await store.delete("d-1") == stored.chunk_count == 4
    assert await passage_rows(store, "d-1") == []
    assert [p.document_id for p in await store.search(store.embedder.embed("retries"), 100, -1)] == ["d-2"]
    with pytest.raises(NotFound) as raised:
        await store.delete("d-1")
    assert raised.value.field == "document_id"
    await store.ingest(DocumentInfo(document_id="d-1"), COOKING)  # the ID is free again


async def test_search_orders_by_score_then_document_then_chunk(store: DocumentStore) -> None:
    await store.ingest(DocumentInfo(document_id="b"), RETRIES)
    await store.ingest(DocumentInfo(document_id="a"), RETRIES)
    await store.ingest(DocumentInfo(document_id="c"), DEADLINES)
    await store.ingest(DocumentInfo(document_id="d"), COOKING)
    found = await store.search(store.embedder.embed("retry backoff"), 10, -1.0)
    assert [p.document_id for p in found[:2]] == ["a", "b"]  # equal scores: by document ID
    assert found[0].score == found[1].score
    assert {p.document_id for p in found} == {"a", "b", "c", "d"}
    scores = [p.score for p in found]
    assert scores == sorted(scores, reverse=True)
    assert all(-1.0 <= s <= 1.0 for s in scores)


async def test_search_applies_top_k_min_score_and_document_ids(store: DocumentStore) -> None:
    await store.ingest(DocumentInfo(document_id="long"), long_text("retries", 6))
    await store.ingest(DocumentInfo(document_id="bread"), COOKING)
    query = store.embedder.embed("retries")
    everything = await store.search(query, 100, -1.0)
    assert len(everything) == 7
    assert await store.search(query, 3, -1.0) == everything[:3]
    threshold = everything[2].score
    assert await store.search(query, 100, threshold) == [p for p in everything if p.score >= threshold]
    assert await store.search(query, 100, 1.01) == []
    only_bread = await store.search(query, 100, -1.0, ["bread", "absent"])
    assert [(p.document_id, p.chunk_index, p.text) for p in only_bread] == [("bread", 0, COOKING)]
    assert await store.search(query, 100, -1.0, ["absent"]) == []


async def test_a_query_vector_is_normalised(store: DocumentStore) -> None:
    await store.ingest(DocumentInfo(document_id="d"), DEADLINES)
    vector = store.embedder.embed(DEADLINES)
    [same] = await store.search(vector, 1, 0.0)
    [scaled] = await store.search([7.5 * v for v in vector], 1, 0.0)
    [opposite] = await store.search([-v for v in vector], 1, -1.5)
    assert same.score == pytest.approx(1.0, abs=1e-6)
    assert scaled.score == pytest.approx(same.score, abs=1e-9)
    assert opposite.score == pytest.approx(-1.0, abs=1e-6)
    assert await store.search([-v for v in vector], 1, 0.0) == []


async def test_scores_stay_within_minus_one_and_one(store: DocumentStore) -> None:
    await store.ingest(DocumentInfo(document_id="d"), DEADLINES)
    vector = store.embedder.embed(DEADLINES)
    [same] = await store.search(vector, 1, -1.5)
    [opposite] = await store.search([-v for v in vector], 1, -1.5)
    assert -1.0 <= opposite.score <= same.score <= 1.0
    assert await store.search([-v for v in vector], 1, -1.0) == [opposite]  # nothing scores below -1


@pytest.mark.parametrize(
    "vector",
    [[1.0] * 255, [1.0] * 257, [], [0.0] * 256, [math.nan] + [1.0] * 255, [math.inf] + [0.0] * 255],
    ids=["short", "long", "empty", "zero", "nan", "inf"],
)
async def test_a_bad_query_vector_is_invalid_argument(store: DocumentStore, vector: list[float]) -> None:
    with pytest.raises(InvalidArgument) as raised:
        await store.search(vector, 5, 0.0)
    assert raised.value.field == "vector.values"


async def test_searching_text_without_words_finds_nothing(store: DocumentStore) -> None:
    await store.ingest(DocumentInfo(document_id="d"), RETRIES)
    assert await store.search_text("?!", 5, -1.0) == []
    [found] = await store.search_text("jitter", 5, 0.0)
    assert found.document_id == "d"


async def test_documents_survive_closing_and_reopening_the_database(database_target: str) -> None:
    database, store = await open_store(database_target)
    try:
        await store.ingest(DocumentInfo(document_id="d-1"), long_text("deadlines", 2))
        await store.ingest(DocumentInfo(document_id="d-2"), RETRIES)
        before = await store.search(store.embedder.embed("deadlines"), 10, -1.0)
    finally:
        await store.close()
        await database.close()
    database, store = await open_store(database_target)  # migrations already applied: skipped
    try:
        assert await store.search(store.embedder.embed("deadlines"), 10, -1.0) == before
        with pytest.raises(AlreadyExists):
            await store.ingest(DocumentInfo(document_id="d-2"), RETRIES)
        assert await store.delete("d-1") == 2
    finally:
        await store.close()
        await database.close()


async def test_a_cancelled_ingestion_or_deletion_leaves_search_and_storage_agreeing(
    store: DocumentStore,
) -> None:
    query = store.embedder.embed(RETRIES)

    async def stored(document_id: str) -> bool:
        row = await store.database.call(
            lambda c: c.execute("SELECT 1 FROM documents WHERE document_id = ?", (document_id,)).fetchone()
        )
        return row is not None

    async def agree(document_id: str) -> bool:
        found = bool(await store.search(query, 1, -1.0, [document_id]))
        return found == await stored(document_id)

    for turns in range(8):  # cancelled a few event-loop turns apart: before, during, after the commit
        document_id = f"d-{turns}"
        ingesting = asyncio.ensure_future(store.ingest(DocumentInfo(document_id=document_id), RETRIES))
        await until(lambda: store.indexing == 1)
        while store.indexing:
            await asyncio.sleep(0)
        for _ in range(turns):
            await asyncio.sleep(0)
        ingesting.cancel()
        await asyncio.gather(ingesting, return_exceptions=True)
        await until(functools.partial(agree, document_id))
        if await stored(document_id):
            deleting = asyncio.ensure_future(store.delete(document_id))
            for _ in range(turns):
                await asyncio.sleep(0)
            deleting.cancel()
            await asyncio.gather(deleting, return_exceptions=True)
            await until(functools.partial(agree, document_id))
