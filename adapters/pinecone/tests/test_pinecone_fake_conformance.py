"""Time filters and exact vectors through the real ``pinecone`` SDK against the local fake server.

The rest of the conformance suite needs collections of several dimensions and metrics, which one
Pinecone index cannot hold, so it runs against a real index or Pinecone Local only
(test_pinecone_integration.py). These two mixins work within one index: a fake index of the suite's
dimension (8) and the metric each test asks for (``metric`` parameter, cosine otherwise), so the
hidden epoch numbers beside time fields and the float64 vector round trip are checked here too.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pinecone_fake import FakePinecone, serve
from vectorseam_pinecone import create_store

from vectorseam.store import VectorStore
from vectorseam.testing.conformance import DateFilterTests, ExactVectorTests

_PINECONE_METRIC = {"cosine": "cosine", "dot": "dotproduct", "euclidean": "euclidean"}


class TestPineconeFakeDatesAndVectors(DateFilterTests, ExactVectorTests):
    @pytest.fixture
    def store(self, request: pytest.FixtureRequest) -> Iterator[VectorStore]:
        params = getattr(request.node, "callspec", None)
        metric = params.params.get("metric", "cosine") if params is not None else "cosine"
        with serve(FakePinecone(dimension=self.dimension, metric=_PINECONE_METRIC[metric])) as fake:
            s = create_store(api_key="test-key", index_host=fake.url, namespace_prefix="t-")
            yield s
            s.close()
