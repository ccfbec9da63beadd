"""Keyword search native to the stores: the protocol, its forwarding, the searcher's dispatch and fallback,
and the memory store's own index (write by write, across processes sharing a directory).

The agreement of every native store with the reference BM25 is the conformance suite's
(:mod:`vectorseam.testing.conformance.keywords`); here is what lies around it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from vectorseam.client import VectorSeam
from vectorseam.config import Settings, StoreSettings
from vectorseam.errors import UnsupportedOperationError, ValidationError
from vectorseam.filters import FilterLike
from vectorseam.keywords import fuse_hits, idf, rrf_fuse, term_index, term_weight, tokenize, tokenize_all
from vectorseam.retrieval.hybrid import RetrievalSearcher
from vectorseam.store import NativeKeywordSearch
from vectorseam.stores import memory_keywords
from vectorseam.stores.bm25_sidecar import BM25Model
from vectorseam.stores.keyword_fallback import KeywordFallback
from vectorseam.stores.memory import MemoryStore
from vectorseam.stores.wrappers import ObservedStore, StoreCall, StoreWrapper
from vectorseam.testing.conformance.keywords import keyword_records, reference_bm25
from vectorseam.types import CollectionSpec, Hit, Record

DIM = 8


def _filled(store: Any, name: str = "docs") -> list[Record]:
    records = keyword_records(dimension=DIM)
    store.ensure_collection(CollectionSpec(name, DIM))
    store.upsert(name, records)
    return records


class _NoKeywords:
    """A store without the ability: every protocol method of a memory store, and nothing else."""

    def __init__(self) -> None:
        self._inner = MemoryStore()

    def __getattr__(self, name: str) -> Any:
        if name in ("keyword_search", "hybrid_search", "recommend", "bulk_load"):
            raise AttributeError(name)
        return getattr(self._inner, name)

    @property
    def capabilities(self) -> Any:
        return self._inner.capabilities


class _Legacy(MemoryStore):
    """A store with the ability that cannot serve this collection natively (as a Qdrant collection
    created before sparse vectors): the searcher must fall back to the sidecar."""

    def keyword_search(self, collection: str, query: str, k: int = 10, filter: FilterLike = None) -> list[Hit]:
        raise UnsupportedOperationError("no native keyword index for this collection")

    def hybrid_search(self, *args: Any, **kwargs: Any) -> list[Hit]:
        raise UnsupportedOperationError("no native keyword index for this collection")


class _FixedEmbedder:
    """Query vectors from a hash of the text: the searcher needs an embedder, the test no model."""

    fingerprint = "fixed-test-embedder"
    dimension = DIM

    def embed_query(self, text: str) -> np.ndarray:
        return np.random.default_rng(abs(hash(text)) % 2**32).normal(size=DIM).astype(np.float32)

    def embed_documents(self, texts: list[str]) -> np.ndarray:
        return np.stack([self.embed_query(t) for t in texts])


def _searcher(store: KeywordFallback) -> RetrievalSearcher:
    searcher = RetrievalSearcher(store, _FixedEmbedder())  # type: ignore[arg-type]
    searcher.dense.check = lambda collection: None  # type: ignore[method-assign]  # no fingerprint to check
    return searcher


# -- the definition --------------------------------------------------------------------------------------


def test_one_definition_of_the_scores() -> None:
    """idf and term_weight are Lucene's, the functions BM25Model (the sidecar) is built from."""
    assert idf(10, 3) == pytest.approx(np.log(1 + (10 - 3 + 0.5) / 3.5))
    assert term_weight(2, 10, 5.0) == pytest.approx(2 / (2 + 1.5 * (1 - 0.75 + 0.75 * 2)))
    model = BM25Model(["a", "b"], [["cat", "cat", "dog"], ["dog"]])
    n, avgdl = 2, 2.0
    ((top_id, top_score),) = model.top("cat")
    assert top_id == "a" and top_score == pytest.approx(idf(n, 1) * term_weight(2, 3, avgdl))
    assert term_index("cat") == term_index("cat") and 0 <= term_index("cat") < 2**32
    assert rrf_fuse([["a", "b"], ["b", "c"]], 60) == [("b", 1 / 62 + 1 / 61), ("a", 1 / 61), ("c", 1 / 62)]
    dense = [Hit("a", 0.9, "A", {}), Hit("b", 0.5, "B", {"from": "dense"})]
    sparse = [Hit("b", 3.0, "B", {"from": "sparse"}), Hit("c", 1.0, "C", {})]
    fused = fuse_hits(dense, sparse, 2)
    assert [(h.id, h.metadata) for h in fused] == [("b", {"from": "dense"}), ("a", {})]
    with pytest.raises(ValidationError):
        rrf_fuse([["a"]], -1)


