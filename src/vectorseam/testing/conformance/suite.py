"""The whole suite in one class, for a backend that takes part in every concern (or lets the
optional-ability tests skip themselves).

Kept apart from the package ``__init__`` because it also takes the time-filter and exact-vector
mixins of :mod:`vectorseam.testing.conformance_dates`, which import this package's base: importing
them from ``__init__`` would be circular when ``conformance_dates`` is imported first.
"""

from __future__ import annotations

from vectorseam.testing.conformance.bulk_load import BulkLoadTests
from vectorseam.testing.conformance.collections import CollectionTests
from vectorseam.testing.conformance.durability import DurabilityTests
from vectorseam.testing.conformance.filters import FilterTests
from vectorseam.testing.conformance.keywords import KeywordTests
from vectorseam.testing.conformance.query import QueryTests
from vectorseam.testing.conformance.recommend import RecommendTests
from vectorseam.testing.conformance.scan import ScanTests
from vectorseam.testing.conformance.writes import WriteTests
from vectorseam.testing.conformance_dates import DateFilterTests, ExactVectorTests


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
):
    """The whole suite: every concern, the optional abilities skipping themselves where absent."""
