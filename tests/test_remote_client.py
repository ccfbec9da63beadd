"""vectorseam.remote: the facade's search API over HTTP, against a real server, sync and async; the same
answers as the facade in process; the library's own errors; retries in the transport."""

from __future__ import annotations

import asyncio
import io
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pytest

from tests.test_service_support import ADMIN_KEY, COLLECTION, READ_KEY, Service, running_service
from vectorseam import errors
from vectorseam.query import Query
from vectorseam.remote import (
    AsyncRemoteVectorSeam,
    AsyncRetryTransport,
    RemoteAuthError,
    RemoteVectorSeam,
    RetryTransport,
)
from vectorseam.retrying import RetryPolicy
from vectorseam.types import Record


@pytest.fixture(scope="module")
def svc(local_embedder) -> Service:  # type: ignore[no-untyped-def]
    return running_service(local_embedder)


@pytest.fixture()
def remote(svc: Service) -> Iterator[RemoteVectorSeam]:
    with RemoteVectorSeam(svc.url, api_key=ADMIN_KEY, collection=COLLECTION) as vs:
        yield vs


QUERIES = [
    Query(text="delicious beans", k=5),
    Query(text="late parcel", mode="bm25", k=3, highlight=True),
    Query(text="coffee", mode="hybrid", k=4, facets=("category",), filter={"Score": {"$gte": 3}}),
    Query(text="tasty food", k=3, group_by="category", group_size=2),
    Query(text="pasta", k=3, offset=2, score_threshold=0.1),
    Query(positive=("r05",), negative=("r01",), k=4),
]


@pytest.mark.parametrize("query", QUERIES, ids=range(len(QUERIES)))
def test_the_same_answers_as_the_facade(svc: Service, remote: RemoteVectorSeam, query: Query) -> None:
    here, there = svc.client.query(query, COLLECTION), remote.query(query)
    assert [(h.id, h.score, h.text, h.metadata) for h in there.hits] == [
        (h.id, h.score, h.text, h.metadata) for h in here.hits]
    assert there.facets == here.facets and there.highlights == here.highlights
    assert there.next_cursor == here.next_cursor
    assert (there.groups is None) == (here.groups is None)
    for a, b in zip(there.groups or [], here.groups or [], strict=True):
        assert a.value == b.value and [h.id for h in a.hits] == [h.id for h in b.hits]


def test_the_facades_methods_by_name(svc: Service, remote: RemoteVectorSeam) -> None:
    local = svc.client
    assert [h.id for h in remote.search("delicious beans", k=3)] == [
        h.id for h in local.search("delicious beans", k=3, collection=COLLECTION)]
    assert [[h.id for h in hs] for hs in remote.retrieve_many(["tea", "dog"], k=2, mode="hybrid")] == [
        [h.id for h in hs] for hs in local.retrieve_many(["tea", "dog"], k=2, collection=COLLECTION, mode="hybrid")]
    vector = local.embed(["smooth chocolate coffee"])[0]
    assert np.array_equal(remote.embed(["smooth chocolate coffee"])[0], vector)  # float32 exact over the wire
    np.testing.assert_allclose([h.score for h in remote.search_vector(vector, k=3)],
                               [h.score for h in local.search_vector(vector, k=3, collection=COLLECTION)], atol=1e-9)
    assert [h.id for h in remote.recommend(["r05"], k=3)] == [h.id for h in local.recommend(["r05"], k=3,
                                                                                           collection=COLLECTION)]
    assert remote.count({"category": "pasta"}) == local.count({"category": "pasta"}, COLLECTION) == 4
    assert remote.collection_info() == local.collection_info(COLLECTION)
    assert remote.describe().fingerprint == local.embedder.fingerprint == remote.embedder.fingerprint
    assert COLLECTION in {c.name for c in remote.collections()}


def test_records_scroll_export_import_snapshot(remote: RemoteVectorSeam) -> None:
    name = f"remote-{uuid.uuid4().hex[:8]}"
    info = remote.create_collection(name, dimension=4, metadata={"embedder": "mine:4"})
    assert (info.name, info.dimension, info.count) == (name, 4, 0)
    records = [Record(f"k{i:02d}", np.full(4, i + 1, np.float32) / (i + 1) + np.eye(4, dtype=np.float32)[i % 4],
                      f"text {i}", {"i": i, "even": i % 2 == 0}) for i in range(30)]
    assert remote.upsert(records, name).written == 30
    got = remote.fetch(["k03", "nope"], name, include_vectors=True)
    assert [r.id for r in got] == ["k03"] and np.array_equal(got[0].vector, records[3].vector)
    seen, cursor = [], None
    while True:
        page = remote.scroll(name, {"even": True}, 4, cursor)
        seen += [r.id for r in page.records]
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert seen == [f"k{i:02d}" for i in range(0, 30, 2)]
    data = b"".join(remote.export(name, {"i": {"$lt": 10}}, "parquet"))
    copy = f"{name}-copy"
    assert remote.import_records(io.BytesIO(data), copy, "parquet") == 10
    snapshot = b"".join(remote.snapshot(name))
    restored = remote.restore(io.BytesIO(snapshot), f"{name}-restored")
    assert restored.count == 30 and restored.metadata == {"embedder": "mine:4"}
    assert remote.delete(["k00", "k01"], collection=name) == 2
    assert remote.delete(filter={"even": False}, collection=name) == 14
    remote.set_alias(f"{name}-live", f"{name}-restored")
    assert remote.list_aliases()[f"{name}-live"] == f"{name}-restored"
    assert remote.resolve(f"{name}-live") == f"{name}-restored"
    assert remote.count(collection=f"{name}-live") == 30
    assert remote.remove_alias(f"{name}-live") is True
    for n in (name, copy, f"{name}-restored"):
        assert remote.drop_collection(n) is True