def test_the_query_tokenizer_gives_bm25s_tokens() -> None:
    """tokenize (one text, bm25s's steps without its per-call set-up) agrees with tokenize_all (bm25s) on
    every SciFact abstract and claim, and on text that tests the edges of its pattern."""
    from tests.conftest import shared_data

    texts = [json.loads(line)["title"] + " " + json.loads(line)["text"]
             for line in shared_data("scifact/corpus.jsonl").read_text(encoding="utf-8").splitlines()[:2000]]
    texts += [json.loads(line)["text"]
              for line in shared_data("scifact/queries.jsonl").read_text(encoding="utf-8").splitlines()]
    texts += ["", "a I", "Ünïcödé STRASSE straße", "x_y 3.14 don't e-mail", "The THE the", "日本語のテキスト"]
    assert [tokenize(t) for t in texts] == tokenize_all(texts)


# -- the protocol through wrappers -----------------------------------------------------------------------


def test_wrappers_forward_native_keyword_search_exactly_when_the_store_has_it(tmp_path: Path) -> None:
    observed = ObservedStore(MemoryStore())
    assert isinstance(observed, NativeKeywordSearch)
    assert isinstance(KeywordFallback(observed, tmp_path / "bm25"), NativeKeywordSearch)
    assert not isinstance(StoreWrapper(_NoKeywords()), NativeKeywordSearch)
    assert isinstance(KeywordFallback(_NoKeywords(), tmp_path / "bm25"), NativeKeywordSearch)  # its own fallback
    records = _filled(observed)
    seen: list[StoreCall] = []
    observed.add_observer(seen.append)
    hits = observed.keyword_search("docs", "apple river", 3, {"group": 1})
    assert [h.id for h in hits] == [i for i, _ in sorted(reference_bm25(records, "apple river", {"group": 1}).items(),
                                                         key=lambda kv: (-kv[1], kv[0]))[:3]]
    observed.hybrid_search("docs", "apple", np.ones(DIM, np.float32), 3)
    assert [c.operation for c in seen] == ["keyword_search", "hybrid_search"]


# -- the searcher: native first, the sidecar as the fallback ---------------------------------------------


@pytest.mark.parametrize("query", ["apple river", "protein cell gene", "kitchen filter cable battery engine"])
@pytest.mark.parametrize("spec", [None, {"group": 1}, {"size": {"$lt": 6}}])
def test_native_path_answers_like_the_sidecar_and_writes_no_sidecar(tmp_path: Path, query: str,
                                                                    spec: dict[str, Any] | None) -> None:
    root = tmp_path / "bm25"
    store = KeywordFallback(MemoryStore(), root)
    _filled(store)
    searcher = _searcher(store)
    native = searcher.search("docs", query, k=5, filter=spec, mode="bm25")
    hybrid = searcher.search("docs", query, k=5, filter=spec, mode="hybrid")
    assert not root.exists(), "a native store needs no sidecar files"
    fallback = store._sidecar_hits("docs", query, 5, None if spec is None else searcher_filter(spec))
    assert [h.id for h in native] == [h.id for h in fallback]
    np.testing.assert_allclose([h.score for h in native], [h.score for h in fallback], rtol=1e-9)
    dense = store.query("docs", _FixedEmbedder().embed_query(query), k=searcher.candidates, filter=spec)[0]
    expected = fuse_hits(dense, store._sidecar_hits("docs", query, searcher.candidates,
                                                    None if spec is None else searcher_filter(spec)), 5)
    assert [(h.id, h.score) for h in hybrid] == [(h.id, h.score) for h in expected]


