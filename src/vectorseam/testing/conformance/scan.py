"""Scan: paging through every record once, in a stable order, with and without a filter."""

from __future__ import annotations

from vectorseam.filters import Filter, matches, parse_filter
from vectorseam.store import VectorStore
from vectorseam.testing.conformance.base import ConformanceBase
from vectorseam.testing.reference import assert_same_record, catalog_records, make_records, random_vectors


class ScanTests(ConformanceBase):
    """Paging (every store)."""

    def test_scan_pages_every_record_once(self, store: VectorStore, collection_name: str) -> None:
        records = self.filled(store, collection_name, make_records(random_vectors(53, 8, seed=45)))
        pages = list(store.scan(collection_name, batch_size=7))
        assert all(1 <= len(p) <= 7 for p in pages), [len(p) for p in pages]
        seen = [r.id for p in pages for r in p]
        assert len(seen) == len(set(seen)) == 53
        by_id = {r.id: r for r in records}
        for page in pages:
            for r in page:
                assert_same_record(r, by_id[r.id])
        again = [r.id for p in store.scan(collection_name, batch_size=7) for r in p]
        assert again == seen, "scan order must be stable"

    def test_scan_with_filter(self, store: VectorStore, collection_name: str) -> None:
        records = self.filled(store, collection_name, catalog_records())
        for spec in ({"tags": "a"}, {"$or": [{"color": "red"}, {"price": {"$lt": 3}}]}, {"color": "nope"}):
            pages = list(store.scan(collection_name, batch_size=4, filter=spec, include_vectors=False))
            assert all(1 <= len(p) <= 4 for p in pages)
            seen = [r.id for p in pages for r in p]
            tree: Filter | None = parse_filter(spec)
            assert sorted(seen) == sorted(r.id for r in records if matches(tree, r.metadata))
            assert len(seen) == len(set(seen))
            assert all(r.vector is None for p in pages for r in p)

    def test_scan_empty_collection(self, store: VectorStore, collection_name: str) -> None:
        self.create(store, collection_name)
        assert [r for p in store.scan(collection_name, batch_size=3) for r in p] == []

