"""The memory store against the conformance suite, in memory and persisted to a directory."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from vectorseam.store import VectorStore
from vectorseam.stores.memory import MemoryStore
from vectorseam.testing import StoreConformance


class TestMemoryStoreConformance(StoreConformance):
    @pytest.fixture
    def store(self) -> Iterator[VectorStore]:
        s = MemoryStore()
        yield s
        s.close()


class TestPersistentMemoryStoreConformance(StoreConformance):
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
class TestAnnMemoryStoreConformance(StoreConformance):
    """The HNSW path, forced on for every collection size (``min_rows=0``), keeps the same contract."""

    @pytest.fixture
    def store(self) -> Iterator[VectorStore]:
        s = MemoryStore(ann={"min_rows": 0})
        assert s.capabilities.approximate
        yield s
        s.close()
