"""Snapshots: one file with a collection's spec, records, vectors and tuned profile, restored into the
same store under another name with identical records and identical search results."""

from __future__ import annotations

import io

import numpy as np
import pytest

from vectorseam.errors import ValidationError
from vectorseam.ingest.portable import export_collection, restore_collection, snapshot_collection
from vectorseam.store import VectorStore
from vectorseam.testing.conformance.base import ConformanceBase
from vectorseam.testing.reference import (
    assert_same_record,
    catalog_records,
    random_vectors,
    unique_collection_name,
)


class SnapshotTests(ConformanceBase):
    """``snapshot`` and ``restore`` (every store)."""

    def test_restore_under_another_name(self, store: VectorStore, collection_name: str) -> None:
        records = self.filled(store, collection_name, catalog_records(), metric="euclidean")
        data = b"".join(snapshot_collection(store, collection_name, profile=b"tuned \x00 bytes"))
        target = unique_collection_name("restored")
        self._created.append(target)
        info, profile = restore_collection(store, io.BytesIO(data), target)
        assert profile == b"tuned \x00 bytes"
        assert (info.name, info.dimension, info.metric, info.count) == (target, self.dimension, "euclidean",
                                                                        len(records))
        got = {r.id: r for r in store.fetch(target, [r.id for r in records])}
        for want in records:
            assert_same_record(got[want.id], want)
            assert np.array_equal(np.asarray(got[want.id].vector), np.asarray(want.vector))
        for seed in range(3):
            q = random_vectors(1, self.dimension, seed=seed)[0]
            a = store.query(collection_name, q, k=10)[0]
            b = store.query(target, q, k=10)[0]
            assert [(h.id, h.score) for h in a] == [(h.id, h.score) for h in b]

    def test_restore_keeps_its_name_refuses_a_full_target_and_replaces(self, store: VectorStore,
                                                                        collection_name: str) -> None:
        records = self.filled(store, collection_name, catalog_records())
        data = b"".join(snapshot_collection(store, collection_name))
        with pytest.raises(ValidationError, match="already holds records"):
            restore_collection(store, io.BytesIO(data))
        store.delete(collection_name, ids=[r.id for r in records[:5]])
        store.upsert(collection_name, [records[5].__class__("extra", records[5].vector, "x", {})])
        info, profile = restore_collection(store, io.BytesIO(data), replace=True)
        assert profile is None and info.name == collection_name and info.count == len(records)
        assert store.fetch(collection_name, ["extra"]) == []

    def test_an_export_is_not_a_snapshot(self, store: VectorStore, collection_name: str) -> None:
        self.filled(store, collection_name, catalog_records()[:3])
        data = b"".join(export_collection(store, collection_name, "parquet"))
        with pytest.raises(ValidationError, match="not a vectorseam snapshot"):
            restore_collection(store, io.BytesIO(data), unique_collection_name("x"))
        with pytest.raises(ValidationError, match="Parquet"):
            restore_collection(store, io.BytesIO(b"not parquet at all"), unique_collection_name("x"))
