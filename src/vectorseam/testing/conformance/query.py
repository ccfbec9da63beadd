"""Query: rankings and scores against a float64 brute force, ties, shapes, and rejected queries."""

from __future__ import annotations

import numpy as np
import pytest

from vectorseam.errors import DimensionMismatchError, ValidationError
from vectorseam.store import VectorStore
from vectorseam.testing.conformance.base import ConformanceBase
from vectorseam.testing.reference import (
    SCORE_TOL,
    assert_ranking,
    assert_same_record,
    catalog_records,
    make_records,
    random_vectors,
    reference_candidates,
    vector_of,
)
from vectorseam.types import METRICS, Metric, Record


class QueryTests(ConformanceBase):
    """Top-k search under each metric (every store)."""

    @pytest.mark.parametrize("metric", METRICS)
    def test_query_matches_brute_force(
        self, store: VectorStore, collection_name: str, metric: Metric
    ) -> None:
        vectors = random_vectors(40, 32, seed=25, scale=3.0)
        records = self.filled(store, collection_name, make_records(vectors), metric)
        queries = random_vectors(4, 32, seed=26, scale=3.0)
        results = store.query(collection_name, queries, k=10)
        assert len(results) == len(queries)
        for q, hits in zip(queries, results, strict=True):
            assert_ranking(hits, reference_candidates(records, q, metric), 10)
            if metric == "cosine":
                assert all(-1.0 - 1e-5 <= h.score <= 1.0 + 1e-5 for h in hits)
            if metric == "euclidean":
                assert all(h.score <= 0.0 for h in hits)

    @pytest.mark.parametrize("metric", METRICS)
    def test_query_with_stored_vectors(
        self, store: VectorStore, collection_name: str, metric: Metric
    ) -> None:
        """Querying with a stored vector ("more like this", dedup) must score it exactly.

        Distance 0 and similarity 1 are where float32 shortcuts (``|q|^2 + |x|^2 - 2 q.x``) lose
        every significant digit, so every stored vector is tried, not a lucky few.
        """
        vectors = random_vectors(40, 64, seed=48, scale=3.0)
        records = self.filled(store, collection_name, make_records(vectors), metric)
        results = store.query(collection_name, vectors, k=3)
        for i, hits in enumerate(results):
            assert_ranking(hits, reference_candidates(records, vectors[i], metric), 3)
            if metric != "dot":  # under dot another, longer vector may outscore the query itself
                assert hits[0].id == records[i].id
                want = 1.0 if metric == "cosine" else 0.0
                assert abs(hits[0].score - want) <= SCORE_TOL, f"{records[i].id}: self score {hits[0].score}"

    @pytest.mark.parametrize("metric", METRICS)
    def test_query_with_filter_matches_brute_force(
        self, store: VectorStore, collection_name: str, metric: Metric
    ) -> None:
        records = self.filled(store, collection_name, catalog_records(), metric)
        query = random_vectors(1, self.dimension, seed=27)[0]
        for spec in ({"color": "red"}, {"size": {"$gte": 7}}, {"tags": {"$in": ["c"]}}, {"color": "nope"}):
            hits = store.query(collection_name, query, k=5, filter=spec)[0]
            assert_ranking(hits, reference_candidates(records, query, metric, spec), 5)

    def test_query_returns_text_metadata_and_vectors(self, store: VectorStore, collection_name: str) -> None:
        records = make_records(random_vectors(5, 8, seed=28, scale=2.0),
                               metadata=lambda i: {"i": i, "tags": [f"t{i}"]})
        self.filled(store, collection_name, records)
        by_id = {r.id: r for r in records}
        hits = store.query(collection_name, vector_of(records[2]), k=5, include_vectors=True)[0]
        assert hits[0].id == "r0002"
        for h in hits:
            assert_same_record(Record(h.id, h.vector, h.text, h.metadata), by_id[h.id])
        for h in store.query(collection_name, vector_of(records[2]), k=5)[0]:
            assert h.vector is None
            assert h.text == by_id[h.id].text

    def test_query_ties_ordered_by_id(self, store: VectorStore, collection_name: str) -> None:
        base = random_vectors(4, 8, seed=29)
        tie_ids = ["tie-c", "tie-a", "tie-d", "tie-b"]
        records = [Record(i, base[0].copy(), i) for i in tie_ids]
        records += [Record(f"other{n}", base[n] * 0.1, "") for n in (1, 2, 3)]
        for metric in METRICS:
            name = f"{collection_name[:36]}{metric[:3]}"
            self.filled(store, name, records, metric)
            hits = store.query(name, base[0], k=len(records))[0]
            assert [h.id for h in hits[:4]] == sorted(tie_ids), f"{metric}: {[h.id for h in hits]}"
            tied = [h.score for h in hits[:4]]
            assert max(tied) - min(tied) <= 1e-6, f"{metric}: equal vectors scored differently: {tied}"
            assert hits[4].score < hits[3].score

    def test_query_tie_at_cut_prefers_smaller_ids(self, store: VectorStore, collection_name: str) -> None:
        base = random_vectors(2, 8, seed=30)
        tie_ids = ["e3", "e0", "e4", "e2", "e1"]  # written out of order on purpose
        records = [Record("best", base[0], "")] + [Record(i, base[1].copy(), "") for i in tie_ids]
        self.filled(store, collection_name, records, "dot")
        got = [h.id for h in store.query(collection_name, base[1], k=2)[0]]
        if store.capabilities.approximate:
            # An ANN index does not promise which of several equal scores reaches the cut, only
            # that what it returns is tied-best and in id order.
            assert len(got) == 2 and set(got) <= set(tie_ids) and got == sorted(got), got
        else:
            assert got == ["e0", "e1"], f"of five equal scores the two smallest ids must win, got {got}"
        hits = store.query(collection_name, base[0] + 0.01 * base[1], k=3)[0]
        assert hits[0].id == "best"

    def test_query_k_larger_than_collection(self, store: VectorStore, collection_name: str) -> None:
        records = self.filled(store, collection_name, make_records(random_vectors(7, 8, seed=31)))
        query = random_vectors(1, 8, seed=32)[0]
        hits = store.query(collection_name, query, k=100)[0]
        assert sorted(h.id for h in hits) == sorted(r.id for r in records)
        hits = store.query(collection_name, query, k=100, filter={"i": {"$lt": 3}})[0]
        assert sorted(h.id for h in hits) == ["r0000", "r0001", "r0002"]

    def test_query_many_vectors_one_list_each(self, store: VectorStore, collection_name: str) -> None:
        records = self.filled(store, collection_name, make_records(random_vectors(30, 8, seed=33)), "dot")
        queries = random_vectors(6, 8, seed=34)
        batch = store.query(collection_name, queries, k=4)
        assert len(batch) == 6
        for q, hits in zip(queries, batch, strict=True):
            assert [h.id for h in hits] == [h.id for h in store.query(collection_name, q, k=4)[0]]
            assert_ranking(hits, reference_candidates(records, q, "dot"), 4)
        single = store.query(collection_name, queries[0], k=4)
        assert len(single) == 1
        as_lists = store.query(collection_name, queries[:2].tolist(), k=4)
        assert [[h.id for h in hs] for hs in as_lists] == [[h.id for h in hs] for hs in batch[:2]]

    def test_query_empty_collection(self, store: VectorStore, collection_name: str) -> None:
        self.create(store, collection_name)
        assert store.query(collection_name, np.ones(8, dtype=np.float32), k=5) == [[]]
        assert store.query(collection_name, np.ones((3, 8), dtype=np.float32), k=5) == [[], [], []]
        assert store.query(collection_name, np.ones(8, dtype=np.float32), filter={"a": 1}) == [[]]

    def test_query_filter_matching_nothing(self, store: VectorStore, collection_name: str) -> None:
        self.filled(store, collection_name, make_records(random_vectors(5, 8, seed=35)))
        assert store.query(collection_name, np.ones((2, 8), dtype=np.float32), filter={"i": 99}) == [[], []]

    def test_query_invalid_k(self, store: VectorStore, collection_name: str) -> None:
        self.filled(store, collection_name, make_records(random_vectors(3, 8, seed=36)))
        for k in (0, -1):
            with pytest.raises(ValidationError):
                store.query(collection_name, np.ones(8, dtype=np.float32), k=k)

    def test_dimension_mismatch_on_query(self, store: VectorStore, collection_name: str) -> None:
        self.filled(store, collection_name, make_records(random_vectors(2, 8, seed=40)))
        with pytest.raises(DimensionMismatchError):
            store.query(collection_name, np.ones(7, dtype=np.float32))
        with pytest.raises(DimensionMismatchError):
            store.query(collection_name, np.ones((2, 9), dtype=np.float32))

