"""Behaviour specific to the Qdrant adapter: id mapping, storage layout, recommendations, options.

The conformance suite covers the protocol; these tests pin what only this adapter promises.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from qdrant_client import QdrantClient, models
from vectorseam_qdrant import layout
from vectorseam_qdrant.filters import index_schemas, to_qdrant
from vectorseam_qdrant.store import QdrantStore, create_store

from vectorseam.errors import (
    CollectionNotFoundError,
    ConfigError,
    FilterError,
    UnsupportedOperationError,
    ValidationError,
)
from vectorseam.filters import and_, eq, exists, gt, in_, matches, parse_filter
from vectorseam.keywords import term_index
from vectorseam.store import NativeRecommend
from vectorseam.stores.registry import available_stores, open_store
from vectorseam.testing import assert_ranking, make_records, random_vectors
from vectorseam.types import METRICS, CollectionSpec, Metric, Record


@pytest.fixture
def store() -> Iterator[QdrantStore]:
    s = create_store()
    yield s
    s.close()


# -- ids and layout --------------------------------------------------------------------------------

def test_point_ids_are_stable_uuid5() -> None:
    # Pinned values: changing the namespace or the scheme would orphan every stored point.
    assert layout.point_id("r0001") == str(uuid.uuid5(layout.ID_NAMESPACE, "r0001"))
    assert layout.point_id("r0001") == "811b6bd5-2ffa-5812-a8a4-b1a8240af84a"
    assert layout.point_id("ünïcode 🙂") == "8d456f25-c59d-5e9b-a69f-69cb02d9bc99"
    assert layout.point_id("a") != layout.point_id("A")
    assert uuid.UUID(layout.point_id("x" * 512)).version == 5


def test_points_on_disk_use_the_documented_layout(tmp_path: Path) -> None:
    """Open the folder with a bare client: uuid5 point ids, internal keys, user metadata nested."""
    s = create_store(path=str(tmp_path))
    s.ensure_collection(CollectionSpec("layout", 3, "cosine", {"embedder": "fp-1"}))
    written = np.array([3.0, 0.1, 4.0], np.float32)
    user = {"_vs_id": "user value", "a.b": 1, "day": "2024-01-01T05:30:00+05:30", "days": ["x", "2024-02-29"]}
    s.upsert("layout", [Record("doc-1", written, "hello", user)])  # type: ignore[arg-type]
    s.close()
    raw = QdrantClient(path=str(tmp_path))
    try:
        (point,) = raw.retrieve("layout", [layout.point_id("doc-1")], with_payload=True, with_vectors=True)
        assert point.payload == {
            "_vs_id": "doc-1",
            "_vs_text": "hello",
            "_vs_meta": user,
            "_vs_vec": base64.b64encode(written.astype("<f4").tobytes()).decode(),  # as written, bit for bit
            # the times of the metadata, as UTC text: what DatetimeRange filters read
            "_vs_time": {"day": "2024-01-01T00:00:00.000000Z", "days": ["2024-02-29T00:00:00.000000Z"]},
        }
        assert isinstance(point.vector, dict)  # the dense vector is the unnamed one; BM25 the sparse "bm25"
        np.testing.assert_allclose(np.asarray(point.vector[""]), written / np.linalg.norm(written), rtol=1e-6)
        bm25 = point.vector["bm25"]
        assert isinstance(bm25, models.SparseVector)
        assert bm25.indices == [term_index("hello")] and bm25.values == pytest.approx([1 / (1 + 1.5)])
        meta = raw.get_collection("layout").config.metadata
        assert meta == {"vectorseam": {"format": 1, "dimension": 3, "metric": "cosine",
                                       "metadata": {"embedder": "fp-1"}, "keywords": {"avgdl": 1.0}}}
    finally:
        raw.close()
    again = create_store(path=str(tmp_path))
    try:
        (rec,) = again.fetch("layout", ["doc-1"])
        assert np.array_equal(rec.vector, written)  # type: ignore[arg-type]
        assert rec.metadata == user
        # A user key that looks like an internal one or a nested path is still just that key.
        assert again.count("layout", {"_vs_id": "user value"}) == 1
        assert again.count("layout", {"a.b": 1}) == 1
        assert again.count("layout", {"a": {"$exists": True}}) == 0
    finally:
        again.close()


def test_points_of_the_earlier_layout_still_read(tmp_path: Path) -> None:
    """Cosine points written before ``_vs_vec`` (unit vector plus ``_vs_norm``, no time mirror) still
    fetch, query and filter; their vectors come back as unit vector times norm, as they always did."""
    s = create_store(path=str(tmp_path))
    s.ensure_collection(CollectionSpec("old", 3, "cosine"))
    s.close()
    raw = QdrantClient(path=str(tmp_path))
    unit = np.array([0.6, 0.0, 0.8], np.float32)
    raw.upsert("old", [models.PointStruct(
        id=layout.point_id("legacy"), vector=unit.tolist(),
        payload={"_vs_id": "legacy", "_vs_text": "t", "_vs_meta": {"day": "2024-01-01"}, "_vs_norm": 5.0},
    )])
    raw.close()
    again = create_store(path=str(tmp_path))
    try:
        (rec,) = again.fetch("old", ["legacy"])
        assert np.array_equal(rec.vector, unit * np.float32(5.0))  # type: ignore[arg-type]
        (hit,) = again.query("old", [3.0, 0.0, 4.0], k=1, include_vectors=True)[0]
        assert hit.id == "legacy" and np.array_equal(hit.vector, unit * np.float32(5.0))  # type: ignore[arg-type]
        assert again.count("old", {"day": "2024-01-01"}) == 1
        # no time mirror yet: time ranges see nothing until the point is written again
        assert again.count("old", {"day": {"$gte": "2000-01-01"}}) == 0
        again.upsert("old", [Record("legacy", np.array([3.0, 0.0, 4.0], np.float32), "t", {"day": "2024-01-01"})])
        assert again.count("old", {"day": {"$gte": "2000-01-01"}}) == 1
    finally:
        again.close()


def test_time_ranges_compare_the_mirror_with_datetime_ranges() -> None:
    tree = parse_filter({"day": {"$gte": "2024-01-01T05:30:00+05:30"}})
    cond = to_qdrant(tree).must[0]  # type: ignore[union-attr, index]
    assert cond.key == '_vs_time."day"'
    assert cond.range == models.DatetimeRange(gte=datetime(2024, 1, 1, tzinfo=UTC))
    assert index_schemas(tree) == {'_vs_time."day"': models.PayloadSchemaType.DATETIME}
    # Qdrant itself reads "2024-01-01 10:00" as a time; the portable rule does not, and the mirror
    # never holds it, so the two agree.
    assert layout.time_mirror({"a": "2024-01-01 10:00", "b": ["x", 3], "c": "2024-01-01T10:00:00"}) == {
        "c": "2024-01-01T10:00:00.000000Z"
    }
    # an instant outside years 1-9999 in UTC keeps its offset form, which Qdrant and Python both read
    assert layout.time_text("0001-01-01T00:30:00+01:00") == "0001-01-01T00:30:00+01:00"


def test_reopening_a_path_store_keeps_collections_and_data(tmp_path: Path) -> None:
    vectors = random_vectors(30, 6, seed=1)
    records = make_records(vectors, metadata=lambda i: {"i": i, "tag": "even" if i % 2 == 0 else "odd"})
    s = create_store(path=str(tmp_path / "db"))
    s.ensure_collection(CollectionSpec("keep", 6, "euclidean", {"embedder": "fp-2"}))
    s.upsert("keep", records)
    s.delete("keep", ids=["r0003"])
    before = s.query("keep", vectors[5], k=5)[0]
    s.close()

    s = create_store(path=str(tmp_path / "db"))
    try:
        (info,) = s.collections()
        assert (info.name, info.dimension, info.metric, dict(info.metadata), info.count) == (
            "keep", 6, "euclidean", {"embedder": "fp-2"}, 29)
        after = s.query("keep", vectors[5], k=5)[0]
        assert [(h.id, round(h.score, 5)) for h in after] == [(h.id, round(h.score, 5)) for h in before]
        assert s.count("keep", {"tag": "even"}) == 15
        assert s.fetch("keep", ["r0003"]) == []
    finally:
        s.close()


def test_second_process_on_the_same_folder_gets_a_clear_error(tmp_path: Path) -> None:
    from vectorseam.errors import StoreUnavailableError

    first = create_store(path=str(tmp_path))
    try:
        with pytest.raises(StoreUnavailableError, match="one process per folder"):
            create_store(path=str(tmp_path))
    finally:
        first.close()


def test_foreign_collections_are_left_alone(tmp_path: Path) -> None:
    raw = QdrantClient(path=str(tmp_path))
    raw.create_collection("foreign", vectors_config=models.VectorParams(size=4, distance=models.Distance.DOT))
    raw.upsert("foreign", [models.PointStruct(id=1, vector=[1.0, 0, 0, 0], payload={"x": 1})])
    raw.close()
    s = create_store(path=str(tmp_path))
    try:
        assert s.collections() == []
        with pytest.raises(ValidationError, match="not created by vectorseam"):
            s.ensure_collection(CollectionSpec("foreign", 4, "dot"))
        with pytest.raises(ValidationError, match="not created by vectorseam"):
            s.drop_collection("foreign")
        with pytest.raises(ValidationError, match="not created by vectorseam"):
            s.count("foreign")
    finally:
        s.close()
    raw = QdrantClient(path=str(tmp_path))
    try:
        assert raw.count("foreign").count == 1
    finally:
        raw.close()


def test_cosine_zero_vector_rejected_before_any_write(store: QdrantStore) -> None:
    store.ensure_collection(CollectionSpec("cos", 3, "cosine"))
    good = Record("good", np.ones(3, np.float32))
    with pytest.raises(ValidationError, match="zero vector"):
        store.upsert("cos", [good, Record("zero", np.zeros(3, np.float32))])
    assert store.count("cos") == 0
    store.ensure_collection(CollectionSpec("dotc", 3, "dot"))
    assert store.upsert("dotc", [Record("zero", np.zeros(3, np.float32))]) == 1


def test_integers_beyond_64_bits_rejected(store: QdrantStore) -> None:
    store.ensure_collection(CollectionSpec("big", 2, "dot"))
    with pytest.raises(ValidationError, match="64-bit"):
        store.upsert("big", [Record("ok", np.ones(2, np.float32), metadata={"n": 1}),
                             Record("huge", np.ones(2, np.float32), metadata={"n": [1, 2**64]})])
    assert store.count("big") == 0
    assert store.upsert("big", [Record("edge", np.ones(2, np.float32), metadata={"n": 2**63 - 1})]) == 1
    assert store.fetch("big", ["edge"])[0].metadata == {"n": 2**63 - 1}


# -- filters ---------------------------------------------------------------------------------------

def test_filter_on_key_qdrant_paths_cannot_express_raises(store: QdrantStore) -> None:
    store.ensure_collection(CollectionSpec("keys", 2, "dot"))
    store.upsert("keys", [Record("a", np.ones(2, np.float32), metadata={'say "hi"': 1})])
    with pytest.raises(FilterError, match="double quote"):
        store.count("keys", {'say "hi"': 1})
    with pytest.raises(FilterError, match="double quote"):
        store.query("keys", np.ones(2, np.float32), filter={"back\\slash": {"$exists": True}})


def test_large_int_equality_is_exact(store: QdrantStore) -> None:
    """2**53 + 1 has no float64; equality must not fall back to a float comparison."""
    big = 2**53 + 1
    store.ensure_collection(CollectionSpec("ints", 2, "dot"))
    store.upsert("ints", [
        Record("exact", np.ones(2, np.float32), metadata={"n": big}),
        Record("neighbour", np.ones(2, np.float32), metadata={"n": big - 1}),
        Record("float", np.ones(2, np.float32), metadata={"n": float(big)}),
    ])
    assert [h.id for h in store.query("ints", np.ones(2, np.float32), filter={"n": big})[0]] == ["exact"]
    assert store.count("ints", {"n": {"$ne": big}}) == 2
    assert store.count("ints", {"n": {"$in": [big, 7]}}) == 1


def test_filter_translation_shapes() -> None:
    """The numeric-equality and exists rules, checked on the translated tree itself."""
    f = to_qdrant(eq("n", 3))
    assert f is not None and f.must is not None
    (cond,) = f.must
    assert isinstance(cond, models.FieldCondition)
    assert cond.key == '_vs_meta."n"' and cond.range == models.Range(gte=3.0, lte=3.0) and cond.match is None
    f = to_qdrant(eq("flag", True))
    assert f is not None and f.must is not None
    assert f.must[0].match == models.MatchValue(value=True)  # type: ignore[index, union-attr]
    f = to_qdrant(exists("k"))
    assert f is not None and f.must_not is not None
    assert f.must_not[0] == models.IsEmptyCondition(  # type: ignore[index]
        is_empty=models.PayloadField(key='_vs_meta."k"'))
    assert to_qdrant(None) is None


def test_payload_index_schemas_follow_value_types() -> None:
    tree = and_(eq("color", "red"), gt("size", 3), in_("flag", [True]), exists("tags"), eq("color", 1))
    assert index_schemas(tree) == {
        '_vs_meta."color"': models.PayloadSchemaType.KEYWORD,
        '_vs_meta."size"': models.PayloadSchemaType.FLOAT,
        '_vs_meta."flag"': models.PayloadSchemaType.BOOL,
    }
    assert index_schemas(None) == {}


def test_local_mode_creates_no_payload_indexes(store: QdrantStore) -> None:
    store.ensure_collection(CollectionSpec("noidx", 2, "dot"))
    store.upsert("noidx", [Record("a", np.ones(2, np.float32), metadata={"color": "red"})])
    assert store.count("noidx", {"color": "red"}) == 1
    assert store.indexed_fields("noidx") == {}


# Property test: random filters over mixed-type metadata must select exactly what filters.matches does.
hypothesis = pytest.importorskip("hypothesis", reason="hypothesis is needed for the property test")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_SCALARS = [0, 1, 2, -1, 10**12, 0.0, 1.0, 1.5, 2.0, -0.5, True, False, "x", "y", "", "X"]
_KEYS = ["a", "b", "c"]


def _property_records() -> list[Record]:
    rng = np.random.default_rng(7)
    records = []
    for i in range(80):
        meta: dict[str, object] = {}
        for key in _KEYS:
            roll = rng.integers(0, 6)
            if roll == 0:
                continue  # absent
            if roll == 1:
                meta[key] = None
            elif roll == 2:
                meta[key] = [_SCALARS[j] for j in rng.choice(len(_SCALARS), size=int(rng.integers(0, 3)))]
            else:
                meta[key] = _SCALARS[int(rng.integers(0, len(_SCALARS)))]
        records.append(Record(f"h{i:03d}", rng.normal(size=4).astype(np.float32), "", meta))  # type: ignore[arg-type]
    return records


_scalar = st.sampled_from(_SCALARS)
_number = st.sampled_from([v for v in _SCALARS if isinstance(v, int | float) and not isinstance(v, bool)])
_key = st.sampled_from(_KEYS)
_leaf = st.one_of(
    st.builds(lambda k, op, v: {k: {op: v}}, _key, st.sampled_from(["$eq", "$ne"]), _scalar),
    st.builds(lambda k, op, v: {k: {op: v}}, _key, st.sampled_from(["$gt", "$gte", "$lt", "$lte"]), _number),
    st.builds(lambda k, op, vs: {k: {op: vs}}, _key, st.sampled_from(["$in", "$nin"]),
              st.lists(_scalar, min_size=1, max_size=4)),
    st.builds(lambda k, b: {k: {"$exists": b}}, _key, st.booleans()),
)
_filters = st.recursive(
    _leaf,
    lambda inner: st.one_of(
        st.builds(lambda cs: {"$and": cs}, st.lists(inner, min_size=1, max_size=3)),
        st.builds(lambda cs: {"$or": cs}, st.lists(inner, min_size=1, max_size=3)),
        st.builds(lambda c: {"$not": c}, inner),
    ),
    max_leaves=6,
)


@pytest.fixture(scope="module")
def property_store() -> Iterator[tuple[QdrantStore, list[Record]]]:
    s = create_store()
    records = _property_records()
    s.ensure_collection(CollectionSpec("prop", 4, "dot"))
    s.upsert("prop", records)
    yield s, records
    s.close()


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(spec=_filters)
def test_random_filters_agree_with_reference(
    property_store: tuple[QdrantStore, list[Record]], spec: dict[str, Any]
) -> None:
    s, records = property_store
    tree = parse_filter(spec)
    expected = sorted(r.id for r in records if matches(tree, r.metadata))
    pages = s.scan("prop", batch_size=100, filter=spec, include_vectors=False)
    got = sorted(r.id for page in pages for r in page)
    assert got == expected, spec


# -- recommendations -------------------------------------------------------------------------------

def _fast_sigmoid_scaled(x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    with np.errstate(invalid="ignore"):  # -inf (no examples on that side) only feeds the unchosen branch
        return 0.5 * (x / (1.0 + np.abs(x)) + 1.0)


def _similarity(
    matrix: npt.NDArray[np.float64], q: npt.NDArray[np.float64], metric: Metric
) -> npt.NDArray[np.float64]:
    """Qdrant's internal similarity: cosine on unit vectors, dot, or the negated *squared* L2 distance."""
    if metric == "euclidean":
        return -((matrix - q[None, :]) ** 2).sum(axis=1)  # type: ignore[no-any-return]
    return matrix @ q


