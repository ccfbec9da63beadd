"""The arithmetic of tuning: candidate lists of whole query sets as matrices, nDCG@10 of thousands of
fusion settings at once, k-fold assignment and paired bootstrap confidence intervals.

Every judged query gets a row of candidate documents: the union of its dense top ``depth`` and its
BM25 top ``depth`` (at the largest depth searched), with each list's score and rank and the judged
gain. A fusion setting is then one call of :func:`~vectorseam.retrieval.tune_profile.fuse_matrix`
over all rows, the function search itself uses, so the figures tuned are the figures served.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import sparse
from scipy.sparse import csgraph

from vectorseam.retrieval.mmr import mmr_order
from vectorseam.retrieval.tune_profile import ABSENT, Fusion, fuse_matrix
from vectorseam.similarity import similarity_matrix
from vectorseam.types import Metric

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
CUTOFF = 10  # nDCG@10, the metric tuned and reported
_DISCOUNT = 1.0 / np.log2(np.arange(2, CUTOFF + 2))
WEIGHTS = (0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8)
RRF_KS = (5.0, 10.0, 20.0, 40.0, 60.0, 100.0)
DEPTHS = (20, 50, 100, 200)
MMR_LAMBDAS = (0.5, 0.7, 0.8, 0.9)
MMR_POOL = 60  # what hybrid search re-ranks for k = 10 (RetrievalSearcher.candidate_pool)


@dataclass(frozen=True)
class Judged:
    """Judged queries as rows: ``gains[i]`` maps document rows to their graded relevance (> 0)."""

    ids: list[str]
    gains: list[dict[int, float]]

    @property
    def idcg(self) -> F64:
        out = np.zeros(len(self.gains))
        for i, g in enumerate(self.gains):
            ideal = sorted(g.values(), reverse=True)[:CUTOFF]
            out[i] = float(np.dot(ideal, _DISCOUNT[: len(ideal)]))
        return out


@dataclass(frozen=True)
class Candidates:
    """One row per query, ``width`` columns; padding columns have ``doc == -1`` and are absent from both lists."""

    doc: I64
    dense_score: F64
    dense_rank: npt.NDArray[np.int32]
    bm25_score: F64
    bm25_rank: npt.NDArray[np.int32]
    gain: F64
    idcg: F64

    def ndcg(self, fused: F64) -> F64:
        """Per-query nDCG@10 of fused scores (-inf: not retrieved); ties broken by document row, i.e. by id."""
        key = np.where(self.doc >= 0, self.doc, np.iinfo(np.int64).max)
        order = np.lexsort((key, -fused), axis=1)[:, :CUTOFF]
        gains = np.take_along_axis(self.gain, order, 1) * np.isfinite(np.take_along_axis(fused, order, 1))
        dcg = gains @ _DISCOUNT[: order.shape[1]]
        return np.divide(dcg, self.idcg, out=np.zeros_like(dcg), where=self.idcg > 0)

    def fused(self, fusion: Fusion) -> F64:
        return fuse_matrix(self.dense_score, self.dense_rank, self.bm25_score, self.bm25_rank, fusion)

    def ranked(self, fusion: Fusion, depth: int) -> list[list[int]]:
        """Each query's best ``depth`` document rows under ``fusion``."""
        fused = self.fused(fusion)
        key = np.where(self.doc >= 0, self.doc, np.iinfo(np.int64).max)
        order = np.lexsort((key, -fused), axis=1)[:, :depth]
        return [[int(self.doc[i, j]) for j in row if np.isfinite(fused[i, j])] for i, row in enumerate(order)]


def dense_top(queries: npt.NDArray[np.float32], documents: npt.NDArray[np.float32], depth: int,
              metric: Metric) -> tuple[I64, F64]:
    """Exact dense top ``depth`` rows and scores of each query, best first (ties by row, i.e. by id)."""
    depth = min(depth, len(documents))
    rows = np.zeros((len(queries), depth), dtype=np.int64)
    scores = np.zeros((len(queries), depth))
    step = 256 if metric != "euclidean" else 4  # euclidean materialises a (step, n, d) difference
    for start in range(0, len(queries), step):
        sim = similarity_matrix(queries[start : start + step], documents, metric)
        part = np.argpartition(-sim, depth - 1, axis=1)[:, :depth] if depth < sim.shape[1] else \
            np.tile(np.arange(sim.shape[1]), (len(sim), 1))
        part_scores = np.take_along_axis(sim, part, 1)
        order = np.lexsort((part, -part_scores), axis=1)
        rows[start : start + step] = np.take_along_axis(part, order, 1)
        scores[start : start + step] = np.take_along_axis(part_scores, order, 1)
    return rows, scores


def build_candidates(dense: tuple[I64, F64], bm25: Sequence[Sequence[tuple[int, float]]], judged: Judged) -> Candidates:
    """Candidate matrices from the dense top rows/scores and each query's BM25 (row, score) list."""
    n = len(judged.ids)
    rows_d, scores_d = dense
    columns = [list(dict.fromkeys([*rows_d[i].tolist(), *(r for r, _ in bm25[i])])) for i in range(n)]
    width = max((len(c) for c in columns), default=1) or 1
    doc = np.full((n, width), -1, dtype=np.int64)
    d_score, b_score, gain = np.zeros((n, width)), np.zeros((n, width)), np.zeros((n, width))
    d_rank = np.full((n, width), ABSENT, dtype=np.int32)
    b_rank = np.full((n, width), ABSENT, dtype=np.int32)
    for i, cols in enumerate(columns):
        where = {d: j for j, d in enumerate(cols)}
        doc[i, : len(cols)] = cols
        for r, (d, s) in enumerate(zip(rows_d[i].tolist(), scores_d[i].tolist(), strict=True)):
            d_score[i, where[d]], d_rank[i, where[d]] = s, r
        for r, (d, s) in enumerate(bm25[i]):
            b_score[i, where[d]], b_rank[i, where[d]] = s, r
        for d, g in judged.gains[i].items():
            if d in where:
                gain[i, where[d]] = g
    return Candidates(doc, d_score, d_rank, b_score, b_rank, gain, judged.idcg)


