"""The store conformance suite: the executable definition of what a ``VectorStore`` must do.

Every backend's tests subclass :class:`StoreConformance` and provide one fixture, ``store``, that
yields a fresh, empty store and closes it afterwards::

    class TestQdrantConformance(StoreConformance):
        @pytest.fixture
        def store(self) -> Iterator[VectorStore]:
            s = QdrantStore(url=...)
            yield s
            s.close()

Why it is written the way it is:

* It uses only the protocol (no backend internals), so the same tests run against remote servers.
* Every filter result is compared with :func:`vectorseam.filters.matches` over the very records the
  test wrote, and every ranking with a float64 numpy brute force: the reference implementations are
  the specification, so adapters cannot drift apart in semantics.
* An operator missing from ``store.capabilities.filter_operators`` must raise
  :class:`~vectorseam.errors.FilterError` (never be ignored). A backend may still answer a filter
  it can rewrite without that operator (``$exists: false`` without ``$not``); then the answer must
  equal the reference exactly.
* Metadata comes back compared as the filter semantics see it: a ``null`` or empty-list value may
  come back absent, and ints may come back as floats (numbers compare numerically); booleans stay
  booleans, strings and list order stay exact.
* Data comes from fixed seeds and the collections are small, so the suite is deterministic and
  runs in seconds against a local server.

Hooks a subclass may override: :meth:`StoreConformance.reopen` (close the store and connect again
to the same data, for persistent backends) and :attr:`StoreConformance.large_batch_size`. A test
that a backend cannot pass for a documented reason is overridden in the subclass with
``@pytest.mark.skip(reason=...)``.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import re
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from vectorseam.errors import (
    CollectionNotFoundError,
    DimensionMismatchError,
    FilterError,
    ValidationError,
    VectorseamError,
)
from vectorseam.filters import Filter, FilterLike, matches, operators, parse_filter
from vectorseam.store import VectorStore
from vectorseam.types import (
    METRICS,
    CollectionInfo,
    CollectionSpec,
    Hit,
    Metadata,
    MetadataValue,
    Metric,
    Record,
)

SCORE_TOL = 1e-4
VECTOR_TOL = 1e-5

# --- data and reference helpers (public: property tests and adapters reuse them) ----------------


def unique_collection_name(hint: str = "") -> str:
    """A collection name unique per call, portable to every backend (lowercase letters and digits).

    Lowercase alphanumerics are the intersection of what Pinecone, Qdrant, Weaviate (after the
    adapter's capitalisation) and Postgres accept unquoted; 40 characters stays under every limit.
    """
    slug = re.sub(r"[^a-z0-9]", "", hint.lower())
    return f"vs{uuid.uuid4().hex[:10]}{slug}"[:40]


def random_vectors(n: int, dimension: int, seed: int, scale: float = 1.0) -> npt.NDArray[np.float32]:
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(n, dimension)) * scale).astype(np.float32)


def make_records(
    vectors: npt.NDArray[np.float32],
    prefix: str = "r",
    metadata: Callable[[int], Metadata] | None = None,
) -> list[Record]:
    return [
        Record(
            id=f"{prefix}{i:04d}",
            vector=vectors[i],
            text=f"text of {prefix}{i:04d}",
            metadata=metadata(i) if metadata else {"i": i},
        )
        for i in range(vectors.shape[0])
    ]


def vector_of(record: Record) -> npt.NDArray[np.float32]:
    assert record.vector is not None, f"record {record.id!r} has no vector"
    return np.asarray(record.vector, dtype=np.float32)


def reference_scores(
    matrix: npt.ArrayLike, query: npt.ArrayLike, metric: Metric
) -> npt.NDArray[np.float64]:
    """Scores of every row against one query in float64, higher-is-more-similar (see types.py)."""
    x = np.asarray(matrix, dtype=np.float64)
    q = np.asarray(query, dtype=np.float64)
    if metric == "cosine":
        qn = np.linalg.norm(q)
        return np.asarray((x @ q) / (np.linalg.norm(x, axis=1) * (qn if qn else 1.0)), dtype=np.float64)
    if metric == "dot":
        return np.asarray(x @ q, dtype=np.float64)
    return np.asarray(-np.linalg.norm(x - q[None, :], axis=1), dtype=np.float64)


def reference_candidates(
    records: Sequence[Record], query: npt.ArrayLike, metric: Metric, filter: FilterLike = None
) -> dict[str, float]:
    """Every record that passes ``filter`` (per :func:`filters.matches`) with its reference score."""
    tree = parse_filter(filter)
    kept = [r for r in records if matches(tree, r.metadata)]
    if not kept:
        return {}
    matrix = np.stack([np.asarray(r.vector, dtype=np.float64) for r in kept])
    scores = reference_scores(matrix, query, metric)
    return {r.id: float(s) for r, s in zip(kept, scores, strict=True)}


def reference_top_k(candidates: Mapping[str, float], k: int) -> list[tuple[str, float]]:
    """Best first, ties broken by id ascending: the order every store must return."""
    return sorted(candidates.items(), key=lambda kv: (-kv[1], kv[0]))[:k]


def assert_ranking(
    hits: Sequence[Hit], candidates: Mapping[str, float], k: int, tol: float = SCORE_TOL
) -> None:
    """Hits must be the reference top-k: same scores position by position, each hit scored right.

    Ids are compared through their scores so that float noise between two near-equal scores (a
    float32 backend against a float64 reference) cannot fail the check, while any wrong id with a
    distinguishable score does. Exactly equal returned scores must be in ascending id order.
    """
    expected = reference_top_k(candidates, k)
    got_ids = [h.id for h in hits]
    assert len(hits) == len(expected), (
        f"expected {len(expected)} hits (k={k}, {len(candidates)} candidates), got {len(hits)}: {got_ids}"
    )
    assert len(set(got_ids)) == len(got_ids), f"duplicate ids in hits: {got_ids}"
    unknown = [i for i in got_ids if i not in candidates]
    assert not unknown, f"hits {unknown} are not records that pass the filter"
    got_scores = np.array([h.score for h in hits], dtype=np.float64)
    own = np.array([candidates[i] for i in got_ids], dtype=np.float64)
    np.testing.assert_allclose(got_scores, own, rtol=tol, atol=tol, err_msg=f"hit scores wrong for {got_ids}")
    np.testing.assert_allclose(
        got_scores,
        np.array([s for _, s in expected], dtype=np.float64),
        rtol=tol,
        atol=tol,
        err_msg=f"ranking differs from brute force: got {got_ids}, expected {[i for i, _ in expected]}",
    )
    for a, b in itertools.pairwise(hits):
        assert a.score >= b.score, f"hits are not best first: {a.id}={a.score} before {b.id}={b.score}"
        if a.score == b.score:
            assert a.id < b.id, f"tied hits must be in ascending id order: {a.id!r} before {b.id!r}"


def _normalized_value(value: MetadataValue) -> Any:
    if isinstance(value, bool | str):
        return value
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, list):
        return [_normalized_value(v) for v in value]
    return value


def normalized_metadata(metadata: Mapping[str, MetadataValue]) -> dict[str, Any]:
    """Metadata as the filter semantics see it (null and [] are absent; 3 and 3.0 are the same)."""
    return {
        key: _normalized_value(value)
        for key, value in metadata.items()
        if value is not None and value != []
    }


def assert_same_record(got: Record, want: Record, with_vector: bool = True) -> None:
    assert got.id == want.id
    assert got.text == want.text, f"{want.id!r}: text {got.text!r} != {want.text!r}"
    assert normalized_metadata(got.metadata) == normalized_metadata(want.metadata), (
        f"{want.id!r}: metadata {got.metadata!r} != {want.metadata!r}"
    )
    if with_vector:
        assert got.vector is not None, f"{want.id!r}: vector missing although it was asked for"
        np.testing.assert_allclose(
            np.asarray(got.vector, dtype=np.float64),
            np.asarray(want.vector, dtype=np.float64),
            rtol=VECTOR_TOL,
            atol=VECTOR_TOL,
            err_msg=f"{want.id!r}: vector did not round-trip",
        )
    else:
        assert got.vector is None, f"{want.id!r}: vector returned although include_vectors was False"


def catalog_records(dimension: int = 8) -> list[Record]:
    """48 records whose metadata mixes present, absent, null and empty-list values per field.

    Each field keeps one type (so schema-typed backends can store it): ``color`` str, ``size`` int,
    ``price`` float (whole and fractional), ``in_stock`` bool, ``tags`` list of str.
    """
    colors = ["red", "green", "blue", "Grün ü", 'say "hi"']
    vectors = random_vectors(48, dimension, seed=11)
    records = []
    for i in range(48):
        meta: Metadata = {}
        if i % 7 == 6:
            meta["color"] = None
        elif i % 7 != 3:
            meta["color"] = colors[i % 5]
        if i % 11 == 10:
            meta["size"] = None
        elif i % 5 != 4:
            meta["size"] = i % 10
        if i % 4 != 2:
            meta["price"] = i * 1.25
        if i % 8 != 7:
            meta["in_stock"] = i % 3 == 0
        if i % 9 != 4:
            meta["tags"] = [t for bit, t in enumerate(("a", "b", "c")) if i & (1 << bit)]
        records.append(Record(id=f"c{i:02d}", vector=vectors[i], text=f"item {i}", metadata=meta))
    return records


# --- the suite ----------------------------------------------------------------------------------


class StoreConformance:
    """Subclass in a ``Test*`` class and provide a ``store`` fixture (fresh, empty, closed after)."""

    dimension = 8
    large_batch_size = 10_000

    _live_store: VectorStore
    _created: list[str]

    # -- hooks -------------------------------------------------------------------------------------
    def reopen(self, store: VectorStore) -> VectorStore:
        """Close ``store`` and return a new connection to the same data (default: the same store).

        Persistent backends override this so that the suite checks state survives a reconnect at
        the points where it must; the override closes whatever it returns at teardown.
        """
        return store

    # -- fixtures and helpers ---------------------------------------------------------------------
    @pytest.fixture(autouse=True)
    def _drop_created_collections(self, store: VectorStore) -> Iterator[None]:
        """Remove what a test created, so shared remote servers don't fill up (best effort)."""
        self._live_store = store
        self._created = []
        yield
        for name in self._created:
            with contextlib.suppress(VectorseamError):
                self._live_store.drop_collection(name)

    @pytest.fixture
    def collection_name(self, request: pytest.FixtureRequest) -> str:
        return unique_collection_name(request.node.name)

    def _reopen(self, store: VectorStore) -> VectorStore:
        new = self.reopen(store)
        self._live_store = new
        return new

    def create(
        self,
        store: VectorStore,
        name: str,
        dimension: int | None = None,
        metric: Metric = "cosine",
        metadata: Mapping[str, str] | None = None,
    ) -> CollectionInfo:
        spec = CollectionSpec(name, dimension or self.dimension, metric, dict(metadata or {}))
        self._created.append(name)
        return store.ensure_collection(spec)

    def filled(
        self, store: VectorStore, name: str, records: Sequence[Record], metric: Metric = "cosine"
    ) -> list[Record]:
        dimension = int(np.asarray(records[0].vector).shape[0]) if records else self.dimension
        self.create(store, name, dimension, metric)
        assert store.upsert(name, records) == len(records)
        return list(records)

    def check_filter(
        self, store: VectorStore, name: str, records: Sequence[Record], spec: Mapping[str, Any]
    ) -> None:
        """Count, query and scan under ``spec`` must select exactly what ``filters.matches`` selects."""
        tree = parse_filter(spec)
        expected = sorted(r.id for r in records if matches(tree, r.metadata))
        unsupported = operators(tree) - store.capabilities.filter_operators if tree is not None else set()
        query_vector = vector_of(records[0])

        def count() -> list[str] | int:
            return store.count(name, filter=tree)

        def query() -> list[str] | int:
            return sorted(h.id for h in store.query(name, query_vector, k=len(records), filter=spec)[0])

        def scan() -> list[str] | int:
            return sorted(r.id for page in store.scan(name, batch_size=16, filter=tree) for r in page)

        for what, call, want in (
            ("count", count, len(expected)),
            ("query", query, expected),
            ("scan", scan, expected),
        ):
            if unsupported:
                try:
                    got = call()
                except FilterError:
                    continue
            else:
                got = call()
            assert got == want, (
                f"{what} with filter {spec!r} disagrees with filters.matches: got {got!r}, expected {want!r}"
                + (f" (operators {sorted(unsupported)} are not in the store's capabilities: "
                   "it must raise FilterError or answer exactly)" if unsupported else "")
            )

    def check_filters(
        self, store: VectorStore, name: str, records: Sequence[Record], specs: Sequence[Mapping[str, Any]]
    ) -> None:
        for spec in specs:
            self.check_filter(store, name, records, spec)

    # == collections ==============================================================================
    def test_ensure_collection_creates_and_describes(self, store: VectorStore, collection_name: str) -> None:
        info = self.create(store, collection_name, 8, "dot")
        assert (info.name, info.dimension, info.metric, info.count) == (collection_name, 8, "dot", 0)
        assert store.count(collection_name) == 0

    def test_ensure_collection_is_idempotent_and_keeps_records(
        self, store: VectorStore, collection_name: str
    ) -> None:
        records = make_records(random_vectors(5, 8, seed=1))
        self.filled(store, collection_name, records)
        again = store.ensure_collection(CollectionSpec(collection_name, 8, "cosine"))
        assert (again.dimension, again.metric, again.count) == (8, "cosine", 5)
        store = self._reopen(store)
        again = store.ensure_collection(CollectionSpec(collection_name, 8, "cosine"))
        assert again.count == 5
        ids = [r.id for r in records]
        assert [r.id for r in store.fetch(collection_name, ids)] == ids

    def test_ensure_collection_dimension_mismatch(self, store: VectorStore, collection_name: str) -> None:
        self.filled(store, collection_name, make_records(random_vectors(3, 8, seed=2)))
        with pytest.raises(DimensionMismatchError):
            store.ensure_collection(CollectionSpec(collection_name, 9, "cosine"))
        assert store.count(collection_name) == 3

    def test_ensure_collection_metric_mismatch(self, store: VectorStore, collection_name: str) -> None:
        self.create(store, collection_name, 8, "cosine")
        with pytest.raises(ValidationError):
            store.ensure_collection(CollectionSpec(collection_name, 8, "euclidean"))
        assert next(c for c in store.collections() if c.name == collection_name).metric == "cosine"

    def test_collection_metadata_round_trip(self, store: VectorStore, collection_name: str) -> None:
        meta = {"embedder": "sentence-transformers/all-MiniLM-L6-v2@384", "note": "ünïcode ✓ \"q\""}
        info = self.create(store, collection_name, 8, "cosine", meta)
        assert dict(info.metadata) == meta
        store = self._reopen(store)
        listed = {c.name: c for c in store.collections()}[collection_name]
        assert dict(listed.metadata) == meta
        # Re-ensuring with other metadata keeps what is stored: callers compare fingerprints.
        again = store.ensure_collection(CollectionSpec(collection_name, 8, "cosine", {"embedder": "other"}))
        assert dict(again.metadata) == meta

    def test_collections_lists_name_dimension_metric_count(
        self, store: VectorStore, collection_name: str
    ) -> None:
        specs = [(collection_name + "a", 4, "cosine", 3), (collection_name + "b", 6, "dot", 0),
                 (collection_name + "c", 5, "euclidean", 7)]
        for seed, (name, dim, metric, n) in enumerate(specs):
            self.create(store, name, dim, metric)  # type: ignore[arg-type]
            if n:
                store.upsert(name, make_records(random_vectors(n, dim, seed=seed)))
        store = self._reopen(store)
        listed = {c.name: (c.dimension, c.metric, c.count) for c in store.collections()}
        for name, dim, metric, n in specs:
            assert listed.get(name) == (dim, metric, n), f"collections() shows {name!r} as {listed.get(name)}"

    def test_drop_collection(self, store: VectorStore, collection_name: str) -> None:
        self.filled(store, collection_name, make_records(random_vectors(4, 8, seed=3)))
        assert store.drop_collection(collection_name) is True
        assert collection_name not in {c.name for c in store.collections()}
        assert store.drop_collection(collection_name) is False
        store = self._reopen(store)
        assert collection_name not in {c.name for c in store.collections()}
        with pytest.raises(CollectionNotFoundError):
            store.count(collection_name)
        # The name is free again, and the new collection starts empty.
        info = self.create(store, collection_name, 3, "dot")
        assert (info.dimension, info.count) == (3, 0)

    def test_unknown_collection_raises(self, store: VectorStore, collection_name: str) -> None:
        missing = collection_name + "missing"
        rec = make_records(random_vectors(1, 8, seed=4))
        calls: list[Callable[[], object]] = [
            lambda: store.upsert(missing, rec),
            lambda: store.query(missing, np.ones(8, dtype=np.float32)),
            lambda: store.fetch(missing, ["r0000"]),
            lambda: store.delete(missing, ids=["r0000"]),
            lambda: store.count(missing),
            lambda: list(store.scan(missing)),
        ]
        for call in calls:
            with pytest.raises(CollectionNotFoundError):
                call()
        assert store.drop_collection(missing) is False

    # == upsert and fetch =========================================================================
    @pytest.mark.parametrize("metric", METRICS)
    def test_upsert_then_fetch_round_trip(
        self, store: VectorStore, collection_name: str, metric: Metric
    ) -> None:
        vectors = random_vectors(6, 8, seed=5, scale=3.0)
        records = make_records(vectors, metadata=lambda i: {
            "i": i, "half": i / 2, "even": i % 2 == 0, "name": f"nº{i} \"x\"", "tags": ["x", f"t{i}"],
        })
        records[0].text = ""
        records[1].text = "multi\nline ✓ ünïcode"
        self.filled(store, collection_name, records, metric)
        store = self._reopen(store)
        got = store.fetch(collection_name, [r.id for r in records])
        assert [g.id for g in got] == [r.id for r in records]
        for g, r in zip(got, records, strict=True):
            assert_same_record(g, r)

    def test_upsert_is_idempotent_latest_wins(self, store: VectorStore, collection_name: str) -> None:
        records = make_records(random_vectors(4, 8, seed=6))
        self.filled(store, collection_name, records)
        newer = Record("r0002", random_vectors(1, 8, seed=7)[0], "newer text", {"version": 2})
        assert store.upsert(collection_name, [newer]) == 1
        assert store.upsert(collection_name, [newer]) == 1
        assert store.count(collection_name) == 4
        store = self._reopen(store)
        assert store.count(collection_name) == 4
        (got,) = store.fetch(collection_name, ["r0002"])
        assert_same_record(got, newer)
        # The replaced version is gone from search as well.
        hits = store.query(collection_name, vector_of(records[2]), k=4)[0]
        assert next(h for h in hits if h.id == "r0002").text == "newer text"
        assert store.count(collection_name, filter={"i": 2}) == 0

    def test_duplicate_ids_in_one_batch_last_wins(self, store: VectorStore, collection_name: str) -> None:
        self.create(store, collection_name)
        v = random_vectors(2, 8, seed=8)
        first, last = Record("dup", v[0], "first", {"n": 1}), Record("dup", v[1], "last", {"n": 2})
        store.upsert(collection_name, [first, last])
        assert store.count(collection_name) == 1
        (got,) = store.fetch(collection_name, ["dup"])
        assert_same_record(got, last)

    def test_unusual_ids(self, store: VectorStore, collection_name: str) -> None:
        ids = [
            "ünïcödé-ид-标识-🙂",
            "with space",
            "quote'single",
            'quote"double',
            "slash/and\\back",
            "'; DROP TABLE x; --",
            "percent%20and?query=1&x#frag",
            "{\"json\": [1]}",
            "x" * 500,
            "é" * 500,
        ]
        vectors = random_vectors(len(ids), 8, seed=9)
        records = [Record(i, vectors[n], f"text {n}", {"n": n}) for n, i in enumerate(ids)]
        self.filled(store, collection_name, records)
        assert store.count(collection_name) == len(ids)
        got = store.fetch(collection_name, list(reversed(ids)))
        assert [g.id for g in got] == list(reversed(ids))
        for g, r in zip(got, reversed(records), strict=True):
            assert_same_record(g, r)
        hits = store.query(collection_name, vectors[4], k=len(ids))[0]
        assert sorted(h.id for h in hits) == sorted(ids)
        assert hits[0].id == ids[4]
        scanned = [r.id for page in store.scan(collection_name, batch_size=3) for r in page]
        assert sorted(scanned) == sorted(ids)
        assert store.delete(collection_name, ids=[ids[0], ids[8]]) == 2
        assert store.fetch(collection_name, [ids[0], ids[8], ids[9]], include_vectors=False)[0].id == ids[9]
        assert store.count(collection_name) == len(ids) - 2

    def test_invalid_records_rejected(self, store: VectorStore, collection_name: str) -> None:
        v = random_vectors(2, 8, seed=10)
        self.filled(store, collection_name, [Record("keep", v[0], "kept", {"a": 1})])
        bad_batches: list[list[Record]] = [
            [Record("", v[1])],
            [Record("x" * 513, v[1])],
            [Record("nul\x00", v[1])],
            [Record("novec", None)],
            [Record("nested", v[1], metadata={"a": {"b": 1}})],  # type: ignore[dict-item]
            [Record("nanmeta", v[1], metadata={"a": math.nan})],
            [Record("listofdicts", v[1], metadata={"a": [{"b": 1}]})],  # type: ignore[list-item]
        ]
        for batch in bad_batches:
            with pytest.raises(ValidationError):
                store.upsert(collection_name, [Record("new", v[1]), Record("keep", v[1], "changed"), *batch])
        assert store.count(collection_name) == 1
        (kept,) = store.fetch(collection_name, ["keep", "new"])
        assert_same_record(kept, Record("keep", v[0], "kept", {"a": 1}))

    def test_fetch_present_and_missing_keeps_request_order(
        self, store: VectorStore, collection_name: str
    ) -> None:
        records = make_records(random_vectors(5, 8, seed=12))
        self.filled(store, collection_name, records)
        got = store.fetch(collection_name, ["r0003", "nope", "r0000", "r0004", "also-missing", "r0001"])
        assert [g.id for g in got] == ["r0003", "r0000", "r0004", "r0001"]
        assert store.fetch(collection_name, ["nope"]) == []
        assert store.fetch(collection_name, []) == []

    def test_fetch_with_and_without_vectors(self, store: VectorStore, collection_name: str) -> None:
        records = make_records(random_vectors(3, 8, seed=13, scale=5.0))
        self.filled(store, collection_name, records)
        with_v = store.fetch(collection_name, [r.id for r in records], include_vectors=True)
        without = store.fetch(collection_name, [r.id for r in records], include_vectors=False)
        for w, wo, r in zip(with_v, without, records, strict=True):
            assert_same_record(w, r, with_vector=True)
            assert_same_record(wo, r, with_vector=False)

    def test_returned_records_are_copies(self, store: VectorStore, collection_name: str) -> None:
        """Editing what the store returned must not change the store without an upsert."""
        rec = Record("a", random_vectors(1, 8, seed=14)[0], "t", {"tags": ["x"], "n": 1})
        self.filled(store, collection_name, [rec])
        (got,) = store.fetch(collection_name, ["a"])
        assert isinstance(got.metadata["tags"], list)
        got.metadata["tags"].append("y")
        got.metadata["n"] = 2
        assert got.vector is not None
        got.vector[0] += 100.0
        (hit,) = store.query(collection_name, vector_of(rec), k=1, include_vectors=True)[0]
        assert isinstance(hit.metadata["tags"], list)
        hit.metadata["tags"].append("z")
        (again,) = store.fetch(collection_name, ["a"])
        assert_same_record(again, rec)

    # == delete and count =========================================================================
    def test_delete_by_ids(self, store: VectorStore, collection_name: str) -> None:
        records = make_records(random_vectors(6, 8, seed=15))
        self.filled(store, collection_name, records)
        assert store.delete(collection_name, ids=["r0001", "missing", "r0004"]) == 2
        assert store.delete(collection_name, ids=["r0001", "missing"]) == 0
        assert store.delete(collection_name, ids=[]) == 0
        store = self._reopen(store)
        assert store.count(collection_name) == 4
        fetched = store.fetch(collection_name, [r.id for r in records], include_vectors=False)
        remaining = [r.id for r in fetched]
        assert remaining == ["r0000", "r0002", "r0003", "r0005"]
        hits = store.query(collection_name, vector_of(records[1]), k=10)[0]
        assert {h.id for h in hits} == set(remaining)

    def test_delete_by_filter(self, store: VectorStore, collection_name: str) -> None:
        records = catalog_records()
        self.filled(store, collection_name, records)
        spec = {"$or": [{"color": "red"}, {"size": {"$gte": 8}}]}
        doomed = {r.id for r in records if matches(parse_filter(spec), r.metadata)}
        assert 0 < len(doomed) < len(records)
        assert store.delete(collection_name, filter=spec) == len(doomed)
        assert store.delete(collection_name, filter=spec) == 0
        store = self._reopen(store)
        survivors = [r for r in records if r.id not in doomed]
        assert store.count(collection_name) == len(survivors)
        scanned = sorted(r.id for page in store.scan(collection_name, include_vectors=False) for r in page)
        assert scanned == sorted(r.id for r in survivors)
        self.check_filter(store, collection_name, survivors, {"tags": "a"})

    def test_delete_requires_ids_or_filter(self, store: VectorStore, collection_name: str) -> None:
        self.filled(store, collection_name, make_records(random_vectors(2, 8, seed=16)))
        with pytest.raises(ValidationError):
            store.delete(collection_name)
        with pytest.raises(ValidationError):
            store.delete(collection_name, ids=["r0000"], filter={"i": 0})
        assert store.count(collection_name) == 2

    def test_count_with_and_without_filter(self, store: VectorStore, collection_name: str) -> None:
        records = make_records(random_vectors(20, 8, seed=17), metadata=lambda i: {"parity": i % 2, "i": i})
        self.filled(store, collection_name, records)
        assert store.count(collection_name) == 20
        assert store.count(collection_name, filter=None) == 20
        assert store.count(collection_name, filter={}) == 20
        assert store.count(collection_name, filter={"parity": 1}) == 10
        assert store.count(collection_name, filter={"i": {"$lt": 5}}) == 5
        assert store.count(collection_name, filter={"i": {"$gt": 100}}) == 0

    # == filters ==================================================================================
    def test_filter_equality(self, store: VectorStore, collection_name: str) -> None:
        records = self.filled(store, collection_name, catalog_records())
        self.check_filters(store, collection_name, records, [
            {"color": "red"}, {"color": {"$eq": "red"}}, {"color": "Grün ü"}, {"color": 'say "hi"'},
            {"color": "RED"}, {"color": "nope"}, {"size": 3}, {"size": 3.0}, {"size": 3.5},
            {"price": 5}, {"price": 6.25}, {"in_stock": True}, {"in_stock": False}, {"tags": "a"},
            {"color": "red", "in_stock": True},
        ])

    def test_filter_not_equal(self, store: VectorStore, collection_name: str) -> None:
        records = self.filled(store, collection_name, catalog_records())
        self.check_filters(store, collection_name, records, [
            {"color": {"$ne": "red"}}, {"size": {"$ne": 3}}, {"price": {"$ne": 5.0}},
            {"in_stock": {"$ne": True}}, {"tags": {"$ne": "a"}}, {"color": {"$ne": "nope"}},
        ])

    def test_filter_ranges(self, store: VectorStore, collection_name: str) -> None:
        records = self.filled(store, collection_name, catalog_records())
        self.check_filters(store, collection_name, records, [
            {"size": {"$gt": 4}}, {"size": {"$gte": 4}}, {"size": {"$lt": 4}}, {"size": {"$lte": 4}},
            {"size": {"$gt": 4.5}}, {"size": {"$lt": -1}}, {"size": {"$gte": 2, "$lt": 6}},
            {"price": {"$gte": 5}}, {"price": {"$lt": 12.5}}, {"price": {"$lte": 12.5}},
            {"price": {"$gt": -1}}, {"price": {"$gt": 1000}}, {"price": {"$gt": 10, "$lte": 30.5}},
        ])

    def test_filter_in_nin(self, store: VectorStore, collection_name: str) -> None:
        records = self.filled(store, collection_name, catalog_records())
        self.check_filters(store, collection_name, records, [
            {"color": {"$in": ["red", "blue"]}}, {"color": {"$in": ["nope"]}}, {"size": {"$in": [1, 2, 3.0]}},
            {"tags": {"$in": ["b", "c"]}}, {"in_stock": {"$in": [True]}}, {"color": {"$nin": ["red"]}},
            {"size": {"$nin": [0, 1]}}, {"tags": {"$nin": ["a"]}},
            {"color": {"$nin": ["red", "green", "blue"]}},
        ])

    def test_filter_exists(self, store: VectorStore, collection_name: str) -> None:
        records = self.filled(store, collection_name, catalog_records())
        self.check_filters(store, collection_name, records, [
            {"color": {"$exists": True}}, {"color": {"$exists": False}}, {"tags": {"$exists": True}},
            {"tags": {"$exists": False}}, {"size": {"$exists": True}}, {"never": {"$exists": True}},
            {"never": {"$exists": False}},
        ])

    def test_filter_logical_nesting(self, store: VectorStore, collection_name: str) -> None:
        records = self.filled(store, collection_name, catalog_records())
        self.check_filters(store, collection_name, records, [
            {"$and": [{"color": "red"}, {"size": {"$gt": 2}}]},
            {"$or": [{"color": "red"}, {"tags": "c"}]},
            {"$not": {"color": "red"}},
            {"$not": {"size": {"$gt": 4}}},
            {"$not": {"tags": {"$exists": True}}},
            {"$or": [{"color": "blue"}, {"$and": [{"size": {"$gt": 5}}, {"$not": {"tags": "a"}}]}]},
            {"$not": {"$or": [{"color": "red"}, {"in_stock": True}]}},
            {"$and": [{"$or": [{"color": "red"}, {"color": "green"}]},
                      {"$or": [{"price": {"$lt": 20}}, {"tags": {"$in": ["b"]}}]}]},
            {"$and": [{"$not": {"$and": [{"in_stock": True}, {"size": {"$lte": 5}}]}},
                      {"price": {"$exists": True}}]},
            {"color": "red", "$or": [{"size": 0}, {"size": 5}, {"in_stock": False}]},
            {"$not": {"$not": {"color": "green"}}},
            {"$or": [{"$and": [{"color": {"$ne": "red"}}, {"tags": {"$nin": ["a", "b"]}}]}, {"price": 0}]},
        ])

    def test_filter_missing_and_null(self, store: VectorStore, collection_name: str) -> None:
        metas: list[Metadata] = [
            {"k": "x"}, {"k": None}, {}, {"k": "y"}, {"k": []}, {"k": ["x", "z"]}, {"other": 1},
        ]
        vectors = random_vectors(len(metas), 8, seed=18)
        records = [Record(f"m{i}", vectors[i], "", m) for i, m in enumerate(metas)]
        self.filled(store, collection_name, records)
        self.check_filters(store, collection_name, records, [
            {"k": "x"}, {"k": {"$ne": "x"}}, {"k": {"$in": ["x", "y"]}}, {"k": {"$nin": ["x"]}},
            {"k": {"$exists": True}}, {"k": {"$exists": False}}, {"k": {"$gt": 0}},
            {"$not": {"k": "x"}}, {"$or": [{"k": {"$exists": False}}, {"k": "y"}]},
        ])

    def test_filter_int_float_ranges(self, store: VectorStore, collection_name: str) -> None:
        values: list[MetadataValue] = [1, 1.5, 2, 2.0, 2.25, 3, -1, 0, 0.0, 10**12]
        vectors = random_vectors(len(values), 8, seed=19)
        records = [Record(f"n{i}", vectors[i], "", {"x": v}) for i, v in enumerate(values)]
        self.filled(store, collection_name, records)
        self.check_filters(store, collection_name, records, [
            {"x": 2}, {"x": 2.0}, {"x": {"$gt": 1}}, {"x": {"$gte": 2}}, {"x": {"$lt": 2.0}},
            {"x": {"$lte": 2.25}}, {"x": {"$gt": 1.99, "$lt": 2.01}}, {"x": {"$in": [0, 3.0]}},
            {"x": {"$ne": 0}}, {"x": {"$gte": 10**12}},
        ])

    def test_filter_bool_is_not_int(self, store: VectorStore, collection_name: str) -> None:
        values: list[MetadataValue] = [True, False, 1, 0, 1.0, "true", "1", None]
        vectors = random_vectors(len(values), 8, seed=20)
        records = [Record(f"b{i}", vectors[i], "", {"flag": v}) for i, v in enumerate(values)]
        self.filled(store, collection_name, records)
        self.check_filters(store, collection_name, records, [
            {"flag": True}, {"flag": False}, {"flag": 1}, {"flag": 0}, {"flag": "true"},
            {"flag": {"$ne": True}}, {"flag": {"$in": [True, 0]}}, {"flag": {"$nin": [1]}},
            {"flag": {"$gt": 0}}, {"flag": {"$gte": 0}},
        ])

    def test_filter_range_ignores_other_types(self, store: VectorStore, collection_name: str) -> None:
        values: list[MetadataValue] = [5, "5", "10", True, None, 7.5, "abc"]
        vectors = random_vectors(len(values), 8, seed=21)
        records = [Record(f"t{i}", vectors[i], "", {"v": v}) for i, v in enumerate(values)]
        records.append(Record("t-absent", random_vectors(1, 8, seed=22)[0], "", {}))
        self.filled(store, collection_name, records)
        self.check_filters(store, collection_name, records, [
            {"v": {"$gt": 3}}, {"v": {"$gte": 0}}, {"v": {"$lt": 6}}, {"v": {"$lte": 100}},
            {"$not": {"v": {"$gt": 3}}}, {"v": "5"}, {"v": 5},
        ])

    def test_filter_list_membership(self, store: VectorStore, collection_name: str) -> None:
        metas: list[Metadata] = [
            {"tags": ["a", "b"]}, {"tags": ["b"]}, {"tags": []}, {"tags": "a"}, {}, {"tags": ["c", "a", "a"]},
        ]
        vectors = random_vectors(len(metas), 8, seed=23)
        records = [Record(f"l{i}", vectors[i], "", m) for i, m in enumerate(metas)]
        self.filled(store, collection_name, records)
        self.check_filters(store, collection_name, records, [
            {"tags": "a"}, {"tags": {"$in": ["b", "c"]}}, {"tags": {"$ne": "a"}},
            {"tags": {"$nin": ["a", "b"]}},
            {"tags": {"$exists": True}}, {"$and": [{"tags": "a"}, {"tags": "b"}]}, {"tags": "z"},
        ])

    def test_filter_numeric_list_membership(self, store: VectorStore, collection_name: str) -> None:
        metas: list[Metadata] = [{"nums": [1, 5]}, {"nums": [2.5]}, {"nums": [10, 20]}, {"nums": []}, {}]
        vectors = random_vectors(len(metas), 8, seed=24)
        records = [Record(f"p{i}", vectors[i], "", m) for i, m in enumerate(metas)]
        self.filled(store, collection_name, records)
        self.check_filters(store, collection_name, records, [
            {"nums": 5}, {"nums": {"$in": [2.5, 20]}}, {"nums": {"$gt": 4}}, {"nums": {"$lt": 2}},
            {"nums": {"$gte": 2.5, "$lte": 2.5}}, {"nums": {"$ne": 1}},
        ])

    def test_malformed_filter_raises(self, store: VectorStore, collection_name: str) -> None:
        self.filled(store, collection_name, catalog_records())
        bad: list[Any] = [{"color": {"$regex": "r.*"}}, {"size": {"$gt": "x"}}, {"color": None}, {"$or": {}}]
        for spec in bad:
            with pytest.raises(FilterError):
                store.count(collection_name, filter=spec)
            with pytest.raises(FilterError):
                store.query(collection_name, np.ones(self.dimension, dtype=np.float32), filter=spec)
            with pytest.raises(FilterError):
                store.delete(collection_name, filter=spec)
        assert store.count(collection_name) == 48

    # == query ====================================================================================
    @pytest.mark.parametrize("metric", METRICS)
    def test_query_matches_brute_force(
        self, store: VectorStore, collection_name: str, metric: Metric
    ) -> None:
        vectors = random_vectors(40, 32, seed=25, scale=3.0)
        records = self.filled(store, collection_name, make_records(vectors), metric)
        queries = random_vectors(4, 32, seed=26, scale=3.0)
        results = store.query(collection_name, queries, k=10)
        assert len(results) == len(queries)
        for q, hits in zip(queries, results, strict=True):
            assert_ranking(hits, reference_candidates(records, q, metric), 10)
            if metric == "cosine":
                assert all(-1.0 - 1e-5 <= h.score <= 1.0 + 1e-5 for h in hits)
            if metric == "euclidean":
                assert all(h.score <= 0.0 for h in hits)

    @pytest.mark.parametrize("metric", METRICS)
    def test_query_with_stored_vectors(
        self, store: VectorStore, collection_name: str, metric: Metric
    ) -> None:
        """Querying with a stored vector ("more like this", dedup) must score it exactly.

        Distance 0 and similarity 1 are where float32 shortcuts (``|q|^2 + |x|^2 - 2 q.x``) lose
        every significant digit, so every stored vector is tried, not a lucky few.
        """
        vectors = random_vectors(40, 64, seed=48, scale=3.0)
        records = self.filled(store, collection_name, make_records(vectors), metric)
        results = store.query(collection_name, vectors, k=3)
        for i, hits in enumerate(results):
            assert_ranking(hits, reference_candidates(records, vectors[i], metric), 3)
            if metric != "dot":  # under dot another, longer vector may outscore the query itself
                assert hits[0].id == records[i].id
                want = 1.0 if metric == "cosine" else 0.0
                assert abs(hits[0].score - want) <= SCORE_TOL, f"{records[i].id}: self score {hits[0].score}"

    @pytest.mark.parametrize("metric", METRICS)
    def test_query_with_filter_matches_brute_force(
        self, store: VectorStore, collection_name: str, metric: Metric
    ) -> None:
        records = self.filled(store, collection_name, catalog_records(), metric)
        query = random_vectors(1, self.dimension, seed=27)[0]
        for spec in ({"color": "red"}, {"size": {"$gte": 7}}, {"tags": {"$in": ["c"]}}, {"color": "nope"}):
            hits = store.query(collection_name, query, k=5, filter=spec)[0]
            assert_ranking(hits, reference_candidates(records, query, metric, spec), 5)

    def test_query_returns_text_metadata_and_vectors(self, store: VectorStore, collection_name: str) -> None:
        records = make_records(random_vectors(5, 8, seed=28, scale=2.0),
                               metadata=lambda i: {"i": i, "tags": [f"t{i}"]})
        self.filled(store, collection_name, records)
        by_id = {r.id: r for r in records}
        hits = store.query(collection_name, vector_of(records[2]), k=5, include_vectors=True)[0]
        assert hits[0].id == "r0002"
        for h in hits:
            assert_same_record(Record(h.id, h.vector, h.text, h.metadata), by_id[h.id])
        for h in store.query(collection_name, vector_of(records[2]), k=5)[0]:
            assert h.vector is None
            assert h.text == by_id[h.id].text

    def test_query_ties_ordered_by_id(self, store: VectorStore, collection_name: str) -> None:
        base = random_vectors(4, 8, seed=29)
        tie_ids = ["tie-c", "tie-a", "tie-d", "tie-b"]
        records = [Record(i, base[0].copy(), i) for i in tie_ids]
        records += [Record(f"other{n}", base[n] * 0.1, "") for n in (1, 2, 3)]
        for metric in METRICS:
            name = f"{collection_name[:36]}{metric[:3]}"
            self.filled(store, name, records, metric)
            hits = store.query(name, base[0], k=len(records))[0]
            assert [h.id for h in hits[:4]] == sorted(tie_ids), f"{metric}: {[h.id for h in hits]}"
            tied = [h.score for h in hits[:4]]
            assert max(tied) - min(tied) <= 1e-6, f"{metric}: equal vectors scored differently: {tied}"
            assert hits[4].score < hits[3].score

    def test_query_tie_at_cut_prefers_smaller_ids(self, store: VectorStore, collection_name: str) -> None:
        base = random_vectors(2, 8, seed=30)
        tie_ids = ["e3", "e0", "e4", "e2", "e1"]  # written out of order on purpose
        records = [Record("best", base[0], "")] + [Record(i, base[1].copy(), "") for i in tie_ids]
        self.filled(store, collection_name, records, "dot")
        got = [h.id for h in store.query(collection_name, base[1], k=2)[0]]
        if store.capabilities.approximate:
            # An ANN index does not promise which of several equal scores reaches the cut, only
            # that what it returns is tied-best and in id order.
            assert len(got) == 2 and set(got) <= set(tie_ids) and got == sorted(got), got
        else:
            assert got == ["e0", "e1"], f"of five equal scores the two smallest ids must win, got {got}"
        hits = store.query(collection_name, base[0] + 0.01 * base[1], k=3)[0]
        assert hits[0].id == "best"

    def test_query_k_larger_than_collection(self, store: VectorStore, collection_name: str) -> None:
        records = self.filled(store, collection_name, make_records(random_vectors(7, 8, seed=31)))
        query = random_vectors(1, 8, seed=32)[0]
        hits = store.query(collection_name, query, k=100)[0]
        assert sorted(h.id for h in hits) == sorted(r.id for r in records)
        hits = store.query(collection_name, query, k=100, filter={"i": {"$lt": 3}})[0]
        assert sorted(h.id for h in hits) == ["r0000", "r0001", "r0002"]

    def test_query_many_vectors_one_list_each(self, store: VectorStore, collection_name: str) -> None:
        records = self.filled(store, collection_name, make_records(random_vectors(30, 8, seed=33)), "dot")
        queries = random_vectors(6, 8, seed=34)
        batch = store.query(collection_name, queries, k=4)
        assert len(batch) == 6
        for q, hits in zip(queries, batch, strict=True):
            assert [h.id for h in hits] == [h.id for h in store.query(collection_name, q, k=4)[0]]
            assert_ranking(hits, reference_candidates(records, q, "dot"), 4)
        single = store.query(collection_name, queries[0], k=4)
        assert len(single) == 1
        as_lists = store.query(collection_name, queries[:2].tolist(), k=4)
        assert [[h.id for h in hs] for hs in as_lists] == [[h.id for h in hs] for hs in batch[:2]]

    def test_query_empty_collection(self, store: VectorStore, collection_name: str) -> None:
        self.create(store, collection_name)
        assert store.query(collection_name, np.ones(8, dtype=np.float32), k=5) == [[]]
        assert store.query(collection_name, np.ones((3, 8), dtype=np.float32), k=5) == [[], [], []]
        assert store.query(collection_name, np.ones(8, dtype=np.float32), filter={"a": 1}) == [[]]

    def test_query_filter_matching_nothing(self, store: VectorStore, collection_name: str) -> None:
        self.filled(store, collection_name, make_records(random_vectors(5, 8, seed=35)))
        assert store.query(collection_name, np.ones((2, 8), dtype=np.float32), filter={"i": 99}) == [[], []]

    def test_query_invalid_k(self, store: VectorStore, collection_name: str) -> None:
        self.filled(store, collection_name, make_records(random_vectors(3, 8, seed=36)))
        for k in (0, -1):
            with pytest.raises(ValidationError):
                store.query(collection_name, np.ones(8, dtype=np.float32), k=k)

    # == validation ===============================================================================
    def test_dimension_mismatch_on_upsert_writes_nothing(
        self, store: VectorStore, collection_name: str
    ) -> None:
        self.filled(store, collection_name, make_records(random_vectors(2, 8, seed=37)))
        good = make_records(random_vectors(3, 8, seed=38), prefix="g")
        bad = Record("bad", random_vectors(1, 9, seed=39)[0])
        with pytest.raises(DimensionMismatchError):
            store.upsert(collection_name, [*good[:2], bad, good[2]])
        assert store.count(collection_name) == 2
        assert store.fetch(collection_name, [r.id for r in good]) == []

    def test_dimension_mismatch_on_query(self, store: VectorStore, collection_name: str) -> None:
        self.filled(store, collection_name, make_records(random_vectors(2, 8, seed=40)))
        with pytest.raises(DimensionMismatchError):
            store.query(collection_name, np.ones(7, dtype=np.float32))
        with pytest.raises(DimensionMismatchError):
            store.query(collection_name, np.ones((2, 9), dtype=np.float32))

    @pytest.mark.parametrize("bad_value", [math.nan, math.inf, -math.inf])
    def test_non_finite_vectors_rejected_and_nothing_written(
        self, store: VectorStore, collection_name: str, bad_value: float
    ) -> None:
        originals = make_records(random_vectors(3, 8, seed=41))
        self.filled(store, collection_name, originals)
        replacement = make_records(random_vectors(3, 8, seed=42))  # same ids: would overwrite
        poisoned = random_vectors(1, 8, seed=43)[0]
        poisoned[5] = bad_value
        batch = [replacement[0], Record("fresh", random_vectors(1, 8, seed=44)[0]),
                 Record("poison", poisoned), replacement[1]]
        with pytest.raises(ValidationError):
            store.upsert(collection_name, batch)
        store = self._reopen(store)
        assert store.count(collection_name) == 3
        assert store.fetch(collection_name, ["fresh", "poison"]) == []
        for got, want in zip(store.fetch(collection_name, [r.id for r in originals]), originals, strict=True):
            assert_same_record(got, want)
        query = np.ones(8, dtype=np.float32)
        query[0] = bad_value
        with pytest.raises(ValidationError):
            store.query(collection_name, query)

    # == scan =====================================================================================
    def test_scan_pages_every_record_once(self, store: VectorStore, collection_name: str) -> None:
        records = self.filled(store, collection_name, make_records(random_vectors(53, 8, seed=45)))
        pages = list(store.scan(collection_name, batch_size=7))
        assert all(1 <= len(p) <= 7 for p in pages), [len(p) for p in pages]
        seen = [r.id for p in pages for r in p]
        assert len(seen) == len(set(seen)) == 53
        by_id = {r.id: r for r in records}
        for page in pages:
            for r in page:
                assert_same_record(r, by_id[r.id])
        again = [r.id for p in store.scan(collection_name, batch_size=7) for r in p]
        assert again == seen, "scan order must be stable"

    def test_scan_with_filter(self, store: VectorStore, collection_name: str) -> None:
        records = self.filled(store, collection_name, catalog_records())
        for spec in ({"tags": "a"}, {"$or": [{"color": "red"}, {"price": {"$lt": 3}}]}, {"color": "nope"}):
            pages = list(store.scan(collection_name, batch_size=4, filter=spec, include_vectors=False))
            assert all(1 <= len(p) <= 4 for p in pages)
            seen = [r.id for p in pages for r in p]
            tree: Filter | None = parse_filter(spec)
            assert sorted(seen) == sorted(r.id for r in records if matches(tree, r.metadata))
            assert len(seen) == len(set(seen))
            assert all(r.vector is None for p in pages for r in p)

    def test_scan_empty_collection(self, store: VectorStore, collection_name: str) -> None:
        self.create(store, collection_name)
        assert [r for p in store.scan(collection_name, batch_size=3) for r in p] == []

    # == scale ====================================================================================
    def test_large_batch_upsert_count_query(self, store: VectorStore, collection_name: str) -> None:
        n, dim = self.large_batch_size, 16
        vectors = random_vectors(n, dim, seed=46)
        records = make_records(vectors, metadata=lambda i: {"bucket": i % 10})
        self.create(store, collection_name, dim, "cosine")
        assert store.upsert(collection_name, records) == n
        store = self._reopen(store)
        assert store.count(collection_name) == n
        assert store.count(collection_name, filter={"bucket": 3}) == n // 10
        queries = random_vectors(3, dim, seed=47)
        results = store.query(collection_name, queries, k=10)
        assert len(results) == 3
        bucket3 = [r for r in records if r.metadata["bucket"] == 3]
        for q, hits in zip(queries, results, strict=True):
            cands = reference_candidates(records, q, "cosine")
            if store.capabilities.approximate:
                want = {i for i, _ in reference_top_k(cands, 10)}
                recall = len(want & {h.id for h in hits}) / 10
                assert recall >= 0.9, f"recall@10 {recall:.2f} on {n} records is too low for an ANN index"
            else:
                assert_ranking(hits, cands, 10)
        filtered = store.query(collection_name, queries[0], k=5, filter={"bucket": 3})[0]
        if not store.capabilities.approximate:
            assert_ranking(filtered, reference_candidates(bucket3, queries[0], "cosine"), 5)
        assert len(filtered) == 5 and all(h.metadata["bucket"] == 3 for h in filtered)
