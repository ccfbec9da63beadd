"""The memory store with its int8 scan forced on every query (``quantized = {min_rows = 0}``) against
the conformance suite: every dense query goes through the codes' candidates and the exact finish.

The store then reports itself ``approximate`` (candidates could in principle miss a true neighbour),
so where the suite would check exact order it checks recall; tests/test_quantized.py checks that the
int8 answers equal the exact store's, scores and ties included.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from vectorseam.store import VectorStore
from vectorseam.stores.memory import MemoryStore
from vectorseam.testing import CollectionTests, FilterTests, QueryTests, WriteTests
from vectorseam.testing.conformance import DateFilterTests, ExactVectorTests

pytest.importorskip("llvmlite", reason="the int8 scan needs the 'quantized' extra (llvmlite)")


class TestQuantizedMemoryStoreConformance(
    CollectionTests, WriteTests, FilterTests, QueryTests, DateFilterTests, ExactVectorTests
):
    @pytest.fixture
    def store(self) -> Iterator[VectorStore]:
        s = MemoryStore(quantized={"min_rows": 0})
        yield s
        s.close()
