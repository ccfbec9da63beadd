"""The rankings of text and vector queries over a keyword store: dense, BM25 keywords, or both fused by
Reciprocal Rank Fusion; optionally MMR re-ranked; with the collection's tuned profile unless turned off.

* ``dense``: the query's vector (the embedder's, or one the caller made in the collection's space) and
  the store's vector query.
* ``bm25``: the store's ``keyword_search``. The store is a :class:`~vectorseam.store.KeywordStore`, so
  this module never decides between an index inside the store and the BM25 sidecar
  (:mod:`vectorseam.stores.keyword_fallback` does); both score by :mod:`vectorseam.keywords`.
* ``hybrid``: the top ``candidates`` of each, fused by RRF: ``score(d) = sum_i w_i / (rrf_k + rank_i(d))``
  (Cormack et al., 2009), which needs no score calibration between BM25 and cosine; one call of the
  store's ``hybrid_search``, unless a tuned profile fuses its own way (:mod:`vectorseam.retrieval.tuned`).
* ``mmr``: a lambda in [0, 1] re-ranks the candidate pool (:meth:`RetrievalSearcher.candidate_pool`)
  for diversity (:func:`vectorseam.retrieval.mmr.mmr_hits`). Scores stay those of the chosen mode.

A tuned profile (:mod:`vectorseam.retrieval.tune`) applies to every text query unless ``profile`` is
False: its query adapter maps the query vector of dense and hybrid queries, its fusion (and feedback and
ranker) makes the hybrid ranking, and its MMR lambda re-ranks hybrid results when the query gives none.
:meth:`RetrievalSearcher.tuned` is the one place that decides whether it applies.

:class:`RetrievalSearcher` ranks; :class:`vectorseam.retrieval.engine.QueryRunner` is the entry every
caller goes through (a typed :class:`~vectorseam.query.Query`, pages, groups, facets, highlights).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from vectorseam.contract import check_k
from vectorseam.embedding import Embedder
from vectorseam.errors import ValidationError
from vectorseam.filters import Filter, FilterLike, parse_filter
from vectorseam.keywords import DEFAULT_RRF_K
from vectorseam.query import MODES, Mode
from vectorseam.retrieval.mmr import check_lambda, mmr_hits
from vectorseam.retrieval.search import MAX_QUERY_CHARS, Searcher
from vectorseam.store import KeywordStore
from vectorseam.types import Hit, as_vector

if TYPE_CHECKING:
    from vectorseam.retrieval.tune_profile import ProfileBook, RetrievalProfile

DEFAULT_CANDIDATES = 100
F32 = npt.NDArray[np.float32]


def check_query(query: object, where: str = "query") -> str:
    if not isinstance(query, str) or not query.strip():
        raise ValidationError(f"{where}: the query text is empty; type something to search for")
    if len(query) > MAX_QUERY_CHARS:
        raise ValidationError(f"{where}: {len(query)} characters; queries are limited to {MAX_QUERY_CHARS}")
    return query


def check_mode(mode: str) -> Mode:
    if mode not in MODES:
        raise ValidationError(f"unknown search mode {mode!r}; use one of {', '.join(MODES)}")
    return mode  # type: ignore[return-value]


def _plain(hits: Sequence[Hit]) -> list[Hit]:
    return [h if h.vector is None else Hit(h.id, h.score, h.text, h.metadata) for h in hits]


class RetrievalSearcher:
    """Dense, BM25 and hybrid rankings (optionally MMR re-ranked) over one keyword store and one embedder."""

    def __init__(
        self,
        store: KeywordStore,
        embedder: Embedder,
        rrf_k: float = DEFAULT_RRF_K,
        candidates: int = DEFAULT_CANDIDATES,
        weights: tuple[float, float] = (1.0, 1.0),
        profiles: ProfileBook | None = None,
    ) -> None:
        self.store = store
        self.embedder = embedder
        self.profiles = profiles  # tuned retrieval profiles (vectorseam.retrieval.tune), used unless turned off
        self.rrf_k = rrf_k
        self.candidates = candidates
        self.weights = weights
        self.dense = Searcher(store, embedder)

    # -- the tuned profile ------------------------------------------------------------------------------
    def profile(self, collection: str, count: int | None = None) -> RetrievalProfile | None:
        """The collection's tuned profile, checked against the embedder; None if it has none or cannot use
        it (then :meth:`profile_note` says why)."""
        return self.profiles.get(self.store, collection, count) if self.profiles is not None else None

    def profile_note(self, collection: str) -> str | None:
        """Why the collection's profile was last found unusable (another embedder's), or None."""
        return self.profiles.note(collection) if self.profiles is not None else None

    def tuned(self, collection: str, mode: str, profile: bool) -> RetrievalProfile | None:
        """The profile a query in ``mode`` runs with: the collection's, unless ``profile`` is False or the
        query is BM25 alone (which a profile does not change)."""
        return self.profile(collection) if profile and mode != "bm25" else None

    # -- vectors ---------------------------------------------------------------------------------------
    def embed(self, collection: str, text: str) -> F32:
        """``text`` embedded as a query, the collection's embedder checked (once per process)."""
        self.dense.check(collection)
        return np.asarray(self.embedder.embed_query(text), dtype=np.float32)

    def candidate_pool(self, k: int) -> int:
        """How many candidates MMR re-ranks for ``k`` results: enough to choose among, at most ``candidates``."""
        return max(k, min(self.candidates, 4 * k + 20))

    # -- rankings --------------------------------------------------------------------------------------
    def search_many(
        self, collection: str, queries: Sequence[str], k: int = 10, filter: FilterLike = None,
        mode: str = "dense", mmr: float | None = None, profile: bool = True,
    ) -> list[list[Hit]]:
        """Several queries: plain dense ones are embedded as one batch, the others searched one by one."""
        if mode == "dense" and mmr is None and self.tuned(collection, mode, profile) is None:
            return self.dense.search_many(collection, queries, k, filter)
        return [self.search(collection, q, k, filter, mode, mmr, profile) for q in queries]

    def search(
        self, collection: str, query: str, k: int = 10, filter: FilterLike = None, mode: str = "dense",
        mmr: float | None = None, profile: bool = True, *, vector: npt.ArrayLike | None = None,
        weights: Sequence[float] | None = None, candidates: int | None = None,
    ) -> list[Hit]:
        """The best ``k`` for ``query`` in ``mode``. ``vector`` is the query's embedding when the caller made
        it (in the collection's space: no embedder, no fingerprint check); ``weights`` replace the RRF
        weights of an untuned hybrid search; ``candidates`` is the MMR pool (default :meth:`candidate_pool`)."""
        check_query(query)
        m = check_mode(mode)
        check_k(k)
        lam = None if mmr is None else check_lambda(mmr)
        f = parse_filter(filter)
        if vector is None and m != "bm25":
            self.dense.check(collection)  # an unknown collection or another embedder's: one error before any work
        tuned = self.tuned(collection, m, profile)
        if tuned is not None and lam is None and m == "hybrid" and tuned.mmr is not None:
            lam = tuned.mmr
        pool = k if lam is None else max(k, candidates or self.candidate_pool(k))
        raw: F32 | None = None
        if m != "bm25" or lam is not None:
            raw = as_vector(vector, None, "query vector") if vector is not None else self.embed(collection, query)
        qvec = raw if tuned is None or raw is None else tuned.adapt(raw)
        hits = self._ranked(collection, query, m, raw, qvec, pool, f, tuned, weights, with_vectors=lam is not None)
        if lam is None:
            return hits[:k] if m == "dense" else _plain(hits[:k])
        assert qvec is not None
        return mmr_hits(self.store, collection, qvec, hits, k, lam, self.store.collection_info(collection).metric)

    def _ranked(self, collection: str, text: str, mode: Mode, raw: F32 | None, qvec: F32 | None, n: int,
                f: Filter | None, tuned: RetrievalProfile | None, weights: Sequence[float] | None,
                with_vectors: bool) -> list[Hit]:
        if mode == "bm25":
            return self.store.keyword_search(collection, text, n, f)
        assert raw is not None and qvec is not None
        if mode == "dense":
            return self.store.query(collection, qvec, k=n, filter=f, include_vectors=with_vectors)[0]
        if tuned is not None:  # the profile's own hybrid: its fusion, feedback and ranker
            from vectorseam.retrieval.tuned import tuned_hybrid

            return tuned_hybrid(self, collection, text, raw, n, f, tuned)
        return self.store.hybrid_search(collection, text, qvec, n, f, self.rrf_k, weights or self.weights,
                                        max(n, self.candidates))

    def search_vector(
        self, collection: str, vector: npt.ArrayLike, k: int = 10, filter: FilterLike = None,
        mmr: float | None = None, candidates: int | None = None,
    ) -> list[Hit]:
        """Search by a vector the caller made (no embedder, so no fingerprint check); ``mmr`` and
        ``candidates`` as in :meth:`search`."""
        lam = None if mmr is None else check_lambda(mmr)
        f = parse_filter(filter)
        # the store's query checks the collection and the length: no collection_info (a COUNT in SQL)
        qvec = as_vector(vector, None, "query vector")
        if lam is None:
            return self.store.query(collection, qvec, k=k, filter=f)[0]
        pool = max(k, candidates or self.candidate_pool(k))
        hits = self.store.query(collection, qvec, k=pool, filter=f, include_vectors=True)[0]
        return mmr_hits(self.store, collection, qvec, hits, k, lam, self.store.collection_info(collection).metric)
