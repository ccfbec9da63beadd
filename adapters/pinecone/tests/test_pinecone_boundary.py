"""The Pinecone adapter at the HTTP boundary: the real ``pinecone`` SDK against a real local server.

What is covered: the exact request bodies (namespaces, translated filters, batch sizes), parsing of
responses into Hits with the score convention, error mapping (4xx/5xx name the backend and URL),
the SDK's retries of transient 5xx/429, and the metadata/request limits.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
from pinecone_fake import FakePinecone, serve
from vectorseam_pinecone import PineconeStore, create_store
from vectorseam_pinecone.encoding import JSON_KEY, TEXT_KEY

from vectorseam import filters as F
from vectorseam.errors import (
    CollectionNotFoundError,
    ConfigError,
    DimensionMismatchError,
    FilterError,
    StoreUnavailableError,
    ValidationError,
)
from vectorseam.store import NativeRecommend
from vectorseam.stores.registry import open_store
from vectorseam.types import CollectionSpec, Record

DIM = 4


@pytest.fixture
def fake() -> Iterator[FakePinecone]:
    with serve(FakePinecone(dimension=DIM, metric="cosine")) as f:
        yield f


def make_store(fake: FakePinecone, **options: object) -> PineconeStore:
    return create_store(api_key="test-key", index_host=fake.url, namespace_prefix="t-", **options)


def vec(*xs: float) -> np.ndarray:
    return np.array(xs, dtype=np.float32)


RECORDS = [
    Record("a", vec(1, 0, 0, 0), "alpha", {"genre": "drama", "year": 2001, "tags": ["x", "y"]}),
    Record("b", vec(0.9, 0.1, 0, 0), "beta", {"genre": "comedy", "year": 2010, "score": 4.5}),
    Record("c", vec(0, 1, 0, 0), "gamma", {"genre": "drama", "year": 2020, "none": None,
                                             "nums": [1, 2]}),
]


@pytest.fixture
def store(fake: FakePinecone) -> PineconeStore:
    s = make_store(fake)
    s.ensure_collection(CollectionSpec("films", DIM, "cosine", {"embedder": "fp-1"}))
    s.upsert("films", RECORDS)
    fake.requests.clear()
    return s


def test_entry_point_is_registered(fake: FakePinecone) -> None:
    s = open_store("pinecone", {"api_key": "k", "index_host": fake.url})
    assert isinstance(s, PineconeStore)
    assert "not" not in s.capabilities.filter_operators and isinstance(s, NativeRecommend)


def test_collection_spec_is_kept_in_the_catalog_namespace(fake: FakePinecone) -> None:
    s = make_store(fake)
    info = s.ensure_collection(CollectionSpec("films", DIM, "cosine", {"embedder": "fp-1"}))
    assert (info.name, info.dimension, info.count) == ("films", DIM, 0)
    (catalog_upsert,) = fake.seen("/vectors/upsert")
    assert catalog_upsert.body["namespace"] == "t-_vectorseam_catalog"
    assert catalog_upsert.body["vectors"][0]["id"] == "films"
    # a fresh store (another process) reads the spec back from the server
    other = make_store(fake)
    (listed,) = other.collections()
    assert (listed.name, listed.metric, dict(listed.metadata)) == ("films", "cosine", {"embedder": "fp-1"})
    assert other.ensure_collection(CollectionSpec("films", DIM, "cosine")).metadata == {"embedder": "fp-1"}


def test_spec_must_match_the_index(fake: FakePinecone) -> None:
    s = make_store(fake)
    with pytest.raises(DimensionMismatchError, match="dimension 4"):
        s.ensure_collection(CollectionSpec("films", 8, "cosine"))
    with pytest.raises(ValidationError, match="'dotproduct'"):
        s.ensure_collection(CollectionSpec("films", DIM, "dot"))


def test_upsert_body_uses_namespace_and_reserved_keys(fake: FakePinecone, store: PineconeStore) -> None:
    store.upsert("films", [RECORDS[2]])
    (req,) = fake.seen("/vectors/upsert")
    assert req.body["namespace"] == "t-films"
    (item,) = req.body["vectors"]
    assert item["id"] == "c"
    assert item["values"] == pytest.approx([0, 1, 0, 0])
    meta = item["metadata"]
    assert meta["genre"] == "drama" and meta["year"] == 2020 and meta[TEXT_KEY] == "gamma"
    assert "none" not in meta and "nums" not in meta  # not storable natively -> JSON side-car
    assert meta[JSON_KEY] == '{"none":null,"nums":[1,2]}'
    assert req.headers.get("Api-Key") == "test-key"


def test_fetch_round_trips_records_exactly(store: PineconeStore) -> None:
    got = store.fetch("films", ["c", "missing", "a"])
    assert [r.id for r in got] == ["c", "a"]
    assert got[0].metadata == RECORDS[2].metadata and got[0].text == "gamma"
    assert isinstance(got[0].metadata["year"], int)
    np.testing.assert_allclose(got[1].vector, RECORDS[0].vector)


def test_unicode_ids_are_hashed_and_restored(fake: FakePinecone, store: PineconeStore) -> None:
    store.upsert("films", [Record("ünï/😀", vec(0, 0, 1, 0), "u", {})])
    sent = fake.seen("/vectors/upsert")[-1].body["vectors"][0]
    assert sent["id"].startswith("vsh~") and sent["metadata"]["_vs_id"] == "ünï/😀"
    assert [r.id for r in store.fetch("films", ["ünï/😀"])] == ["ünï/😀"]
    assert store.query("films", vec(0, 0, 1, 0), k=1)[0][0].id == "ünï/😀"


def test_query_sends_translated_filter_and_parses_hits(fake: FakePinecone, store: PineconeStore) -> None:
    flt = {"genre": "drama", "$or": [{"year": {"$gte": 2015}}, {"tags": {"$in": ["x"]}}]}
    (hits,) = store.query("films", vec(1, 0, 0, 0), k=5, filter=flt)
    (req,) = fake.seen("/query")
    assert req.body["namespace"] == "t-films" and req.body["topK"] == 5
    assert req.body["includeMetadata"] is True
    assert req.body["filter"] == {"$and": [
        {"genre": {"$eq": "drama"}},
        {"$or": [{"year": {"$gte": 2015}}, {"tags": {"$in": ["x"]}}]},
    ]}
    assert [h.id for h in hits] == ["a", "c"]
    assert hits[0].score == pytest.approx(1.0) and hits[1].score == pytest.approx(0.0, abs=1e-6)
    assert hits[0].text == "alpha" and hits[0].metadata == RECORDS[0].metadata


def test_many_query_vectors_one_request_each(fake: FakePinecone, store: PineconeStore) -> None:
    out = store.query("films", np.stack([vec(1, 0, 0, 0), vec(0, 1, 0, 0)]), k=1)
    assert [[h.id for h in hits] for hits in out] == [["a"], ["c"]]
    assert len(fake.seen("/query")) == 2


def test_not_is_refused_before_any_request(fake: FakePinecone, store: PineconeStore) -> None:
    for bad in ({"$not": {"genre": "drama"}}, {"genre": {"$exists": False}}, F.not_(F.eq("year", 1))):
        with pytest.raises(FilterError, match=r"\$not"):
            store.query("films", vec(1, 0, 0, 0), filter=bad)
        with pytest.raises(FilterError):
            store.count("films", filter=bad)
    with pytest.raises(FilterError, match="reserves"):
        store.query("films", vec(1, 0, 0, 0), filter={"_vs_text": "alpha"})
    assert fake.seen("/query") == []


@pytest.mark.parametrize(("metric", "query", "expected"), [
    ("euclidean", (0, 0, 0, 0), {"a": -1.0, "b": -np.sqrt(0.82), "c": -1.0}),  # Pinecone: squared L2
    ("dotproduct", (2, 0, 0, 0), {"a": 2.0, "b": 1.8, "c": 0.0}),
])
def test_scores_follow_the_higher_is_better_convention(
    metric: str, query: tuple[float, ...], expected: dict[str, float]
) -> None:
    ours = {"euclidean": "euclidean", "dotproduct": "dot"}[metric]
    with serve(FakePinecone(dimension=DIM, metric=metric)) as fake:
        s = make_store(fake)
        s.ensure_collection(CollectionSpec("m", DIM, ours))  # type: ignore[arg-type]
        s.upsert("m", RECORDS)
        (hits,) = s.query("m", vec(*query), k=3)
    assert {h.id: h.score for h in hits} == pytest.approx(expected)
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    # best first; the euclidean tie between a and c (both at distance 1) is broken by id
    assert [h.id for h in hits] == sorted(expected, key=lambda i: (-expected[i], i))


def test_count_uses_stats_and_emulates_filters(fake: FakePinecone, store: PineconeStore) -> None:
    assert store.count("films") == 3
    assert fake.seen("/describe_index_stats")[0].body == {}
    fake.requests.clear()
    assert store.count("films", {"genre": "drama"}) == 2
    assert store.count("films", {"year": {"$lt": 2000}}) == 0
    assert fake.seen("/describe_index_stats") == []  # serverless rejects filtered stats: not used
    assert fake.seen("/vectors/list")


def test_delete_by_ids_and_by_filter_report_removed_counts(fake: FakePinecone, store: PineconeStore) -> None:
    assert store.delete("films", ids=["a", "zzz"]) == 1
    assert fake.seen("/vectors/delete")[0].body == {"ids": ["a"], "namespace": "t-films"}
    assert store.delete("films", filter={"genre": "drama"}) == 1
    assert [r.id for r in store.fetch("films", ["a", "b", "c"])] == ["b"]
    with pytest.raises(ValidationError, match="exactly one"):
        store.delete("films")


def test_scan_pages_in_stable_order_with_filter(fake: FakePinecone, store: PineconeStore) -> None:
    store.upsert("films", [Record(f"r{i:03d}", vec(1, 1, 0, i), "", {"i": i}) for i in range(250)])
    pages = list(store.scan("films", batch_size=100, include_vectors=False))
    ids = [r.id for p in pages for r in p]
    assert [len(p) for p in pages] == [100, 100, 53] and ids == sorted(ids)
    assert len(fake.seen("/vectors/list")) == 3  # 100 ids per page
    odd = [r.id for p in store.scan("films", filter={"i": {"$in": [1, 3]}}) for r in p]
    assert odd == ["r001", "r003"]


def test_upserts_are_batched_under_request_limits(fake: FakePinecone, store: PineconeStore) -> None:
    s = make_store(fake, max_vectors_per_upsert=40)
    records = [Record(f"id{i}", vec(1, 0, 0, i), "t" * 10, {}) for i in range(100)]
    assert s.upsert("films", records) == 100
    assert [len(r.body["vectors"]) for r in fake.seen("/vectors/upsert")] == [40, 40, 20]
    fake.requests.clear()
    s = make_store(fake, max_request_bytes=20_000)
    big = [Record(f"big{i}", vec(1, 0, 0, i), "x" * 3_000, {}) for i in range(20)]
    s.upsert("films", big)
    sizes = [len(r.body["vectors"]) for r in fake.seen("/vectors/upsert")]
    assert sum(sizes) == 20 and len(sizes) >= 3 and max(sizes) <= 6


def test_oversized_metadata_names_the_record_and_writes_nothing(
    fake: FakePinecone, store: PineconeStore
) -> None:
    ok = Record("fine", vec(1, 0, 0, 0), "small", {})
    too_big = Record("huge-doc", vec(1, 0, 0, 0), "x" * 41_000, {})
    with pytest.raises(ValidationError, match=r"record 'huge-doc'.*40960 bytes"):
        store.upsert("films", [ok, too_big])
    assert fake.seen("/vectors/upsert") == []


def test_reserved_metadata_keys_and_zero_vectors_are_refused(store: PineconeStore) -> None:
    with pytest.raises(ValidationError, match=r"'_vs_text'.*reserved"):
        store.upsert("films", [Record("x", vec(1, 0, 0, 0), "", {"_vs_text": "no"})])
    with pytest.raises(ValidationError, match="zero vector"):
        store.upsert("films", [Record("z", vec(0, 0, 0, 0))])


def test_unknown_collection(store: PineconeStore) -> None:
    with pytest.raises(CollectionNotFoundError, match=r"'nope'.*existing: films"):
        store.query("nope", vec(1, 0, 0, 0))


def test_transient_errors_are_retried(fake: FakePinecone, store: PineconeStore) -> None:
    fake.failures += [("/query", 503, {"message": "unavailable"}), ("/query", 429, {"message": "slow"})]
    (hits,) = store.query("films", vec(1, 0, 0, 0), k=1)
    assert hits[0].id == "a"
    assert len(fake.seen("/query")) == 3


def test_persistent_5xx_names_backend_and_url(fake: FakePinecone, store: PineconeStore) -> None:
    fake.failures += [("/query", 500, {"message": "boom"})] * 4
    with pytest.raises(StoreUnavailableError, match=rf"pinecone query at {fake.url}.*HTTP 500"):
        store.query("films", vec(1, 0, 0, 0))


def test_client_errors_are_not_retried_and_are_clear(fake: FakePinecone, store: PineconeStore) -> None:
    fake.failures.append(("/query", 400, {"code": 3, "message": "bad filter", "details": []}))
    with pytest.raises(ValidationError, match=r"pinecone query at .*HTTP 400.*bad filter"):
        store.query("films", vec(1, 0, 0, 0))
    assert len(fake.seen("/query")) == 1
    fake.failures.append(("/describe_index_stats", 401, {"error": {"code": "UNAUTHENTICATED",
                                                                   "message": "Invalid API Key"}}))
    with pytest.raises(ConfigError, match="api_key"):
        store.count("films")


def test_recommend_native_by_id_and_averaged(fake: FakePinecone, store: PineconeStore) -> None:
    hits = store.recommend("films", ["a"], k=2)
    (req,) = fake.seen("/query")
    assert req.body["id"] == "a" and "vector" not in req.body
    assert [h.id for h in hits] == ["b", "c"]  # the positive itself is excluded
    fake.requests.clear()
    hits = store.recommend("films", ["a", "c"], negative_ids=["b"], k=5, filter={"genre": "comedy"})
    (req,) = fake.seen("/query")
    # 2 * mean(a, c) - b over unit vectors (cosine), the same rule as vectorseam.retrieval.recommend's generic path
    unit = {i: np.asarray(r.vector, dtype=np.float64) / np.linalg.norm(np.asarray(r.vector, dtype=np.float64))
            for i, r in ((r.id, r) for r in store.fetch("films", ["a", "b", "c"]))}
    expected = 2 * (unit["a"] + unit["c"]) / 2 - unit["b"]
    assert req.body["vector"] == pytest.approx(expected.tolist(), abs=1e-6)
    assert req.body["filter"] == {"genre": {"$eq": "comedy"}}
    assert hits == []  # the only comedy is the negative input


def test_drop_collection(fake: FakePinecone, store: PineconeStore) -> None:
    assert store.drop_collection("films") is True
    assert "t-films" not in fake.namespaces
    assert store.collections() == []
    assert store.drop_collection("films") is False


def test_options_are_checked() -> None:
    with pytest.raises(ConfigError, match=r"unknown options.*bogus"):
        create_store(api_key="k", index_host="http://127.0.0.1:1", bogus=1)
    with pytest.raises(ConfigError, match="index_host"):
        create_store(api_key="k")
    with pytest.raises(ConfigError, match=r"'create_index' must be true or false \(got 'yes'\)"):
        create_store(api_key="k", index_name="films", create_index="yes")
    with pytest.raises(ConfigError, match=r"'metric' must be 'cosine', 'dot' or 'euclidean' \(got 'dotproduct'\)"):
        create_store(api_key="k", index_host="http://127.0.0.1:1", metric="dotproduct")
    with pytest.raises(ConfigError, match=r"'timeout' must be a number of seconds > 0 \(got 0\)"):
        create_store(api_key="k", index_host="http://127.0.0.1:1", timeout=0)


def test_api_key_comes_from_the_environment_and_is_never_shown(
    fake: FakePinecone, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PINECONE_API_KEY", raising=False)
    with pytest.raises(ConfigError, match="needs api_key"):
        create_store(index_host=fake.url)
    monkeypatch.setenv("PINECONE_API_KEY", "key-from-env")
    store = create_store(index_host=fake.url, namespace_prefix="env-")
    assert store.collections() == []
    sent = [{k.lower(): v for k, v in r.headers.items()}.get("api-key") for r in fake.requests]
    assert sent and set(sent) == {"key-from-env"}
    with pytest.raises(ConfigError) as info:
        create_store(api_key="s3cret-key", index_host=fake.url, dimension=0)
    assert "s3cret" not in str(info.value) and "'dimension' must be an integer between 1 and 20000" in str(info.value)


def test_times_travel_as_hidden_epoch_microseconds(fake: FakePinecone, store: PineconeStore) -> None:
    from vectorseam_pinecone.filters import translate

    meta = {"day": "2024-01-01T05:30:00+05:30", "days": ["x", "2019-01-01", "2030-01-01"], "word": "2024-02-30"}
    store.upsert("films", [Record("t", vec(1, 1, 0, 0), "", meta)])  # type: ignore[arg-type]
    (req,) = fake.seen("/vectors/upsert")
    sent = req.body["vectors"][0]["metadata"]
    assert sent["_vs_tmin_day"] == sent["_vs_tmax_day"] == 1_704_067_200_000_000
    assert (sent["_vs_tmin_days"], sent["_vs_tmax_days"]) == (1_546_300_800_000_000, 1_893_456_000_000_000)
    assert not any(k.endswith("_word") for k in sent)  # not a time by the portable rule
    (back,) = store.fetch("films", ["t"])
    assert back.metadata == meta  # the epoch numbers stay hidden
    # "some element after t" is "the latest after t"; "before t" the earliest
    assert translate({"days": {"$gt": "2024-01-01"}}) == {"_vs_tmax_days": {"$gt": 1_704_067_200_000_000.0}}
    assert translate({"days": {"$lte": "2024-01-01"}}) == {"_vs_tmin_days": {"$lte": 1_704_067_200_000_000.0}}
    assert [h.id for h in store.query("films", vec(1, 1, 0, 0), k=9, filter={"days": {"$lt": "2020-01-01"}})[0]] == ["t"]
    assert store.query("films", vec(1, 1, 0, 0), k=9, filter={"day": {"$gt": "2024-01-01"}})[0] == []


def test_time_bounds_beyond_exact_float64_microseconds_are_refused(store: PineconeStore) -> None:
    for bound in ("1600-01-01", "2300-01-01", "9999-12-31"):
        with pytest.raises(FilterError, match="pinecone backend .* float64"):
            store.query("films", vec(1, 0, 0, 0), filter={"day": {"$gte": bound}})


def test_collection_info_fetches_one_catalog_record(fake: FakePinecone, store: PineconeStore) -> None:
    info = make_store(fake).collection_info("films")  # a fresh store: nothing cached
    assert (info.name, info.dimension, info.metric, dict(info.metadata), info.count) == (
        "films", DIM, "cosine", {"embedder": "fp-1"}, 3)
    assert not fake.seen("/vectors/list"), "collection_info must not list the catalog"
    with pytest.raises(CollectionNotFoundError) as err:
        store.collection_info("nope")
    assert str(err.value) == ("collection 'nope' does not exist in the pinecone store (existing: films); "
                              "create it with `vectorseam ingest FILE --collection nope`")
