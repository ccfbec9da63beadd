"""The full conformance suite against a real Pinecone: an index named by env vars, or Pinecone Local.

Set ``VECTORSEAM_TEST_PINECONE_API_KEY`` and ``VECTORSEAM_TEST_PINECONE_HOST`` (an index's data-plane
URL; a dense index of dimension 8, metric cosine, as the suite's default collections need) to run it
against a real index; otherwise Pinecone Local (``ghcr.io/pinecone-io/pinecone-local``) is started
through testcontainers when a Docker engine is reachable. Each test uses a fresh namespace prefix.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
from vectorseam_pinecone import create_store

from vectorseam.store import VectorStore
from vectorseam.testing.conformance import StoreConformance

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
class TestPineconeConformance(StoreConformance):
    @pytest.fixture
    def store(self, pinecone_target: tuple[str, str]) -> Iterator[VectorStore]:
        key, host = pinecone_target
        s = create_store(api_key=key, index_host=host, namespace_prefix=f"t{uuid.uuid4().hex[:8]}-")
        yield s
        s.close()
