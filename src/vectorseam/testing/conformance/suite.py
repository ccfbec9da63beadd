"""``StoreConformance``: every concern's mixin in one class, for a store that takes part in all of them
(the tests of abilities it lacks skip themselves, saying why)."""

from __future__ import annotations

from vectorseam.testing.conformance.blobs import BlobTests
from vectorseam.testing.conformance.bulk_load import BulkLoadTests
from vectorseam.testing.conformance.collections import CollectionTests
from vectorseam.testing.conformance.counting import CountTests
from vectorseam.testing.conformance.durability import DurabilityTests
from vectorseam.testing.conformance.exports import ExportImportTests
from vectorseam.testing.conformance.facets import FacetTests
from vectorseam.testing.conformance.filters import FilterTests
from vectorseam.testing.conformance.grouping import GroupingTests
from vectorseam.testing.conformance.keywords import KeywordTests
from vectorseam.testing.conformance.query import QueryTests
from vectorseam.testing.conformance.recommend import RecommendTests
from vectorseam.testing.conformance.scan import ScanTests
from vectorseam.testing.conformance.scroll import ScrollTests
from vectorseam.testing.conformance.snapshots import SnapshotTests
from vectorseam.testing.conformance.values import DateFilterTests, ExactVectorTests
from vectorseam.testing.conformance.writes import WriteTests


class StoreConformance(
    CollectionTests,
    WriteTests,
    FilterTests,
    DateFilterTests,
    QueryTests,
    ExactVectorTests,
    ScanTests,
    RecommendTests,
    DurabilityTests,
    BulkLoadTests,
    KeywordTests,
    BlobTests,
    CountTests,
    ScrollTests,
    GroupingTests,
    FacetTests,
    ExportImportTests,
    SnapshotTests,
):
    """The whole suite: every concern, the optional abilities skipping themselves where absent."""
