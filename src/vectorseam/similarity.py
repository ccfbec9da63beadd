"""Similarities computed client side, in the store score convention (higher is more similar).

Layers that re-score candidates themselves (best-score recommendations, MMR) must rank exactly as
the store would, so they use the collection's metric here: cosine on unit vectors, the plain inner
product, or the negated Euclidean distance (see :mod:`vectorseam.types`). float64 keeps the
comparison with store scores within rounding.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from vectorseam.types import Metric

F64 = npt.NDArray[np.float64]


def unit_rows(matrix: npt.ArrayLike) -> F64:
    """Rows scaled to length 1; zero rows stay zero (they have no direction to compare)."""
    arr = np.atleast_2d(np.asarray(matrix, dtype=np.float64))
    norms = np.linalg.norm(arr, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return arr / norms  # type: ignore[no-any-return]


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
