"""Recommendations: the records most like some stored records (and unlike others), on any store.

Two strategies, defined as Qdrant defines them so that the native and the generic paths agree:

* ``average_vector``: one search with ``mean(pos) + (mean(pos) - mean(neg))`` (just ``mean(pos)``
  without negatives). In a cosine collection the examples are unit-normalised first, as Qdrant
  stores them. Scores are ordinary similarities to that vector.
* ``best_score``: each candidate's best similarity to any positive, ``max_pos``, and to any negative,
  ``max_neg``. If ``max_pos > max_neg`` the score is ``s(max_pos)``, else ``-s(max_neg)``, with
  ``s(x) = (x / (1 + |x|) + 1) / 2`` (Qdrant's ``scaled_fast_sigmoid``): every candidate nearer a
  positive ranks above every candidate nearer a negative. Scores lie in (-1, 1).

The examples themselves are never recommended, nor records whose text is identical to an example's
(the OpenAI Cookbook's recommendation example skips identical strings: duplicates are not news).

A store with a native ``recommend`` (the :class:`~vectorseam.store.NativeRecommend` protocol) is asked
directly (Qdrant's ``RecommendQuery``, Pinecone query by id, Weaviate ``near_object``); a store whose
native method rejects a strategy (UnsupportedOperationError) falls back to the generic path, which
fetches the example vectors and queries the store. The generic ``best_score`` is exact: it gathers
candidates from one query per example, and widens those queries (up to a full scan) until no record
outside the candidate set could still enter the top k.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import numpy.typing as npt

from vectorseam.errors import UnsupportedOperationError, ValidationError
from vectorseam.filters import Filter, FilterLike, parse_filter
from vectorseam.query import STRATEGIES
from vectorseam.similarity import average_vector, similarity_matrix
from vectorseam.store import NativeRecommend, VectorStore
from vectorseam.types import CollectionInfo, Hit, Metadata, Metric, Record, ids_list

MAX_EXAMPLES = 256


def scaled_fast_sigmoid(x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Qdrant's monotone squashing of a similarity into (0, 1); no exponent, so it never overflows."""
    return 0.5 * (x / (1.0 + np.abs(x)) + 1.0)


def best_scores(sims_pos: npt.NDArray[np.float64], sims_neg: npt.NDArray[np.float64]) -> npt.NDArray[
    np.float64
]:
    """Qdrant's best_score for each candidate row, from its similarities to positives and negatives."""
    max_pos = sims_pos.max(axis=1) if sims_pos.shape[1] else np.full(sims_pos.shape[0], -np.inf)
    max_neg = sims_neg.max(axis=1) if sims_neg.shape[1] else np.full(sims_neg.shape[0], -np.inf)
    chosen_pos = max_pos > max_neg
    # -inf (no examples of a kind) would turn into NaN in the branch np.where discards anyway
    finite_pos = np.where(np.isfinite(max_pos), max_pos, 0.0)
    finite_neg = np.where(np.isfinite(max_neg), max_neg, 0.0)
    return np.where(chosen_pos, scaled_fast_sigmoid(finite_pos), -scaled_fast_sigmoid(finite_neg))


def check_request(
    positive: Sequence[str] | str, negative: Sequence[str] | str, k: int, strategy: str
) -> tuple[list[str], list[str]]:
    if isinstance(k, bool) or not isinstance(k, int) or k <= 0:
        raise ValidationError(f"k must be a positive integer, got {k!r}")
    if strategy not in STRATEGIES:
        raise ValidationError(f"unknown recommend strategy {strategy!r}; use one of {', '.join(STRATEGIES)}")
    pos = list(dict.fromkeys(ids_list(positive)))
    neg = list(dict.fromkeys(ids_list(negative)))
    if not pos:
        raise ValidationError("recommend needs at least one positive id: the items to find more of")
    both = [i for i in pos if i in set(neg)]
    if both:
        raise ValidationError(f"id(s) {', '.join(map(repr, both))} given as both positive and negative; "
                              "give each example once")
    if len(pos) + len(neg) > MAX_EXAMPLES:
        raise ValidationError(f"{len(pos) + len(neg)} examples; recommend takes at most {MAX_EXAMPLES}")
    return pos, neg


def fetch_examples(store: VectorStore, collection: str, ids: list[str]) -> dict[str, Record]:
    found = {r.id: r for r in store.fetch(collection, ids, include_vectors=True)}
    missing = [i for i in ids if i not in found]
    if missing:
        shown = ", ".join(repr(m) for m in missing[:10]) + (" ..." if len(missing) > 10 else "")
        raise ValidationError(
            f"recommend: no record with id {shown} in collection {collection!r}; recommendations start "
            "from stored records (list ids with `vectorseam search --json`)"
        )
    for rid, rec in found.items():
        if rec.vector is None:
            raise ValidationError(f"recommend: the {store.capabilities.name} store returned record {rid!r} "
                                  "without its vector")
    return found


