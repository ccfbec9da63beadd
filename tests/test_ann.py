"""The memory store's optional HNSW index: close to exact, filters still exact in what they admit."""

from __future__ import annotations

import threading
import time
from typing import Any

import numpy as np
import pytest

from vectorseam.errors import ConfigError
from vectorseam.stores import ann
from vectorseam.stores.memory import MemoryStore, create_store
from vectorseam.types import CollectionSpec, Record

faiss = pytest.importorskip("faiss", reason="the approximate index needs faiss-cpu (the 'ann' extra)")

N, D = 3000, 32


def clustered(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((30, D)).astype(np.float32)
    return (centres[rng.integers(0, 30, n)] + 0.4 * rng.standard_normal((n, D))).astype(np.float32)


def fill(store: MemoryStore) -> np.ndarray:
    vectors = clustered(N, 0)
    store.ensure_collection(CollectionSpec("c", D, "cosine"))
    store.upsert("c", [Record(f"r{i}", vectors[i], f"t{i}", {"bucket": i % 10}) for i in range(N)])
    return vectors


@pytest.fixture(scope="module")
def stores() -> tuple[MemoryStore, MemoryStore, np.ndarray]:
    exact, approx = MemoryStore(), MemoryStore(ann={"min_rows": 0, "ef_search": 64})
    fill(exact)
    fill(approx)
    return exact, approx, clustered(50, 1)


def test_recall_at_10_against_exact(stores: tuple[MemoryStore, MemoryStore, np.ndarray]) -> None:
    exact, approx, queries = stores
    truth = exact.query("c", queries, k=10)
    got = approx.query("c", queries, k=10)
    recall = np.mean([len({h.id for h in g} & {h.id for h in t}) / 10 for g, t in zip(got, truth, strict=True)])
    assert recall >= 0.95
    assert approx.capabilities.approximate and not exact.capabilities.approximate
    # scores follow the store's convention: the cosine similarity, best first
    for hits in got:
        assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
        assert len(hits) == 10


def test_filtered_hits_all_match_and_are_near_exact(stores: tuple[MemoryStore, MemoryStore, np.ndarray]) -> None:
    exact, approx, queries = stores
    flt = {"bucket": 3}
    got = approx.query("c", queries, k=10, filter=flt)
    truth = exact.query("c", queries, k=10, filter=flt)
    assert all(h.metadata["bucket"] == 3 for hits in got for h in hits)
    assert all(len(hits) == 10 for hits in got)
    recall = np.mean([len({h.id for h in g} & {h.id for h in t}) / 10 for g, t in zip(got, truth, strict=True)])
    assert recall >= 0.9


def test_a_selective_filter_still_returns_every_match() -> None:
    """Two matching records among thousands: the graph walk may miss them; the exact fallback cannot."""
    store = MemoryStore(ann={"min_rows": 0, "ef_search": 16})
    fill(store)
    store.upsert("c", [Record("rare-1", clustered(1, 5)[0], "", {"rare": True}),
                       Record("rare-2", clustered(1, 6)[0], "", {"rare": True})])
    hits = store.query("c", clustered(3, 7), k=5, filter={"rare": True})
    assert [sorted(h.id for h in hs) for hs in hits] == [["rare-1", "rare-2"]] * 3


def test_writes_are_visible_to_the_next_query() -> None:
    store = MemoryStore(ann={"min_rows": 0})
    vectors = fill(store)
    probe = -vectors[0]
    store.upsert("c", [Record("new", probe, "", {})])
    assert store.query("c", probe, k=1)[0][0].id == "new"
    store.delete("c", ["new"])
    assert store.query("c", probe, k=1)[0][0].id != "new"


def test_small_collections_stay_exact() -> None:
    store = MemoryStore(ann={"min_rows": 10_000})
    vectors = fill(store)
    exact = MemoryStore()
    fill(exact)
    assert [h.id for h in store.query("c", vectors[:3], k=5)[0]] == [h.id for h in exact.query("c", vectors[:3], k=5)[0]]


@pytest.mark.parametrize("bad", [{"ef": 3}, {"ef_search": 0}, {"m": "32"}, "yes"])
def test_bad_options_are_refused_by_name(bad: object) -> None:
    with pytest.raises(ConfigError, match="ann"):
        create_store(ann=bad)


# --- the graph under writes: maintained, never rebuilt by a query -----------------------------------


def _recall(got: list[Any], truth: list[Any]) -> float:
    return float(np.mean([len({h.id for h in g} & {h.id for h in t}) / 10 for g, t in zip(got, truth, strict=True)]))


def test_recall_holds_through_updates_and_deletes_without_rebuilds(monkeypatch: pytest.MonkeyPatch) -> None:
    """10% of the records updated and 5% deleted, queries in between: every write goes into the graph
    (adds and tombstones), no query builds a graph, and recall@10 against exact stays >= 0.95 all along
    (efSearch 96: about 0.98 on this data before the stream)."""
    exact, approx = MemoryStore(), MemoryStore(ann={"min_rows": 0, "ef_search": 96})
    vectors = fill(exact)
    fill(approx)
    queries = clustered(60, 1)
    assert _recall(approx.query("c", queries, k=10), exact.query("c", queries, k=10)) >= 0.95  # the one build
    builds: list[str] = []
    real_new_index = ann.HnswIndex._new_index

    def counting(self: ann.HnswIndex, rows: np.ndarray) -> Any:
        builds.append(threading.current_thread().name)
        return real_new_index(self, rows)

    monkeypatch.setattr(ann.HnswIndex, "_new_index", counting)
    rng = np.random.default_rng(3)
    moved = clustered(N // 10, 9)  # updated records move to other clusters
    updates = rng.choice(N, N // 10, replace=False)
    deletes = rng.choice(np.setdiff1d(np.arange(N), updates), N // 20, replace=False)
    stream = [("u", int(i), j) for j, i in enumerate(updates)] + [("d", int(i), 0) for i in deletes]
    recalls = []
    for step, at in enumerate(rng.permutation(len(stream))):
        kind, i, j = stream[at]
        for store in (exact, approx):
            if kind == "u":
                store.upsert("c", [Record(f"r{i}", moved[j], f"t{i}", {"bucket": i % 10})])
            else:
                store.delete("c", ids=[f"r{i}"])
        if step % 15 == 0:  # a query right after a write: answered by the graph as it stands
            approx.query("c", queries[step % len(queries)], k=10)
        if step % (len(stream) // 4) == 0 or step == len(stream) - 1:
            recalls.append(_recall(approx.query("c", queries, k=10), exact.query("c", queries, k=10)))
    assert builds == [], "a write or query rebuilt the graph"
    assert approx.count("c") == exact.count("c") == N - N // 20
    assert min(recalls) >= 0.95, recalls
    got = approx.query("c", queries, k=10, filter={"bucket": 3})
    assert all(h.metadata["bucket"] == 3 for hs in got for h in hs)
    assert _recall(got, exact.query("c", queries, k=10, filter={"bucket": 3})) >= 0.9
    deleted = {f"r{i}" for i in deletes}
    assert not deleted & {h.id for hs in approx.query("c", vectors[deletes[:50]], k=10) for h in hs}


def test_many_tombstones_rebuild_in_the_background(monkeypatch: pytest.MonkeyPatch) -> None:
    """Past the dead-node threshold the graph is rebuilt in a thread from a snapshot; queries keep
    using the old graph meanwhile, and writes made during the build are replayed on the new one."""
    monkeypatch.setattr(ann, "REBUILD_DEAD_FRACTION", 0.05)
    monkeypatch.setattr(ann, "REBUILD_MIN_DEAD", 50)
    exact, approx = MemoryStore(), MemoryStore(ann={"min_rows": 0})
    fill(exact)
    fill(approx)
    queries = clustered(40, 4)
    approx.query("c", queries[0], k=10)
    builders: list[str] = []
    real_new_index = ann.HnswIndex._new_index

    def slow(self: ann.HnswIndex, rows: np.ndarray) -> Any:
        builders.append(threading.current_thread().name)
        time.sleep(0.3)  # long enough for writes and queries to happen during the build
        return real_new_index(self, rows)

    monkeypatch.setattr(ann.HnswIndex, "_new_index", slow)
    replacement = clustered(400, 12)
    for i in range(400):
        for store in (exact, approx):
            if i % 3 == 0:
                store.delete("c", ids=[f"r{i}"])
            else:
                store.upsert("c", [Record(f"r{i}", replacement[i], "", {"bucket": i % 10})])
        if i % 40 == 0:
            approx.query("c", queries[i % 40], k=10)
    coll = approx._entries["c"].coll
    assert coll is not None
    graph = coll.ann
    assert graph is not None
    graph._swap_if_built(wait=True)
    assert builders and all(name == "vectorseam-hnsw-rebuild" for name in builders), builders
    assert graph.rebuilds >= 1
    assert _recall(approx.query("c", queries, k=10), exact.query("c", queries, k=10)) >= 0.95
    gone = {f"r{i}" for i in range(0, 400, 3)}
    assert not gone & {h.id for hs in approx.query("c", replacement[:60], k=10) for h in hs}
