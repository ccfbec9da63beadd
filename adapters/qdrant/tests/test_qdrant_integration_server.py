"""The conformance suite against a real Qdrant server (REST and gRPC).

Where the server comes from, in order:

1. ``VECTORSEAM_TEST_QDRANT_URL`` (and optionally ``VECTORSEAM_TEST_QDRANT_API_KEY``): a running
   server, e.g. ``http://127.0.0.1:6333``; its gRPC port is taken from ``VECTORSEAM_TEST_QDRANT_GRPC_PORT``
   (default 6334).
2. Otherwise, when a Docker engine answers, testcontainers starts the ``qdrant/qdrant`` image
   (``VECTORSEAM_TEST_QDRANT_IMAGE`` overrides the tag; it must be >= v1.16 for collection metadata).
3. Otherwise every test here is skipped, saying why.

Each test works in collections with unique names and drops them afterwards, so a shared server can
be used.

Not inherited: ``BulkLoadTests``, because Qdrant has no separate fill mode (the store is not
``BulkLoading``: the server indexes as it goes, and batched upserts are its fast path). Of
``DurabilityTests`` the flush test skips itself: the server acknowledges a write once it is in its
write-ahead log, so there is no ``flush``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
from qdrant_client import QdrantClient
from vectorseam_qdrant.store import QdrantStore, create_store

from vectorseam.store import NativeRecommend, VectorStore
from vectorseam.testing import (
    CollectionTests,
    DurabilityTests,
    FilterTests,
    KeywordTests,
    QueryTests,
    RecommendTests,
    ScanTests,
    WriteTests,
    catalog_records,
    unique_collection_name,
)
from vectorseam.testing.conformance import DateFilterTests, ExactVectorTests
from vectorseam.types import CollectionSpec, Record

URL_ENV = "VECTORSEAM_TEST_QDRANT_URL"


def _docker_reachable() -> bool:
    try:
        import docker

        client = docker.from_env(timeout=3)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:  # no SDK, no socket, engine down: all mean "no Docker here"
        return False


_HAVE_URL = bool(os.environ.get(URL_ENV))
_HAVE_DOCKER = not _HAVE_URL and _docker_reachable()

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        not (_HAVE_URL or _HAVE_DOCKER),
        reason=f"needs a Qdrant server: set {URL_ENV}=http://host:6333, or make a Docker engine reachable "
        "so testcontainers can start qdrant/qdrant (neither is available here)",
    ),
]


@pytest.fixture(scope="module")
def server() -> Iterator[dict[str, Any]]:
    """Connection options for the server: url, api_key and grpc_port."""
    if _HAVE_URL:
        grpc_port = int(os.environ.get("VECTORSEAM_TEST_QDRANT_GRPC_PORT", "6334"))
        options: dict[str, Any] = {"url": os.environ[URL_ENV], "grpc_port": grpc_port}
        if os.environ.get("VECTORSEAM_TEST_QDRANT_API_KEY"):
            options["api_key"] = os.environ["VECTORSEAM_TEST_QDRANT_API_KEY"]
        yield options
        return
    from testcontainers.community.qdrant import QdrantContainer

    image = os.environ.get("VECTORSEAM_TEST_QDRANT_IMAGE", "qdrant/qdrant:v1.16.2")
    with QdrantContainer(image=image) as container:
        host = container.get_container_host_ip()
        yield {
            "url": f"http://{host}:{container.get_exposed_port(6333)}",
            "grpc_port": int(container.get_exposed_port(6334)),
        }


class _ServerStore(
    CollectionTests, WriteTests, FilterTests, QueryTests, ScanTests, RecommendTests, DurabilityTests,
    DateFilterTests, ExactVectorTests, KeywordTests,
):
    keyword_drift_rtol = 0.06  # see test_qdrant_conformance_local.py: weights keep the first write's avgdl
    prefer_grpc = False
    _opened: list[QdrantStore]
    _options: dict[str, Any]

    @pytest.fixture
    def store(self, server: dict[str, Any]) -> Iterator[VectorStore]:
        self._options = {**server, "prefer_grpc": self.prefer_grpc, "timeout": 30}
        self._opened = [create_store(**self._options)]
        yield self._opened[0]
        for s in self._opened:
            s.close()

    def reopen(self, store: VectorStore) -> VectorStore:
        store.close()
        fresh = create_store(**self._options)
        self._opened.append(fresh)
        return fresh

    def test_server_capabilities(self, store: VectorStore) -> None:
        caps = store.capabilities
        assert (caps.persistent, caps.approximate, isinstance(store, NativeRecommend)) == (True, True, True)

    def test_filtered_fields_get_payload_indexes(self, store: VectorStore, server: dict[str, Any]) -> None:
        assert isinstance(store, QdrantStore)
        name = unique_collection_name("idx")
        self._created.append(name)
        store.ensure_collection(CollectionSpec(name, 8, "cosine"))
        store.upsert(name, catalog_records())
        store.count(name, {"color": "red", "size": {"$gt": 2}, "in_stock": True, "tags": {"$exists": True}})
        expected = {'_vs_meta."color"': "keyword", '_vs_meta."size"': "float", '_vs_meta."in_stock"': "bool"}
        assert store.indexed_fields(name) == expected
        raw = QdrantClient(url=server["url"], api_key=server.get("api_key"), check_compatibility=False)
        try:
            schema = raw.get_collection(name).payload_schema
        finally:
            raw.close()
        assert {k: v.data_type.value for k, v in schema.items() if v.data_type is not None} == expected
        # A new connection learns the existing indexes from the server instead of re-creating them.
        again = self.reopen(store)
        assert isinstance(again, QdrantStore)
        assert again.indexed_fields(name) == expected
        reds = sum(1 for r in catalog_records() if r.metadata.get("color") == "red")
        assert again.count(name, {"color": "red"}) == reds


    def test_two_clients_share_the_keyword_index(self, store: VectorStore, server: dict[str, Any]) -> None:
        """Two clients over one server, as two service replicas: a text changed through one (same record
        count) is found by BM25 and hybrid search through the other on its next query."""
        assert isinstance(store, QdrantStore)
        other = create_store(**self._options)
        self._opened.append(other)
        name = unique_collection_name("replicas")
        self._created.append(name)
        store.ensure_collection(CollectionSpec(name, 8, "cosine"))
        records = catalog_records()
        store.upsert(name, records)
        assert other.keyword_search(name, "zebra", 5) == []
        store.upsert(name, [Record("c05", records[5].vector, "a zebra crossing", records[5].metadata)])
        assert [h.id for h in other.keyword_search(name, "zebra", 5)] == ["c05"]
        assert other.hybrid_search(name, "zebra", records[5].vector, 1)[0].id == "c05"  # type: ignore[arg-type]


class TestQdrantServerRestConformance(_ServerStore):
    prefer_grpc = False


class TestQdrantServerGrpcConformance(_ServerStore):
    prefer_grpc = True