def dense_ndcg(queries: npt.NDArray[np.float32], documents: npt.NDArray[np.float32], judged: Judged,
               metric: Metric) -> F64:
    """Per-query nDCG@10 of dense search alone."""
    rows, _ = dense_top(queries, documents, CUTOFF, metric)
    idcg = judged.idcg
    dcg = np.array([sum(judged.gains[i].get(int(d), 0.0) * _DISCOUNT[j] for j, d in enumerate(r))
                    for i, r in enumerate(rows)], dtype=np.float64)
    return np.divide(dcg, idcg, out=np.zeros_like(dcg), where=idcg > 0)


def fusion_grid(max_depth: int) -> list[Fusion]:
    """The settings searched; the untuned default comes first, so it wins ties."""
    depths = [d for d in DEPTHS if d <= max_depth] or [max_depth]
    grid = [Fusion()]
    for depth in depths:
        for w in WEIGHTS:
            grid += [Fusion("rrf", w, k, depth) for k in RRF_KS]
            grid += [Fusion("minmax", w, 60.0, depth), Fusion("zscore", w, 60.0, depth)]
    return list(dict.fromkeys(grid))


def grid_scores(candidates: Candidates, grid: Sequence[Fusion]) -> F64:
    """Per-query nDCG@10 of every setting: shape (len(grid), queries)."""
    return np.stack([candidates.ndcg(candidates.fused(f)) for f in grid])


def mmr_ndcg(candidates: Candidates, scores: F64, lam: float, queries: npt.NDArray[np.float32],
             documents: npt.NDArray[np.float32], metric: Metric) -> F64:
    """Per-query nDCG@10 when the top ``MMR_POOL`` by ``scores`` (the pipeline's, -inf: not retrieved) are
    re-ranked by MMR (as hybrid search does)."""
    fused = scores
    key = np.where(candidates.doc >= 0, candidates.doc, np.iinfo(np.int64).max)
    order = np.lexsort((key, -fused), axis=1)[:, :MMR_POOL]
    present = np.isfinite(np.take_along_axis(fused, order, 1))
    rows = np.take_along_axis(candidates.doc, order, 1)
    gains = np.take_along_axis(candidates.gain, order, 1)
    out = np.zeros(len(rows))
    for i in range(len(rows)):
        pool = rows[i][present[i]]
        if len(pool):
            top = gains[i][mmr_order(queries[i], documents[pool], CUTOFF, lam, metric)]
            out[i] = float(np.dot(top, _DISCOUNT[: len(top)]))
    return np.divide(out, candidates.idcg, out=np.zeros_like(out), where=candidates.idcg > 0)


def document_groups(gains: Sequence[dict[int, float]]) -> I64:
    """A group number per query: queries that share a relevant document, directly or through others,
    share a group (connected components of the query-document judgement graph)."""
    n = len(gains)
    docs = sorted({d for g in gains for d in g})
    column = {d: n + j for j, d in enumerate(docs)}
    rows = [i for i, g in enumerate(gains) for _ in g]
    cols = [column[d] for g in gains for d in g]
    graph = sparse.coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(n + len(docs), n + len(docs)))
    _, labels = csgraph.connected_components(graph, directed=False)
    return np.asarray(labels[:n], dtype=np.int64)


def assign_folds(n: int, folds: int, seed: int, groups: I64 | None = None) -> I64:
    """A fold number per query. Groups (one query each by default) are shuffled by the seed, then dealt
    largest first to the fold with the fewest queries, so a group never straddles folds."""
    group = np.arange(n) if groups is None else np.asarray(groups)
    labels, sizes = np.unique(group, return_counts=True)
    order = np.random.default_rng(seed).permutation(len(labels))
    order = order[np.argsort(-sizes[order], kind="stable")]  # largest first; the shuffle breaks ties
    fold_of, filled = {}, np.zeros(folds, dtype=np.int64)
    for i in order.tolist():
        target = int(np.argmin(filled))
        fold_of[int(labels[i])] = target
        filled[target] += sizes[i]
    return np.array([fold_of[int(g)] for g in group], dtype=np.int64)


BOOTSTRAP = 2000  # resamples of the paired bootstrap


def paired_interval(after: F64, before: F64, resamples: int = BOOTSTRAP, seed: int = 0) -> tuple[float, float, float]:
    """Mean per-query difference and its paired bootstrap 95% interval (queries resampled with their
    pairs; percentile interval). nDCG differences are bounded and often far from normal (many zeros, a
    few +-1), where a bootstrap's interval is the honest one."""
    diff = np.asarray(after, dtype=np.float64) - np.asarray(before, dtype=np.float64)
    mean = float(diff.mean()) if len(diff) else 0.0
    if len(diff) < 2:
        return mean, -math.inf, math.inf
    rng = np.random.default_rng(seed)
    means = np.empty(resamples)
    for start in range(0, resamples, 250):  # bounded memory for large query sets
        stop = min(start + 250, resamples)
        means[start:stop] = diff[rng.integers(0, len(diff), size=(stop - start, len(diff)))].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return mean, float(low), float(high)
