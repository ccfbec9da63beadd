"""BM25 sidecar (agreement with bm25s, staying in step with the store), RRF, hybrid search and MMR."""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import bm25s
import numpy as np
import pytest
import Stemmer

from tests.conftest import shared_data
from vectorseam.datadir import DataDir
from vectorseam.embedding import collection_spec
from vectorseam.errors import ValidationError
from vectorseam.ingest.record_manager import store_identity
from vectorseam.keywords import rrf_fuse, tokenize, tokenize_all
from vectorseam.retrieval.hybrid import RetrievalSearcher
from vectorseam.retrieval.mmr import mmr_order
from vectorseam.stores.bm25_sidecar import BM25Model, BM25Sidecar, text_hash
from vectorseam.stores.keyword_fallback import KeywordFallback
from vectorseam.stores.memory import MemoryStore
from vectorseam.types import CollectionSpec, Record

CORPUS = {
    "cat": "A cat is a small feline that likes to purr and chase mice.",
    "dog": "Dogs are loyal companions; a dog loves to play fetch in the park.",
    "bird": "Birds can fly long distances when they migrate south for the winter.",
    "fish": "Goldfish live in a bowl and swim all day.",
    "cats2": "Cats and kittens purr when they are happy and sleep a lot.",
    "sku": "Replacement filter cartridge XJ-900 fits the kitchen water jug.",
}


def _bm25s_reference(texts: list[str]) -> bm25s.BM25:
    reference = bm25s.BM25(method="lucene", k1=1.5, b=0.75)
    reference.index(bm25s.tokenize(texts, stopwords="en", stemmer=Stemmer.Stemmer("english"), show_progress=False),
                    show_progress=False)
    return reference


def test_bm25_scores_equal_bm25s_lucene() -> None:
    ids = sorted(CORPUS)
    texts = [CORPUS[i] for i in ids]
    ours = BM25Model(ids, tokenize_all(texts))
    reference = _bm25s_reference(texts)
    for query in ("cats purring", "dog playing in the park", "migrating birds fly", "xj-900 cartridge"):
        q = tokenize(query)
        assert q == bm25s.tokenize([query], stopwords="en", stemmer=Stemmer.Stemmer("english"),
                                   show_progress=False, return_ids=False)[0]
        assert np.allclose(ours.scores(query), reference.get_scores(q), atol=1e-5), query


def test_bm25_agrees_with_bm25s_on_scifact() -> None:
    """A real corpus (1,500 SciFact abstracts, 40 claims): same scores, and so the same top 10."""
    path = shared_data("scifact/corpus.jsonl")
    with open(path, encoding="utf-8") as fh:
        docs = [json.loads(line) for _, line in zip(range(1500), fh, strict=False)]
    with open(path.parent / "queries.jsonl", encoding="utf-8") as fh:
        queries = [json.loads(line)["text"] for _, line in zip(range(40), fh, strict=False)]
    pairs = sorted((d["_id"], f"{d['title']} {d['text']}") for d in docs)
    ids, texts = [i for i, _ in pairs], [t for _, t in pairs]
    ours = BM25Model(ids, tokenize_all(texts))
    reference = _bm25s_reference(texts)
    for query in queries:
        theirs = reference.get_scores(tokenize(query))
        assert np.allclose(ours.scores(query), theirs, rtol=1e-5, atol=1e-5), query
        top = ours.top(query, 10)
        assert [s for _, s in top] == pytest.approx(sorted(theirs[theirs > 0], reverse=True)[:10], rel=1e-5)


def test_bm25_ranking_ties_by_id_and_keeps_ties_at_the_cut() -> None:
    # "b", "d" and "a" hold the same text: equal scores; the model sorts its (unsorted) input by id
    model = BM25Model(["d", "c", "b", "a", "e"],
                      [["appl", "pie"], ["pear"], ["appl", "pie"], ["appl", "pie"], ["appl"]])
    assert model.ids == ["a", "b", "c", "d", "e"]
    assert ids(model.top("apple pie")) == ["a", "b", "d", "e"]
    assert ids(model.top("apple pie", 2)) == ["a", "b"]
    assert ids(model.top("apple pie", 4)) == ["a", "b", "d", "e"]
    assert model.top("banana") == [] and model.top("the") == []
    assert BM25Model([], []).top("apple") == []
    assert BM25Model(["x"], [[]]).top("apple") == []


