"""The Qdrant adapter against the conformance suite in qdrant-client's local mode.

Local mode is the same client API the server path uses, executed in-process: ``:memory:`` for a
fresh store per test, and a temporary folder where ``reopen`` closes the client and opens the folder
again, so the suite's persistence checks run too.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from vectorseam_qdrant.store import QdrantStore, create_store

from vectorseam.store import VectorStore
from vectorseam.testing import StoreConformance


class TestQdrantMemoryConformance(StoreConformance):
    large_batch_size = 3_000  # local mode is a pure-Python engine; the suite's logic is size-independent

    @pytest.fixture
    def store(self) -> Iterator[VectorStore]:
        s = create_store(location=":memory:")
        yield s
        s.close()

    def test_capabilities(self, store: VectorStore) -> None:
        caps = store.capabilities
        assert (caps.name, caps.persistent, caps.native_recommend) == ("qdrant", False, True)
        assert caps.approximate is False  # local mode searches exhaustively


class TestQdrantPathConformance(StoreConformance):
    large_batch_size = 600  # every point is written through to SQLite; keeps the suite fast

    _path: Path
    _opened: list[QdrantStore]

    @pytest.fixture
    def store(self, tmp_path: Path) -> Iterator[VectorStore]:
        self._path = tmp_path / "qdrant"
        self._opened = [create_store(path=str(self._path))]
        yield self._opened[0]
        for s in self._opened:
            s.close()

    def reopen(self, store: VectorStore) -> VectorStore:
        store.close()
        fresh = create_store(path=str(self._path))
        self._opened.append(fresh)
        return fresh

    def test_persistent_capability(self, store: VectorStore) -> None:
        assert store.capabilities.persistent is True
