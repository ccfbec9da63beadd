"""Recommendations: exact generic strategies on the memory store, native == generic on Qdrant, bad input."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from vectorseam.errors import CollectionNotFoundError, ValidationError
from vectorseam.retrieval.recommend import best_scores, recommend, scaled_fast_sigmoid
from vectorseam.similarity import average_vector, similarity_matrix
from vectorseam.store import NativeRecommend
from vectorseam.stores.memory import MemoryStore
from vectorseam.types import CollectionSpec, Hit, Metric, Record

N, DIM = 300, 16


def fill(store: object, metric: Metric = "cosine", seed: int = 7) -> dict[str, Record]:
    rng = np.random.default_rng(seed)
    vectors = rng.normal(size=(N, DIM)).astype(np.float32)
    records = {
        f"r{i:03d}": Record(f"r{i:03d}", vectors[i], f"text {i}", {"group": i % 3, "even": i % 2 == 0})
        for i in range(N)
    }
    store.ensure_collection(CollectionSpec("items", DIM, metric))  # type: ignore[attr-defined]
    store.upsert("items", list(records.values()))  # type: ignore[attr-defined]
    return records


def reference(records: dict[str, Record], pos: list[str], neg: list[str], metric: Metric, k: int,
              strategy: str, keep: dict[str, bool] | None = None) -> list[tuple[str, float]]:
    """Brute force over every record, straight from the definitions."""
    ids = [i for i in sorted(records) if i not in pos and i not in neg and (keep is None or keep[i])]
    matrix = np.stack([records[i].vector for i in ids]).astype(np.float64)  # type: ignore[misc]
    pvec = np.stack([records[i].vector for i in pos]).astype(np.float64)  # type: ignore[misc]
    nvec = np.stack([records[i].vector for i in neg]).astype(np.float64) if neg else np.zeros((0, DIM))  # type: ignore[misc]
    if strategy == "average_vector":
        scores = similarity_matrix(matrix, average_vector(pvec, nvec, metric), metric)[:, 0]
    else:
        sneg = similarity_matrix(matrix, nvec, metric) if neg else np.zeros((len(ids), 0))
        scores = best_scores(similarity_matrix(matrix, pvec, metric), sneg)
    order = sorted(range(len(ids)), key=lambda i: (-scores[i], ids[i]))[:k]
    return [(ids[i], float(scores[i])) for i in order]


def assert_same(hits: list[Hit], expected: list[tuple[str, float]], tol: float = 1e-5) -> None:
    assert [h.id for h in hits] == [i for i, _ in expected]
    assert np.allclose([h.score for h in hits], [s for _, s in expected], atol=tol)


def test_scaled_fast_sigmoid_matches_qdrant_definition() -> None:
    x = np.array([-2.0, -0.5, 0.0, 0.5, 2.0])
    assert np.allclose(scaled_fast_sigmoid(x), 0.5 * (x / (1 + np.abs(x)) + 1))
    # best_score: a candidate nearer a positive always outranks one nearer a negative
    s = best_scores(np.array([[0.1], [0.9]]), np.array([[0.0], [0.95]]))
    assert s[0] > 0 > s[1]
    assert s[1] == pytest.approx(-scaled_fast_sigmoid(np.array([0.95]))[0])


@pytest.mark.parametrize("metric", ["cosine", "dot", "euclidean"])
@pytest.mark.parametrize("strategy", ["average_vector", "best_score"])
@pytest.mark.parametrize("neg", [[], ["r010", "r020"]])
def test_generic_recommend_is_exact(metric: Metric, strategy: str, neg: list[str]) -> None:
    store = MemoryStore()
    records = fill(store, metric)
    pos = ["r001", "r002", "r003"]
    hits = recommend(store, "items", pos, neg, k=7, strategy=strategy)  # type: ignore[arg-type]
    assert_same(hits, reference(records, pos, neg, metric, 7, strategy))
    assert not {h.id for h in hits} & set(pos + neg)


def test_best_score_with_filter_and_many_negatives_widens_to_exact() -> None:
    """Many negatives leave few candidates nearer a positive: the search must widen, still exactly."""
    store = MemoryStore()
    records = fill(store)
    pos = ["r005"]
    neg = [f"r{i:03d}" for i in range(100, 140)]
    keep = {i: r.metadata["group"] == 1 for i, r in records.items()}
    hits = recommend(store, "items", pos, neg, k=25, filter={"group": 1}, strategy="best_score")
    expected = reference(records, pos, neg, "cosine", 25, "best_score", keep)
    assert_same(hits, expected)
    assert any(h.score < 0 for h in hits), "the test should reach candidates nearer a negative"


def test_identical_texts_are_not_recommended() -> None:
    store = MemoryStore()
    store.ensure_collection(CollectionSpec("items", 3, "cosine"))
    store.upsert("items", [
        Record("a", np.array([1, 0, 0], np.float32), "great beans"),
        Record("a-copy", np.array([1, 0.01, 0], np.float32), "great beans"),  # same review, another product
        Record("b", np.array([0.9, 0.1, 0], np.float32), "good beans"),
        Record("c", np.array([0, 1, 0], np.float32), "late delivery"),
    ])
    for strategy in ("average_vector", "best_score"):
        hits = recommend(store, "items", ["a"], k=2, strategy=strategy)  # type: ignore[arg-type]
        assert [h.id for h in hits] == ["b", "c"]
    with_dupes = recommend(store, "items", ["a"], k=1, exclude_identical_text=False)
    assert [h.id for h in with_dupes] == ["a-copy"]


def test_bad_requests_raise_clear_errors() -> None:
    store = MemoryStore()
    fill(store)
    with pytest.raises(ValidationError, match=r"no record with id 'nope' in collection 'items'"):
        recommend(store, "items", ["r001", "nope"])
    with pytest.raises(ValidationError, match="at least one positive"):
        recommend(store, "items", [])
    with pytest.raises(ValidationError, match="both positive and negative"):
        recommend(store, "items", ["r001"], ["r001"])
    with pytest.raises(ValidationError, match="unknown recommend strategy"):
        recommend(store, "items", ["r001"], strategy="sum_scores")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="k must be a positive integer"):
        recommend(store, "items", ["r001"], k=0)
    with pytest.raises(CollectionNotFoundError, match="'nothing' does not exist"):
        recommend(store, "nothing", ["r001"])


HAVE_QDRANT = importlib.util.find_spec("vectorseam_qdrant") is not None


@pytest.mark.skipif(not HAVE_QDRANT, reason="the Qdrant adapter (adapters/qdrant) is not installed")
@pytest.mark.parametrize("strategy", ["average_vector", "best_score"])
@pytest.mark.parametrize(("neg", "flt"), [([], None), (["r010", "r020"], None), (["r010"], {"even": True})])
def test_native_qdrant_matches_generic(strategy: str, neg: list[str], flt: dict[str, object] | None) -> None:
    from vectorseam_qdrant.store import create_store

    qdrant = create_store(location=":memory:")
    memory = MemoryStore()
    fill(qdrant)
    fill(memory)
    assert isinstance(qdrant, NativeRecommend)
    pos = ["r001", "r002"]
    native = recommend(qdrant, "items", pos, neg, k=10, filter=flt, strategy=strategy)  # type: ignore[arg-type]
    generic = recommend(qdrant, "items", pos, neg, k=10, filter=flt, strategy=strategy,  # type: ignore[arg-type]
                        native=False)
    on_memory = recommend(memory, "items", pos, neg, k=10, filter=flt, strategy=strategy)  # type: ignore[arg-type]
    assert [h.id for h in native] == [h.id for h in generic] == [h.id for h in on_memory]
    assert np.allclose([h.score for h in native], [h.score for h in generic], atol=1e-4)
    assert np.allclose([h.score for h in generic], [h.score for h in on_memory], atol=1e-4)
    qdrant.close()


def test_cli_recommend_unknown_id_exits_nonzero(isolated_env: Path) -> None:
    data = isolated_env / "data"
    store = MemoryStore(data / "memory")
    fill(store)
    store.close()
    env = dict(os.environ, VECTORSEAM_COLLECTION="items", COLUMNS="200")
    base = [sys.executable, "-m", "vectorseam.cli.__main__", "recommend"]
    bad = subprocess.run([*base, "r001", "missing-id"], env=env, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 1
    assert "no record with id 'missing-id' in collection 'items'" in bad.stderr
    assert "Traceback" not in bad.stderr
    ok = subprocess.run([*base, "r001", "--negative", "r002", "-k", "3", "--json", "--strategy", "best_score"],
                        env=env, capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0, ok.stderr
    import json

    got = json.loads(ok.stdout)
    store = MemoryStore(data / "memory")
    expected = recommend(store, "items", ["r001"], ["r002"], k=3, strategy="best_score")
    assert [h["id"] for h in got] == [h.id for h in expected]
