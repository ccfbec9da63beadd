"""The memory store against the conformance suite, in memory, persisted to a directory, and with HNSW.

Parts of the suite not inherited here, and why:

* ``RecommendTests``: the memory store has no recommend of its own (it is not ``NativeRecommend``);
  ``vectorseam.retrieval.recommend``'s generic path answers for it, checked exact against the
  definitions in tests/test_recommend.py.
* ``BulkLoadTests``: the store has no fill mode (it is not ``BulkLoading``): an upsert appends to one
  numpy matrix, already the fast path.
* ``DurabilityTests``, in memory and with HNSW: nothing outlives the process (``flush`` is a no-op
  without a directory). The persisted store takes them.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from vectorseam.store import VectorStore
from vectorseam.stores.memory import MemoryStore
from vectorseam.testing import (
    CollectionTests,
    DurabilityTests,
    FilterTests,
    KeywordTests,
    QueryTests,
    ScanTests,
    WriteTests,
)
from vectorseam.testing.conformance import DateFilterTests, ExactVectorTests


class TestMemoryStoreConformance(
    CollectionTests, WriteTests, FilterTests, QueryTests, ScanTests, DateFilterTests, ExactVectorTests, KeywordTests
):
    @pytest.fixture
    def store(self) -> Iterator[VectorStore]:
        s = MemoryStore()
        yield s
        s.close()


class TestPersistentMemoryStoreConformance(
    CollectionTests, WriteTests, FilterTests, QueryTests, ScanTests, DurabilityTests, DateFilterTests,
    ExactVectorTests, KeywordTests,
):
    """Same suite on disk; ``reopen`` closes the store and loads a new one from the directory."""

    _path: Path
    _opened: list[MemoryStore]

    @pytest.fixture
    def store(self, tmp_path: Path) -> Iterator[VectorStore]:
        self._path = tmp_path / "store"
        self._opened = [MemoryStore(self._path)]
        yield self._opened[0]
        for s in self._opened:
            s.close()

    def reopen(self, store: VectorStore) -> VectorStore:
        store.close()
        fresh = MemoryStore(self._path)
        self._opened.append(fresh)
        return fresh

    def test_persistent_capability(self, store: VectorStore) -> None:
        assert store.capabilities.persistent is True


def _faiss_installed() -> bool:
    try:
        import faiss  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.mark.skipif(not _faiss_installed(), reason="the memory store's ANN mode needs faiss, not installed")
class TestAnnMemoryStoreConformance(
    CollectionTests, WriteTests, FilterTests, QueryTests, ScanTests, DateFilterTests, ExactVectorTests, KeywordTests
):
    """The HNSW path, forced on for every collection size (``min_rows=0``), keeps the same contract."""

    @pytest.fixture
    def store(self) -> Iterator[VectorStore]:
        s = MemoryStore(ann={"min_rows": 0})
        assert s.capabilities.approximate
        yield s
        s.close()
