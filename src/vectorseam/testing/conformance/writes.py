"""Writes: upsert and fetch round trips, ids, validation of whole batches, delete, count, large batches."""

from __future__ import annotations

import math

import numpy as np
import pytest

from vectorseam.errors import DimensionMismatchError, ValidationError
from vectorseam.filters import matches, parse_filter
from vectorseam.store import VectorStore
from vectorseam.testing.conformance.base import ConformanceBase
from vectorseam.testing.reference import (
    assert_ranking,
    assert_same_record,
    catalog_records,
    make_records,
    random_vectors,
    reference_candidates,
    reference_top_k,
    vector_of,
)
from vectorseam.types import METRICS, Metric, Record


class WriteTests(ConformanceBase):
    """Upsert, fetch, delete and count, and what a rejected batch must leave behind (every store)."""

    @pytest.mark.parametrize("metric", METRICS)
    def test_upsert_then_fetch_round_trip(
        self, store: VectorStore, collection_name: str, metric: Metric
    ) -> None:
        vectors = random_vectors(6, 8, seed=5, scale=3.0)
        records = make_records(vectors, metadata=lambda i: {
            "i": i, "half": i / 2, "even": i % 2 == 0, "name": f"nº{i} \"x\"", "tags": ["x", f"t{i}"],
        })
        records[0].text = ""
        records[1].text = "multi\nline ✓ ünïcode"
        self.filled(store, collection_name, records, metric)
        store = self._reopen(store)
        got = store.fetch(collection_name, [r.id for r in records])
        assert [g.id for g in got] == [r.id for r in records]
        for g, r in zip(got, records, strict=True):
            assert_same_record(g, r)

    def test_upsert_is_idempotent_latest_wins(self, store: VectorStore, collection_name: str) -> None:
        records = make_records(random_vectors(4, 8, seed=6))
        self.filled(store, collection_name, records)
        newer = Record("r0002", random_vectors(1, 8, seed=7)[0], "newer text", {"version": 2})
        assert store.upsert(collection_name, [newer]) == 1
        assert store.upsert(collection_name, [newer]) == 1
        assert store.count(collection_name) == 4
        store = self._reopen(store)
        assert store.count(collection_name) == 4
        (got,) = store.fetch(collection_name, ["r0002"])
        assert_same_record(got, newer)
        # The replaced version is gone from search as well.
        hits = store.query(collection_name, vector_of(records[2]), k=4)[0]
        assert next(h for h in hits if h.id == "r0002").text == "newer text"
        assert store.count(collection_name, filter={"i": 2}) == 0

    def test_duplicate_ids_in_one_batch_last_wins(self, store: VectorStore, collection_name: str) -> None:
        self.create(store, collection_name)
        v = random_vectors(2, 8, seed=8)
        first, last = Record("dup", v[0], "first", {"n": 1}), Record("dup", v[1], "last", {"n": 2})
        store.upsert(collection_name, [first, last])
        assert store.count(collection_name) == 1
        (got,) = store.fetch(collection_name, ["dup"])
        assert_same_record(got, last)

    def test_unusual_ids(self, store: VectorStore, collection_name: str) -> None:
        ids = [
            "ünïcödé-ид-标识-🙂",
            "with space",
            "quote'single",
            'quote"double',
            "slash/and\\back",
            "'; DROP TABLE x; --",
            "percent%20and?query=1&x#frag",
            "{\"json\": [1]}",
            "x" * 500,
            "é" * 500,
        ]
        vectors = random_vectors(len(ids), 8, seed=9)
        records = [Record(i, vectors[n], f"text {n}", {"n": n}) for n, i in enumerate(ids)]
        self.filled(store, collection_name, records)
        assert store.count(collection_name) == len(ids)
        got = store.fetch(collection_name, list(reversed(ids)))
        assert [g.id for g in got] == list(reversed(ids))
        for g, r in zip(got, reversed(records), strict=True):
            assert_same_record(g, r)
        hits = store.query(collection_name, vectors[4], k=len(ids))[0]
        assert sorted(h.id for h in hits) == sorted(ids)
        assert hits[0].id == ids[4]
        scanned = [r.id for page in store.scan(collection_name, batch_size=3) for r in page]
        assert sorted(scanned) == sorted(ids)
        assert store.delete(collection_name, ids=[ids[0], ids[8]]) == 2
        assert store.fetch(collection_name, [ids[0], ids[8], ids[9]], include_vectors=False)[0].id == ids[9]
        assert store.count(collection_name) == len(ids) - 2

    def test_invalid_records_rejected(self, store: VectorStore, collection_name: str) -> None:
        v = random_vectors(2, 8, seed=10)
        self.filled(store, collection_name, [Record("keep", v[0], "kept", {"a": 1})])
        bad_batches: list[list[Record]] = [
            [Record("", v[1])],
            [Record("x" * 513, v[1])],
            [Record("nul\x00", v[1])],
            [Record("novec", None)],
            [Record("nested", v[1], metadata={"a": {"b": 1}})],  # type: ignore[dict-item]
            [Record("nanmeta", v[1], metadata={"a": math.nan})],
            [Record("listofdicts", v[1], metadata={"a": [{"b": 1}]})],  # type: ignore[list-item]
        ]
        for batch in bad_batches:
            with pytest.raises(ValidationError):
                store.upsert(collection_name, [Record("new", v[1]), Record("keep", v[1], "changed"), *batch])
        assert store.count(collection_name) == 1
        (kept,) = store.fetch(collection_name, ["keep", "new"])
        assert_same_record(kept, Record("keep", v[0], "kept", {"a": 1}))

    def test_fetch_present_and_missing_keeps_request_order(
        self, store: VectorStore, collection_name: str
    ) -> None:
        records = make_records(random_vectors(5, 8, seed=12))
        self.filled(store, collection_name, records)
        got = store.fetch(collection_name, ["r0003", "nope", "r0000", "r0004", "also-missing", "r0001"])
        assert [g.id for g in got] == ["r0003", "r0000", "r0004", "r0001"]
        assert store.fetch(collection_name, ["nope"]) == []
        assert store.fetch(collection_name, []) == []

    def test_fetch_with_and_without_vectors(self, store: VectorStore, collection_name: str) -> None:
        records = make_records(random_vectors(3, 8, seed=13, scale=5.0))
        self.filled(store, collection_name, records)
        with_v = store.fetch(collection_name, [r.id for r in records], include_vectors=True)
        without = store.fetch(collection_name, [r.id for r in records], include_vectors=False)
        for w, wo, r in zip(with_v, without, records, strict=True):
            assert_same_record(w, r, with_vector=True)
            assert_same_record(wo, r, with_vector=False)

    def test_returned_records_are_copies(self, store: VectorStore, collection_name: str) -> None:
        """Editing what the store returned must not change the store without an upsert."""
        rec = Record("a", random_vectors(1, 8, seed=14)[0], "t", {"tags": ["x"], "n": 1})
        self.filled(store, collection_name, [rec])
        (got,) = store.fetch(collection_name, ["a"])
        assert isinstance(got.metadata["tags"], list)
        got.metadata["tags"].append("y")
        got.metadata["n"] = 2
        assert got.vector is not None
        got.vector[0] += 100.0
        (hit,) = store.query(collection_name, vector_of(rec), k=1, include_vectors=True)[0]
        assert isinstance(hit.metadata["tags"], list)
        hit.metadata["tags"].append("z")
        (again,) = store.fetch(collection_name, ["a"])
        assert_same_record(again, rec)

    # == delete and count =========================================================================
    def test_delete_by_ids(self, store: VectorStore, collection_name: str) -> None:
        records = make_records(random_vectors(6, 8, seed=15))
        self.filled(store, collection_name, records)
        assert store.delete(collection_name, ids=["r0001", "missing", "r0004"]) == 2
        assert store.delete(collection_name, ids=["r0001", "missing"]) == 0
        assert store.delete(collection_name, ids=[]) == 0
        store = self._reopen(store)
        assert store.count(collection_name) == 4
        fetched = store.fetch(collection_name, [r.id for r in records], include_vectors=False)
        remaining = [r.id for r in fetched]
        assert remaining == ["r0000", "r0002", "r0003", "r0005"]
        hits = store.query(collection_name, vector_of(records[1]), k=10)[0]
        assert {h.id for h in hits} == set(remaining)

    def test_delete_by_filter(self, store: VectorStore, collection_name: str) -> None:
        records = catalog_records()
        self.filled(store, collection_name, records)
        spec = {"$or": [{"color": "red"}, {"size": {"$gte": 8}}]}
        doomed = {r.id for r in records if matches(parse_filter(spec), r.metadata)}
        assert 0 < len(doomed) < len(records)
        assert store.delete(collection_name, filter=spec) == len(doomed)
        assert store.delete(collection_name, filter=spec) == 0
        store = self._reopen(store)
        survivors = [r for r in records if r.id not in doomed]
        assert store.count(collection_name) == len(survivors)
        scanned = sorted(r.id for page in store.scan(collection_name, include_vectors=False) for r in page)
        assert scanned == sorted(r.id for r in survivors)
        self.check_filter(store, collection_name, survivors, {"tags": "a"})

    def test_delete_requires_ids_or_filter(self, store: VectorStore, collection_name: str) -> None:
        self.filled(store, collection_name, make_records(random_vectors(2, 8, seed=16)))
        with pytest.raises(ValidationError):
            store.delete(collection_name)
        with pytest.raises(ValidationError):
            store.delete(collection_name, ids=["r0000"], filter={"i": 0})
        assert store.count(collection_name) == 2

    def test_count_with_and_without_filter(self, store: VectorStore, collection_name: str) -> None:
        records = make_records(random_vectors(20, 8, seed=17), metadata=lambda i: {"parity": i % 2, "i": i})
        self.filled(store, collection_name, records)
        assert store.count(collection_name) == 20
        assert store.count(collection_name, filter=None) == 20
        assert store.count(collection_name, filter={}) == 20
        assert store.count(collection_name, filter={"parity": 1}) == 10
        assert store.count(collection_name, filter={"i": {"$lt": 5}}) == 5
        assert store.count(collection_name, filter={"i": {"$gt": 100}}) == 0

    def test_dimension_mismatch_on_upsert_writes_nothing(
        self, store: VectorStore, collection_name: str
    ) -> None:
        self.filled(store, collection_name, make_records(random_vectors(2, 8, seed=37)))
        good = make_records(random_vectors(3, 8, seed=38), prefix="g")
        bad = Record("bad", random_vectors(1, 9, seed=39)[0])
        with pytest.raises(DimensionMismatchError):
            store.upsert(collection_name, [*good[:2], bad, good[2]])
        assert store.count(collection_name) == 2
        assert store.fetch(collection_name, [r.id for r in good]) == []

    @pytest.mark.parametrize("bad_value", [math.nan, math.inf, -math.inf])
    def test_non_finite_vectors_rejected_and_nothing_written(
        self, store: VectorStore, collection_name: str, bad_value: float
    ) -> None:
        originals = make_records(random_vectors(3, 8, seed=41))
        self.filled(store, collection_name, originals)
        replacement = make_records(random_vectors(3, 8, seed=42))  # same ids: would overwrite
        poisoned = random_vectors(1, 8, seed=43)[0]
        poisoned[5] = bad_value
        batch = [replacement[0], Record("fresh", random_vectors(1, 8, seed=44)[0]),
                 Record("poison", poisoned), replacement[1]]
        with pytest.raises(ValidationError):
            store.upsert(collection_name, batch)
        store = self._reopen(store)
        assert store.count(collection_name) == 3
        assert store.fetch(collection_name, ["fresh", "poison"]) == []
        for got, want in zip(store.fetch(collection_name, [r.id for r in originals]), originals, strict=True):
            assert_same_record(got, want)
        query = np.ones(8, dtype=np.float32)
        query[0] = bad_value
        with pytest.raises(ValidationError):
            store.query(collection_name, query)

    def test_large_batch_upsert_count_query(self, store: VectorStore, collection_name: str) -> None:
        n, dim = self.large_batch_size, 16
        vectors = random_vectors(n, dim, seed=46)
        records = make_records(vectors, metadata=lambda i: {"bucket": i % 10})
        self.create(store, collection_name, dim, "cosine")
        assert store.upsert(collection_name, records) == n
        store = self._reopen(store)
        assert store.count(collection_name) == n
        assert store.count(collection_name, filter={"bucket": 3}) == n // 10
        queries = random_vectors(3, dim, seed=47)
        results = store.query(collection_name, queries, k=10)
        assert len(results) == 3
        bucket3 = [r for r in records if r.metadata["bucket"] == 3]
        for q, hits in zip(queries, results, strict=True):
            cands = reference_candidates(records, q, "cosine")
            if store.capabilities.approximate:
                want = {i for i, _ in reference_top_k(cands, 10)}
                recall = len(want & {h.id for h in hits}) / 10
                assert recall >= 0.9, f"recall@10 {recall:.2f} on {n} records is too low for an ANN index"
            else:
                assert_ranking(hits, cands, 10)
        filtered = store.query(collection_name, queries[0], k=5, filter={"bucket": 3})[0]
        if not store.capabilities.approximate:
            assert_ranking(filtered, reference_candidates(bucket3, queries[0], "cosine"), 5)
        assert len(filtered) == 5 and all(h.metadata["bucket"] == 3 for h in filtered)
