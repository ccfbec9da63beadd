"""Keyword search for every store: :class:`KeywordFallback` wraps a store so that it has
:class:`~vectorseam.store.NativeKeywordSearch` whatever the backend (a :class:`~vectorseam.store.KeywordStore`).

* A store with its own BM25 index (the memory store, pgvector, Qdrant) answers ``keyword_search`` and
  ``hybrid_search`` itself: one call, the filter pushed down, every process over the same data alike.
* Otherwise, and for a collection its store cannot index natively (it raises
  :class:`~vectorseam.errors.UnsupportedOperationError`: a Qdrant collection made before sparse vectors),
  the collection's BM25 sidecar (:mod:`vectorseam.stores.bm25_sidecar`) ranks, the store supplies the
  candidates' texts and metadata, and the filter is applied with the reference semantics of
  :func:`vectorseam.filters.matches`; hybrid search fuses the dense top ``depth`` with that ranking by
  :func:`vectorseam.keywords.fuse_hits`, as the native ones do. Both score by :mod:`vectorseam.keywords`.

So the layers above see one kind of store and one keyword path: they call ``keyword_search`` and
``hybrid_search``, and which index answered is this module's business alone.

Every write through the wrapper is journalled to the collection's sidecar once one exists (it exists
only where a search fell back to it, so over a store with native keyword search a write costs one
``stat``). Writes made past it (another process, the Ray engine's workers) are caught by the sidecar's
count check before each search and its content check once per process; :meth:`KeywordFallback.written_elsewhere`
makes the next search rebuild at once.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy.typing as npt

from vectorseam.errors import UnsupportedOperationError
from vectorseam.filters import Filter, FilterLike, matches, parse_filter
from vectorseam.keywords import DEFAULT_RRF_K, fuse_hits
from vectorseam.store import NativeKeywordSearch, VectorStore
from vectorseam.stores.bm25_sidecar import BM25Sidecar
from vectorseam.stores.wrappers import StoreWrapper
from vectorseam.types import Hit, Record

DEFAULT_DEPTH = 100


class KeywordFallback(StoreWrapper):
    """``inner`` with keyword and hybrid search for every collection: its own where it has them, else from
    a BM25 sidecar per collection under ``root``. Everything else is delegated (with exactly the inner
    store's other optional abilities, see :mod:`vectorseam.stores.wrappers`)."""

    def __init__(self, inner: VectorStore, root: str | Path) -> None:
        super().__init__(inner)
        self.root = Path(root)
        self._native = inner if isinstance(inner, NativeKeywordSearch) else None
        self._sidecars: dict[str, BM25Sidecar] = {}

    def _index(self, collection: str) -> BM25Sidecar:
        index = self._sidecars.get(collection)
        if index is None:
            index = self._sidecars[collection] = BM25Sidecar(self.inner, collection, self.root / collection)
        return index

    # -- writes: the store first, then the sidecar's journal --------------------------------------------
    def upsert(self, collection: str, records: Iterable[Record]) -> int:
        batch = list(records)
        written = self.inner.upsert(collection, batch)
        self._index(collection).apply_upsert(batch)
        return written

    def delete(self, collection: str, ids: Sequence[str] | None = None, filter: FilterLike = None) -> int:
        wanted = [ids] if isinstance(ids, str) else list(ids) if ids is not None else None
        removed = self.inner.delete(collection, wanted, filter)
        if wanted is not None:
            self._index(collection).apply_delete(wanted)
        elif removed:
            self._index(collection).discard()  # which ids went is unknown here: rebuilt on next use
        return removed

    def drop_collection(self, collection: str) -> bool:
        dropped = self.inner.drop_collection(collection)
        self._index(collection).discard()
        shutil.rmtree(self.root / collection, ignore_errors=True)
        self._sidecars.pop(collection, None)
        return dropped

    def written_elsewhere(self, collection: str) -> None:
        """Records of ``collection`` were written past this wrapper (by workers of another process): the
        sidecar, where there is one, is rebuilt from the store before its next search."""
        self._index(collection).discard()

    # -- keyword and hybrid search ------------------------------------------------------------------------
    def keyword_search(self, collection: str, query: str, k: int = 10, filter: FilterLike = None) -> list[Hit]:
        f = parse_filter(filter)
        if self._native is not None:
            try:
                return self._native.keyword_search(collection, query, k, f)
            except UnsupportedOperationError:
                pass  # a collection its store cannot index natively: the sidecar serves it
        return self._sidecar_hits(collection, query, k, f)

    def hybrid_search(self, collection: str, query: str, vector: npt.ArrayLike, k: int = 10,
                      filter: FilterLike = None, rrf_k: float = DEFAULT_RRF_K,
                      weights: Sequence[float] = (1.0, 1.0), depth: int = DEFAULT_DEPTH) -> list[Hit]:
        f = parse_filter(filter)
        if self._native is not None:
            try:
                return self._native.hybrid_search(collection, query, vector, k, f, rrf_k, weights, depth)
            except UnsupportedOperationError:
                pass
        dense = self.query(collection, vector, k=depth, filter=f)[0]
        sparse = self._sidecar_hits(collection, query, depth, f)
        return fuse_hits(dense, sparse, k, rrf_k, weights)

    def _sidecar_hits(self, collection: str, query: str, k: int, f: Filter | None) -> list[Hit]:
        """Rank in the sidecar, then fetch the candidates from the store and filter them here."""
        if collection not in self._sidecars:  # an unknown collection is one clear error, and leaves no files
            self.inner.collection_info(collection)
        ranked = self._index(collection).search(query, None if f is not None else k)
        out: list[Hit] = []
        step = max(2 * k, 100)
        for start in range(0, len(ranked), step):
            chunk = ranked[start : start + step]
            records = {r.id: r for r in self.inner.fetch(collection, [rid for rid, _ in chunk], include_vectors=False)}
            for rid, score in chunk:
                rec = records.get(rid)
                if rec is None or (f is not None and not matches(f, rec.metadata)):
                    continue
                out.append(Hit(rid, score, rec.text, rec.metadata))
                if len(out) == k:
                    return out
        return out