def searcher_filter(spec: dict[str, Any]) -> Any:
    from vectorseam.filters import parse_filter

    return parse_filter(spec)


@pytest.mark.parametrize("make", [_Legacy, _NoKeywords], ids=["unsupported-collection", "no-ability"])
def test_stores_without_a_native_index_fall_back_to_the_sidecar(tmp_path: Path, make: Any) -> None:
    root = tmp_path / "bm25"
    inner = make()
    records = _filled(inner)
    store = KeywordFallback(inner, root)
    searcher = _searcher(store)
    hits = searcher.search("docs", "apple river", k=4, mode="bm25", filter={"group": 1})
    reference = reference_bm25(records, "apple river", {"group": 1})
    assert [h.id for h in hits] == [i for i, _ in sorted(reference.items(), key=lambda kv: (-kv[1], kv[0]))[:4]]
    assert (root / "docs" / "state.json").is_file(), "the fallback keeps its sidecar"
    assert len(searcher.search("docs", "apple river", k=4, mode="hybrid")) == 4
    assert [(h.id, h.score) for h in store.keyword_search("docs", "apple", 2)] == store._index("docs").search("apple", 2)


def test_facade_searches_the_memory_store_natively(tmp_path: Path) -> None:
    vs = VectorSeam(settings=Settings(data_dir=tmp_path / "data",  # type: ignore[call-arg]
                                      store=StoreSettings(name="memory")))
    with vs:
        vectors = np.eye(384, dtype=np.float32)[:3]
        vs.upsert([Record(f"r{i}", vectors[i], f"apple pie number {i}" if i else "cherry tart") for i in range(3)],
                  "docs")
        assert isinstance(vs.store, NativeKeywordSearch)
        assert {h.id for h in vs.retrieval.search("docs", "apple", k=5, mode="bm25")} == {"r1", "r2"}
        assert not (tmp_path / "data" / "bm25").exists()


# -- the memory store's index ----------------------------------------------------------------------------


def test_memory_keyword_index_stays_exact_through_random_writes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Puts, overwrites and deletes in random order, with rebuilds of the base in between: every query
    scores exactly as a BM25Model built afresh over the records at that moment."""
    monkeypatch.setattr(memory_keywords, "REBUILD_MIN", 7)
    rng = np.random.default_rng(3)
    pool = keyword_records(80, DIM, seed=11)
    texts = {r.id: r.text for r in pool[:20]}
    index = memory_keywords.KeywordIndex(list(texts), list(texts.values()))
    for step in range(60):
        if rng.random() < 0.6:
            chosen = [pool[int(i)] for i in rng.integers(0, len(pool), size=int(rng.integers(1, 6)))]
            index.put([r.id for r in chosen], [r.text for r in chosen])
            texts.update((r.id, r.text) for r in chosen)
        else:
            gone = [pool[int(i)].id for i in rng.integers(0, len(pool), size=3)]
            index.remove(gone)
            for rid in gone:
                texts.pop(rid, None)
        ids = sorted(texts)
        model = BM25Model(ids, tokenize_all([texts[i] for i in ids]))
        for query in ("apple river", "gene", "storm wind solar energy", "cherry banana banana"):
            got = index.top(query, 8)
            want = model.top(query, 8)
            assert [i for i, _ in got] == [i for i, _ in want], (step, query)
            np.testing.assert_allclose([s for _, s in got], [s for _, s in want], rtol=1e-12)
    assert index.n == len(texts)


def test_memory_store_processes_see_each_others_writes_in_keyword_search(tmp_path: Path) -> None:
    """Two processes over one directory: a text changed by one (same record count) is found by BM25 and
    hybrid search in the other on its very next query, from the store's own files, no sidecar."""
    path = tmp_path / "store"
    store = MemoryStore(path)
    _filled(store)
    assert [h.id for h in store.keyword_search("docs", "zebra", 5)] == []
    script = textwrap.dedent(f"""
        import numpy as np
        from vectorseam.stores.memory import MemoryStore
        from vectorseam.types import Record
        s = MemoryStore({str(path)!r})
        (old,) = s.fetch("docs", ["k005"])
        s.upsert("docs", [Record("k005", old.vector, "zebra crossing near the river", old.metadata)])
        s.delete("docs", ["k006"])
        s.close()
    """)
    subprocess.run([sys.executable, "-c", script], check=True, timeout=120)
    hits = store.keyword_search("docs", "zebra", 5)
    assert [h.id for h in hits] == ["k005"] and hits[0].text == "zebra crossing near the river"
    assert "k005" in [h.id for h in store.hybrid_search("docs", "zebra", np.ones(DIM, np.float32), 3, depth=10)]
    assert all(h.id != "k006" for h in store.keyword_search("docs", "apple river", 60))
    store.close()


