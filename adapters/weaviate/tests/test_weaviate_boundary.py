"""The adapter against the real weaviate-client v4 talking HTTP + gRPC to an in-memory fake Weaviate.

No Weaviate server runs here, so ``weaviate_fake`` answers the REST and gRPC calls the client makes,
shaped like Weaviate 1.32 (see its docstring for what is modelled). These tests check what crosses
the wire (uuid5 ids, typed properties, tenants, distances) and how the adapter handles the server's
answers (scores, per-object batch errors, transient failures); the conformance suite at the end runs
every portable behaviour through the same boundary.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import grpc
import numpy as np
import pytest
import weaviate
import weaviate.connect.v4
from vectorseam_weaviate import WeaviateStore, create_store
from vectorseam_weaviate.schema import class_name
from vectorseam_weaviate.store import ID_NAMESPACE, object_uuid
from weaviate_fake import FakeWeaviate, objects_of

from vectorseam.errors import (
    CollectionNotFoundError,
    ConfigError,
    DimensionMismatchError,
    StoreUnavailableError,
    VectorseamError,
)
from vectorseam.filters import matches, parse_filter
from vectorseam.store import VectorStore
from vectorseam.testing.conformance import (
    DateFilterTests,
    ExactVectorTests,
    StoreConformance,
    catalog_records,
    random_vectors,
    reference_candidates,
    reference_top_k,
    vector_of,
)
from vectorseam.types import CollectionSpec, Metric, Record, Scalar


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeWeaviate]:
    with FakeWeaviate() as server:
        yield server


@pytest.fixture(scope="module")
def client(fake: FakeWeaviate) -> Iterator[weaviate.WeaviateClient]:
    """One real client for the module: connecting costs ~0.3 s (TLS context set-up inside the client)."""
    c = weaviate.connect_to_custom(
        http_host="127.0.0.1", http_port=fake.http_port, http_secure=False,
        grpc_host="127.0.0.1", grpc_port=fake.grpc_port, grpc_secure=False, skip_init_checks=True,
    )
    yield c
    c.close()


def new_store(client: weaviate.WeaviateClient, fake: FakeWeaviate, tenant: str | None = None,
              prefix: str | None = None, batch_size: int = 500) -> WeaviateStore:
    return WeaviateStore(client, fake.url, prefix=prefix or f"T{uuid.uuid4().hex[:8]}_", tenant=tenant,
                         batch_size=batch_size, retries=3, backoff_s=0.01)


@pytest.fixture
def store(client: weaviate.WeaviateClient, fake: FakeWeaviate) -> WeaviateStore:
    return new_store(client, fake)


def films(n: int = 12, dim: int = 4) -> list[Record]:
    vectors = random_vectors(n, dim, seed=5)
    tags: list[list[Scalar]] = [[], ["a"], ["a", "b"]]
    return [
        Record(f"film/{i}", vectors[i], f"text {i}",
               {"genre": ["drama", "comedy", "noir"][i % 3], "year": 1990 + i, "tags": tags[i % 3],
                "ok": i % 2 == 0, "note": None})
        for i in range(n)
    ]


QUERY = random_vectors(1, 4, seed=9)[0]


# -- connection -----------------------------------------------------------------------------------

def test_create_store_connects_with_init_checks(fake: FakeWeaviate, monkeypatch: pytest.MonkeyPatch) -> None:
    # the client's "newer client on PyPI?" probe goes to the fake instead of the internet
    monkeypatch.setattr(weaviate.connect.v4, "PYPI_PACKAGE_URL", f"{fake.url}/pypi/weaviate-client/json")
    fake.http_requests.clear()
    s = create_store(url=fake.url, grpc_port=fake.grpc_port, prefix="Conn_")
    try:
        s.ensure_collection(CollectionSpec("c1", 3))
        assert s.collections()[0].name == "c1"
    finally:
        s.drop_collection("c1")
        s.close()
    assert ("GET", "/v1/meta") in fake.http_requests
    assert ("POST", "/v1/schema") in fake.http_requests
    with pytest.raises(ConfigError, match="'url' must look like http://host:8080"):
        create_store(url="localhost:8080")
    with pytest.raises(ConfigError, match="unknown options for the weaviate store: 'colour'"):
        create_store(url=fake.url, colour="red")
    with pytest.raises(ConfigError, match=r"'retries' must be an integer between 0 and 20 \(got -1\)"):
        create_store(url=fake.url, retries=-1)
    with pytest.raises(ConfigError, match="'prefix' must start with an uppercase letter"):
        create_store(url=fake.url, prefix="vs_")
    with pytest.raises(ConfigError) as info:  # the URL may carry credentials: never echoed
        create_store(url="ftp://user:pw-secret@127.0.0.1:8080")
    assert "pw-secret" not in str(info.value)


# -- collections ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("metric", "distance"), [("cosine", "cosine"), ("dot", "dot"),
                                                  ("euclidean", "l2-squared")])
def test_collection_schema_and_spec_round_trip(
    client: weaviate.WeaviateClient, fake: FakeWeaviate, metric: Metric, distance: str
) -> None:
    s = new_store(client, fake)
    spec = CollectionSpec("my-films_2", 4, metric, {"embedder": "m@1"})
    info = s.ensure_collection(spec)
    assert (info.name, info.dimension, info.metric, dict(info.metadata), info.count) == (
        "my-films_2", 4, metric, {"embedder": "m@1"}, 0)
    cls = fake.classes[class_name(s._prefix, "my-films_2")]
    assert cls.config["vectorConfig"]["default"]["vectorIndexConfig"]["distance"] == distance
    assert cls.config["invertedIndexConfig"]["indexNullState"] is True  # needed by `exists`
    assert json.loads(cls.config["description"])["vectorseam"]["dimension"] == 4
    # a second store (a new process) reads the spec back from the server's schema
    again = new_store(client, fake, prefix=s._prefix)
    assert again.ensure_collection(spec).metadata == {"embedder": "m@1"}
    with pytest.raises(DimensionMismatchError, match="exists with dimension 4, but 5"):
        again.ensure_collection(CollectionSpec("my-films_2", 5, metric))
    assert again.drop_collection("my-films_2") and not again.drop_collection("my-films_2")
    assert class_name(s._prefix, "my-films_2") not in fake.classes


# -- writes ---------------------------------------------------------------------------------------

def test_upsert_sends_uuid5_ids_text_and_typed_properties(store: WeaviateStore, fake: FakeWeaviate) -> None:
    store.ensure_collection(CollectionSpec("films", 4))
    records = films()
    assert store.upsert("films", records) == len(records)
    cls = class_name(store._prefix, "films")
    stored = {o.uuid: o for o in objects_of(fake, cls)}
    assert set(stored) == {str(uuid.uuid5(ID_NAMESPACE, r.id)) for r in records}
    obj = stored[object_uuid("film/4")]
    assert obj.properties["vs_id"] == "film/4" and obj.properties["vs_text"] == "text 4"
    assert json.loads(obj.properties["vs_meta"]) == records[4].metadata  # exact, null included
    assert obj.properties["mt_genre"] == "comedy" and obj.properties["mn_year"] == 1994.0
    assert obj.properties["mta_tags"] == ["a"] and obj.properties["mb_ok"] is True
    assert "mt_note" not in obj.properties  # nulls get no typed property
    np.testing.assert_allclose(np.asarray(obj.vectors["default"], dtype=np.float64), vector_of(records[4]))
    types = {p["name"]: p for p in fake.classes[cls].config["properties"]}
    assert types["mt_genre"]["dataType"] == ["text"] and types["mt_genre"]["tokenization"] == "field"
    assert types["mn_year"]["dataType"] == ["number"] and types["mta_tags"]["dataType"] == ["text[]"]
    got = store.fetch("films", ["film/4", "missing", "film/0"])
    assert [r.id for r in got] == ["film/4", "film/0"]
    assert got[0].metadata == records[4].metadata and got[0].text == "text 4"
    np.testing.assert_allclose(np.asarray(got[0].vector), np.asarray(records[4].vector), rtol=1e-6)
    store.upsert("films", [Record("film/4", records[4].vector, "new", {"genre": "noir"})])
    assert store.fetch("films", ["film/4"])[0].metadata == {"genre": "noir"}
    assert store.count("films") == len(records)


def test_rejected_objects_raise_naming_record_ids(store: WeaviateStore, fake: FakeWeaviate) -> None:
    store.ensure_collection(CollectionSpec("films", 4))
    records = films(6)
    fake.reject_objects[object_uuid("film/2")] = "invalid number property 'mn_year': boom"
    try:
        with pytest.raises(VectorseamError, match=r"1 of 6 objects were rejected \(record 'film/2': invalid "
                                                  r"number property 'mn_year': boom\)"):
            store.upsert("films", records)
        # a batch whose every object fails: the client raises instead of returning errors
        with pytest.raises(VectorseamError, match=r"(?s)all 1 objects were rejected \(records 'film/2'\).*boom"):
            store.upsert("films", [records[2]])
    finally:
        fake.reject_objects.clear()
    assert store.fetch("films", ["film/2"]) == []


def test_batches_are_chunked(client: weaviate.WeaviateClient, fake: FakeWeaviate) -> None:
    s = new_store(client, fake, batch_size=5)
    s.ensure_collection(CollectionSpec("films", 4))
    before = len([c for c in fake.calls if c.method == "BatchObjects"])
    assert s.upsert("films", films(12)) == 12
    assert len([c for c in fake.calls if c.method == "BatchObjects"]) - before == 3
    assert s.count("films") == 12


FILTERS = [
    {"genre": "drama"}, {"genre": {"$ne": "drama"}}, {"year": {"$gte": 1995}}, {"tags": "b"},
    {"tags": {"$exists": True}}, {"note": {"$exists": False}}, {"ok": True}, {"ok": 1},
    {"$or": [{"genre": "noir"}, {"year": {"$lt": 1992}}]}, {"$not": {"tags": {"$in": ["a", "x"]}}},
    {"year": {"$nin": [1990, 1991]}, "genre": {"$in": ["comedy", "noir"]}},
]


@pytest.mark.parametrize("spec", FILTERS, ids=[json.dumps(f) for f in FILTERS])
def test_filters_evaluated_by_the_server_match_reference(store: WeaviateStore, spec: dict[str, object]) -> None:
    store.ensure_collection(CollectionSpec("films", 4))
    records = films()
    store.upsert("films", records)
    tree = parse_filter(spec)
    want = sorted(r.id for r in records if matches(tree, r.metadata))
    assert store.count("films", spec) == len(want)
    assert sorted(h.id for h in store.query("films", QUERY, k=50, filter=spec)[0]) == want
    assert store.delete("films", filter=spec) == len(want)
    assert store.count("films") == len(records) - len(want)


def test_delete_by_ids(store: WeaviateStore) -> None:
    store.ensure_collection(CollectionSpec("films", 4))
    store.upsert("films", films())
    assert store.delete("films", ids=["film/1", "film/1", "nope", "film/3"]) == 2
    assert store.count("films") == 10
    assert store.fetch("films", ["film/1", "film/3", "film/4"])[0].id == "film/4"


def test_scan_pages_with_cursor(store: WeaviateStore, fake: FakeWeaviate) -> None:
    store.ensure_collection(CollectionSpec("films", 4))
    records = films(11)
    store.upsert("films", records)
    pages = list(store.scan("films", batch_size=4))
    assert [len(p) for p in pages] == [4, 4, 3]
    assert sorted(r.id for p in pages for r in p) == sorted(r.id for r in records)
    filtered = [r.id for p in store.scan("films", batch_size=4, filter={"genre": "noir"}) for r in p]
    assert sorted(filtered) == sorted(r.id for r in records if r.metadata["genre"] == "noir")


# -- queries --------------------------------------------------------------------------------------

@pytest.mark.parametrize("metric", ["cosine", "dot", "euclidean"])
def test_query_converts_distances_to_scores(store: WeaviateStore, metric: Metric) -> None:
    """Weaviate answers distances (cosine 1-cos, dot -dot, l2-squared); scores must be the reference."""
    store.ensure_collection(CollectionSpec("films", 4, metric))
    records = films()
    store.upsert("films", records)
    query = random_vectors(1, 4, seed=9)[0]
    hits = store.query("films", query, k=5, include_vectors=True)[0]
    want = reference_top_k(reference_candidates(records, query, metric), 5)
    assert [h.id for h in hits] == [i for i, _ in want]
    np.testing.assert_allclose([h.score for h in hits], [s for _, s in want], rtol=1e-5, atol=1e-5)
    assert hits[0].vector is not None and hits[0].text.startswith("text ")


def test_recommend_one_positive_is_native_near_object(store: WeaviateStore, fake: FakeWeaviate) -> None:
    store.ensure_collection(CollectionSpec("films", 4))
    records = films()
    store.upsert("films", records)
    before = len(fake.calls)
    hits = store.recommend("films", ["film/0"], k=3)
    searches = [c.kind for c in fake.calls[before:] if c.method == "Search"]
    assert "near_object" in searches
    want = reference_top_k(reference_candidates(records[1:], np.asarray(records[0].vector), "cosine"), 3)
    assert [h.id for h in hits] == [i for i, _ in want]
    before = len(fake.calls)
    two = store.recommend("films", ["film/0", "film/1"], negative_ids=["film/2"], k=3)
    assert "near_vector" in [c.kind for c in fake.calls[before:] if c.method == "Search"]
    assert len(two) == 3 and not {h.id for h in two} & {"film/0", "film/1", "film/2"}


# -- tenants --------------------------------------------------------------------------------------

def test_tenant_option_routes_every_request_to_the_tenant(
    client: weaviate.WeaviateClient, fake: FakeWeaviate
) -> None:
    acme = new_store(client, fake, tenant="acme")
    acme.ensure_collection(CollectionSpec("films", 4))
    cls = class_name(acme._prefix, "films")
    assert fake.classes[cls].multi_tenant and "acme" in fake.classes[cls].shards
    before = len(fake.calls)
    records = films()
    acme.upsert("films", records)
    assert acme.count("films", {"genre": "noir"}) == 4
    assert len(acme.query("films", QUERY, k=3)[0]) == 3
    assert acme.delete("films", ids=["film/0"]) == 1
    data_calls = [c for c in fake.calls[before:] if c.method != "TenantsGet"]
    assert data_calls and all(c.tenant == "acme" and c.collection == cls for c in data_calls)
    other = new_store(client, fake, tenant="other", prefix=acme._prefix)
    other.ensure_collection(CollectionSpec("films", 4))
    assert other.count("films") == 0 and acme.count("films") == len(records) - 1
    assert len(list(objects_of(fake, cls, "acme"))) == len(records) - 1


# -- failures -------------------------------------------------------------------------------------

def test_http_503_is_retried_then_reported_as_unavailable(
    client: weaviate.WeaviateClient, fake: FakeWeaviate
) -> None:
    s = new_store(client, fake)
    fake.fail_http("GET", "/v1/schema", 503, times=2)
    assert s.collections() == []  # two 503s, then an answer: within the retries
    fake.fail_http("GET", "/v1/schema", 503, times=10)
    try:
        with pytest.raises(StoreUnavailableError, match=rf"weaviate list collections at {fake.url} failed "
                                                        r"after 4 attempts"):
            s.collections()
    finally:
        fake._http_failures.clear()


def test_grpc_unavailable_is_retried_then_reported(store: WeaviateStore, fake: FakeWeaviate) -> None:
    store.ensure_collection(CollectionSpec("films", 4))
    store.upsert("films", films())
    fake.fail_grpc("BatchDelete", grpc.StatusCode.UNAVAILABLE, times=2)
    assert store.delete("films", ids=["film/1"]) == 1
    fake.fail_grpc("BatchDelete", grpc.StatusCode.UNAVAILABLE, times=10)
    try:
        with pytest.raises(StoreUnavailableError, match=rf"(?s)weaviate delete_many at {fake.url} failed after 4 "
                                                        r"attempts.*UNAVAILABLE"):
            store.delete("films", ids=["film/2"])
    finally:
        fake._grpc_failures.clear()
    # a search that meets one UNAVAILABLE is retried (by the client's own backoff, 1 s) and answers
    fake.fail_grpc("Search", grpc.StatusCode.UNAVAILABLE, times=1)
    assert len(store.query("films", QUERY, k=2)[0]) == 2
    # a non-transient gRPC error is not retried and names the operation and URL
    fake.fail_grpc("Aggregate", grpc.StatusCode.INVALID_ARGUMENT, times=1)
    before = len([c for c in fake.calls if c.method == "Aggregate"])
    with pytest.raises(VectorseamError, match=rf"(?s)weaviate aggregate at {fake.url} failed: .*INVALID_ARGUMENT"):
        store.count("films")
    assert len([c for c in fake.calls if c.method == "Aggregate"]) - before == 1


# -- the whole portable contract through the boundary ----------------------------------------------

class TestWeaviateFakeConformance(StoreConformance, DateFilterTests, ExactVectorTests):
    # the fake searches by brute force in Python; 2,000 records still span four insert_many batches
    large_batch_size = 2000

    @pytest.fixture
    def store(self, client: weaviate.WeaviateClient, fake: FakeWeaviate) -> Iterator[VectorStore]:
        yield new_store(client, fake)

    def reopen(self, store: VectorStore) -> VectorStore:
        """A new adapter on the same prefix: specs and typed properties are re-read from the server."""
        assert isinstance(store, WeaviateStore)
        return WeaviateStore(store._client, store._url, prefix=store._prefix, backoff_s=0.01)


def test_catalog_filters_agree_with_reference_after_reopen(
    client: weaviate.WeaviateClient, fake: FakeWeaviate
) -> None:
    """Typed properties learnt from the schema (not from this process's writes) drive the filters."""
    s = new_store(client, fake)
    s.ensure_collection(CollectionSpec("cat", 8))
    records = catalog_records()
    s.upsert("cat", records)
    fresh = new_store(client, fake, prefix=s._prefix)
    for spec in ({"color": "red"}, {"size": {"$gt": 4}}, {"in_stock": False}, {"tags": {"$nin": ["a"]}}):
        tree = parse_filter(spec)
        assert fresh.count("cat", spec) == sum(matches(tree, r.metadata) for r in records), spec


def test_collection_info_reads_one_class(store: WeaviateStore, client: weaviate.WeaviateClient,
                                          fake: FakeWeaviate) -> None:
    store.ensure_collection(CollectionSpec("films", 4, "dot", {"embedder": "fp-1"}))
    store.upsert("films", films(5))
    fresh = new_store(client, fake, prefix=store._prefix)  # another process: nothing cached
    info = fresh.collection_info("films")
    assert (info.name, info.dimension, info.metric, dict(info.metadata), info.count) == (
        "films", 4, "dot", {"embedder": "fp-1"}, 5)
    with pytest.raises(CollectionNotFoundError) as err:
        fresh.collection_info("nope")
    assert str(err.value) == ("collection 'nope' does not exist in the weaviate store (existing: films); "
                              "create it with `vectorseam ingest FILE --collection nope`")