def brute_force_recommend(
    records: Sequence[Record], pos: Sequence[str], neg: Sequence[str], metric: Metric, strategy: str,
    keep: Sequence[str] | None = None,
) -> dict[str, float]:
    """Every candidate with the score Qdrant's recommendation defines, computed in float64."""
    by_id = {r.id: np.asarray(r.vector, np.float64) for r in records}
    if metric == "cosine":  # Qdrant keeps (and recommends from) unit vectors in cosine collections
        by_id = {i: v / np.linalg.norm(v) for i, v in by_id.items()}
    cands = [i for i in sorted(by_id) if i not in set(pos) | set(neg) and (keep is None or i in keep)]
    matrix = np.stack([by_id[i] for i in cands])
    if strategy == "average_vector":
        mean_pos = np.mean([by_id[i] for i in pos], axis=0)
        q = 2 * mean_pos - np.mean([by_id[i] for i in neg], axis=0) if neg else mean_pos
        if metric == "euclidean":
            scores = -np.linalg.norm(matrix - q[None, :], axis=1)
        elif metric == "cosine":
            scores = matrix @ (q / np.linalg.norm(q))
        else:
            scores = matrix @ q
    else:
        def best(ids: Sequence[str]) -> npt.NDArray[np.float64]:
            if not ids:
                return np.full(len(cands), -np.inf)
            return np.max([_similarity(matrix, by_id[i], metric) for i in ids], axis=0)  # type: ignore[no-any-return]

        p, n = best(pos), best(neg)
        scores = np.where(p > n, _fast_sigmoid_scaled(p), -_fast_sigmoid_scaled(n))
    return {i: float(s) for i, s in zip(cands, scores, strict=True)}