# -- migration carries the keyword index ------------------------------------------------------------------


def test_hybrid_results_survive_memory_to_pgvector_to_qdrant(tmp_path: Path, pg_server: Any) -> None:
    """``vectorseam migrate`` copies records through upsert, so each native store indexes them as they
    arrive: BM25 and hybrid answers (filters included) are the same in all three stores afterwards."""
    pytest.importorskip("vectorseam_qdrant", reason="the Qdrant adapter (adapters/qdrant) is not installed")
    from vectorseam_pgvector import create_store as create_pg
    from vectorseam_qdrant.store import create_store as create_qdrant

    source = MemoryStore(tmp_path / "mem")
    source.ensure_collection(CollectionSpec("docs", DIM, "cosine", {"embedder": "local:test:8"}))
    source.upsert("docs", keyword_records(dimension=DIM))
    source.close()
    schema = f"mig_{abs(hash(str(tmp_path))) % 10**8}"
    configs = {
        "mem": ("memory", {"path": str(tmp_path / "mem")}),
        "pg": ("pgvector", {"dsn": pg_server.dsn(), "schema": schema}),
        "qd": ("qdrant", {"path": str(tmp_path / "qdrant")}),
    }
    paths = {}
    for key, (name, options) in configs.items():
        lines = [f'data_dir = "{tmp_path / ("data-" + key)}"', "[store]", f'name = "{name}"', "[store.options]"]
        lines += [f'{k} = "{v}"' for k, v in options.items()]
        paths[key] = tmp_path / f"{key}.toml"
        paths[key].write_text("\n".join(lines) + "\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("VECTORSEAM_")}
    for src, dst in (("mem", "pg"), ("pg", "qd")):
        done = subprocess.run([sys.executable, "-m", "vectorseam.cli", "migrate", "docs", "--from", str(paths[src]),
                               "--to", str(paths[dst])], capture_output=True, text=True, env=env, timeout=300)
        assert done.returncode == 0 and "verified" in done.stdout, done.stderr
    stores: dict[str, Any] = {"memory": MemoryStore(tmp_path / "mem"), "pgvector": create_pg(**configs["pg"][1]),
              "qdrant": create_qdrant(**configs["qd"][1])}
    try:
        vector = np.random.default_rng(1).normal(size=DIM).astype(np.float32)
        for query, spec in (("apple river", None), ("solar wind energy", {"group": 1}), ("gene cell", {"tags": "x"})):
            answers = {}
            for name, store in stores.items():
                assert isinstance(store, NativeKeywordSearch), name
                answers[name] = (store.keyword_search("docs", query, 10, spec),
                                 store.hybrid_search("docs", query, vector, 10, spec, depth=30))
            for name in ("pgvector", "qdrant"):
                for got, want, rtol in zip(answers[name], answers["memory"], (1e-5, 1e-12), strict=True):
                    assert [h.id for h in got] == [h.id for h in want], (name, query)
                    np.testing.assert_allclose([h.score for h in got], [h.score for h in want], rtol=rtol)
    finally:
        for store in stores.values():
            store.close()
