"""The compiled gather-dot kernel (vectorseam.stores.gather_kernel) against NumPy.

What must hold: for every dimension (below, at and past a vector register's width, with a tail), one
query or several, listed rows or a contiguous range, the kernel's dot products equal NumPy's to
float32 rounding over any slice ``lo:hi`` and write nothing else; a search, filtered or not, one query
at a time or as a batch, returns the same hits and scores with the kernel and with the NumPy path
(``VECTORSEAM_GATHER_KERNEL=numpy``, as on an install without llvmlite).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from vectorseam.filters import parse_filter
from vectorseam.stores import gather_kernel
from vectorseam.stores.memory_collection import Collection
from vectorseam.types import CollectionSpec, Record

pytest.importorskip("llvmlite", reason="the kernel is compiled by llvmlite (the `quantized` extra)")


@pytest.fixture()
def fresh_kernels() -> Iterator[None]:
    """Each test compiles (or declines to) under its own environment."""
    saved = dict(gather_kernel._KERNELS.built)
    gather_kernel._KERNELS.built.clear()
    yield
    gather_kernel._KERNELS.built.clear()
    gather_kernel._KERNELS.built.update(saved)


@pytest.mark.parametrize("dimension", [1, 3, 8, 16, 17, 100, 384, 768])
@pytest.mark.parametrize("batch", [1, 3, 8])
@pytest.mark.parametrize("listed", [True, False])
def test_kernel_matches_numpy(dimension: int, batch: int, listed: bool, fresh_kernels: None) -> None:
    rng = np.random.default_rng(dimension)
    matrix = rng.standard_normal((2000, dimension)).astype(np.float32)
    rows = rng.choice(2000, size=700, replace=False).astype(np.int64) if listed else None
    queries = rng.standard_normal((batch, dimension)).astype(np.float32)
    fn = gather_kernel.kernel(dimension)
    assert fn is not None, "llvmlite is installed, so the kernel must compile"
    count = 700 if listed else 2000
    out = np.full((batch, count), np.nan, dtype=np.float32)
    gather_kernel.gather_dots(fn, matrix, rows, 100, 650, queries, out)
    picked = matrix[rows[100:650]] if rows is not None else matrix[100:650]
    expected = queries.astype(np.float64) @ picked.T.astype(np.float64)
    scale = np.abs(queries).astype(np.float64) @ np.abs(picked.T).astype(np.float64)
    assert np.all(np.abs(out[:, 100:650] - expected) <= 1e-5 * scale + 1e-6)
    assert np.isnan(out[:, :100]).all() and np.isnan(out[:, 650:]).all(), "only lo:hi is written"


def _collection(n: int, dimension: int) -> Collection:
    rng = np.random.default_rng(7)
    vectors = rng.standard_normal((n, dimension)).astype(np.float32)
    coll = Collection(CollectionSpec("c", dimension, "cosine"))
    coll.upsert([Record(id=f"r{i:05d}", vector=vectors[i].tolist(), text="", metadata={"bucket": i % 10})
                 for i in range(n)])
    return coll


def _answers(coll: Collection, queries: np.ndarray, f: object) -> list[list[tuple[str, float]]]:
    """One query at a time, and all of them as one batch (the kernel's multi-query path)."""
    alone = [[(h.id, h.score) for h in coll.search(q[None, :], 10, f, False, None)[0]] for q in queries]
    together = [[(h.id, h.score) for h in hits] for hits in coll.search(queries, 10, f, False, None)]
    assert alone == together, "a batch answers each query as it is answered alone"
    return alone


@pytest.mark.parametrize("spec", [{"bucket": 3}, None])  # 10% of the rows (gathered), and every row
def test_search_same_with_and_without_kernel(spec: dict[str, int] | None, fresh_kernels: None,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    coll = _collection(20_000, 64)
    f = parse_filter(spec) if spec else None
    queries = np.random.default_rng(1).standard_normal((5, 64)).astype(np.float32)
    assert gather_kernel.kernel(64) is not None
    with_kernel = _answers(coll, queries, f)
    gather_kernel._KERNELS.built.clear()
    monkeypatch.setenv("VECTORSEAM_GATHER_KERNEL", "numpy")
    assert gather_kernel.kernel(64) is None
    assert _answers(coll, queries, f) == with_kernel
    assert all(len(hits) == 10 for hits in with_kernel)
    if spec:
        assert all(int(i[1:]) % 10 == 3 for hits in with_kernel for i, _ in hits)