def test_errors_are_the_librarys_own(svc: Service, remote: RemoteVectorSeam) -> None:
    with pytest.raises(errors.CollectionNotFoundError, match="does not exist"):
        remote.search("x", collection="no-such-collection")
    with pytest.raises(errors.FilterError, match=r"\$regex"):
        remote.search("x", filter={"Score": {"$regex": "a"}})
    with pytest.raises(errors.ValidationError, match="no record with id"):
        remote.recommend(["no-such-record"])
    with pytest.raises(errors.ValidationError, match="service.max_k"):
        remote.search("x", k=500)
    with pytest.raises(RemoteAuthError, match="invalid API key"):
        RemoteVectorSeam(svc.url, api_key="wrong").collections()
    with pytest.raises(RemoteAuthError, match="admin"):
        RemoteVectorSeam(svc.url, api_key=READ_KEY, collection=COLLECTION).delete(["r00"])
    with pytest.raises(errors.StoreUnavailableError, match="cannot reach"):
        RemoteVectorSeam("http://127.0.0.1:9", retry=RetryPolicy(attempts=2, backoff=0.0)).collections()


def test_the_async_client(svc: Service) -> None:
    async def run() -> tuple[Any, ...]:
        async with AsyncRemoteVectorSeam(svc.url, api_key=ADMIN_KEY, collection=COLLECTION) as vs:
            hits = await vs.search("delicious beans", k=3)
            result = await vs.query(Query(text="coffee", k=2, facets=("category",)))
            many = await vs.retrieve_many(["tea", "dog"], k=1)
            count = await vs.count({"category": "pasta"})
            exported = b"".join([chunk async for chunk in await vs.export(format="ndjson")])
            vectors = await vs.embed(["tea"])
            try:
                await vs.search("x", collection="no-such-collection")
            except errors.CollectionNotFoundError as exc:
                missing = str(exc)
            return hits, result, many, count, exported, vectors, missing

    hits, result, many, count, exported, vectors, missing = asyncio.run(run())
    local = svc.client
    assert [h.id for h in hits] == [h.id for h in local.search("delicious beans", k=3, collection=COLLECTION)]
    assert result.facets == local.query(Query(text="coffee", k=2, facets=("category",)), COLLECTION).facets
    assert [hs[0].id for hs in many] == ["r24", "r23"] and count == 4
    assert exported.count(b"\n") == local.count(None, COLLECTION) + 1 and vectors.shape == (1, 384)
    assert "does not exist" in missing


# -- retries in the transport --------------------------------------------------------------------------

def flaky(*statuses: int, retry_after: str | None = None) -> tuple[httpx.MockTransport, list[httpx.Request]]:
    """A server answering ``statuses`` in turn, then 200 with an empty collection list."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if len(seen) <= len(statuses):
            headers = {"Retry-After": retry_after} if retry_after else {}
            return httpx.Response(statuses[len(seen) - 1], headers=headers,
                                  json={"error": {"message": "busy", "type": "rate_limited"}})
        return httpx.Response(200, json={"collections": []})

    return httpx.MockTransport(handler), seen


def test_429_and_5xx_are_retried_with_the_policys_backoff() -> None:
    waits: list[float] = []
    mock, seen = flaky(429, 503, 502)
    transport = RetryTransport(mock, RetryPolicy(attempts=5, backoff=0.5, max_delay=8.0, jitter=0.0),
                               sleep=waits.append)
    with httpx.Client(transport=transport, base_url="http://x") as http:
        assert http.get("/v1/collections").status_code == 200
    assert len(seen) == 4 and waits == [0.5, 1.0, 2.0]


def test_retry_after_is_obeyed_up_to_the_cap_and_attempts_end() -> None:
    waits: list[float] = []
    mock, seen = flaky(429, 429, 429, 429, retry_after="30")
    transport = RetryTransport(mock, RetryPolicy(attempts=3, backoff=0.1, max_delay=5.0), sleep=waits.append)
    with httpx.Client(transport=transport, base_url="http://x") as http:
        assert http.get("/v1/collections").status_code == 429  # the last answer, once attempts are spent
    assert len(seen) == 3 and waits == [5.0, 5.0]


def test_client_errors_and_500_are_not_retried() -> None:
    for status in (400, 404, 500):
        mock, seen = flaky(status)
        vs = RemoteVectorSeam("http://x", transport=mock, retry=RetryPolicy(attempts=4, backoff=0.0))
        with pytest.raises(errors.VectorseamError):
            vs.collections()
        assert len(seen) == 1


def test_the_remote_client_retries_through_to_the_answer() -> None:
    mock, seen = flaky(503, 429)
    vs = RemoteVectorSeam("http://x", transport=mock, retry=RetryPolicy(attempts=3, backoff=0.0))
    assert vs.collections() == [] and len(seen) == 3


def test_the_async_transport_retries_too() -> None:
    async def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(503 if len(calls) < 3 else 200, json={"collections": []})

    calls: list[httpx.Request] = []
    transport = AsyncRetryTransport(httpx.MockTransport(handler), RetryPolicy(attempts=4, backoff=0.0))

    async def run() -> int:
        async with httpx.AsyncClient(transport=transport, base_url="http://x") as http:
            return (await http.get("/v1/collections")).status_code

    assert asyncio.run(run()) == 200 and len(calls) == 3
