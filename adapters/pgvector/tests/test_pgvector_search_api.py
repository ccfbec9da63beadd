"""The pgvector store against the search-API conformance mixins (issue 23), in both index modes:
count, scroll by cursor (keyset on the primary key, and the emulation), group_by and facets in SQL
(and the emulations), export/import and snapshot/restore."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, ClassVar

import pytest
from vectorseam_pgvector import PgVectorStore

from vectorseam.store import NativeFacets, NativeGrouping, Scrollable, VectorStore
from vectorseam.testing.conformance import SearchApiTests


class _PgSearchApi(SearchApiTests):
    store_options: ClassVar[dict[str, Any]] = {}

    @pytest.fixture
    def store(self, make_store: Callable[..., PgVectorStore]) -> Iterator[VectorStore]:
        yield make_store(**self.store_options)  # make_store closes it and drops its schema

    def test_native_abilities(self, store: VectorStore) -> None:
        assert isinstance(store, Scrollable) and isinstance(store, NativeGrouping) and isinstance(store, NativeFacets)


class TestPgVectorExactSearchApi(_PgSearchApi):
    store_options: ClassVar[dict[str, Any]] = {"index": "exact"}


class TestPgVectorHnswSearchApi(_PgSearchApi):
    store_options: ClassVar[dict[str, Any]] = {"index": "hnsw", "ef_search": 1000}
