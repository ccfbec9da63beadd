"""The full conformance suite against a real Pinecone: an index named by env vars, or Pinecone Local.

Set ``VECTORSEAM_TEST_PINECONE_API_KEY`` and ``VECTORSEAM_TEST_PINECONE_HOST`` (an index's data-plane
URL; a dense index of dimension 8, metric cosine, as the suite's default collections need) to run it
against a real index; otherwise Pinecone Local (``ghcr.io/pinecone-io/pinecone-local``) is started
through testcontainers when a Docker engine is reachable. Each test uses a fresh namespace prefix;
``reopen`` connects a new store to the same index and prefix.

Not inherited: ``BulkLoadTests``, because Pinecone has no separate fill mode (the store is not
``BulkLoading``: batched upserts are its fast path). Of ``DurabilityTests`` the flush test skips
itself: a write is durable when Pinecone acknowledges it, so there is no ``flush``. Of
``RecommendTests``, ``best_score`` is not native: the store raises UnsupportedOperationError and the
test checks that the generic path answers instead.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
from vectorseam_pinecone import create_store

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

API_KEY = os.environ.get("VECTORSEAM_TEST_PINECONE_API_KEY")
HOST = os.environ.get("VECTORSEAM_TEST_PINECONE_HOST")


def _docker_reachable() -> bool:
    try:
        import docker

        docker.from_env().ping()
        return True
    except Exception:
        return False


HAVE_ENDPOINT = bool(API_KEY and HOST)
HAVE_DOCKER = not HAVE_ENDPOINT and _docker_reachable()


@pytest.fixture(scope="module")
def pinecone_target() -> Iterator[tuple[str, str]]:
    if HAVE_ENDPOINT:
        yield str(API_KEY), str(HOST)
        return
    from testcontainers.core.container import DockerContainer
    from testcontainers.core.waiting_utils import wait_for_logs

    container = (
        DockerContainer("ghcr.io/pinecone-io/pinecone-index:latest")
        .with_env("PORT", "5081").with_env("INDEX_TYPE", "serverless")
        .with_env("VECTOR_TYPE", "dense").with_env("DIMENSION", "8").with_env("METRIC", "cosine")
        .with_exposed_ports(5081)
    )
    with container:
        wait_for_logs(container, "listening", timeout=60)
        yield "pclocal", f"http://{container.get_container_host_ip()}:{container.get_exposed_port(5081)}"


@pytest.mark.integration
@pytest.mark.skipif(
    not (HAVE_ENDPOINT or HAVE_DOCKER),
    reason="needs a Pinecone index (VECTORSEAM_TEST_PINECONE_API_KEY + VECTORSEAM_TEST_PINECONE_HOST) "
    "or a reachable Docker engine for Pinecone Local; neither is available here",
)
class TestPineconeConformance(
    CollectionTests, WriteTests, FilterTests, QueryTests, ScanTests, RecommendTests, DurabilityTests,
    DateFilterTests, ExactVectorTests,
):
    _options: dict[str, str]
    _opened: list[VectorStore]

    @pytest.fixture
    def store(self, pinecone_target: tuple[str, str]) -> Iterator[VectorStore]:
        key, host = pinecone_target
        self._options = {"api_key": key, "index_host": host, "namespace_prefix": f"t{uuid.uuid4().hex[:8]}-"}
        self._opened = [create_store(**self._options)]
        yield self._opened[0]
        for s in self._opened:
            s.close()

    def reopen(self, store: VectorStore) -> VectorStore:
        """A new store on the same index and prefix: collection specs are read back from Pinecone."""
        store.close()
        fresh = create_store(**self._options)
        self._opened = [fresh]  # teardown closes only the live one
        return fresh