def test_rrf_by_hand() -> None:
    fused = rrf_fuse([["a", "b", "c"], ["c", "a", "d"]], rrf_k=10)
    expected = {"a": 1 / 11 + 1 / 12, "b": 1 / 12, "c": 1 / 13 + 1 / 11, "d": 1 / 13}
    assert [i for i, _ in fused] == sorted(expected, key=lambda i: (-expected[i], i))
    assert dict(fused) == pytest.approx(expected)
    weighted = rrf_fuse([["a"], ["b"]], rrf_k=0, weights=[1.0, 2.0])
    assert weighted == [("b", 2.0), ("a", 1.0)]
    with pytest.raises(ValidationError):
        rrf_fuse([["a"]], weights=[1.0, 1.0])


def _records(texts: dict[str, str], meta: dict[str, Any] | None = None) -> list[Record]:
    rng = np.random.default_rng(0)
    return [Record(i, rng.normal(size=4).astype(np.float32), t, dict(meta or {})) for i, t in texts.items()]


HAVE_QDRANT = importlib.util.find_spec("vectorseam_qdrant") is not None


@pytest.fixture(params=["memory", "qdrant"])
def synced(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[KeywordFallback]:
    """The sidecar over the embedded store and over Qdrant's local mode (any VectorStore works)."""
    if request.param == "qdrant":
        if not HAVE_QDRANT:
            pytest.skip("the Qdrant adapter (adapters/qdrant) is not installed")
        from vectorseam_qdrant.store import create_store

        inner: Any = create_store(location=":memory:")
    else:
        inner = MemoryStore()
    store = KeywordFallback(inner, tmp_path / "bm25")
    store.ensure_collection(CollectionSpec("docs", 4))
    yield store
    store.close()


def ids(pairs: list[tuple[str, float]]) -> list[str]:
    return [i for i, _ in pairs]


def test_sidecar_follows_upserts_and_deletes_without_rebuilding(synced: KeywordFallback) -> None:
    synced.upsert("docs", _records(CORPUS))
    side = synced._index("docs")
    assert ids(side.search("purr"))[:2] == ["cats2", "cat"] or set(ids(side.search("purr"))) == {"cat", "cats2"}
    assert side.rebuilds == 1  # first use builds it from a scan
    synced.upsert("docs", _records({"fish": "Parrots repeat words they hear.", "new": "A parrot can purr too."}))
    assert "fish" in ids(side.search("parrot"))
    assert "fish" not in ids(side.search("goldfish"))
    assert "new" in ids(side.search("purr"))
    synced.delete("docs", ["cat", "new"])
    assert set(ids(side.search("purr"))) == {"cats2"}
    assert side.rebuilds == 1, "writes through the wrapper are journalled, not rebuilt"
    # another process (a fresh sidecar on the same files) sees the journalled state, verified, no rebuild
    again = BM25Sidecar(synced.inner, "docs", side.directory)
    assert set(ids(again.search("purr"))) == {"cats2"}
    assert again.rebuilds == 0


def test_sidecar_detects_writes_that_bypassed_it(synced: KeywordFallback) -> None:
    synced.upsert("docs", _records(CORPUS))
    side = synced._index("docs")
    side.search("cat")
    inner = synced.inner
    inner.upsert("docs", _records({"zebra": "Zebras have stripes."}))  # count changes
    assert ids(side.search("stripes")) == ["zebra"]
    inner.upsert("docs", _records({"zebra": "Okapis are shy."}))  # same count, new text
    fresh = BM25Sidecar(inner, "docs", side.directory)  # a new process verifies the content once
    assert ids(fresh.search("okapi")) == ["zebra"]
    assert fresh.search("stripes") == []
    assert fresh.rebuilds == 1


def test_sidecar_files_written_before_bm25s_tokenised_are_read_as_they_are(tmp_path: Path) -> None:
    """Format 1 as earlier releases wrote it (snapshot + journal of token lists): opened without a rebuild."""
    store = MemoryStore()
    store.ensure_collection(CollectionSpec("docs", 4))
    texts = {"cat": CORPUS["cat"], "cats2": CORPUS["cats2"], "dog": CORPUS["dog"]}
    store.upsert("docs", _records(texts))
    side_dir = tmp_path / "bm25" / "docs"
    side_dir.mkdir(parents=True)
    snapshot = [  # tokens as the hand-written tokenizer of format 1 produced them
        {"id": "cat", "h": text_hash("cat", texts["cat"]),
         "t": ["cat", "small", "felin", "like", "purr", "chase", "mice"]},
        {"id": "dog", "h": text_hash("dog", "stale"), "t": ["stale"]},
    ]
    journal = [
        {"op": "put", "id": "cats2", "h": text_hash("cats2", texts["cats2"]),
         "t": ["cat", "kitten", "purr", "when", "happi", "sleep", "lot"]},
        {"op": "put", "id": "dog", "h": text_hash("dog", texts["dog"]),
         "t": ["dog", "loyal", "companion", "dog", "love", "play", "fetch", "park"]},
    ]
    (side_dir / "tokens.jsonl").write_text("".join(json.dumps(o) + "\n" for o in snapshot))
    (side_dir / "journal.jsonl").write_text("".join(json.dumps(o) + "\n" for o in journal))
    (side_dir / "state.json").write_text(json.dumps({"format": 1, "count": 2}))
    side = BM25Sidecar(store, "docs", side_dir)
    assert set(ids(side.search("purr"))) == {"cat", "cats2"}
    assert ids(side.search("parks")) == ["dog"] and side.search("stale") == []
    assert side.rebuilds == 0
    docs = side._docs
    assert docs is not None and all(docs[i][1] == tokenize(t) for i, t in texts.items())


def test_sidecar_upsert_batch_with_a_repeated_id_keeps_the_last(synced: KeywordFallback) -> None:
    synced.upsert("docs", _records({"a": "red apple"}))
    side = synced._index("docs")
    side.search("apple")
    synced.upsert("docs", [*_records({"a": "green pear"}), *_records({"a": "red apple"})])
    assert ids(side.search("apple")) == ["a"] and side.search("pear") == []
    synced.upsert("docs", [*_records({"a": "green pear"}), *_records({"a": "yellow plum"})])
    assert ids(side.search("plum")) == ["a"] and side.search("pear") == side.search("apple") == []
    assert side.rebuilds == 1
    again = BM25Sidecar(synced.inner, "docs", side.directory)  # the journal holds the same
    assert ids(again.search("plum")) == ["a"] and again.rebuilds == 0


def test_delete_by_filter_and_drop_discard_the_sidecar(synced: KeywordFallback) -> None:
    synced.upsert("docs", _records({"a": "red apple", "b": "green apple"}, {"colour": "red"}))
    synced.upsert("docs", _records({"c": "red cherry"}, {"colour": "dark"}))
    side = synced._index("docs")
    assert set(ids(side.search("red"))) == {"a", "c"}
    synced.delete("docs", filter={"colour": "red"})
    assert ids(side.search("red")) == ["c"]
    synced.drop_collection("docs")
    assert not (side.directory / "state.json").exists()


def test_bm25_mode_applies_filters_and_hybrid_fuses(tmp_path: Path, local_embedder: Any) -> None:
    store = KeywordFallback(MemoryStore(), tmp_path / "bm25")
    store.ensure_collection(collection_spec("docs", local_embedder))
    texts = list(CORPUS.items())
    vectors = local_embedder.embed_documents([t for _, t in texts])
    store.upsert("docs", [Record(i, v, t, {"pet": i in ("cat", "dog", "cats2")})
                          for (i, t), v in zip(texts, vectors, strict=True)])
    searcher = RetrievalSearcher(store, local_embedder, rrf_k=60)
    bm25 = searcher.search("docs", "purr", k=3, mode="bm25")
    assert {h.id for h in bm25} == {"cat", "cats2"}  # only documents holding the word
    assert all(h.text == CORPUS[h.id] for h in bm25)
    assert searcher.search("docs", "purr", k=3, mode="bm25", filter={"pet": False}) == []
    sku_dense = [h.id for h in searcher.search("docs", "XJ-900", k=6, mode="dense")]
    sku_hybrid = [h.id for h in searcher.search("docs", "XJ-900", k=6, mode="hybrid")]
    assert sku_hybrid[0] == "sku"  # the exact keyword match, boosted by BM25
    assert set(sku_hybrid) == set(sku_dense)
    dense = searcher.search("docs", "kittens", k=3, mode="dense")
    hybrid = searcher.search("docs", "kittens", k=3, mode="hybrid")
    expected = rrf_fuse([[h.id for h in searcher.search("docs", "kittens", k=100, mode="dense")],
                         [h.id for h in searcher.search("docs", "kittens", k=100, mode="bm25")]], 60)
    assert [h.id for h in hybrid] == [i for i, _ in expected][:3]
    assert dense[0].id == "cats2"
    with pytest.raises(ValidationError, match="unknown search mode"):
        searcher.search("docs", "cat", mode="sparse")
    with pytest.raises(ValidationError, match="query text is empty"):
        searcher.search("docs", "  ", mode="hybrid")


def test_mmr_spreads_near_duplicates(tmp_path: Path, local_embedder: Any) -> None:
    texts = {
        "a1": "The battery of this phone lasts two full days.",
        "a2": "This phone's battery lasts for two whole days.",
        "a3": "Battery life on the phone is two days long.",
        "b1": "The phone camera takes sharp photos at night.",
        "c1": "Shipping of the phone took three weeks.",
    }
    store = MemoryStore()
    store.ensure_collection(collection_spec("docs", local_embedder))
    vecs = local_embedder.embed_documents(list(texts.values()))
    store.upsert("docs", [Record(i, v, t) for (i, t), v in zip(texts.items(), vecs, strict=True)])
    searcher = RetrievalSearcher(store, local_embedder)
    plain = [h.id for h in searcher.search("docs", "phone battery life", k=3)]
    diverse = [h.id for h in searcher.search("docs", "phone battery life", k=3, mmr=0.3)]
    assert set(plain) == {"a1", "a2", "a3"}
    assert diverse[0] == plain[0]
    assert len({i[0] for i in diverse}) == 3  # one battery review, then the camera and shipping ones
    assert [h.id for h in searcher.search("docs", "phone battery life", k=3, mmr=1.0)] == plain
    with pytest.raises(ValidationError, match="--mmr LAMBDA"):
        searcher.search("docs", "phone", mmr=1.5)


def test_mmr_order_lambda_one_is_relevance_order() -> None:
    rng = np.random.default_rng(1)
    cands = rng.normal(size=(20, 8))
    q = rng.normal(size=8)
    rel = cands @ q / np.linalg.norm(cands, axis=1) / np.linalg.norm(q)
    assert mmr_order(q, cands, 5, 1.0) == list(np.argsort(-rel)[:5])
    assert mmr_order(q, cands[:0], 5, 0.5) == []


def test_sidecar_root_separates_stores(tmp_path: Path) -> None:
    a = DataDir.at(tmp_path).bm25_sidecar(store_identity("qdrant", {"url": "http://a:6333"}))
    b = DataDir.at(tmp_path).bm25_sidecar(store_identity("qdrant", {"url": "http://b:6333"}))
    assert a != b and a.parent == b.parent == tmp_path / "bm25"
    assert a.name.startswith("qdrant-") and "6333" not in a.name  # the kind, never the options themselves
