"""The pgvector store against the shared conformance suite, in both index modes.

* ``exact``: no vector index, sequential scan with an exact (distance, id) sort.
* ``hnsw``: the HNSW index is used for every query: the connection runs with
  ``enable_seqscan = off`` so that even these small tables go through the index (PostgreSQL would
  otherwise prefer a sequential scan and the index would go untested). With ``ef_search = 1000`` the
  graph search is exhaustive on data this small, so the suite's exact expectations hold; on the
  10 000-record test the suite itself only asks an approximate store for recall@10 >= 0.9.

Not inherited: ``RecommendTests``, because pgvector has no recommend of its own (the store is not
``NativeRecommend``); ``vectorseam.retrieval.recommend``'s generic path serves it through ``fetch`` and
``query``, which the inherited parts check. Of ``DurabilityTests`` the flush test skips itself: every
write is committed when ``upsert`` returns, so there is no ``flush``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, ClassVar

import pytest
from vectorseam_pgvector import PgVectorStore

from vectorseam.store import VectorStore
from vectorseam.testing import (
    BulkLoadTests,
    CollectionTests,
    DurabilityTests,
    FilterTests,
    KeywordTests,
    QueryTests,
    ScanTests,
    WriteTests,
)
from vectorseam.testing.conformance import BlobTests, DateFilterTests, ExactVectorTests


class _PgConformance(
    CollectionTests, WriteTests, FilterTests, QueryTests, ScanTests, DurabilityTests, BulkLoadTests,
    DateFilterTests, ExactVectorTests, KeywordTests, BlobTests,
):
    store_options: ClassVar[dict[str, Any]] = {}
    _make: Callable[..., PgVectorStore]
    _options: dict[str, Any]

    @pytest.fixture
    def store(self, make_store: Callable[..., PgVectorStore]) -> Iterator[VectorStore]:
        self._make = make_store
        s = make_store(**self.store_options)
        self._options = {"schema": s.options.schema, **self.store_options}
        yield s  # make_store closes it and drops its schema

    def reopen(self, store: VectorStore) -> VectorStore:
        store.close()
        return self._make(**self._options)


class TestPgVectorExactConformance(_PgConformance):
    store_options: ClassVar[dict[str, Any]] = {"index": "exact"}

    def test_capabilities(self, store: VectorStore) -> None:
        caps = store.capabilities
        assert (caps.name, caps.persistent, caps.approximate) == ("pgvector", True, False)


class TestPgVectorHnswConformance(_PgConformance):
    store_options: ClassVar[dict[str, Any]] = {"index": "hnsw", "ef_search": 1000}
    # Building an HNSW graph costs far more than a sequential table; 3000 records keep the suite well
    # under a minute on two cores while still going through the bulk-load path (index built after COPY).
    large_batch_size = 3000

    @pytest.fixture
    def store(self, make_store: Callable[..., PgVectorStore], pg_server: Any) -> Iterator[VectorStore]:
        self._make = make_store
        options = {**self.store_options, "dsn": pg_server.dsn() + "?options=-c%20enable_seqscan%3Doff"}
        s = make_store(**options)
        self._options = {"schema": s.options.schema, **options}
        yield s

    def test_capabilities(self, store: VectorStore) -> None:
        caps = store.capabilities
        assert (caps.name, caps.persistent, caps.approximate) == ("pgvector", True, True)
