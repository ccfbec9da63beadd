"""Maximal Marginal Relevance: re-rank candidates so the top of the list is not k near-copies.

Each step picks the candidate maximising ``lambda * sim(query, d) - (1 - lambda) * max sim(d, chosen)``
(Carbonell & Goldstein, 1998): lambda = 1 is plain relevance order, lambda = 0 pure diversity.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from vectorseam.errors import ValidationError
from vectorseam.similarity import similarity_matrix
from vectorseam.types import Metric


def check_lambda(value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 <= float(value) <= 1.0:
        raise ValidationError(f"--mmr LAMBDA must be a number from 0 (most diverse) to 1 (most relevant), "
                              f"got {value!r}")
    return float(value)


def mmr_order(
    query: npt.ArrayLike, candidates: npt.ArrayLike, k: int, lambda_: float, metric: Metric = "cosine"
) -> list[int]:
    """Indices of up to k candidates in MMR order (ties go to the earlier, better-ranked candidate)."""
    lam = check_lambda(lambda_)
    matrix = np.atleast_2d(np.asarray(candidates, dtype=np.float64))
    n = matrix.shape[0] if np.asarray(candidates).size else 0
    if n == 0 or k <= 0:
        return []
    relevance = similarity_matrix(np.asarray(query, dtype=np.float64)[None, :], matrix, metric)[0]
    pairwise = similarity_matrix(matrix, matrix, metric)
    chosen: list[int] = []
    redundancy = np.full(n, -np.inf)
    available = np.ones(n, dtype=bool)
    while len(chosen) < min(k, n):
        penalty = np.where(np.isfinite(redundancy), redundancy, 0.0)
        value = lam * relevance - (1.0 - lam) * penalty
        value[~available] = -np.inf
        best = int(np.argmax(value))  # argmax takes the first maximum: the better-ranked candidate
        chosen.append(best)
        available[best] = False
        redundancy = np.maximum(redundancy, pairwise[best])
    return chosen
