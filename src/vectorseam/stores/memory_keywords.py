"""The memory store's own BM25 index: keyword and hybrid search inside the store, no sidecar.

Why it looks like this:

* **Derived from the store's own texts, in the store's process.** Nothing is written beside the
  collection's files: the index is built from the texts the collection holds the first time a
  collection is searched by keywords in a process, and from then on follows every write the
  collection applies, its own and the ones other processes committed to its database
  (:mod:`vectorseam.stores.memory_db`). So every process over one directory answers alike on its next
  query, and there is nothing to back up, migrate or keep consistent. Building costs one
  tokenization of every text (:func:`vectorseam.keywords.tokenize_all`).
* **Exact Lucene BM25 at all times.** Term frequencies and lengths are stored, not weights; ``idf``
  and the length normalisation come from the current ``N``, document frequencies and ``avgdl``
  (kept exactly, write by write), so scores equal the reference
  (:class:`vectorseam.stores.bm25_sidecar.BM25Model` over the same records) whatever the order of writes.
  A term's weights over the base are computed on its first query and kept until the next write.
* **A base matrix and a delta.** Rebuilding a docs x terms matrix after every write costs 0.2-0.4 s
  at 5k-100k records. Instead records are in a compressed *base* (term frequencies, CSC for the
  query's columns and CSR to read a row back) or in a small *delta* of the ones written since; an
  overwritten or deleted base row is only marked dead. The base is rebuilt from base and delta
  (no re-tokenizing) once the delta and the dead rows reach a quarter of it.
* **Filters** are the collection's own column masks (:mod:`vectorseam.stores.columns`), applied to
  the records that score at all, before the top k is taken: a selective filter still yields k hits.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from itertools import chain
from typing import Protocol

import numpy as np
import numpy.typing as npt
from scipy import sparse

from vectorseam.filters import Filter
from vectorseam.keywords import K1, B, idf, query_terms, term_weight, tokenize_all
from vectorseam.types import Hit, Record

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]

REBUILD_SHARE = 0.25  # delta records plus dead base rows, as a share of the base, that trigger a rebuild
REBUILD_MIN = 256  # ... but never for fewer changes than this
WEIGHT_CACHE_COLUMNS = 4096  # terms whose base weights are kept between writes (a read-mostly index)


class KeywordIndex:
    """BM25 over one collection's records, kept current write by write (see the module docstring)."""

    def __init__(self, ids: Sequence[str], texts: Sequence[str]) -> None:
        self.vocab: dict[str, int] = {}
        self.df = np.zeros(0, dtype=np.int64)
        self.n = 0
        self.total = 0  # the sum of all lengths
        self._set_base(list(ids), tokenize_all(texts))

    # -- the base -------------------------------------------------------------------------------------
    def _columns(self, terms: Iterable[str]) -> list[int]:
        cols = []
        for term in terms:
            col = self.vocab.get(term)
            if col is None:
                col = self.vocab[term] = len(self.vocab)
            cols.append(col)
        if len(self.vocab) > self.df.shape[0]:
            df = np.zeros(max(len(self.vocab), int(self.df.shape[0] * 1.25) + 256), dtype=np.int64)
            df[: self.df.shape[0]] = self.df
            self.df = df
        return cols

    def _set_base(self, ids: list[str], token_lists: list[list[str]]) -> None:
        counters = [Counter(tokens) for tokens in token_lists]
        lengths = np.fromiter(map(len, token_lists), dtype=np.int64, count=len(token_lists))
        rows = np.repeat(np.arange(len(ids), dtype=np.int64), [len(c) for c in counters])
        cols = np.asarray(self._columns(chain.from_iterable(counters)), dtype=np.int64)
        tfs = np.fromiter(chain.from_iterable(c.values() for c in counters), dtype=np.float64, count=rows.size)
        self._load(ids, rows, cols, tfs, lengths)

    def _load(self, ids: list[str], rows: IntArray, cols: IntArray, tfs: FloatArray, lengths: IntArray) -> None:
        """Make (ids, term frequencies as COO triples, lengths) the base; the delta becomes empty."""
        shape = (len(ids), max(len(self.vocab), 1))
        self.base_csr = sparse.csr_matrix((tfs, (rows, cols)), shape=shape)
        self.base_csc = self.base_csr.tocsc()
        self.base_ids = ids
        self.base_row = {rid: i for i, rid in enumerate(ids)}
        self.base_len = lengths.astype(np.float64)
        self.alive = np.ones(len(ids), dtype=np.bool_)
        self.dead = 0
        self.delta: dict[str, Counter[str]] = {}  # id -> term frequencies
        self.delta_len: dict[str, int] = {}
        self.delta_postings: dict[int, dict[str, int]] = {}
        self.df[:] = 0
        np.add.at(self.df, cols, 1)
        self.n = len(ids)
        self.total = int(lengths.sum())
        self._positions: tuple[Mapping[str, int], IntArray] | None = None
        self._weights: dict[int, FloatArray] = {}

    def _rebuild(self) -> None:
        """Base and delta merged into a new base (no re-tokenizing: the rows are copied from the CSR)."""
        keep = np.flatnonzero(self.alive)
        part = self.base_csr[keep].tocoo()
        ids = [self.base_ids[i] for i in keep.tolist()]
        rows, cols, tfs = [part.row.astype(np.int64)], [part.col.astype(np.int64)], [part.data]
        lengths = [self.base_len[keep].astype(np.int64)]
        for j, (rid, counts) in enumerate(self.delta.items(), start=len(ids)):
            ids.append(rid)
            rows.append(np.full(len(counts), j, dtype=np.int64))
            cols.append(np.asarray([self.vocab[t] for t in counts], dtype=np.int64))
            tfs.append(np.asarray(list(counts.values()), dtype=np.float64))
            lengths.append(np.asarray([self.delta_len[rid]], dtype=np.int64))
        self._load(ids, np.concatenate(rows), np.concatenate(cols), np.concatenate(tfs), np.concatenate(lengths))

    # -- writes -----------------------------------------------------------------------------------------
    def _forget(self, rid: str) -> None:
        counts = self.delta.pop(rid, None)
        if counts is not None:
            for term in counts:
                col = self.vocab[term]
                self.df[col] -= 1
                del self.delta_postings[col][rid]
            self.n -= 1
            self.total -= self.delta_len.pop(rid)
            return
        row = self.base_row.get(rid)
        if row is not None and self.alive[row]:
            self.alive[row] = False
            self.dead += 1
            start, end = self.base_csr.indptr[row], self.base_csr.indptr[row + 1]
            self.df[self.base_csr.indices[start:end]] -= 1
            self.n -= 1
            self.total -= int(self.base_len[row])

    def put(self, ids: Sequence[str], texts: Sequence[str]) -> None:
        """Follow an upsert (the last write of an id in the batch wins, as in the store)."""
        latest = dict(zip(ids, texts, strict=True))
        for (rid, _), tokens in zip(latest.items(), tokenize_all(list(latest.values())), strict=True):
            self._forget(rid)
            counts = Counter(tokens)
            for term, col in zip(counts, self._columns(counts), strict=True):
                self.df[col] += 1
                self.delta_postings.setdefault(col, {})[rid] = counts[term]
            self.delta[rid] = counts
            self.delta_len[rid] = len(tokens)
            self.n += 1
            self.total += len(tokens)
        self._written()

    def remove(self, ids: Iterable[str]) -> None:
        """Follow a delete (unknown ids are ignored)."""
        for rid in ids:
            self._forget(rid)
        self._written()

    def _written(self) -> None:
        self._positions = None
        self._weights.clear()  # N, df and avgdl moved: every weight with them
        if len(self.delta) + self.dead >= max(REBUILD_MIN, REBUILD_SHARE * len(self.base_ids)):
            self._rebuild()

    # -- search -----------------------------------------------------------------------------------------
    def scores(self, query: str) -> tuple[FloatArray, dict[str, float]]:
        """BM25 scores of the base rows (dead rows 0) and of the delta records that share a token with ``query``."""
        avgdl = self.total / self.n if self.n else 1.0
        base = np.zeros(len(self.base_ids), dtype=np.float64)
        delta: dict[str, float] = {}
        indptr, indices, data = self.base_csc.indptr, self.base_csc.indices, self.base_csc.data
        for term, times in query_terms(query).items():
            col = self.vocab.get(term)
            if col is None or self.df[col] <= 0:
                continue
            weight = idf(self.n, int(self.df[col]))
            if col < self.base_csc.shape[1]:
                start, end = indptr[col], indptr[col + 1]
                rows = indices[start:end]
                cached = self._weights.get(col)
                if cached is None:
                    if len(self._weights) >= WEIGHT_CACHE_COLUMNS:
                        self._weights.clear()
                    cached = self._weights[col] = weight * term_weight(data[start:end], self.base_len[rows],
                                                                      avgdl, K1, B)
                base[rows] += times * cached if times != 1 else cached
            for rid, tf in self.delta_postings.get(col, {}).items():
                delta[rid] = delta.get(rid, 0.0) + times * weight * float(
                    term_weight(tf, self.delta_len[rid], avgdl, K1, B))
        if self.dead:
            base[~self.alive] = 0.0
        return base, delta

    def base_positions(self, index: Mapping[str, int]) -> IntArray:
        """The store position of each base row (-1 for a dead one), cached until the next write."""
        if self._positions is None or self._positions[0] is not index:
            get = index.get
            pos = np.fromiter((get(rid, -1) for rid in self.base_ids), dtype=np.int64, count=len(self.base_ids))
            pos[~self.alive] = -1
            self._positions = (index, pos)
        return self._positions[1]

    def top(self, query: str, k: int, allowed: npt.NDArray[np.bool_] | None = None,
            index: Mapping[str, int] | None = None) -> list[tuple[str, float]]:
        """The best ``k`` (id, score) with a positive score, ties by id; with ``allowed`` (a mask over the
        store's positions, ``index`` mapping ids to them) only the records it admits."""
        base, delta = self.scores(query)
        rows = np.flatnonzero(base > 0)
        if allowed is not None:
            assert index is not None
            pos = self.base_positions(index)[rows]
            rows = rows[(pos >= 0) & allowed[np.maximum(pos, 0)]]
            delta = {rid: s for rid, s in delta.items() if s > 0 and allowed[index[rid]]}
        if len(rows) > k:
            kth = np.partition(base[rows], len(rows) - k)[len(rows) - k]
            rows = rows[base[rows] >= kth]  # keeps every tie with the k-th score
        found = [(self.base_ids[i], float(base[i])) for i in rows.tolist()]
        found.extend((rid, s) for rid, s in delta.items() if s > 0)
        found.sort(key=lambda item: (-item[1], item[0]))
        return found[:k]


class _Collection(Protocol):
    """What :func:`search` reads of the memory store's collection
    (:class:`vectorseam.stores.memory_collection.Collection`)."""

    keywords: KeywordIndex | None

    @property
    def ids(self) -> Sequence[str]: ...

    @property
    def texts(self) -> Sequence[str]: ...

    @property
    def index(self) -> dict[str, int]: ...

    def mask(self, f: Filter | None) -> npt.NDArray[np.bool_] | None: ...

    def record(self, pos: int, include_vector: bool) -> Record: ...


def search(coll: _Collection, query: str, k: int, f: Filter | None) -> list[Hit]:
    """The collection's BM25 top ``k`` under ``f``, building its index on first use (the caller holds the
    store's lock, so the collection does not change meanwhile)."""
    if coll.keywords is None:
        coll.keywords = KeywordIndex(coll.ids, coll.texts)
    hits = []
    for rid, score in coll.keywords.top(query, k, coll.mask(f), coll.index):
        rec = coll.record(coll.index[rid], False)
        hits.append(Hit(rec.id, score, rec.text, rec.metadata))
    return hits
