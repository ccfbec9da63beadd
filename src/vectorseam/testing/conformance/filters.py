"""Filters: count, query and scan under every portable operator must select what ``filters.matches`` selects."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from vectorseam.errors import FilterError
from vectorseam.store import VectorStore
from vectorseam.testing.conformance.base import ConformanceBase
from vectorseam.testing.reference import catalog_records, random_vectors
from vectorseam.types import Metadata, MetadataValue, Record


class FilterTests(ConformanceBase):
    """Every filter result compared with the reference semantics (every store)."""

    def test_filter_equality(self, store: VectorStore, collection_name: str) -> None:
        records = self.filled(store, collection_name, catalog_records())
        self.check_filters(store, collection_name, records, [
            {"color": "red"}, {"color": {"$eq": "red"}}, {"color": "Grün ü"}, {"color": 'say "hi"'},
            {"color": "RED"}, {"color": "nope"}, {"size": 3}, {"size": 3.0}, {"size": 3.5},
            {"price": 5}, {"price": 6.25}, {"in_stock": True}, {"in_stock": False}, {"tags": "a"},
            {"color": "red", "in_stock": True},
        ])

    def test_filter_not_equal(self, store: VectorStore, collection_name: str) -> None:
        records = self.filled(store, collection_name, catalog_records())
        self.check_filters(store, collection_name, records, [
            {"color": {"$ne": "red"}}, {"size": {"$ne": 3}}, {"price": {"$ne": 5.0}},
            {"in_stock": {"$ne": True}}, {"tags": {"$ne": "a"}}, {"color": {"$ne": "nope"}},
        ])

    def test_filter_ranges(self, store: VectorStore, collection_name: str) -> None:
        records = self.filled(store, collection_name, catalog_records())
        self.check_filters(store, collection_name, records, [
            {"size": {"$gt": 4}}, {"size": {"$gte": 4}}, {"size": {"$lt": 4}}, {"size": {"$lte": 4}},
            {"size": {"$gt": 4.5}}, {"size": {"$lt": -1}}, {"size": {"$gte": 2, "$lt": 6}},
            {"price": {"$gte": 5}}, {"price": {"$lt": 12.5}}, {"price": {"$lte": 12.5}},
            {"price": {"$gt": -1}}, {"price": {"$gt": 1000}}, {"price": {"$gt": 10, "$lte": 30.5}},
        ])

    def test_filter_in_nin(self, store: VectorStore, collection_name: str) -> None:
        records = self.filled(store, collection_name, catalog_records())
        self.check_filters(store, collection_name, records, [
            {"color": {"$in": ["red", "blue"]}}, {"color": {"$in": ["nope"]}}, {"size": {"$in": [1, 2, 3.0]}},
            {"tags": {"$in": ["b", "c"]}}, {"in_stock": {"$in": [True]}}, {"color": {"$nin": ["red"]}},
            {"size": {"$nin": [0, 1]}}, {"tags": {"$nin": ["a"]}},
            {"color": {"$nin": ["red", "green", "blue"]}},
        ])

    def test_filter_exists(self, store: VectorStore, collection_name: str) -> None:
        records = self.filled(store, collection_name, catalog_records())
        self.check_filters(store, collection_name, records, [
            {"color": {"$exists": True}}, {"color": {"$exists": False}}, {"tags": {"$exists": True}},
            {"tags": {"$exists": False}}, {"size": {"$exists": True}}, {"never": {"$exists": True}},
            {"never": {"$exists": False}},
        ])

    def test_filter_logical_nesting(self, store: VectorStore, collection_name: str) -> None:
        records = self.filled(store, collection_name, catalog_records())
        self.check_filters(store, collection_name, records, [
            {"$and": [{"color": "red"}, {"size": {"$gt": 2}}]},
            {"$or": [{"color": "red"}, {"tags": "c"}]},
            {"$not": {"color": "red"}},
            {"$not": {"size": {"$gt": 4}}},
            {"$not": {"tags": {"$exists": True}}},
            {"$or": [{"color": "blue"}, {"$and": [{"size": {"$gt": 5}}, {"$not": {"tags": "a"}}]}]},
            {"$not": {"$or": [{"color": "red"}, {"in_stock": True}]}},
            {"$and": [{"$or": [{"color": "red"}, {"color": "green"}]},
                      {"$or": [{"price": {"$lt": 20}}, {"tags": {"$in": ["b"]}}]}]},
            {"$and": [{"$not": {"$and": [{"in_stock": True}, {"size": {"$lte": 5}}]}},
                      {"price": {"$exists": True}}]},
            {"color": "red", "$or": [{"size": 0}, {"size": 5}, {"in_stock": False}]},
            {"$not": {"$not": {"color": "green"}}},
            {"$or": [{"$and": [{"color": {"$ne": "red"}}, {"tags": {"$nin": ["a", "b"]}}]}, {"price": 0}]},
        ])

    def test_filter_missing_and_null(self, store: VectorStore, collection_name: str) -> None:
        metas: list[Metadata] = [
            {"k": "x"}, {"k": None}, {}, {"k": "y"}, {"k": []}, {"k": ["x", "z"]}, {"other": 1},
        ]
        vectors = random_vectors(len(metas), 8, seed=18)
        records = [Record(f"m{i}", vectors[i], "", m) for i, m in enumerate(metas)]
        self.filled(store, collection_name, records)
        self.check_filters(store, collection_name, records, [
            {"k": "x"}, {"k": {"$ne": "x"}}, {"k": {"$in": ["x", "y"]}}, {"k": {"$nin": ["x"]}},
            {"k": {"$exists": True}}, {"k": {"$exists": False}}, {"k": {"$gt": 0}},
            {"$not": {"k": "x"}}, {"$or": [{"k": {"$exists": False}}, {"k": "y"}]},
        ])

    def test_filter_int_float_ranges(self, store: VectorStore, collection_name: str) -> None:
        values: list[MetadataValue] = [1, 1.5, 2, 2.0, 2.25, 3, -1, 0, 0.0, 10**12]
        vectors = random_vectors(len(values), 8, seed=19)
        records = [Record(f"n{i}", vectors[i], "", {"x": v}) for i, v in enumerate(values)]
        self.filled(store, collection_name, records)
        self.check_filters(store, collection_name, records, [
            {"x": 2}, {"x": 2.0}, {"x": {"$gt": 1}}, {"x": {"$gte": 2}}, {"x": {"$lt": 2.0}},
            {"x": {"$lte": 2.25}}, {"x": {"$gt": 1.99, "$lt": 2.01}}, {"x": {"$in": [0, 3.0]}},
            {"x": {"$ne": 0}}, {"x": {"$gte": 10**12}},
        ])

    def test_filter_bool_is_not_int(self, store: VectorStore, collection_name: str) -> None:
        values: list[MetadataValue] = [True, False, 1, 0, 1.0, "true", "1", None]
        vectors = random_vectors(len(values), 8, seed=20)
        records = [Record(f"b{i}", vectors[i], "", {"flag": v}) for i, v in enumerate(values)]
        self.filled(store, collection_name, records)
        self.check_filters(store, collection_name, records, [
            {"flag": True}, {"flag": False}, {"flag": 1}, {"flag": 0}, {"flag": "true"},
            {"flag": {"$ne": True}}, {"flag": {"$in": [True, 0]}}, {"flag": {"$nin": [1]}},
            {"flag": {"$gt": 0}}, {"flag": {"$gte": 0}},
        ])

    def test_filter_range_ignores_other_types(self, store: VectorStore, collection_name: str) -> None:
        values: list[MetadataValue] = [5, "5", "10", True, None, 7.5, "abc"]
        vectors = random_vectors(len(values), 8, seed=21)
        records = [Record(f"t{i}", vectors[i], "", {"v": v}) for i, v in enumerate(values)]
        records.append(Record("t-absent", random_vectors(1, 8, seed=22)[0], "", {}))
        self.filled(store, collection_name, records)
        self.check_filters(store, collection_name, records, [
            {"v": {"$gt": 3}}, {"v": {"$gte": 0}}, {"v": {"$lt": 6}}, {"v": {"$lte": 100}},
            {"$not": {"v": {"$gt": 3}}}, {"v": "5"}, {"v": 5},
        ])

    def test_filter_list_membership(self, store: VectorStore, collection_name: str) -> None:
        metas: list[Metadata] = [
            {"tags": ["a", "b"]}, {"tags": ["b"]}, {"tags": []}, {"tags": "a"}, {}, {"tags": ["c", "a", "a"]},
        ]
        vectors = random_vectors(len(metas), 8, seed=23)
        records = [Record(f"l{i}", vectors[i], "", m) for i, m in enumerate(metas)]
        self.filled(store, collection_name, records)
        self.check_filters(store, collection_name, records, [
            {"tags": "a"}, {"tags": {"$in": ["b", "c"]}}, {"tags": {"$ne": "a"}},
            {"tags": {"$nin": ["a", "b"]}},
            {"tags": {"$exists": True}}, {"$and": [{"tags": "a"}, {"tags": "b"}]}, {"tags": "z"},
        ])

    def test_filter_numeric_list_membership(self, store: VectorStore, collection_name: str) -> None:
        metas: list[Metadata] = [{"nums": [1, 5]}, {"nums": [2.5]}, {"nums": [10, 20]}, {"nums": []}, {}]
        vectors = random_vectors(len(metas), 8, seed=24)
        records = [Record(f"p{i}", vectors[i], "", m) for i, m in enumerate(metas)]
        self.filled(store, collection_name, records)
        self.check_filters(store, collection_name, records, [
            {"nums": 5}, {"nums": {"$in": [2.5, 20]}}, {"nums": {"$gt": 4}}, {"nums": {"$lt": 2}},
            {"nums": {"$gte": 2.5, "$lte": 2.5}}, {"nums": {"$ne": 1}},
        ])

    def test_malformed_filter_raises(self, store: VectorStore, collection_name: str) -> None:
        self.filled(store, collection_name, catalog_records())
        bad: list[Any] = [{"color": {"$regex": "r.*"}}, {"size": {"$gt": "x"}}, {"color": None}, {"$or": {}}]
        for spec in bad:
            with pytest.raises(FilterError):
                store.count(collection_name, filter=spec)
            with pytest.raises(FilterError):
                store.query(collection_name, np.ones(self.dimension, dtype=np.float32), filter=spec)
            with pytest.raises(FilterError):
                store.delete(collection_name, filter=spec)
        assert store.count(collection_name) == 48

