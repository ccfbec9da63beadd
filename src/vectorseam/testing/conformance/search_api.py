"""The mixins of the search backend API in one class, for a store's test file to inherit at once."""

from __future__ import annotations

from vectorseam.testing.conformance.counting import CountTests
from vectorseam.testing.conformance.exports import ExportImportTests
from vectorseam.testing.conformance.facets import FacetTests
from vectorseam.testing.conformance.grouping import GroupingTests
from vectorseam.testing.conformance.scroll import ScrollTests
from vectorseam.testing.conformance.snapshots import SnapshotTests


class SearchApiTests(CountTests, ScrollTests, GroupingTests, FacetTests, ExportImportTests, SnapshotTests):
    """Count, scroll by cursor, group_by, facets, export/import and snapshot/restore."""
