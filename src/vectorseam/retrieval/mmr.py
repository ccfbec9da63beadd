"""Maximal Marginal Relevance: re-rank candidates so the top of the list is not k near-copies.

Each step picks the candidate maximising ``lambda * sim(query, d) - (1 - lambda) * max sim(d, chosen)``
(Carbonell & Goldstein, 1998): lambda = 1 is plain relevance order, lambda = 0 pure diversity.

The one MMR of vectorseam: :func:`mmr_order` is the algorithm, :func:`mmr_hits` applies it to a store's
hits (search with ``mmr``, the integrations' MMR searches through the same query, evaluation of a tuned
profile's lambda).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from vectorseam.errors import ValidationError
from vectorseam.similarity import similarity_matrix
from vectorseam.store import VectorStore
from vectorseam.types import Hit, Metric


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


def mmr_hits(store: VectorStore, collection: str, query: npt.ArrayLike, hits: Sequence[Hit], k: int, lambda_: float,
             metric: Metric) -> list[Hit]:
    """Up to ``k`` of ``hits`` (best first) in MMR order for ``query``, with their own scores and without
    vectors; the vectors hits do not carry are fetched in one call (a hit whose record is gone is left out)."""
    missing = [h.id for h in hits if h.vector is None]
    fetched = {r.id: r.vector for r in store.fetch(collection, missing, include_vectors=True)} if missing else {}
    usable = [h for h in hits if h.vector is not None or fetched.get(h.id) is not None]
    if not usable:
        return []
    matrix = np.stack([np.asarray(h.vector if h.vector is not None else fetched[h.id]) for h in usable])
    order = mmr_order(query, matrix, k, lambda_, metric)
    return [Hit(usable[i].id, usable[i].score, usable[i].text, usable[i].metadata) for i in order]


def mmr_head(store: VectorStore, collection: str, query: npt.ArrayLike, ranked: Sequence[tuple[str, float]], pool: int,
             k: int, lambda_: float, metric: Metric) -> list[tuple[str, float]]:
    """``ranked`` (id, score) with its top ``k`` re-chosen by MMR out of its first ``pool`` entries and the
    rest kept in order: what hybrid search with a profile's MMR lambda returns first, for evaluation's
    deeper runs."""
    top = mmr_hits(store, collection, query, [Hit(rid, score, "", {}) for rid, score in ranked[:pool]], k, lambda_,
                   metric)
    chosen = {h.id for h in top}
    return [(h.id, h.score) for h in top] + [c for c in ranked if c[0] not in chosen]
