"""The memory store's optional HNSW index: close to exact, filters still exact in what they admit."""

from __future__ import annotations

import numpy as np
import pytest

from vectorseam.errors import ConfigError
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