@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("strategy", ["average_vector", "best_score"])
def test_recommend_matches_brute_force(store: QdrantStore, metric: Metric, strategy: str) -> None:
    vectors = random_vectors(60, 12, seed=3, scale=0.4)
    records = make_records(vectors, metadata=lambda i: {"group": i % 3})
    store.ensure_collection(CollectionSpec("rec", 12, metric))
    store.upsert("rec", records)
    cases: list[tuple[list[str], list[str]]] = [
        (["r0001"], []),
        (["r0001", "r0007", "r0020"], ["r0003"]),
        (["r0010"], ["r0011", "r0012"]),
    ]
    if strategy == "best_score":
        cases.append(([], ["r0005"]))  # negatives only: "least like this"
        if metric == "euclidean":  # Qdrant would score squared distances: refused, the generic path answers
            with pytest.raises(UnsupportedOperationError, match="squared distances"):
                store.recommend("rec", ["r0001"], k=8, strategy=strategy)  # type: ignore[arg-type]
            return
    for pos, neg in cases:
        hits = store.recommend("rec", pos, neg, k=8, strategy=strategy)  # type: ignore[arg-type]
        assert not {h.id for h in hits} & set(pos + neg), "examples must not be recommended back"
        assert_ranking(hits, brute_force_recommend(records, pos, neg, metric, strategy), 8)
    # With a filter, only matching records are candidates.
    keep = [r.id for r in records if r.metadata["group"] == 1]
    hits = store.recommend("rec", ["r0001"], ["r0002"], k=5, filter={"group": 1}, strategy=strategy)  # type: ignore[arg-type]
    assert_ranking(hits, brute_force_recommend(records, ["r0001"], ["r0002"], metric, strategy, keep), 5)


