"""Reference data and checks for store tests: seeded records, float64 brute force, record comparison.

The specification side of the conformance suite (:mod:`vectorseam.testing.conformance`), kept apart
from it because it needs no pytest: property tests, adapters' own tests and benchmarks import these
helpers, and importing :mod:`vectorseam.testing` must work where pytest (a dev dependency only) is not
installed. Nothing here reads backend internals; every expectation comes from
:func:`vectorseam.filters.matches` and numpy in float64.
"""

from __future__ import annotations

import itertools
import re
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from vectorseam.filters import FilterLike, matches, parse_filter
from vectorseam.types import Hit, Metadata, MetadataValue, Metric, Record

SCORE_TOL = 1e-4
VECTOR_TOL = 1e-5


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

