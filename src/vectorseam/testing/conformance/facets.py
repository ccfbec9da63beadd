"""Facet counts: value counts of metadata fields among the records a filter admits, against the
reference counting of :func:`vectorseam.retrieval.facets.count_fields` over the very records written."""

from __future__ import annotations

from typing import Any

import pytest

from vectorseam.filters import matches, parse_filter
from vectorseam.retrieval.facets import count_fields, facet_counts
from vectorseam.store import NativeFacets, VectorStore
from vectorseam.testing.conformance.base import ConformanceBase
from vectorseam.testing.reference import catalog_records
from vectorseam.types import Record
from vectorseam.values import value_key

FIELDS = ("color", "size", "in_stock", "tags", "price", "nowhere")
SPECS: tuple[Any, ...] = (None, {"tags": "a"}, {"$or": [{"color": "red"}, {"price": {"$lt": 20}}]},
                          {"color": "nope"}, {"size": {"$gte": 3}})


def expected_counts(records: list[Record], spec: Any, limit: int) -> dict[str, list[tuple[Any, int]]]:
    tree = parse_filter(spec)
    return count_fields([r.metadata for r in records if matches(tree, r.metadata)], FIELDS, limit)


def comparable(counts: dict[str, list[tuple[Any, int]]]) -> dict[str, list[tuple[Any, int]]]:
    """Values as their identity (an int may come back as a float from a JSON-backed store)."""
    return {name: [(value_key(v), n) for v, n in pairs] for name, pairs in counts.items()}


class FacetTests(ConformanceBase):
    """``facets`` with ``facet_scope="filter"`` (every store: native where it counts itself, else a scan)."""

    @pytest.mark.parametrize("limit", [1, 3, 100])
    def test_counts_match_the_reference(self, store: VectorStore, collection_name: str, limit: int) -> None:
        records = self.filled(store, collection_name, catalog_records())
        for spec in SPECS:
            got = facet_counts(store, collection_name, FIELDS, parse_filter(spec), limit)
            raw = {name: [(fv.value, fv.count) for fv in values] for name, values in got.items()}
            assert comparable(raw) == comparable(expected_counts(records, spec, limit)), f"filter {spec!r}"

    def test_whole_numbers_come_back_as_ints(self, store: VectorStore, collection_name: str) -> None:
        self.filled(store, collection_name, catalog_records())
        sizes = facet_counts(store, collection_name, ["size"], None, 100)["size"]
        assert sizes and all(type(fv.value) is int for fv in sizes), sizes
        stock = facet_counts(store, collection_name, ["in_stock"], None, 100)["in_stock"]
        assert {type(fv.value) for fv in stock} == {bool}, stock

    def test_empty_collection_and_no_fields(self, store: VectorStore, collection_name: str) -> None:
        self.create(store, collection_name)
        assert facet_counts(store, collection_name, ["color"], None, 5) == {"color": []}
        assert facet_counts(store, collection_name, [], None, 5) == {}

    def test_native_facets_are_declared_by_the_protocol(self, store: VectorStore) -> None:
        if not isinstance(store, NativeFacets):
            pytest.skip(f"the {store.capabilities.name} store counts facets through a scan")
        assert callable(store.facet_counts)
