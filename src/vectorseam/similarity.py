"""Similarities computed client side, in the store score convention (higher is more similar).

Layers that re-score candidates themselves (best-score recommendations, MMR) must rank exactly as
the store would, so they use the collection's metric here: cosine on unit vectors, the plain inner
product, or the negated Euclidean distance (see :mod:`vectorseam.types`). float64 keeps the
comparison with store scores within rounding.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from vectorseam.errors import ValidationError
from vectorseam.types import Metric

F64 = npt.NDArray[np.float64]


def unit_rows(matrix: npt.ArrayLike) -> F64:
    """Rows scaled to length 1; zero rows stay zero (they have no direction to compare)."""
    arr = np.atleast_2d(np.asarray(matrix, dtype=np.float64))
    norms = np.linalg.norm(arr, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return arr / norms  # type: ignore[no-any-return]


def unit_rows_f32(vectors: npt.ArrayLike) -> npt.NDArray[np.float32]:
    """:func:`unit_rows` in contiguous float32: what matrix products over whole collections want."""
    return np.ascontiguousarray(unit_rows(vectors), dtype=np.float32)


def average_vector(pos: npt.NDArray[np.float64], neg: npt.NDArray[np.float64], metric: Metric) -> F64:
    """``mean(pos) + (mean(pos) - mean(neg))``; examples are unit vectors first in a cosine space.

    The generic recommend path and the adapters that emulate multi-example recommendations
    (Pinecone, Weaviate) share it, so every backend builds the same target vector.
    """
    if metric == "cosine":
        pos = unit_rows(pos)
        neg = unit_rows(neg) if neg.shape[0] else neg
    target = pos.mean(axis=0)
    if neg.shape[0]:
        target = target + (target - neg.mean(axis=0))
    return target  # type: ignore[no-any-return]


def check_threshold(threshold: object) -> float:
    """A cosine-similarity threshold in [-1, 1] (dedup, the ingest duplicate screen)."""
    if isinstance(threshold, bool) or not isinstance(threshold, int | float) or not math.isfinite(threshold):
        raise ValidationError(f"threshold must be a number in [-1, 1], got {threshold!r}")
    if not -1.0 <= float(threshold) <= 1.0:
        raise ValidationError(
            f"threshold {threshold} is outside [-1, 1]: it is a cosine similarity; "
            "near-duplicates are typically above 0.9"
        )
    return float(threshold)


def similarity_matrix(a: npt.ArrayLike, b: npt.ArrayLike, metric: Metric) -> F64:
    """Scores of every row of ``a`` against every row of ``b``: shape (len(a), len(b))."""
    left = np.atleast_2d(np.asarray(a, dtype=np.float64))
    right = np.atleast_2d(np.asarray(b, dtype=np.float64))
    if metric == "cosine":
        return unit_rows(left) @ unit_rows(right).T
    if metric == "dot":
        return left @ right.T
    diff = left[:, None, :] - right[None, :, :]
    return -np.sqrt(np.einsum("ijk,ijk->ij", diff, diff))  # type: ignore[no-any-return]
