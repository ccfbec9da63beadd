"""The search-API conformance mixins (issue 23) through the real ``pinecone`` SDK against the local fake
server: count, scroll by cursor, group_by and facets (all emulated over Pinecone's query, list and
fetch), export/import and snapshot/restore, within one fake index of the suite's dimension and the
metric each test asks for (as in test_pinecone_fake_conformance.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pinecone_fake import FakePinecone, serve
from vectorseam_pinecone import create_store

from vectorseam.store import VectorStore
from vectorseam.testing.conformance import SearchApiTests

_PINECONE_METRIC = {"cosine": "cosine", "dot": "dotproduct", "euclidean": "euclidean"}
# the tests that write a collection of another metric than cosine (one Pinecone index has one metric)
_METRIC_OF = {"test_round_trip": "dot", "test_restore_under_another_name": "euclidean"}


class TestPineconeFakeSearchApi(SearchApiTests):
    @pytest.fixture
    def store(self, request: pytest.FixtureRequest) -> Iterator[VectorStore]:
        metric = _METRIC_OF.get(request.node.originalname, "cosine")
        with serve(FakePinecone(dimension=self.dimension, metric=_PINECONE_METRIC[metric])) as fake:
            s = create_store(api_key="test-key", index_host=fake.url, namespace_prefix="t-")
            yield s
            s.close()
