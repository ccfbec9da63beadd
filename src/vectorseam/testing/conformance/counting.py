"""Counting records, with and without a filter, as writes come and go."""

from __future__ import annotations

from vectorseam.filters import matches, parse_filter
from vectorseam.store import VectorStore
from vectorseam.testing.conformance.base import ConformanceBase
from vectorseam.testing.reference import catalog_records


class CountTests(ConformanceBase):
    """``count`` (every store)."""

    def test_count_follows_writes_and_filters(self, store: VectorStore, collection_name: str) -> None:
        self.create(store, collection_name)
        assert store.count(collection_name) == 0
        records = catalog_records()
        store.upsert(collection_name, records)
        assert store.count(collection_name) == len(records)
        for spec in ({"color": "red"}, {"tags": {"$in": ["a", "c"]}}, {"price": {"$exists": True}}, {"size": 99}):
            tree = parse_filter(spec)
            assert store.count(collection_name, tree) == sum(matches(tree, r.metadata) for r in records), spec
        store.delete(collection_name, ids=[r.id for r in records[:10]])
        assert store.count(collection_name) == len(records) - 10
        tree = parse_filter({"color": "red"})
        assert store.count(collection_name, tree) == sum(matches(tree, r.metadata) for r in records[10:])
        store.upsert(collection_name, records[:3])
        assert store.count(collection_name) == len(records) - 7
