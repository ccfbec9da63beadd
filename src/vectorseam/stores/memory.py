"""The in-memory store: exact search over a contiguous float32 matrix, optionally persisted to disk.

Design choices, and why:

* **One contiguous matrix per collection**, grown by 10% steps (not doubled) so spare capacity stays
  small next to the vectors themselves; queries are one BLAS matrix product.
* **Vectors are kept exactly as written** (float32, bit for bit: ``fetch`` and hits return them
  unchanged). Cosine collections also keep each row's norm and score ``(q / |q|) . x / |x|``: one
  O(n) division next to the O(nd) product, where a second, unit-length copy would double the memory.
  (Format 1 files held unit rows times a norm, which rebuilt vectors a float32 ulp or two off; they
  still load, rebuilt that way.)
* **Deletes swap the last row into the hole**: O(d) per id instead of rebuilding the matrix.
* **Filters become a row set before top-k**, so a selective filter never returns fewer than k hits
  while matches exist (post-filtering would). **A plan per filtered query** (:meth:`_Collection.scores`)
  picks, from the filter's measured selectivity and the batch size, between scoring only the
  matching rows (gathered chunk by chunk into a cache-sized buffer, so the copy never leaves the CPU
  cache) and scoring every row with one BLAS product and keeping the matching scores.
* **Derived structures follow writes** instead of being rebuilt: filter columns
  (:mod:`vectorseam.stores.columns`), the cached rows of a repeated filter, and the optional HNSW
  graph (:mod:`vectorseam.stores.ann`) are updated for just the rows a write touched.
* **Ties are broken by id** so results are deterministic and comparable across backends.
* **Persistence is a shared, append-only log** (:mod:`vectorseam.stores.journal`): any number of
  processes may open one directory. Every write call takes the collection's OS lock, applies what
  other processes wrote since, appends one entry and syncs it: the call returns only once the write
  is durable and visible to every process (no buffered state, so ``flush`` has nothing to do). Every
  read first checks the log with one ``fstat`` and applies new entries, so a server sees the writes
  of CLI jobs and scripts before its next query without reloading.
* **BM25 keyword and hybrid search inside the store** (:mod:`vectorseam.stores.memory_keywords`): an
  index built from the collection's own texts on its first keyword search and kept current by every
  write applied, this process's or another's, so no BM25 sidecar is needed.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from vectorseam.contract import (
    check_batch_size,
    check_compatible,
    check_delete_args,
    check_k,
    collection_not_found,
)
from vectorseam.errors import ConfigError, StoreUnavailableError, ValidationError
from vectorseam.filters import Filter, FilterLike, matches, parse_filter
from vectorseam.keywords import check_depth, fuse_hits
from vectorseam.stores import journal, memory_keywords
from vectorseam.stores.ann import AnnSettings, HnswIndex, require_faiss
from vectorseam.stores.columns import ColumnIndex
from vectorseam.types import (
    Capabilities,
    CollectionInfo,
    CollectionSpec,
    Hit,
    Metadata,
    Metric,
    Record,
    as_query_matrix,
    ids_list,
    validate_records,
)

_log = logging.getLogger(__name__)
IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float32]

# Query plans (benchmarks/filter_varied.py). Gathering a scattered row and scoring it costs about 3x
# streaming past it (measured on one core: 10% of the rows gathered 3.5 ms, all rows streamed 11.8 ms,
# at 100k x 384), so a single query scores the gathered rows below this share of the collection and
# every row (one streaming BLAS pass) above it. A batch is compute-bound: gathering costs only the copy.
FULL_SCAN_SHARE_SINGLE = 0.3
FULL_SCAN_SHARE_BATCH = 0.5
GATHER_CHUNK_BYTES = 256 * 1024  # one query: the gather buffer stays in the CPU's L2 cache (half of it)
GATHER_CHUNK_ROWS_BATCH = 16384  # a batch: large blocks keep the matrix products efficient
PARALLEL_MIN_ROWS = 4096  # one query gathering more rows than this splits them over the CPU cores
CACHE_MAX_SHARE = 0.25  # a repeated filter's rows are copied when they are at most this share
RECENT_FILTERS = 32  # how many recent filtered queries decide which filter is worth caching
SMALL_WRITE_ROWS = 1024  # larger writes drop the cached filter rows (and a graph they'd outgrow)
# Compaction: when the log outgrows the base (and at least COMPACT_MIN_BYTES), or holds this many
# entries (each costs a little on every open), the collection is rewritten as a new base.
COMPACT_MIN_BYTES = 64 << 20
COMPACT_MAX_ENTRIES = 20_000


class _FilterCache:
    """The rows matching one filter and a contiguous copy of their vectors and norms.

    Repeated queries under one filter (a tenant, a category) then cost one small matrix product
    instead of a gather of every matching row. Writes update it row by row (``matches`` on each
    written row), so it survives them: rebuilding it after every write cost a full gather per write.
    """

    def __init__(self, key: str, f: Filter, coll: _Collection, rows: IntArray) -> None:
        self.key, self.filter = key, f
        self.size = int(rows.size)
        capacity = self.size + 64
        self.rows = np.empty(capacity, dtype=np.int64)
        self.rows[: self.size] = rows
        self.vectors = np.empty((capacity, coll.dimension), dtype=np.float32)
        np.take(coll.matrix, rows, axis=0, out=self.vectors[: self.size])
        self.norms = np.empty(capacity, dtype=np.float32)
        self.norms[: self.size] = coll.norms[rows]
        self.where = np.full(max(coll.n, 1), -1, dtype=np.int64)  # row -> index here, -1: not here
        self.where[rows] = np.arange(self.size)

    def _grow(self, n: int) -> None:
        if n > self.where.shape[0]:
            where = np.full(max(n, int(self.where.shape[0] * 1.25)), -1, dtype=np.int64)
            where[: self.where.shape[0]] = self.where
            self.where = where
        if self.size == self.rows.shape[0]:
            capacity = int(self.size * 1.25) + 64
            for name in ("rows", "vectors", "norms"):
                old = getattr(self, name)
                new = np.empty((capacity, *old.shape[1:]), dtype=old.dtype)
                new[: self.size] = old[: self.size]
                setattr(self, name, new)

    def _remove(self, i: int) -> None:
        last = self.size - 1
        self.where[self.rows[i]] = -1
        if i != last:
            self.rows[i] = self.rows[last]
            self.vectors[i] = self.vectors[last]
            self.norms[i] = self.norms[last]
            self.where[self.rows[i]] = i
        self.size = last

    def set_rows(self, coll: _Collection, positions: IntArray) -> bool:
        """Follow an upsert of ``positions``; False when the write is too large to follow row by row."""
        if positions.size > SMALL_WRITE_ROWS:
            return False
        for p in positions.tolist():
            self._grow(coll.n)
            i = int(self.where[p])
            if matches(self.filter, coll.metas[p]):
                if i < 0:
                    i = self.size
                    self.rows[i], self.where[p] = p, i
                    self.size += 1
                self.vectors[i] = coll.matrix[p]
                self.norms[i] = coll.norms[p]
            elif i >= 0:
                self._remove(i)
        return self.size <= CACHE_MAX_SHARE * max(coll.n, 1)

    def delete_rows(self, removed: IntArray, moved_from: IntArray, moved_to: IntArray) -> bool:
        if removed.size > SMALL_WRITE_ROWS:
            return False
        for p in removed.tolist():
            i = int(self.where[p]) if p < self.where.shape[0] else -1
            if i >= 0:
                self._remove(i)
        if moved_from.size:
            idx = self.where[moved_from]
            here = idx >= 0
            self.rows[idx[here]] = moved_to[here]
            self.where[moved_from[here]] = -1
            self.where[moved_to[here]] = idx[here]
        return True


class _Collection:
    """Rows 0..n-1 of ``matrix`` are live; ``ids[i]`` names row i and ``index`` maps back."""

    def __init__(self, spec: CollectionSpec) -> None:
        self.name = spec.name
        self.dimension = spec.dimension
        self.metric: Metric = spec.metric
        self.metadata: dict[str, str] = dict(spec.metadata)
        self.matrix = np.zeros((0, spec.dimension), dtype=np.float32)
        # cosine: the norm of each row; euclidean: the squared norm; dot: unused.
        self.norms = np.zeros(0, dtype=np.float32)
        self.ids: list[str] = []
        self.texts: list[str] = []
        self.metas: list[Metadata] = []
        self.index: dict[str, int] = {}
        self.columns = ColumnIndex()
        self.cache: _FilterCache | None = None
        self._recent: deque[str] = deque(maxlen=RECENT_FILTERS)  # keys of the last filters queried
        self.ann: HnswIndex | None = None
        self.log: journal.Log | None = None  # persisted stores: the collection's log, as far as applied
        self.pending = False  # the log ends in the seal of a compaction that has not committed (yet)
        self.keywords: memory_keywords.KeywordIndex | None = None  # BM25, built on the first keyword search

    @property
    def n(self) -> int:
        return len(self.ids)

    def spec(self) -> CollectionSpec:
        return CollectionSpec(self.name, self.dimension, self.metric, dict(self.metadata))

    def info(self) -> CollectionInfo:
        return CollectionInfo(self.name, self.dimension, self.metric, dict(self.metadata), self.n)

    def set_base(self, base: journal.Base) -> None:
        self.matrix, self.norms = base.matrix, base.norms
        self.ids, self.texts, self.metas = base.ids, base.texts, base.metas
        self.index = {rid: i for i, rid in enumerate(self.ids)}

    def close(self) -> None:
        if self.log is not None:
            self.log.close()
        if self.ann is not None:
            self.ann.drop()

    # -- writes ---------------------------------------------------------------------------------
    def _reserve(self, rows: int) -> None:
        if rows <= self.matrix.shape[0]:
            return
        capacity = max(rows, int(self.matrix.shape[0] * 1.1) + 1024)
        matrix = np.zeros((capacity, self.dimension), dtype=np.float32)
        matrix[: self.n] = self.matrix[: self.n]
        norms = np.zeros(capacity, dtype=np.float32)
        norms[: self.n] = self.norms[: self.n]
        self.matrix, self.norms = matrix, norms

    def _prepare(self, vectors: npt.NDArray[np.float32], ids: list[str]) -> tuple[
        npt.NDArray[np.float32], npt.NDArray[np.float32]
    ]:
        if self.metric == "cosine":
            # float64: a float32 sum of squares under/overflows for tiny (1e-23) or huge (1e20) values
            norms = np.linalg.norm(vectors.astype(np.float64), axis=1).astype(np.float32)
            zero = np.flatnonzero(norms == 0)
            if zero.size:
                raise ValidationError(
                    f"record {ids[int(zero[0])]!r}: a zero vector has no direction, so cosine similarity "
                    "is undefined; use the 'dot' or 'euclidean' metric or drop the record"
                )
            return vectors, norms
        if self.metric == "euclidean":
            return vectors, np.einsum("ij,ij->i", vectors, vectors).astype(np.float32)
        return vectors, np.zeros(len(ids), dtype=np.float32)

    def checked_entry(self, records: list[Record]) -> journal.Entry:
        """The log entry for an upsert of validated records, after every check ``upsert`` makes, so
        that a write that reached the log is one the collection accepts."""
        vectors = np.stack([r.vector for r in records]).astype(np.float32, copy=False)  # type: ignore[misc]
        self._prepare(vectors, [r.id for r in records])
        generation = self.log.generation + 1 if self.log is not None else 0
        return journal.Entry(generation, "upsert", [r.id for r in records], [r.text for r in records],
                             [r.metadata for r in records], vectors)

    def upsert(self, records: list[Record]) -> int:
        if not records:
            return 0
        ids = [r.id for r in records]
        vectors = np.stack([r.vector for r in records]).astype(np.float32, copy=False)  # type: ignore[misc]
        rows, norms = self._prepare(vectors, ids)
        positions = np.empty(len(records), dtype=np.int64)
        new = 0
        for j, rid in enumerate(ids):
            pos = self.index.get(rid)
            if pos is None:
                positions[j] = self.n + new
                new += 1
            else:
                positions[j] = pos
        self._reserve(self.n + new)
        self.matrix[positions] = rows
        self.norms[positions] = norms
        for j, record in enumerate(records):
            pos = int(positions[j])
            if pos < self.n:
                self.texts[pos] = record.text
                self.metas[pos] = dict(record.metadata)
            else:
                self.index[record.id] = pos
                self.ids.append(record.id)
                self.texts.append(record.text)
                self.metas.append(dict(record.metadata))
        self.columns.set_rows(positions, self.metas)
        if self.keywords is not None:
            self.keywords.put(ids, [r.text for r in records])
        if self.cache is not None and not self.cache.set_rows(self, positions):
            self.cache = None
        if self.ann is not None and self.ann.built:
            if positions.size > max(SMALL_WRITE_ROWS, self.n // 10):
                self.ann.drop()  # a bulk load: building anew is cheaper than adding one by one
            else:
                self.ann.set_rows(positions, self.unit_rows(positions))
                if self.ann.needs_rebuild():
                    self.ann.start_rebuild(self.unit_rows())
        return len(records)

    def delete_ids(self, ids: Iterable[str]) -> int:
        ids = list(ids)
        if self.keywords is not None:
            self.keywords.remove(ids)
        removed: list[int] = []  # positions (before this call) of the deleted rows
        origin: dict[int, int] = {}  # position now -> position before this call, for moved rows
        for rid in ids:
            pos = self.index.pop(rid, None)
            if pos is None:
                continue
            removed.append(origin.pop(pos, pos))
            last = self.n - 1
            if pos != last:  # move the last row into the hole
                moved = self.ids[last]
                self.matrix[pos] = self.matrix[last]
                self.norms[pos] = self.norms[last]
                self.ids[pos], self.texts[pos], self.metas[pos] = moved, self.texts[last], self.metas[last]
                self.index[moved] = pos
                origin[pos] = origin.pop(last, last)
            self.ids.pop()
            self.texts.pop()
            self.metas.pop()
        if removed:
            gone = np.asarray(removed, dtype=np.int64)
            moved_to = np.fromiter(origin.keys(), dtype=np.int64, count=len(origin))
            moved_from = np.fromiter(origin.values(), dtype=np.int64, count=len(origin))
            self.columns.delete_rows(gone, moved_from, moved_to, self.n)
            if self.cache is not None and not self.cache.delete_rows(gone, moved_from, moved_to):
                self.cache = None
            if self.ann is not None and self.ann.built:
                self.ann.delete_rows(gone, moved_from, moved_to, self.n)
                if self.ann.needs_rebuild():
                    self.ann.start_rebuild(self.unit_rows())
        return len(removed)

    def apply(self, entry: journal.Entry) -> None:
        """A logged write (this process's or another's) applied to memory; it was validated when written."""
        if entry.op == "upsert":
            assert entry.vectors is not None
            self.upsert([Record(i, v, t, m) for i, v, t, m in
                         zip(entry.ids, entry.vectors, entry.texts, entry.metadata, strict=True)])
        elif entry.op == "delete":
            self.delete_ids(entry.ids)

    # -- reads ----------------------------------------------------------------------------------
    def mask(self, f: Filter | None) -> npt.NDArray[np.bool_] | None:
        if f is None:
            return None
        return self.columns.mask(f, self.metas)

    def select(self, f: Filter | None) -> tuple[IntArray | None, _FilterCache | None]:
        """The rows a filter admits (None: all), and the cached copy of their vectors if there is one.

        A filter that admits at most CACHE_MAX_SHARE of the rows is cached when it is queried twice
        in a row, or in a quarter of the recent filtered queries (a tenant's filter among others), and
        more often than the cached one; a stream of different filters never pays for copies it would
        not reuse, and filters queried equally often do not evict each other.
        """
        if f is None:
            return None, None
        key = repr(f)  # not ==: a filter on True must not hit the cache of a filter on 1
        again = bool(self._recent) and self._recent[-1] == key
        self._recent.append(key)
        if self.cache is not None and self.cache.key == key:
            return self.cache.rows[: self.cache.size], self.cache
        rows = self.columns.rows(f, self.metas)
        seen = self._recent.count(key)
        if 0 < rows.size <= CACHE_MAX_SHARE * self.n and (again or seen >= RECENT_FILTERS // 4) and (
                self.cache is None or seen > self._recent.count(self.cache.key) + RECENT_FILTERS // 8):
            # (a clear margin: filters queried about equally often must not evict each other in turn)
            self.cache = _FilterCache(key, f, self, rows)
            return rows, self.cache
        return rows, None

    def vector(self, pos: int) -> npt.NDArray[np.float32]:
        return np.array(self.matrix[pos], dtype=np.float32)

    def unit_rows(self, positions: IntArray | None = None) -> npt.NDArray[np.float32]:
        """Rows scaled to unit length (cosine), as the HNSW graph indexes them; all live rows by default."""
        rows: npt.NDArray[np.float32] = self.matrix[: self.n] if positions is None else self.matrix[positions]
        if self.metric == "cosine":
            norms = self.norms[: self.n] if positions is None else self.norms[positions]
            rows = (rows / norms[:, None]).astype(np.float32)
        return rows

    def record(self, pos: int, include_vector: bool) -> Record:
        return Record(
            id=self.ids[pos],
            vector=self.vector(pos) if include_vector else None,
            text=self.texts[pos],
            metadata=copy_metadata(self.metas[pos]),
        )

    def scores(
        self, queries: npt.NDArray[np.float32], rows: IntArray | None, cache: _FilterCache | None = None
    ) -> npt.NDArray[np.float32]:
        """Scores of every query against the selected rows (every row when ``rows`` is None).

        The plan: all rows, one BLAS product; a cached filter, one product over its copy; otherwise,
        from the filter's share of the collection, either the product over all rows with the
        matching columns kept, or the matching rows gathered chunk by chunk (see the module doc).
        """
        qs = queries
        if self.metric == "cosine":
            qn = np.linalg.norm(queries, axis=1, keepdims=True)
            qn[qn == 0] = 1.0
            qs = queries / qn
        if rows is None:
            dots: npt.NDArray[np.float32] = qs @ self.matrix[: self.n].T
            norms = self.norms[: self.n]
        elif cache is not None:
            dots = qs @ cache.vectors[: cache.size].T
            norms = cache.norms[: cache.size]
        else:
            share = FULL_SCAN_SHARE_SINGLE if queries.shape[0] == 1 else FULL_SCAN_SHARE_BATCH
            if rows.size >= share * self.n:
                dots = (qs @ self.matrix[: self.n].T)[:, rows]
            else:
                dots = self._gathered_dots(qs, rows)
            norms = self.norms[rows]
        if self.metric == "cosine":
            return dots / norms[None, :]
        if self.metric == "dot":
            return dots
        qsq = np.einsum("ij,ij->i", queries, queries)[:, None]
        return -np.sqrt(np.maximum(qsq + norms[None, :] - 2.0 * dots, 0.0))  # type: ignore[no-any-return]

    def _gathered_dots(self, qs: npt.NDArray[np.float32], rows: IntArray) -> npt.NDArray[np.float32]:
        """``qs @ matrix[rows].T`` without materialising ``matrix[rows]``: each chunk of rows is copied
        into a buffer and scored from there. For one query the buffer stays in cache, so the rows are
        read from memory once (a full gather writes them out and reads them back), and a long list of
        rows is split over the CPU cores (numpy and BLAS release the GIL; BLAS already spreads a
        batch's products over the cores)."""
        batch = qs.shape[0]
        chunk = max(64, GATHER_CHUNK_BYTES // (4 * self.dimension)) if batch == 1 else GATHER_CHUNK_ROWS_BATCH
        out = np.empty((rows.size, batch), dtype=np.float32)
        # one query: a matrix-vector product into a 1-d view (measured ~15% faster than a matmul
        # with a one-column operand at 10% of 100k rows); a batch: one matrix product per chunk
        qt = np.ascontiguousarray(qs[0] if batch == 1 else qs.T, dtype=np.float32)
        target = out[:, 0] if batch == 1 else out
        matrix = self.matrix

        def work(lo: int, hi: int) -> None:
            buf = np.empty((min(chunk, hi - lo), self.dimension), dtype=np.float32)
            for start in range(lo, hi, chunk):
                part = rows[start : min(start + chunk, hi)]
                m = part.size
                matrix.take(part, axis=0, out=buf[:m])
                np.dot(buf[:m], qt, out=target[start : start + m])

        workers = min(_CPUS, rows.size // PARALLEL_MIN_ROWS) if batch == 1 else 1
        if workers <= 1:
            work(0, rows.size)
        else:
            # the calling thread takes the first share itself: waking a pool thread on a core that
            # has gone idle costs about a millisecond here, so one fewer wake-up is worth it
            bounds = np.linspace(0, rows.size, workers + 1).astype(int).tolist()
            others = [_pool().submit(work, lo, hi) for lo, hi in itertools.pairwise(bounds[1:])]
            work(bounds[0], bounds[1])
            for done in others:
                done.result()
        return out.T

    def refine_euclidean(
        self,
        query: npt.NDArray[np.float32],
        approx: npt.NDArray[np.float32],
        rows: npt.NDArray[np.int64] | None,
        k: int,
    ) -> npt.NDArray[np.float64]:
        """Exact scores for every row that can reach the top k; the others keep their estimate.

        ``|q|^2 + |x|^2 - 2 q.x`` in float32 cancels catastrophically for near neighbours (a stored
        vector queried against itself scored -0.03 instead of 0 at d=384), which also misorders
        near-duplicates. With E bounding that error of a squared distance, the estimated distance is
        off by at most sqrt(E), so every row within 2 sqrt(E) of the k-th estimate is rescored from
        its exact difference to the query; rows further out cannot beat those.
        """
        m = approx.shape[0]
        sq = self.norms[: self.n] if rows is None else self.norms[rows]
        qsq = float(np.dot(query.astype(np.float64), query.astype(np.float64)))
        err = 2.0 * (2 * self.dimension + 8) * float(np.finfo(np.float32).eps) * (qsq + float(sq.max()))
        if k < m:
            kth = np.partition(-approx, k - 1)[k - 1]
            local = np.flatnonzero(-approx <= kth + 2.0 * np.sqrt(err))
        else:
            local = np.arange(m)
        pos = local if rows is None else rows[local]
        diff = self.matrix[pos].astype(np.float64) - query.astype(np.float64)[None, :]
        exact = approx.astype(np.float64)
        exact[local] = -np.sqrt(np.einsum("ij,ij->i", diff, diff))
        return exact


def top_k(scores: npt.NDArray[np.floating[Any]], id_of: Callable[[int], str], k: int) -> list[int]:
    """Indices of the k best scores, best first, ties broken by id ascending (deterministically).

    argpartition finds the k-th best score; every candidate scoring at least that is kept so that
    ties straddling the cut are ordered by id rather than by partition order.
    """
    m = scores.shape[0]
    if m == 0 or k <= 0:
        return []
    if k < m:
        part = np.argpartition(-scores, k - 1)[:k]
        cand = np.flatnonzero(scores >= scores[part].min())
    else:
        cand = np.arange(m)
    id_arr = np.array([id_of(int(i)) for i in cand], dtype=object)
    order = np.lexsort((id_arr, -scores[cand]))
    return [int(cand[i]) for i in order[:k]]


Sync = Literal["ok", "torn", "pending", "reload", "dropped"]
_CPUS = os.cpu_count() or 1
_POOL: ThreadPoolExecutor | None = None
_POOL_LOCK = threading.Lock()


def _pool() -> ThreadPoolExecutor:
    """Threads for splitting one query's gather over the cores (created on first use)."""
    global _POOL
    with _POOL_LOCK:
        if _POOL is None:
            _POOL = ThreadPoolExecutor(max_workers=_CPUS, thread_name_prefix="vectorseam-gather")
        return _POOL


class MemoryStore:
    """Exact in-process vector store; pass ``path`` to keep collections on disk, shared by processes.

    With a ``path``, every write is durable and visible to other processes when the call returns,
    and every read first applies what other processes wrote (see the module docstring).
    ``lock_timeout`` bounds how long a write waits for another process's write to the same collection.
    """

    def __init__(self, path: str | os.PathLike[str] | None = None, ann: object = None,
                 lock_timeout: float = journal.LOCK_TIMEOUT_S) -> None:
        self._path = Path(path) if path is not None else None
        self._ann = AnnSettings.parse(ann)  # None: exact search only (see stores/ann.py)
        if self._ann is not None:
            require_faiss()
        self._lock_timeout = lock_timeout
        self._lock = threading.RLock()
        self._collections: dict[str, _Collection] = {}
        if self._path is not None:
            self._path.mkdir(parents=True, exist_ok=True)
            for name in self._names_on_disk():
                self._sync(name)

    @property
    def capabilities(self) -> Capabilities:
        return Capabilities(
            name="memory", persistent=self._path is not None, approximate=self._ann is not None
        )

    # -- collections ------------------------------------------------------------------------------
    def ensure_collection(self, spec: CollectionSpec) -> CollectionInfo:
        with self._lock:
            if self._path is None:
                coll = self._collections.get(spec.name)
                if coll is None:
                    coll = self._collections[spec.name] = _Collection(spec)
                check_compatible(coll.info(), spec)
                return coll.info()
            with self._locked(spec.name):
                coll = self._sync(spec.name)
                if coll is None:
                    if (self._path / spec.name / journal.MANIFEST).is_file():
                        journal.drop(self._path, spec.name, None)  # finish a drop whose process died
                    coll = _Collection(spec)
                    coll.log = journal.create(self._path / spec.name, spec)
                    self._collections[spec.name] = coll
                check_compatible(coll.info(), spec)
                return coll.info()

    def collections(self) -> list[CollectionInfo]:
        with self._lock:
            if self._path is not None:
                on_disk = set(self._names_on_disk())
                for name in sorted(on_disk | set(self._collections)):
                    if name in on_disk:
                        self._sync(name)
                    else:  # removed by a process that left no drop entry (an older vectorseam)
                        self._forget(name)
            return [c.info() for c in sorted(self._collections.values(), key=lambda c: c.name)]

    def collection_info(self, collection: str) -> CollectionInfo:
        with self._lock:
            return self._get(collection).info()

    def drop_collection(self, collection: str) -> bool:
        with self._lock:
            if self._path is None:
                return self._collections.pop(collection, None) is not None
            with self._locked(collection):
                coll = self._sync(collection)
                if coll is None:
                    return False
                journal.drop(self._path, collection, coll.log)
                self._forget(collection)
                return True

    def _get(self, name: str) -> _Collection:
        coll = self._sync(name) if self._path is not None else self._collections.get(name)
        if coll is None:
            raise collection_not_found("memory", name, self._collections)
        return coll

    # -- records ----------------------------------------------------------------------------------
    def upsert(self, collection: str, records: Iterable[Record]) -> int:
        with self._lock, self._writing(collection) as coll:
            checked = validate_records(records, coll.dimension)
            if not checked:
                return 0
            if coll.log is not None:
                coll.log.append(coll.checked_entry(checked))
            return coll.upsert(checked)

    def query(
        self,
        collection: str,
        vectors: npt.ArrayLike,
        k: int = 10,
        filter: FilterLike = None,
        include_vectors: bool = False,
    ) -> list[list[Hit]]:
        check_k(k)
        f = parse_filter(filter)
        with self._lock:
            coll = self._get(collection)
            queries = as_query_matrix(vectors, coll.dimension)
            rows, cache = coll.select(f)
            if (rows is not None and rows.size == 0) or coll.n == 0:
                return [[] for _ in range(queries.shape[0])]
            approx: list[list[Hit] | None] | None = None
            if self._ann is not None and (coll.n if rows is None else rows.size) >= self._ann.min_rows:
                mask = None
                if rows is not None:
                    mask = np.zeros(coll.n, dtype=np.bool_)
                    mask[rows] = True
                approx = _approximate(coll, self._ann, queries, k, mask, include_vectors)
                missing = [i for i, hits in enumerate(approx) if hits is None]
                if not missing:
                    return [hits or [] for hits in approx]
                queries = queries[missing]  # the graph came up short: answer these exactly
            scores = coll.scores(queries, rows, cache)
            ids = coll.ids
            # ids are looked up only for the few candidates top_k keeps, never for every filtered row
            id_of: Callable[[int], str] = ids.__getitem__ if rows is None else (lambda i: ids[int(rows[i])])
            out: list[list[Hit]] = []
            for qi in range(queries.shape[0]):
                hits = []
                row_scores: npt.NDArray[np.floating[Any]] = scores[qi]
                if coll.metric == "euclidean":
                    row_scores = coll.refine_euclidean(queries[qi], scores[qi], rows, k)
                for local in top_k(row_scores, id_of, k):
                    pos = local if rows is None else int(rows[local])
                    hits.append(Hit(
                        id=coll.ids[pos],
                        score=float(row_scores[local]),
                        text=coll.texts[pos],
                        metadata=copy_metadata(coll.metas[pos]),
                        vector=coll.vector(pos) if include_vectors else None,
                    ))
                out.append(hits)
            if approx is not None:
                exact = iter(out)
                return [hits if hits is not None else next(exact) for hits in approx]
            return out

    def fetch(self, collection: str, ids: Sequence[str], include_vectors: bool = True) -> list[Record]:
        wanted = ids_list(ids)
        with self._lock:
            coll = self._get(collection)
            return [coll.record(coll.index[i], include_vectors) for i in wanted if i in coll.index]

    def delete(self, collection: str, ids: Sequence[str] | None = None, filter: FilterLike = None) -> int:
        check_delete_args(ids, filter)
        wanted = ids_list(ids) if ids is not None else None
        f = parse_filter(filter) if ids is None else None
        with self._lock, self._writing(collection) as coll:
            if wanted is not None:
                doomed = list(dict.fromkeys(i for i in wanted if i in coll.index))
            else:
                mask = coll.mask(f)
                assert mask is not None
                doomed = [coll.ids[i] for i in np.flatnonzero(mask)]
            if not doomed:
                return 0
            if coll.log is not None:
                coll.log.append(journal.Entry(coll.log.generation + 1, "delete", doomed))
            return coll.delete_ids(doomed)

    def count(self, collection: str, filter: FilterLike = None) -> int:
        with self._lock:
            coll = self._get(collection)
            mask = coll.mask(parse_filter(filter))
            return coll.n if mask is None else int(mask.sum())

    def scan(
        self,
        collection: str,
        batch_size: int = 1000,
        filter: FilterLike = None,
        include_vectors: bool = True,
    ) -> Iterator[list[Record]]:
        check_batch_size(batch_size)
        f = parse_filter(filter)
        with self._lock:
            coll = self._get(collection)
            mask = coll.mask(f)
            snapshot = sorted(coll.ids if mask is None else [coll.ids[i] for i in np.flatnonzero(mask)])
        # Pages are read from a snapshot of ids (sorted, hence stable); records deleted meanwhile
        # are skipped rather than failing the scan.
        for start in range(0, len(snapshot), batch_size):
            batch = self.fetch(collection, snapshot[start : start + batch_size], include_vectors)
            if batch:
                yield batch

    def keyword_search(self, collection: str, query: str, k: int = 10, filter: FilterLike = None) -> list[Hit]:
        """BM25 from the collection's own keyword index (see :mod:`vectorseam.stores.memory_keywords`)."""
        check_k(k)
        f = parse_filter(filter)
        with self._lock:
            return memory_keywords.search(self._get(collection), query, k, f)

    def hybrid_search(self, collection: str, query: str, vector: npt.ArrayLike, k: int = 10, filter: FilterLike = None,
                      rrf_k: float = 60, weights: Sequence[float] = (1.0, 1.0), depth: int = 100) -> list[Hit]:
        """RRF of the dense and the BM25 top ``depth``, both read under one hold of the lock (one snapshot)."""
        check_k(k)
        d = check_depth(depth, k)
        f = parse_filter(filter)
        with self._lock:
            dense = self.query(collection, vector, d, f)[0]
            sparse = self.keyword_search(collection, query, d, f)
        return fuse_hits(dense, sparse, k, rrf_k, weights)

    # -- persistence ------------------------------------------------------------------------------
    def flush(self) -> None:
        """Nothing to do: with a ``path`` every write is durable when its call returns (kept because
        callers that also drive buffering stores call it at their checkpoints)."""

    def compact(self, collection: str) -> None:
        """Rewrite a persisted collection as one base file and an empty log (done on its own when the
        log outgrows the base; see :mod:`vectorseam.stores.journal`)."""
        if self._path is None:
            return
        with self._lock, self._writing(collection) as coll:
            self._compact(coll, strict=True)

    def close(self) -> None:
        """Close the files of a persisted store; it reopens them if used again. (An in-memory store
        keeps its collections: closing it must not lose them.)"""
        with self._lock:
            if self._path is None:
                return
            for name in list(self._collections):
                self._forget(name)

    def __enter__(self) -> MemoryStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- sharing a directory between processes ----------------------------------------------------
    def _names_on_disk(self) -> list[str]:
        assert self._path is not None
        return sorted(child.name for child in self._path.iterdir()
                      if not child.name.startswith(".") and (child / journal.MANIFEST).is_file())

    def _locked(self, name: str) -> journal.CollectionLock:
        assert self._path is not None
        return journal.CollectionLock(self._path, name, self._lock_timeout)

    def _forget(self, name: str) -> None:
        coll = self._collections.pop(name, None)
        if coll is not None:
            coll.close()

    @contextlib.contextmanager
    def _writing(self, name: str) -> Iterator[_Collection]:
        """The collection, up to date and locked against other processes' writes until the block ends.
        Compacts afterwards when the log has outgrown the base."""
        if self._path is None:
            yield self._get(name)
            return
        with self._locked(name):
            coll = self._get(name)
            if coll.log is None:  # a format 1/2 directory opened read-only before: upgrade now
                self._forget(name)
                coll = self._get(name)
                if coll.log is None:
                    raise StoreUnavailableError(f"collection {name!r} in {self._path} cannot be written: its files "
                                                "are in an old format that could not be upgraded (read-only?)")
            if coll.log.torn or coll.pending:
                # Under the lock nobody else is writing: an incomplete tail is a killed writer's, a
                # pending seal a compaction that never committed. Neither was acknowledged.
                coll.log.cut_tail()
                got = journal.read_manifest(self._path / name)
                if got is not None:
                    journal.remove_unreferenced(self._path / name, got[0])
                coll.pending = False
            yield coll
            if coll.log.offset >= max(COMPACT_MIN_BYTES, coll.log.base_bytes) or \
                    coll.log.entries >= COMPACT_MAX_ENTRIES:
                self._compact(coll, strict=False)

    def _compact(self, coll: _Collection, strict: bool) -> None:
        assert self._path is not None and coll.log is not None
        directory = self._path / coll.name
        got = journal.read_manifest(directory)
        assert got is not None
        manifest = got[0]
        previous = [str(manifest[k]) for k in ("vectors", "records", "log") if manifest.get(k)]
        base = journal.Base(coll.matrix, coll.norms, coll.ids, coll.texts, coll.metas)
        try:
            log, _ = journal.compact(directory, coll.log, coll.spec(), str(manifest.get("uid", "")), base, coll.n,
                                     previous)
        except (OSError, StoreUnavailableError) as exc:
            if strict:
                raise StoreUnavailableError(f"compacting collection {coll.name!r} in {directory} failed ({exc}); "
                                            "no data was lost: its writes are in the log") from exc
            _log.warning("compacting collection %r failed (%s); its writes are safe in the log, and a later "
                         "write retries", coll.name, exc)
            return
        coll.log.close()
        coll.log = log

    def _sync(self, name: str) -> _Collection | None:
        """The collection as the files say now, other processes' writes applied; None if absent."""
        assert self._path is not None
        for _ in range(20):
            coll = self._collections.get(name)
            fresh = coll is None
            if coll is None:
                coll = self._open(self._path / name)
                if coll is None:
                    return None
                self._collections[name] = coll
            state = self._catch_up(coll)
            if state in ("ok", "torn", "pending"):
                coll.pending = state == "pending"
                return coll
            self._forget(name)  # dropped (maybe created again since) or reloaded: read it afresh
            if state == "dropped" and fresh:
                return None  # the directory's own log says it is dropped (it is being removed)
        raise StoreUnavailableError(f"collection {name!r} in {self._path} kept changing while being read; retry")

    def _catch_up(self, coll: _Collection) -> Sync:
        """Apply the log entries other processes appended since this process last looked."""
        if coll.log is None or not coll.log.changed():
            return "ok"
        assert self._path is not None
        while True:
            log = coll.log
            for entry in log.poll():
                if entry.op in ("upsert", "delete"):
                    coll.apply(entry)
                elif entry.op == "drop":
                    return "dropped"
                else:  # a seal: continue in the next log, whose base is the state we hold
                    nxt = journal.follow_seal(self._path / coll.name, entry, log)
                    if nxt == "wait":
                        return "pending"
                    if nxt == "reload":
                        return "reload"
                    log.close()
                    coll.log = nxt
                    break
            else:
                return "torn" if log.torn else "ok"

    def _open(self, directory: Path) -> _Collection | None:
        """Load a collection (base plus log). Format 1/2 directories are upgraded to the log format,
        under the lock; if that fails (read-only files) the collection is served as it is, unshared."""
        loaded = journal.load(directory)
        if loaded is None:
            return None
        if loaded.log is None:
            try:
                with self._locked(directory.name):
                    again = journal.load(directory)
                    if again is not None and again.log is None:
                        again.log, again.manifest = journal.upgrade(directory, again)
                    loaded = again
            except OSError as exc:
                _log.warning("collection %r in %s is in an old format and could not be upgraded (%s); it is "
                             "served read-only and not shared with other processes", directory.name,
                             directory.parent, exc)
            if loaded is None:
                return None
        coll = _Collection(loaded.spec)
        coll.set_base(loaded.base)
        coll.log = loaded.log
        return coll


def copy_metadata(metadata: Metadata) -> Metadata:
    """A copy deep enough that a caller editing a returned list value cannot change the store."""
    return {key: list(value) if isinstance(value, list) else value for key, value in metadata.items()}


def create_store(path: str | None = None, ann: object = None, **options: Any) -> MemoryStore:
    """Entry-point factory (``vectorseam.stores`` group, name ``memory``)."""
    if options:
        raise ConfigError(
            f"the memory store takes only 'path' and 'ann'; unknown options: {', '.join(options)}"
        )
    return MemoryStore(path, ann=ann)


def _approximate(
    coll: _Collection,
    settings: AnnSettings,
    queries: npt.NDArray[np.float32],
    k: int,
    mask: npt.NDArray[np.bool_] | None,
    include_vectors: bool,
) -> list[list[Hit] | None]:
    """Hits from the HNSW graph; None for a query the graph could not fill (the caller goes exact)."""
    if coll.ann is None:
        coll.ann = HnswIndex(settings, coll.metric, coll.dimension)
    if not coll.ann.built:  # built on the first approximate query, then kept current by writes
        coll.ann.build(coll.unit_rows())
    if coll.metric == "cosine":
        qn = np.linalg.norm(queries, axis=1, keepdims=True)
        qn[qn == 0] = 1.0
        queries = (queries / qn).astype(np.float32)
    selected = coll.n if mask is None else int(mask.sum())
    scores, labels = coll.ann.search(queries, k, mask, selected)
    out: list[list[Hit] | None] = []
    for qi in range(queries.shape[0]):
        found = [(float(s), int(p)) for s, p in zip(scores[qi], labels[qi], strict=True) if p >= 0]
        if len(found) < min(k, selected):
            out.append(None)
            continue
        found.sort(key=lambda sp: (-sp[0], coll.ids[sp[1]]))
        out.append([
            Hit(id=coll.ids[p], score=s, text=coll.texts[p], metadata=copy_metadata(coll.metas[p]),
                vector=coll.vector(p) if include_vectors else None)
            for s, p in found
        ])
    return out
