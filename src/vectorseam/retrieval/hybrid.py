"""Search modes over any store: dense, BM25 keywords, or both fused by Reciprocal Rank Fusion; plus MMR.

* ``dense``: the embedder and the store's vector query.
* ``bm25``: the store's own keyword index when it has one (:class:`~vectorseam.store.NativeKeywordSearch`:
  one call, the filter pushed down, the same answer in every process over the same data); otherwise,
  as the documented fallback, the collection's BM25 sidecar (:mod:`vectorseam.retrieval.bm25`), whose
  hits the store supplies texts and metadata for, filtered with the reference semantics of
  :func:`vectorseam.filters.matches`. Both score by the one definition in :mod:`vectorseam.keywords`.
* ``hybrid``: the top ``candidates`` of each, fused by RRF: ``score(d) = sum_i w_i / (rrf_k + rank_i(d))``
  (Cormack et al., 2009), which needs no score calibration between BM25 and cosine; in one call of
  the store's ``hybrid_search`` when it has one (and no tuned profile fuses its own way).
* ``mmr``: a lambda in [0, 1] re-ranks the candidate pool (:meth:`RetrievalSearcher.candidate_pool`)
  for diversity with the query embedding and the candidates' vectors (see
  :mod:`vectorseam.retrieval.mmr`). Scores stay those of the chosen mode.

:class:`RetrievalSearcher` is the retrieval entry point the facade owns: ``search`` and ``search_many``
by text in any mode, ``search_vector`` by a caller's vector (dense, optionally MMR).
:class:`SyncedStore` wraps a store so that every upsert and delete also updates the sidecar.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Literal, TypeAlias, get_args

import numpy as np
import numpy.typing as npt

from vectorseam.embedders.base import Embedder
from vectorseam.errors import UnsupportedOperationError, ValidationError
from vectorseam.filters import Filter, FilterLike, matches, parse_filter
from vectorseam.keywords import DEFAULT_RRF_K as DEFAULT_RRF_K  # re-exported: its home before keywords.py
from vectorseam.keywords import fuse_hits
from vectorseam.keywords import rrf_fuse as rrf_fuse
from vectorseam.retrieval.bm25 import BM25Sidecar, remove_dir
from vectorseam.retrieval.mmr import check_lambda, mmr_order
from vectorseam.retrieval.search import MAX_QUERY_CHARS, Searcher
from vectorseam.store import NativeKeywordSearch, VectorStore
from vectorseam.stores.wrappers import StoreWrapper
from vectorseam.types import Hit, Metric, Record, as_vector

if TYPE_CHECKING:
    from vectorseam.retrieval.tune_profile import ProfileBook, RetrievalProfile

Mode: TypeAlias = Literal["dense", "bm25", "hybrid"]
MODES: tuple[str, ...] = get_args(Mode)
DEFAULT_CANDIDATES = 100


class SyncedStore(StoreWrapper):
    """A store whose writes also update each collection's BM25 sidecar; everything else is delegated
    (with exactly the inner store's optional abilities, see :mod:`vectorseam.stores.wrappers`).

    A sidecar is journalled only once it exists, and it exists only where a search fell back to it,
    so over a store with native keyword search this costs one ``stat`` per write."""

    def __init__(self, inner: VectorStore, root: str | Path) -> None:
        super().__init__(inner)
        self.root = Path(root)
        self._sidecars: dict[str, BM25Sidecar] = {}

    def sidecar(self, collection: str) -> BM25Sidecar:
        if collection not in self._sidecars:
            self._sidecars[collection] = BM25Sidecar(self.inner, collection, self.root / collection)
        return self._sidecars[collection]

    def upsert(self, collection: str, records: Iterable[Record]) -> int:
        batch = list(records)
        written = self.inner.upsert(collection, batch)
        self.sidecar(collection).apply_upsert(batch)
        return written

    def delete(self, collection: str, ids: Sequence[str] | None = None, filter: FilterLike = None) -> int:
        wanted = [ids] if isinstance(ids, str) else list(ids) if ids is not None else None
        removed = self.inner.delete(collection, wanted, filter)
        if wanted is not None:
            self.sidecar(collection).apply_delete(wanted)
        elif removed:
            self.sidecar(collection).discard()  # which ids went is unknown here: rebuild on next use
        return removed

    def drop_collection(self, collection: str) -> bool:
        dropped = self.inner.drop_collection(collection)
        self.sidecar(collection).discard()
        remove_dir(self.root / collection)
        self._sidecars.pop(collection, None)
        return dropped


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


class RetrievalSearcher:
    """Dense, BM25 and hybrid search (optionally MMR re-ranked) over one store and one embedder."""

    def __init__(
        self,
        store: VectorStore,
        embedder: Embedder,
        bm25_root: str | Path,
        rrf_k: float = DEFAULT_RRF_K,
        candidates: int = DEFAULT_CANDIDATES,
        weights: tuple[float, float] = (1.0, 1.0),
        profiles: ProfileBook | None = None,
    ) -> None:
        self.store = store
        self.profiles = profiles  # tuned retrieval profiles (vectorseam.retrieval.tune), used unless turned off
        self.embedder = embedder
        self.bm25_root = Path(bm25_root)
        self.rrf_k = rrf_k
        self.candidates = candidates
        self.weights = weights
        self.dense = Searcher(store, embedder)
        self._sidecars: dict[str, BM25Sidecar] = {}

    def sidecar(self, collection: str) -> BM25Sidecar:
        if isinstance(self.store, SyncedStore):
            return self.store.sidecar(collection)
        if collection not in self._sidecars:
            self._sidecars[collection] = BM25Sidecar(self.store, collection, self.bm25_root / collection)
        return self._sidecars[collection]

    def profile(self, collection: str, count: int | None = None) -> RetrievalProfile | None:
        """The collection's tuned profile, checked against the embedder and the documents; None if it has none."""
        return self.profiles.get(self.store, collection, count) if self.profiles is not None else None

    def candidate_pool(self, k: int) -> int:
        """How many candidates MMR re-ranks for ``k`` results: enough to choose among, at most ``candidates``."""
        return max(k, min(self.candidates, 4 * k + 20))

    def search_many(
        self, collection: str, queries: Sequence[str], k: int = 10, filter: FilterLike = None,
        mode: str = "dense", mmr: float | None = None, profile: bool = True,
    ) -> list[list[Hit]]:
        """Several queries: plain dense ones are embedded as one batch, the others searched one by one."""
        if mode == "dense" and mmr is None and (not profile or self.profile(collection) is None):
            return self.dense.search_many(collection, queries, k, filter)
        return [self.search(collection, q, k, filter, mode, mmr, profile) for q in queries]

    def search(
        self, collection: str, query: str, k: int = 10, filter: FilterLike = None, mode: str = "dense",
        mmr: float | None = None, profile: bool = True,
    ) -> list[Hit]:
        """With the collection's tuned profile (unless ``profile`` is False), dense and hybrid queries go
        through its query adapter, hybrid results are fused its way and re-ranked by its MMR lambda if it
        has one and ``mmr`` is not given; BM25 alone is unchanged."""
        check_query(query)
        m = check_mode(mode)
        if isinstance(k, bool) or not isinstance(k, int) or k <= 0:
            raise ValidationError(f"k must be a positive integer, got {k!r}")
        lam = None if mmr is None else check_lambda(mmr)
        f = parse_filter(filter)
        # An unknown collection is one clear error before any work. The store's collection_info (a
        # COUNT in SQL stores) is asked only when its answer is used: a BM25 query, a tuned profile
        # (checked against the record count) or MMR (the metric); the dense check asks once per process.
        if m == "bm25":
            self.store.collection_info(collection)
        else:
            self.dense.check(collection)
        tuned = None
        if profile and m != "bm25" and self.profile(collection) is not None:
            tuned = self.profile(collection, self.store.collection_info(collection).count)
        if tuned is not None and lam is None and m == "hybrid" and tuned.mmr is not None:
            lam = tuned.mmr
        pool = k if lam is None else self.candidate_pool(k)
        qvec: npt.NDArray[np.float32] | None = None
        if m != "bm25" or lam is not None:
            self.dense.check(collection)
            qvec = self.embedder.embed_query(query)
            if tuned is not None:
                qvec = tuned.adapt(qvec)
        if m == "dense":
            assert qvec is not None
            hits = self.store.query(collection, qvec, k=pool, filter=f, include_vectors=lam is not None)[0]
        elif m == "bm25":
            hits = self.bm25_hits(collection, query, pool, f)
        else:
            assert qvec is not None
            depth = max(pool, self.candidates if tuned is None else tuned.fusion.depth)
            native = self._native_hybrid(collection, query, qvec, pool, f, depth) if tuned is None else None
            if native is not None:
                hits = native
            else:
                dense = self.store.query(collection, qvec, k=depth, filter=f)[0]
                sparse = self.bm25_hits(collection, query, depth, f)
                if tuned is None:
                    hits = fuse_hits(dense, sparse, pool, self.rrf_k, self.weights)
                else:
                    by_id = {h.id: h for h in sparse} | {h.id: h for h in dense}
                    fused = tuned.fusion.fuse([(h.id, h.score) for h in dense], [(h.id, h.score) for h in sparse])
                    hits = [Hit(rid, score, by_id[rid].text, by_id[rid].metadata) for rid, score in fused[:pool]]
        if lam is None:
            return hits[:k]
        assert qvec is not None
        return self._mmr(collection, self.store.collection_info(collection).metric, qvec, hits, k, lam)

    def search_vector(
        self, collection: str, vector: npt.ArrayLike, k: int = 10, filter: FilterLike = None,
        mmr: float | None = None,
    ) -> list[Hit]:
        """Search by a vector the caller made (no embedder, so no fingerprint check); ``mmr`` as in search."""
        lam = None if mmr is None else check_lambda(mmr)
        f = parse_filter(filter)
        # the store's query checks the collection and the length: no collection_info (a COUNT in SQL)
        qvec = as_vector(vector, None, "query vector")
        if lam is None:
            return self.store.query(collection, qvec, k=k, filter=f)[0]
        pool = self.store.query(collection, qvec, k=self.candidate_pool(k), filter=f, include_vectors=True)[0]
        return self._mmr(collection, self.store.collection_info(collection).metric, qvec, pool, k, lam)

    def _native_hybrid(self, collection: str, query: str, qvec: npt.NDArray[np.float32], k: int, f: Filter | None,
                       depth: int) -> list[Hit] | None:
        """The store's own hybrid search; None when it has none (or not for this collection)."""
        if not isinstance(self.store, NativeKeywordSearch):
            return None
        try:
            return self.store.hybrid_search(collection, query, qvec, k, f, self.rrf_k, self.weights, depth)
        except UnsupportedOperationError:
            return None

    def native_keywords(self, collection: str, query: str, k: int, f: Filter | None = None) -> list[Hit] | None:
        """The store's own BM25 hits; None when it has no keyword index (or none for this collection)."""
        if not isinstance(self.store, NativeKeywordSearch):
            return None
        try:
            return self.store.keyword_search(collection, query, k, f)
        except UnsupportedOperationError:
            return None

    def keyword_ranking(self, collection: str, query: str, k: int) -> list[tuple[str, float]]:
        """The BM25 top ``k`` as (id, score) pairs, natively or from the sidecar (evaluation and tuning)."""
        native = self.native_keywords(collection, query, k)
        if native is not None:
            return [(h.id, h.score) for h in native]
        return self.sidecar(collection).search(query, k)

    def bm25_hits(self, collection: str, query: str, k: int, f: Filter | None) -> list[Hit]:
        """BM25 hits from the store's own index, or else (the fallback) from the sidecar."""
        native = self.native_keywords(collection, query, k, f)
        return native if native is not None else self.sidecar_hits(collection, query, k, f)

    def sidecar_hits(self, collection: str, query: str, k: int, f: Filter | None) -> list[Hit]:
        """The fallback: rank in the sidecar, then fetch candidates from the store and filter them here."""
        ranked = self.sidecar(collection).search(query, None if f is not None else k)
        out: list[Hit] = []
        step = max(2 * k, 100)
        for start in range(0, len(ranked), step):
            chunk = ranked[start : start + step]
            records = {r.id: r for r in self.store.fetch(collection, [rid for rid, _ in chunk], include_vectors=False)}
            for rid, score in chunk:
                rec = records.get(rid)
                if rec is None or (f is not None and not matches(f, rec.metadata)):
                    continue
                out.append(Hit(rid, score, rec.text, rec.metadata))
                if len(out) == k:
                    return out
        return out

    def _mmr(self, collection: str, metric: Metric, qvec: npt.NDArray[np.float32], hits: list[Hit], k: int,
             lam: float) -> list[Hit]:
        missing = [h.id for h in hits if h.vector is None]
        fetched = self.store.fetch(collection, missing, include_vectors=True) if missing else []
        vectors = {r.id: r.vector for r in fetched}
        usable = [h for h in hits if h.vector is not None or vectors.get(h.id) is not None]
        if not usable:
            return []
        matrix = np.stack([np.asarray(h.vector if h.vector is not None else vectors[h.id]) for h in usable])
        order = mmr_order(qvec, matrix, k, lam, metric)
        return [Hit(usable[i].id, usable[i].score, usable[i].text, usable[i].metadata) for i in order]
