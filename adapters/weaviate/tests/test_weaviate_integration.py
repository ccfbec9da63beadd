"""The full conformance suite against a real Weaviate: ``VECTORSEAM_TEST_WEAVIATE_URL`` (with
``VECTORSEAM_TEST_WEAVIATE_GRPC_PORT``, default 50051), or the Weaviate image through testcontainers
when a Docker engine is reachable. Each test uses a fresh class prefix; ``reopen`` connects a new
store to the same server and prefix.

Not inherited: ``BulkLoadTests``, because Weaviate has no separate fill mode in this adapter (the
store is not ``BulkLoading``: batched inserts are its fast path). Of ``DurabilityTests`` the flush
test skips itself: a write is durable when Weaviate acknowledges it, so there is no ``flush``. Of
``RecommendTests``, ``best_score`` is not native: the store raises UnsupportedOperationError and the
test checks that the generic path answers instead.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from vectorseam_weaviate import create_store

from vectorseam.store import VectorStore
from vectorseam.testing import (
    CollectionTests,
    DurabilityTests,
    FilterTests,
    QueryTests,
    RecommendTests,
    ScanTests,
    WriteTests,
)
from vectorseam.testing.conformance import DateFilterTests, ExactVectorTests

URL = os.environ.get("VECTORSEAM_TEST_WEAVIATE_URL")
GRPC_PORT = int(os.environ.get("VECTORSEAM_TEST_WEAVIATE_GRPC_PORT", "50051"))


def _docker_reachable() -> bool:
    try:
        import docker

        docker.from_env().ping()
        return True
    except Exception:
        return False


HAVE_DOCKER = not URL and _docker_reachable()


@pytest.fixture(scope="module")
def weaviate_target() -> Iterator[tuple[str, int]]:
    if URL:
        yield URL, GRPC_PORT
        return
    from testcontainers.weaviate import WeaviateContainer

    with WeaviateContainer() as container:
        host = container.get_container_host_ip()
        yield f"http://{host}:{container.get_exposed_port(8080)}", int(container.get_exposed_port(50051))


@pytest.mark.integration
@pytest.mark.skipif(
    not (URL or HAVE_DOCKER),
    reason="needs a Weaviate server (VECTORSEAM_TEST_WEAVIATE_URL) or a reachable Docker engine; "
    "neither is available here",
)
class TestWeaviateConformance(
    CollectionTests, WriteTests, FilterTests, QueryTests, ScanTests, RecommendTests, DurabilityTests,
    DateFilterTests, ExactVectorTests,
):
    _options: dict[str, Any]
    _opened: list[VectorStore]

    @pytest.fixture
    def store(self, weaviate_target: tuple[str, int]) -> Iterator[VectorStore]:
        url, grpc_port = weaviate_target
        self._options = {"url": url, "grpc_port": grpc_port, "prefix": f"T{uuid.uuid4().hex[:8]}_"}
        self._opened = [create_store(**self._options)]
        yield self._opened[0]
        for s in self._opened:
            s.close()

    def reopen(self, store: VectorStore) -> VectorStore:
        """A new store on the same server and prefix: specs and typed properties are read back."""
        store.close()
        fresh = create_store(**self._options)
        self._opened = [fresh]  # teardown closes only the live one
        return fresh