def recommend(
    store: VectorStore,
    collection: str,
    positive: Sequence[str] | str,
    negative: Sequence[str] | str = (),
    k: int = 10,
    filter: FilterLike = None,
    strategy: str = "average_vector",
    exclude_identical_text: bool = True,
    native: bool = True,
) -> list[Hit]:
    """The k records most like ``positive`` (and unlike ``negative``), best first.

    ``native=False`` forces the generic path (used to check that both give the same results).
    """
    pos, neg = check_request(positive, negative, k, strategy)
    f = parse_filter(filter)
    info = store.collection_info(collection)
    examples = fetch_examples(store, collection, pos + neg)
    excluded_ids = set(pos) | set(neg)
    excluded_texts = {r.text for r in examples.values() if r.text} if exclude_identical_text else set()

    def keep(hit: Hit) -> bool:
        return hit.id not in excluded_ids and hit.text not in excluded_texts

    native_store = store if native and isinstance(store, NativeRecommend) else None
    want = k + len(excluded_ids) + 8
    while True:
        raw: list[Hit] | None = None
        if native_store is not None:
            try:
                raw = native_store.recommend(collection, pos, neg, want, f, strategy)
            except UnsupportedOperationError:
                native_store = None  # e.g. Pinecone and Weaviate have no best_score: compute it here
        if raw is None:
            raw = _generic(store, info, examples, pos, neg, want, f, strategy, keep, k)
        kept = [h for h in raw if keep(h)]
        # Fewer hits than asked means the store had no more; otherwise widen past excluded duplicates.
        if len(kept) >= k or len(raw) < want or want >= info.count + len(excluded_ids):
            return [_plain(h) for h in kept[:k]]
        want *= 2


def _plain(hit: Hit) -> Hit:
    return Hit(hit.id, float(hit.score), hit.text, hit.metadata)


def example_matrix(examples: dict[str, Record], ids: list[str], dimension: int) -> npt.NDArray[np.float64]:
    if not ids:
        return np.zeros((0, dimension), dtype=np.float64)
    return np.stack([np.asarray(examples[i].vector, dtype=np.float64) for i in ids])


def _generic(
    store: VectorStore,
    info: CollectionInfo,
    examples: dict[str, Record],
    pos: list[str],
    neg: list[str],
    want: int,
    f: Filter | None,
    strategy: str,
    keep: Callable[[Hit], bool],
    k: int,
) -> list[Hit]:
    pvec = example_matrix(examples, pos, info.dimension)
    nvec = example_matrix(examples, neg, info.dimension)
    if strategy == "average_vector":
        target = average_vector(pvec, nvec, info.metric).astype(np.float32)
        return store.query(info.name, target, k=want, filter=f)[0]
    return _best_score(store, info, pvec, nvec, want, f, keep, k)


def _best_score(
    store: VectorStore,
    info: CollectionInfo,
    pvec: npt.NDArray[np.float64],
    nvec: npt.NDArray[np.float64],
    want: int,
    f: Filter | None,
    keep: Callable[[Hit], bool],
    k: int,
) -> list[Hit]:
    """Exact best-score ranking, from widening per-example queries or, at worst, one full scan.

    A record missing from every example's top-m has, for each positive j, a similarity no higher than
    that query's m-th score b_j, so its ``max_pos`` is at most ``B = max_j b_j``. Once k kept
    candidates are nearer a positive than any negative with ``max_pos > B``, nothing outside the
    candidate set can outrank them.
    """
    examples = np.vstack([pvec, nvec]).astype(np.float32)
    m = max(want, 4 * k)
    while True:
        candidates: dict[str, Hit] = {}
        bound = -np.inf
        complete = m >= info.count
        if complete:
            for batch in store.scan(info.name, batch_size=1000, filter=f, include_vectors=True):
                for rec in batch:
                    candidates[rec.id] = Hit(rec.id, 0.0, rec.text, rec.metadata, rec.vector)
        else:
            results = store.query(info.name, examples, k=m, filter=f, include_vectors=True)
            for j, hits in enumerate(results):
                for h in hits:
                    candidates.setdefault(h.id, h)
                if j < pvec.shape[0] and len(hits) == m:
                    bound = max(bound, hits[-1].score)
            complete = all(len(hits) < m for hits in results)
        ranked = _rank(candidates, pvec, nvec, info.metric)
        if complete:
            return [hit for hit, _ in ranked[:want]]
        head = [(hit, max_pos) for hit, max_pos in ranked if keep(hit)][:k]
        if len(head) == k and all(hit.score > 0 and max_pos > bound + 1e-5 for hit, max_pos in head):
            return [hit for hit, _ in ranked[:want]]
        m *= 2


def _rank(
    candidates: dict[str, Hit], pvec: npt.NDArray[np.float64], nvec: npt.NDArray[np.float64], metric: Metric
) -> list[tuple[Hit, float]]:
    if not candidates:
        return []
    hits = list(candidates.values())
    missing = [h.id for h in hits if h.vector is None]
    if missing:
        raise ValidationError(f"recommend: the store returned record {missing[0]!r} without its vector")
    matrix = np.stack([np.asarray(h.vector, dtype=np.float64) for h in hits])
    sims_pos = similarity_matrix(matrix, pvec, metric)
    sims_neg = similarity_matrix(matrix, nvec, metric) if nvec.shape[0] else np.zeros((len(hits), 0))
    scores = best_scores(sims_pos, sims_neg)
    max_pos = sims_pos.max(axis=1)
    order = sorted(range(len(hits)), key=lambda i: (-scores[i], hits[i].id))
    out: list[tuple[Hit, float]] = []
    for i in order:
        h = hits[i]
        meta: Metadata = h.metadata
        out.append((Hit(h.id, float(scores[i]), h.text, meta), float(max_pos[i])))
    return out