def test_recommend_returns_records_and_vectors(store: QdrantStore) -> None:
    records = make_records(random_vectors(10, 4, seed=5, scale=2.0))
    store.ensure_collection(CollectionSpec("recv", 4, "cosine"))
    store.upsert("recv", records)
    by_id = {r.id: r for r in records}
    hits = store.recommend("recv", ["r0000"], k=3, include_vectors=True)
    assert len(hits) == 3
    for h in hits:
        assert h.text == by_id[h.id].text and h.metadata == by_id[h.id].metadata
        np.testing.assert_allclose(h.vector, by_id[h.id].vector, rtol=1e-5, atol=1e-5)  # type: ignore[arg-type]


def test_recommend_input_errors(store: QdrantStore) -> None:
    store.ensure_collection(CollectionSpec("rece", 4, "dot"))
    store.upsert("rece", make_records(random_vectors(5, 4, seed=6)))
    with pytest.raises(ValidationError, match="'nope'"):
        store.recommend("rece", ["r0000", "nope"])
    with pytest.raises(ValidationError, match="at least one positive"):
        store.recommend("rece", [], ["r0001"])
    with pytest.raises(ValidationError, match="strategy"):
        store.recommend("rece", ["r0000"], strategy="sum_scores")  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        store.recommend("rece", ["r0000"], k=0)


