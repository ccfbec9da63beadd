"""The full conformance suite against a real Weaviate: ``VECTORSEAM_TEST_WEAVIATE_URL`` (with
``VECTORSEAM_TEST_WEAVIATE_GRPC_PORT``, default 50051), or the Weaviate image through testcontainers
when a Docker engine is reachable. Each test uses a fresh class prefix."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
from vectorseam_weaviate import create_store

from vectorseam.store import VectorStore
from vectorseam.testing.conformance import StoreConformance

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
class TestWeaviateConformance(StoreConformance):
    @pytest.fixture
    def store(self, weaviate_target: tuple[str, int]) -> Iterator[VectorStore]:
        url, grpc_port = weaviate_target
        s = create_store(url=url, grpc_port=grpc_port, prefix=f"T{uuid.uuid4().hex[:8]}_")
        yield s
        s.close()
