"""Collections: create, re-ensure, describe, list, drop, and the error for an unknown one."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from vectorseam.errors import CollectionNotFoundError, DimensionMismatchError, ValidationError
from vectorseam.store import VectorStore
from vectorseam.testing.conformance.base import ConformanceBase
from vectorseam.testing.reference import make_records, random_vectors
from vectorseam.types import CollectionInfo, CollectionSpec


class CollectionTests(ConformanceBase):
    """Collection lifecycle and metadata (every store)."""

    def test_ensure_collection_creates_and_describes(self, store: VectorStore, collection_name: str) -> None:
        info = self.create(store, collection_name, 8, "dot")
        assert (info.name, info.dimension, info.metric, info.count) == (collection_name, 8, "dot", 0)
        assert store.count(collection_name) == 0

    def test_ensure_collection_is_idempotent_and_keeps_records(
        self, store: VectorStore, collection_name: str
    ) -> None:
        records = make_records(random_vectors(5, 8, seed=1))
        self.filled(store, collection_name, records)
        again = store.ensure_collection(CollectionSpec(collection_name, 8, "cosine"))
        assert (again.dimension, again.metric, again.count) == (8, "cosine", 5)
        store = self._reopen(store)
        again = store.ensure_collection(CollectionSpec(collection_name, 8, "cosine"))
        assert again.count == 5
        ids = [r.id for r in records]
        assert [r.id for r in store.fetch(collection_name, ids)] == ids

    def test_ensure_collection_dimension_mismatch(self, store: VectorStore, collection_name: str) -> None:
        self.filled(store, collection_name, make_records(random_vectors(3, 8, seed=2)))
        with pytest.raises(DimensionMismatchError):
            store.ensure_collection(CollectionSpec(collection_name, 9, "cosine"))
        assert store.count(collection_name) == 3

    def test_ensure_collection_metric_mismatch(self, store: VectorStore, collection_name: str) -> None:
        self.create(store, collection_name, 8, "cosine")
        with pytest.raises(ValidationError):
            store.ensure_collection(CollectionSpec(collection_name, 8, "euclidean"))
        assert next(c for c in store.collections() if c.name == collection_name).metric == "cosine"

    def test_collection_metadata_round_trip(self, store: VectorStore, collection_name: str) -> None:
        meta = {"embedder": "sentence-transformers/all-MiniLM-L6-v2@384", "note": "ünïcode ✓ \"q\""}
        info = self.create(store, collection_name, 8, "cosine", meta)
        assert dict(info.metadata) == meta
        store = self._reopen(store)
        listed = {c.name: c for c in store.collections()}[collection_name]
        assert dict(listed.metadata) == meta
        # Re-ensuring with other metadata keeps what is stored: callers compare fingerprints.
        again = store.ensure_collection(CollectionSpec(collection_name, 8, "cosine", {"embedder": "other"}))
        assert dict(again.metadata) == meta

    def test_collections_lists_name_dimension_metric_count(
        self, store: VectorStore, collection_name: str
    ) -> None:
        specs = [(collection_name + "a", 4, "cosine", 3), (collection_name + "b", 6, "dot", 0),
                 (collection_name + "c", 5, "euclidean", 7)]
        for seed, (name, dim, metric, n) in enumerate(specs):
            self.create(store, name, dim, metric)  # type: ignore[arg-type]
            if n:
                store.upsert(name, make_records(random_vectors(n, dim, seed=seed)))
        store = self._reopen(store)
        listed = {c.name: (c.dimension, c.metric, c.count) for c in store.collections()}
        for name, dim, metric, n in specs:
            assert listed.get(name) == (dim, metric, n), f"collections() shows {name!r} as {listed.get(name)}"

    def test_collection_info_agrees_with_collections(self, store: VectorStore, collection_name: str) -> None:
        """The per-collection lookup query paths use must describe a collection as the listing does."""
        meta = {"embedder": "sentence-transformers/all-MiniLM-L6-v2@384"}
        self.create(store, collection_name, 6, "dot", meta)
        store.upsert(collection_name, make_records(random_vectors(4, 6, seed=49)))
        self.create(store, collection_name + "e", 3, "euclidean")
        store = self._reopen(store)

        def described(info: CollectionInfo) -> tuple[object, ...]:
            return info.name, info.dimension, info.metric, dict(info.metadata), info.count

        listed = {c.name: described(c) for c in store.collections()}
        for name in (collection_name, collection_name + "e"):
            assert described(store.collection_info(name)) == listed[name]
        assert described(store.collection_info(collection_name)) == (collection_name, 6, "dot", meta, 4)
        # The count is current, not remembered from creation.
        store.upsert(collection_name, make_records(random_vectors(2, 6, seed=50), prefix="n"))
        store.delete(collection_name, ids=["r0000"])
        assert store.collection_info(collection_name).count == 5
        with pytest.raises(CollectionNotFoundError):
            store.collection_info(collection_name + "missing")
        store.drop_collection(collection_name + "e")
        with pytest.raises(CollectionNotFoundError):
            store.collection_info(collection_name + "e")

    def test_drop_collection(self, store: VectorStore, collection_name: str) -> None:
        self.filled(store, collection_name, make_records(random_vectors(4, 8, seed=3)))
        assert store.drop_collection(collection_name) is True
        assert collection_name not in {c.name for c in store.collections()}
        assert store.drop_collection(collection_name) is False
        store = self._reopen(store)
        assert collection_name not in {c.name for c in store.collections()}
        with pytest.raises(CollectionNotFoundError):
            store.count(collection_name)
        # The name is free again, and the new collection starts empty.
        info = self.create(store, collection_name, 3, "dot")
        assert (info.dimension, info.count) == (3, 0)

    def test_unknown_collection_raises(self, store: VectorStore, collection_name: str) -> None:
        missing = collection_name + "missing"
        rec = make_records(random_vectors(1, 8, seed=4))
        calls: list[Callable[[], object]] = [
            lambda: store.upsert(missing, rec),
            lambda: store.query(missing, np.ones(8, dtype=np.float32)),
            lambda: store.fetch(missing, ["r0000"]),
            lambda: store.delete(missing, ids=["r0000"]),
            lambda: store.count(missing),
            lambda: list(store.scan(missing)),
        ]
        for call in calls:
            with pytest.raises(CollectionNotFoundError):
                call()
        assert store.drop_collection(missing) is False

