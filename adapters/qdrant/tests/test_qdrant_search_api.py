"""The Qdrant adapter (local mode, in memory and in a folder) against the search-API conformance mixins
(issue 23): count, scroll by cursor (Qdrant's own keyset scroll, and the emulation), group_by and facets
(emulated: see vectorseam_qdrant.scrolling for why), export/import and snapshot/restore."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from vectorseam_qdrant.store import create_store

from vectorseam.store import NativeFacets, NativeGrouping, Scrollable, VectorStore
from vectorseam.testing.conformance import SearchApiTests


class TestQdrantMemorySearchApi(SearchApiTests):
    @pytest.fixture
    def store(self) -> Iterator[VectorStore]:
        s = create_store(location=":memory:")
        yield s
        s.close()

    def test_abilities(self, store: VectorStore) -> None:
        assert isinstance(store, Scrollable)
        assert not isinstance(store, NativeGrouping) and not isinstance(store, NativeFacets)


class TestQdrantPathSearchApi(SearchApiTests):
    @pytest.fixture
    def store(self, tmp_path: Path) -> Iterator[VectorStore]:
        s = create_store(path=str(tmp_path / "qdrant"))
        yield s
        s.close()
