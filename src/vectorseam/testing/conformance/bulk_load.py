"""Bulk loading: a store's faster fill mode must end in the same collection an ordinary fill gives.

:class:`~vectorseam.store.BulkLoading` stores may defer work while ``with store.bulk_load(name):`` is
open (pgvector drops and rebuilds its HNSW index), so these tests check the three ways a load job
ends: filling an empty collection, adding to a collection that readers are using, and failing half
way. After each, queries must score exactly as the brute force says and the collection must take
further writes.
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from vectorseam.store import BulkLoading, VectorStore
from vectorseam.testing.conformance.base import ConformanceBase
from vectorseam.testing.reference import (
    assert_ranking,
    assert_same_record,
    make_records,
    random_vectors,
    reference_candidates,
    vector_of,
)
from vectorseam.types import METRICS, Metric, Record

_DIM = 16


class _LoadFailed(Exception):
    """Raised inside a bulk load on purpose: it must come out of the block unchanged."""


class BulkLoadTests(ConformanceBase):
    """``bulk_load`` fills, adds and fails cleanly (stores that are BulkLoading)."""

    def bulk_loading(self, store: VectorStore) -> BulkLoading:
        return self.require(
            store,
            BulkLoading,  # type: ignore[type-abstract]
            "it has no separate fill mode; callers use plain upsert, which the write tests check",
        )

    def assert_loaded(self, store: VectorStore, name: str, records: Sequence[Record], metric: Metric) -> None:
        """Count, a batch of queries, a filtered query and a few fetches agree with ``records``."""
        assert store.count(name) == len(records)
        queries = random_vectors(3, _DIM, seed=63, scale=2.0)
        for q, hits in zip(queries, store.query(name, queries, k=10), strict=True):
            assert_ranking(hits, reference_candidates(records, q, metric), 10)
        spec = {"bucket": 2}
        hits = store.query(name, queries[0], k=5, filter=spec)[0]
        assert_ranking(hits, reference_candidates(records, queries[0], metric, spec), 5)
        sample = list(records[:: max(1, len(records) // 5)])
        for got, want in zip(store.fetch(name, [r.id for r in sample]), sample, strict=True):
            assert_same_record(got, want)

    @pytest.mark.parametrize("metric", METRICS)
    def test_bulk_load_fills_an_empty_collection(
        self, store: VectorStore, collection_name: str, metric: Metric
    ) -> None:
        bulk = self.bulk_loading(store)
        records = make_records(random_vectors(300, _DIM, seed=60, scale=2.0), metadata=lambda i: {"bucket": i % 4})
        self.create(store, collection_name, _DIM, metric)
        with bulk.bulk_load(collection_name):
            for start in range(0, len(records), 64):
                chunk = records[start : start + 64]
                assert store.upsert(collection_name, chunk) == len(chunk)
        self.assert_loaded(store, collection_name, records, metric)

    def test_bulk_load_into_a_filled_collection_keeps_queries_working(
        self, store: VectorStore, collection_name: str
    ) -> None:
        """Readers of a collection that already holds rows must be answered right during the load too."""
        bulk = self.bulk_loading(store)
        first = make_records(random_vectors(150, _DIM, seed=61, scale=2.0), metadata=lambda i: {"bucket": i % 4})
        self.filled(store, collection_name, first)
        more = make_records(random_vectors(150, _DIM, seed=62, scale=2.0), prefix="m",
                            metadata=lambda i: {"bucket": i % 3})
        # overwrite ten existing records as well: a load job re-running over part of its source
        redone = [Record(r.id, -vector_of(r), "redone", {"bucket": 2}) for r in first[:10]]
        state = {r.id: r for r in first}
        with bulk.bulk_load(collection_name):
            self.assert_loaded(store, collection_name, list(state.values()), "cosine")
            store.upsert(collection_name, more[:75])
            state.update((r.id, r) for r in more[:75])
            self.assert_loaded(store, collection_name, list(state.values()), "cosine")
            store.upsert(collection_name, [*more[75:], *redone])
            state.update((r.id, r) for r in [*more[75:], *redone])
        self.assert_loaded(store, collection_name, list(state.values()), "cosine")

    def test_failure_inside_bulk_load_leaves_the_collection_usable(
        self, store: VectorStore, collection_name: str
    ) -> None:
        bulk = self.bulk_loading(store)
        records = make_records(random_vectors(120, _DIM, seed=64, scale=2.0), metadata=lambda i: {"bucket": i % 4})
        self.create(store, collection_name, _DIM, "euclidean")
        boom = _LoadFailed("the source broke half way")
        with pytest.raises(_LoadFailed) as raised, bulk.bulk_load(collection_name):
            store.upsert(collection_name, records[:80])
            raise boom
        assert raised.value is boom, "the job's own error must come out of bulk_load"
        # What was written before the failure is either all kept or all rolled back, never a part.
        kept = sorted(r.id for page in store.scan(collection_name, include_vectors=False) for r in page)
        assert kept in ([], [r.id for r in records[:80]]), f"{len(kept)} of 80 records kept"
        state = {r.id: r for r in records if r.id in set(kept)}
        self.assert_loaded(store, collection_name, list(state.values()), "euclidean")
        # Ordinary writes work, and so does the next load job.
        store.upsert(collection_name, records[80:100])
        state.update((r.id, r) for r in records[80:100])
        with bulk.bulk_load(collection_name):
            store.upsert(collection_name, records[100:])
        state.update((r.id, r) for r in records[100:])
        self.assert_loaded(store, collection_name, list(state.values()), "euclidean")
