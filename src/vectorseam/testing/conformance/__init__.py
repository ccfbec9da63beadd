"""The store conformance suite: the executable definition of what a ``VectorStore`` must do.

One mixin per concern, each a class of pytest tests that needs one fixture, ``store``, yielding a
fresh, empty store and closing it afterwards:

====================  ==========================================================================
``CollectionTests``   create, re-ensure, describe (``collections``, ``collection_info``), drop
``WriteTests``        upsert/fetch round trips, ids, rejected batches, delete, count, large batches
``FilterTests``       every portable operator, by count, query and scan, against the reference
``QueryTests``        rankings and scores against a float64 brute force, ties, shapes
``ScanTests``         paging every record once, in a stable order
``RecommendTests``    native recommend (``NativeRecommend`` stores) against the definitions
``DurabilityTests``   acknowledged writes of every kind survive a reopen (persistent stores)
``BulkLoadTests``     ``bulk_load`` fills, adds and fails cleanly (``BulkLoading`` stores)
``KeywordTests``      native BM25 and hybrid search (``NativeKeywordSearch`` stores) against the reference
``BlobTests``         blobs kept with a collection (``CollectionBlobs`` stores): round trip, drop, reopen
``CountTests``        counting with and without filters as writes come and go
``ScrollTests``       scroll by cursor: every record once, valid while records are written (native and emulated)
``GroupingTests``     ``group_by`` of dense queries against the brute force (``NativeGrouping`` or emulated)
``FacetTests``        facet value counts under a filter (``NativeFacets`` or a scan)
``ExportImportTests`` NDJSON and Parquet export, import into another collection, record for record
``SnapshotTests``     snapshot and restore under another name: same records, same search results
``SearchApiTests``    the six above in one class
``DateFilterTests``   ISO-8601 time ranges (in :mod:`.values` for now)
``ExactVectorTests``  float32 vectors come back bit for bit (same module)
====================  ==========================================================================

:class:`StoreConformance` (in :mod:`.suite`) is all of them. A backend's test class combines the concerns its store
takes part in and says in the test file why it leaves any out::

    class TestQdrantConformance(CollectionTests, WriteTests, FilterTests, QueryTests, ScanTests,
                                RecommendTests):
        \"\"\"Not inherited: DurabilityTests (``:memory:`` keeps nothing), BulkLoadTests (no fill mode).\"\"\"

        @pytest.fixture
        def store(self) -> Iterator[VectorStore]:
            s = QdrantStore(url=...)
            yield s
            s.close()

The tests of an optional ability (recommend, bulk load, keyword search) skip themselves, saying why, on a
store that lacks it, so a class may also inherit the whole :class:`StoreConformance`.

Why it is written the way it is:

* It uses only the protocol (no backend internals), so the same tests run against remote servers.
* Every filter result is compared with :func:`vectorseam.filters.matches` over the very records the
  test wrote, and every ranking with a float64 numpy brute force: the reference implementations are
  the specification, so adapters cannot drift apart in semantics.
* An operator missing from ``store.capabilities.filter_operators`` must raise
  :class:`~vectorseam.errors.FilterError` (never be ignored). A backend may still answer a filter
  it can rewrite without that operator (``$exists: false`` without ``$not``); then the answer must
  equal the reference exactly.
* Metadata comes back compared as the filter semantics see it: a ``null`` or empty-list value may
  come back absent, and ints may come back as floats (numbers compare numerically); booleans stay
  booleans, strings and list order stay exact.
* Data comes from fixed seeds and the collections are small, so the suite is deterministic and
  runs in seconds against a local server.

Hooks a subclass may override: :meth:`ConformanceBase.reopen` (close the store and connect again
to the same data, for persistent backends) and :attr:`ConformanceBase.large_batch_size`. A test
that a backend cannot pass for a documented reason is overridden in the subclass with
``@pytest.mark.skip(reason=...)``.

This package imports pytest; the data and reference helpers it re-exports live in
:mod:`vectorseam.testing.reference`, which does not.
"""

from __future__ import annotations

from vectorseam.testing.conformance.base import ConformanceBase
from vectorseam.testing.conformance.blobs import BlobTests
from vectorseam.testing.conformance.bulk_load import BulkLoadTests
from vectorseam.testing.conformance.collections import CollectionTests
from vectorseam.testing.conformance.counting import CountTests
from vectorseam.testing.conformance.durability import DurabilityTests
from vectorseam.testing.conformance.exports import ExportImportTests
from vectorseam.testing.conformance.facets import FacetTests
from vectorseam.testing.conformance.filters import FilterTests
from vectorseam.testing.conformance.grouping import GroupingTests
from vectorseam.testing.conformance.keywords import (
    KeywordTests,
    assert_keyword_ranking,
    keyword_records,
    reference_bm25,
)
from vectorseam.testing.conformance.query import QueryTests
from vectorseam.testing.conformance.recommend import RecommendTests, reference_recommend
from vectorseam.testing.conformance.scan import ScanTests
from vectorseam.testing.conformance.scroll import ScrollTests
from vectorseam.testing.conformance.search_api import SearchApiTests
from vectorseam.testing.conformance.snapshots import SnapshotTests
from vectorseam.testing.conformance.suite import StoreConformance
from vectorseam.testing.conformance.values import DateFilterTests, ExactVectorTests
from vectorseam.testing.conformance.writes import WriteTests
from vectorseam.testing.reference import (
    SCORE_TOL,
    VECTOR_TOL,
    assert_ranking,
    assert_same_record,
    catalog_records,
    make_records,
    normalized_metadata,
    random_vectors,
    reference_candidates,
    reference_scores,
    reference_top_k,
    unique_collection_name,
    vector_of,
)

__all__ = [
    "SCORE_TOL",
    "VECTOR_TOL",
    "BlobTests",
    "BulkLoadTests",
    "CollectionTests",
    "ConformanceBase",
    "CountTests",
    "DateFilterTests",
    "DurabilityTests",
    "ExactVectorTests",
    "ExportImportTests",
    "FacetTests",
    "FilterTests",
    "GroupingTests",
    "KeywordTests",
    "QueryTests",
    "RecommendTests",
    "ScanTests",
    "ScrollTests",
    "SearchApiTests",
    "SnapshotTests",
    "StoreConformance",
    "WriteTests",
    "assert_keyword_ranking",
    "assert_ranking",
    "assert_same_record",
    "catalog_records",
    "keyword_records",
    "make_records",
    "normalized_metadata",
    "random_vectors",
    "reference_bm25",
    "reference_candidates",
    "reference_recommend",
    "reference_scores",
    "reference_top_k",
    "unique_collection_name",
    "vector_of",
]