def test_recommend_ties_at_the_cut_prefer_smaller_ids(store: QdrantStore) -> None:
    base = random_vectors(3, 6, seed=8)
    records = [Record("seed", base[0], "")] + [Record(f"t{i}", base[1].copy(), "") for i in (4, 2, 0, 3, 1)]
    records.append(Record("far", -base[0], ""))
    store.ensure_collection(CollectionSpec("rect", 6, "dot"))
    store.upsert("rect", records)
    hits = store.recommend("rect", ["t4"], k=2)
    assert [h.id for h in hits] == ["t0", "t1"]


# -- options and registration ----------------------------------------------------------------------

def test_registered_as_entry_point() -> None:
    assert available_stores()["qdrant"] == "vectorseam_qdrant.store:create_store"
    s = open_store("qdrant", {"location": ":memory:"})
    try:
        assert isinstance(s, QdrantStore)
        assert isinstance(s, NativeRecommend)
    finally:
        s.close()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"colour": "red"}, "unknown options for the qdrant store: 'colour'; valid options are: location, path, url"),
        ({"path": "/tmp/x", "url": "http://localhost:6333"}, "exclude each other"),
        ({"location": "http://localhost:6333"}, "not supported"),
        ({"url": "localhost:6333"}, "not an http"),
        ({"api_key": "k"}, "only applies to a server"),
        ({"url": "http://localhost:6333", "timeout": 0}, "timeout"),
        ({"url": "http://localhost:6333", "retries": -1}, "retries"),
        ({"url": "http://localhost:6333", "prefer_grpc": "yes"}, "prefer_grpc"),
    ],
)
def test_bad_options_are_config_errors(options: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        create_store(**options)


def test_option_errors_never_show_the_url_or_key() -> None:
    with pytest.raises(ConfigError) as info:
        create_store(url="ftp://user:pw-secret@127.0.0.1:6333", api_key="s3cret-key", grpc_port=0)
    message = str(info.value)
    assert "'url' is not an http(s) URL" in message and "'grpc_port' must be an integer between 1 and 65535" in message
    assert "pw-secret" not in message and "s3cret" not in message


def test_api_key_is_never_shown() -> None:
    s = create_store(url="https://user:pw@127.0.0.1:6333", api_key="s3cret-key")
    try:
        assert "s3cret" not in repr(s) and "pw" not in repr(s)
        assert "127.0.0.1:6333" in repr(s)
    finally:
        s.close()


def test_collection_info_of_one_collection(store: QdrantStore, tmp_path: Path) -> None:
    store.ensure_collection(CollectionSpec("films", 4, "dot", {"embedder": "fp-1"}))
    store.upsert("films", make_records(random_vectors(6, 4, seed=1)))
    info = store.collection_info("films")
    assert (info.name, info.dimension, info.metric, dict(info.metadata), info.count) == (
        "films", 4, "dot", {"embedder": "fp-1"}, 6)
    with pytest.raises(CollectionNotFoundError) as err:
        store.collection_info("nope")
    assert str(err.value) == ("collection 'nope' does not exist in the qdrant store (existing: films); "
                              "create it with `vectorseam ingest FILE --collection nope`")
    raw = QdrantClient(path=str(tmp_path))
    raw.create_collection("foreign", vectors_config=models.VectorParams(size=4, distance=models.Distance.DOT))
    raw.close()
    s = create_store(path=str(tmp_path))
    try:  # a collection vectorseam did not create is not one of its collections
        with pytest.raises(CollectionNotFoundError, match="'foreign' does not exist"):
            s.collection_info("foreign")
    finally:
        s.close()
