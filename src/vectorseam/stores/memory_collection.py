"""One collection of the memory store, in RAM: the vectors, their ids, texts and metadata, and the
structures derived from them (filter columns, a repeated filter's rows, the HNSW graph, BM25).

Design choices, and why:

* **One contiguous matrix per collection**, grown by 10% steps (not doubled) so spare capacity stays
  small next to the vectors themselves; queries are one BLAS matrix product. Opened from a snapshot
  (:mod:`vectorseam.stores.memory_snapshot`) the matrix is a copy-on-write memory map: every process
  reads the same page-cache pages, and a row it writes becomes its own.
* **Vectors are kept exactly as written** (float32, bit for bit: ``fetch`` and hits return them
  unchanged). Cosine collections also keep each row's norm and score ``(q / |q|) . x / |x|``: one
  O(n) division next to the O(nd) product, where a second, unit-length copy would double the memory.
* **Deletes swap the last row into the hole**: O(d) per id instead of rebuilding the matrix.
* **Filters become a row set before top-k**, so a selective filter never returns fewer than k hits
  while matches exist (post-filtering would). **A plan per filtered query** (:meth:`Collection.scores`)
  picks, from the filter's measured selectivity and the batch size, between scoring only the
  matching rows (gathered chunk by chunk into a cache-sized buffer, so the copy never leaves the CPU
  cache) and scoring every row with one BLAS product and keeping the matching scores.
* **Derived structures follow writes** instead of being rebuilt: filter columns
  (:mod:`vectorseam.stores.columns`), the cached rows of a repeated filter, the optional HNSW graph
  (:mod:`vectorseam.stores.ann`) and the BM25 index (:mod:`vectorseam.stores.memory_keywords`) are
  updated for just the rows a write touched, whether this process wrote them or another one did.
* **Ties are broken by id** so results are deterministic and comparable across backends.

Nothing here touches a file: durability is :mod:`vectorseam.stores.memory_db`'s job.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any, TypeVar, Union

import numpy as np
import numpy.typing as npt

from vectorseam.errors import ValidationError
from vectorseam.filters import Filter, matches
from vectorseam.stores import gather_kernel, memory_keywords
from vectorseam.stores.ann import AnnSettings, HnswIndex
from vectorseam.stores.columns import ColumnIndex
from vectorseam.stores.packed import PackedList
from vectorseam.stores.quantized import Int8Codes, QuantizedSettings
from vectorseam.stores.quantized_kernel import CPUS, pool
from vectorseam.types import (
    CollectionInfo,
    CollectionSpec,
    Hit,
    Metadata,
    Metric,
    Record,
)

T = TypeVar("T")
IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float32]
MutableColumn = Union[list[T], PackedList[T]]  # noqa: UP007 (a generic alias: subscripted below)

# Query plans (benchmarks/filter_varied.py). Gathering a scattered row and scoring it costs about 3x
# streaming past it (measured on one core: 10% of the rows gathered 3.5 ms, all rows streamed 11.8 ms,
# at 100k x 384), so a single query scores the gathered rows below this share of the collection and
# every row (one streaming BLAS pass) above it. A batch is compute-bound: gathering costs only the copy.
FULL_SCAN_SHARE_SINGLE = 0.3
FULL_SCAN_SHARE_BATCH = 0.5
# One query with the compiled gather (stores/gather_kernel.py), which scores a row where it lies. While
# the matrix fits in the last-level cache, one streaming BLAS pass over every row wins once half of them
# match (100k x 384 = 154 MB in this host's 480 MB L3: 4.9 ms for all rows); from main memory both read
# at the same bandwidth and the gather wins until nearly every row matches (1M: 75 ms for 50% vs 112 ms).
FULL_SCAN_SHARE_KERNEL_CACHED = 0.5
FULL_SCAN_SHARE_KERNEL_MEMORY = 0.9
# A few queries at once (the service's concurrent requests, stores/batched.py) are scored by the compiled
# loop, which reads each row once for all of them; from here on BLAS's matrix product is compute-efficient.
KERNEL_MAX_BATCH = 16
GATHER_CHUNK_BYTES = 256 * 1024  # one query: the gather buffer stays in the CPU's L2 cache (half of it)
GATHER_CHUNK_ROWS_BATCH = 16384  # a batch: large blocks keep the matrix products efficient
PARALLEL_MIN_ROWS = 4096  # one query gathering more rows than this splits them over the CPU cores
CACHE_MAX_SHARE = 0.25  # a repeated filter's rows are copied when they are at most this share
RECENT_FILTERS = 32  # how many recent filtered queries decide which filter is worth caching
SMALL_WRITE_ROWS = 1024  # larger writes drop the cached filter rows (and a graph they'd outgrow)

class _FilterCache:
    """The rows matching one filter and a contiguous copy of their vectors and norms.

    Repeated queries under one filter (a tenant, a category) then cost one small matrix product
    instead of a gather of every matching row. Writes update it row by row (``matches`` on each
    written row), so it survives them: rebuilding it after every write cost a full gather per write.
    """

    def __init__(self, key: str, f: Filter, coll: Collection, rows: IntArray) -> None:
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

    def set_rows(self, coll: Collection, positions: IntArray) -> bool:
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


class Collection:
    """Rows 0..n-1 of ``matrix`` are live; ``ids[i]`` names row i and ``index`` maps back."""

    def __init__(self, spec: CollectionSpec) -> None:
        self.name = spec.name
        self.dimension = spec.dimension
        self.metric: Metric = spec.metric
        self.metadata: dict[str, str] = dict(spec.metadata)
        self.matrix = np.zeros((0, spec.dimension), dtype=np.float32)
        # cosine: the norm of each row; euclidean: the squared norm; dot: unused.
        self.norms = np.zeros(0, dtype=np.float32)
        # Lists, or packed lists decoded on read when opened from a snapshot (stores/packed.py).
        self.ids: MutableColumn[str] = []
        self.texts: MutableColumn[str] = []
        self.metas: MutableColumn[Metadata] = []
        self._index: dict[str, int] | None = {}
        self._norm_bound: float | None = 0.0  # see norm_bound
        self.columns = ColumnIndex()
        self.cache: _FilterCache | None = None
        self._recent: deque[str] = deque(maxlen=RECENT_FILTERS)  # keys of the last filters queried
        self.ann: HnswIndex | None = None
        self.quant: Int8Codes | None = None  # int8 codes (stores/quantized.py), built on the first query scanning them
        self.keywords: memory_keywords.KeywordIndex | None = None  # BM25, built on the first keyword search
        self.writes = 0  # counts the writes that add or remove records (the keyset scroll's sorted ids follow it)

    @property
    def n(self) -> int:
        return len(self.ids)

    @property
    def norm_bound(self) -> float:
        """At least the largest |x| (dot) or |x|^2 (euclidean) of any row, for :meth:`error_bound`: raised
        by writes, never lowered by deletes (still a bound), computed on first use after a load."""
        if self._norm_bound is None:
            self._norm_bound = self._largest(self.matrix[: self.n], self.norms[: self.n])
        return self._norm_bound

    def _largest(self, rows: npt.NDArray[np.float32], norms: npt.NDArray[np.float32]) -> float:
        if rows.shape[0] == 0 or self.metric == "cosine":
            return 0.0
        if self.metric == "euclidean":
            return float(norms.max())
        return float(max(float(np.linalg.norm(rows[i : i + 65536].astype(np.float64), axis=1).max())
                         for i in range(0, rows.shape[0], 65536)))

    @property
    def index(self) -> dict[str, int]:
        """Id -> row, built on first use: a collection opened from a snapshot only to be searched never
        pays for a million-entry dict."""
        if self._index is None:
            self._index = {rid: i for i, rid in enumerate(self.ids)}
        return self._index

    def spec(self) -> CollectionSpec:
        return CollectionSpec(self.name, self.dimension, self.metric, dict(self.metadata))

    def info(self) -> CollectionInfo:
        return CollectionInfo(self.name, self.dimension, self.metric, dict(self.metadata), self.n)

    def load(self, matrix: npt.NDArray[np.float32], norms: npt.NDArray[np.float32], ids: MutableColumn[str],
             texts: MutableColumn[str], metas: MutableColumn[Metadata]) -> None:
        """Hold these rows (``matrix`` and ``norms`` may have spare capacity past ``len(ids)``); every
        derived structure starts afresh."""
        self.matrix, self.norms = matrix, norms
        self.ids, self.texts, self.metas = ids, texts, metas
        self.writes += 1
        self._index = None
        self._norm_bound = None
        self.columns = ColumnIndex()
        self.cache = None
        self.keywords = None
        self.quant = None
        if self.ann is not None:
            self.ann.drop()
            self.ann = None

    def load_rows(self, matrix: npt.NDArray[np.float32], ids: list[str], texts: MutableColumn[str],
                  metas: MutableColumn[Metadata]) -> None:
        """Hold these rows (read from the database, so already checked); ``matrix`` has the vectors in its
        first ``len(ids)`` rows and spare capacity after them."""
        n = len(ids)
        norms = np.zeros(matrix.shape[0], dtype=np.float32)
        if n:
            norms[:n] = self._prepare(matrix[:n], ids)[1]
        self.load(matrix, norms, ids, texts, metas)

    def close(self) -> None:
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
            # float64: a float32 sum of squares under/overflows for tiny (1e-23) or huge (1e20) values;
            # in blocks, so a million rows never need a float64 copy of the whole matrix
            norms = np.empty(vectors.shape[0], dtype=np.float32)
            for lo in range(0, vectors.shape[0], 65536):
                norms[lo : lo + 65536] = np.linalg.norm(vectors[lo : lo + 65536].astype(np.float64), axis=1)
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

    def check(self, records: list[Record]) -> None:
        """Every check :meth:`upsert` makes on validated records, so that a write is refused before it
        is made durable rather than after."""
        vectors = np.stack([r.vector for r in records]).astype(np.float32, copy=False)  # type: ignore[misc]
        self._prepare(vectors, [r.id for r in records])

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
        self.writes += bool(new)
        self.matrix[positions] = rows
        self.norms[positions] = norms
        if self._norm_bound is not None:
            self._norm_bound = max(self._norm_bound, self._largest(rows, norms))
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
        if self.quant is not None:
            if positions.size > max(SMALL_WRITE_ROWS, self.n // 10):
                self.quant = None  # a bulk load: coded anew (with fresh ranges) by the next query
            else:
                self.quant.update(positions, self.matrix, self.norms, self.n)
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
            self.writes += 1
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
            if self.quant is not None:
                self.quant.update(moved_to, self.matrix, self.norms, self.n)
                self.quant.truncate(self.n)
        return len(removed)

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
            compiled = self._kernel() if 1 < queries.shape[0] <= KERNEL_MAX_BATCH else None
            dots: npt.NDArray[np.float32] = qs @ self.matrix[: self.n].T if compiled is None else \
                self._kernel_dots(compiled, qs, None)
            norms = self.norms[: self.n]
        elif cache is not None:
            dots = qs @ cache.vectors[: cache.size].T
            norms = cache.norms[: cache.size]
        else:
            if rows.size >= self._full_scan_share(queries.shape[0]) * self.n:
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

    def _full_scan_share(self, batch: int) -> float:
        """Above this share of the rows, a filtered query scores every row rather than gathering."""
        if batch > 1:
            return FULL_SCAN_SHARE_BATCH
        if gather_kernel.kernel(self.dimension) is None:
            return FULL_SCAN_SHARE_SINGLE
        cached = self.n * self.dimension * 4 <= gather_kernel.last_level_cache_bytes()
        return FULL_SCAN_SHARE_KERNEL_CACHED if cached else FULL_SCAN_SHARE_KERNEL_MEMORY

    def search(self, queries: npt.NDArray[np.float32], k: int, f: Filter | None, include_vectors: bool,
               ann: AnnSettings | None, quantized: QuantizedSettings | None = None) -> list[list[Hit]]:
        """The top ``k`` of every query among the rows ``f`` admits, best first, ties by id: the HNSW
        graph when configured and large enough (exact for any query it cannot fill), else the int8
        codes' candidates scored exactly when configured and enough rows are searched, else exact."""
        rows, cache = self.select(f)
        if (rows is not None and rows.size == 0) or self.n == 0:
            return [[] for _ in range(queries.shape[0])]
        approx: list[list[Hit] | None] | None = None
        if ann is not None and (self.n if rows is None else rows.size) >= ann.min_rows:
            mask = None
            if rows is not None:
                mask = np.zeros(self.n, dtype=np.bool_)
                mask[rows] = True
            approx = _approximate(self, ann, queries, k, mask, include_vectors)
            missing = [i for i, hits in enumerate(approx) if hits is None]
            if not missing:
                return [hits or [] for hits in approx]
            queries = queries[missing]  # the graph came up short: answer these exactly
        found: list[list[tuple[int, float]]]
        if quantized is not None and cache is None and (self.n if rows is None else rows.size) >= quantized.min_rows:
            # the int8 scan: a quarter of the bytes read, the candidates scored exactly (stores/quantized.py);
            # a cached filter's rows are a small contiguous copy already, scanned exactly
            codes = self._int8_codes(quantized)
            found = [self.ranked(queries[qi], local if rows is None else rows[local], k)
                     for qi, local in enumerate(codes.candidates(queries, k, rows))]
        else:
            scores = self.scores(queries, rows, cache)
            found = [self.best(queries[qi], scores[qi], rows, k) for qi in range(queries.shape[0])]
        out: list[list[Hit]] = []
        for best in found:
            out.append([
                Hit(id=self.ids[pos], score=score, text=self.texts[pos], metadata=copy_metadata(self.metas[pos]),
                    vector=self.vector(pos) if include_vectors else None)
                for pos, score in best
            ])
        if approx is not None:
            exact = iter(out)
            return [hits if hits is not None else next(exact) for hits in approx]
        return out

    # -- the exact finish of every dense query ---------------------------------------------------------
    def error_bound(self, query: npt.NDArray[np.float32]) -> float:
        """An upper bound on how far a float32 score from :meth:`scores` can be from the exact one.

        BLAS sums a row's d products in an order that depends on the kernel and on where the row falls
        in a block (two identical vectors scored 2.0132477 and 2.0132475 on one CPU), and ``|q|^2 +
        |x|^2 - 2 q.x`` cancels catastrophically for near neighbours; a float32 sum of d terms is off
        by at most about d units in the last place of sum |q_i x_i| <= |q| |x|.
        """
        u = float(np.finfo(np.float32).eps)
        d = self.dimension
        if self.metric == "cosine":
            return (2 * d + 16) * u
        q = float(np.linalg.norm(query.astype(np.float64)))
        if self.metric == "dot":
            return (2 * d + 16) * u * q * self.norm_bound
        err = 2.0 * (2 * d + 8) * u * (q * q + self.norm_bound)  # squared distances
        return 2.0 * float(np.sqrt(err))

    def exact_scores(self, query: npt.NDArray[np.float32], positions: IntArray) -> npt.NDArray[np.float64]:
        """Scores of rows ``positions`` in float64, each row summed alike wherever it lies, so equal
        vectors score equally and every plan (full scan, gather, cached filter) reports the same score."""
        # einsum, not BLAS: BLAS sums a row in an order that depends on where it falls in a block,
        # so two identical rows could differ in the last place even in float64
        x = self.matrix[positions].astype(np.float64)
        q = query.astype(np.float64)
        if self.metric == "dot":
            return np.einsum("ij,j->i", x, q)  # type: ignore[no-any-return]
        if self.metric == "cosine":
            qn = float(np.sqrt(np.einsum("j,j->", q, q))) or 1.0
            return np.einsum("ij,j->i", x, q) / (np.sqrt(np.einsum("ij,ij->i", x, x)) * qn)  # type: ignore[no-any-return]
        diff = x - q[None, :]
        return -np.sqrt(np.einsum("ij,ij->i", diff, diff))  # type: ignore[no-any-return]

    def best(self, query: npt.NDArray[np.float32], approx: npt.NDArray[np.floating[Any]], rows: IntArray | None,
             k: int) -> list[tuple[int, float]]:
        """(row, exact score) of the ``k`` best rows, best first, ties by id ascending.

        Every row whose float32 score is within twice the error bound of the k-th is rescored exactly
        (see :meth:`error_bound`): rows further below cannot beat the k-th, so the answer is the exact
        top k, and ties between equal vectors are broken by id, never by where the rows lie.
        """
        m = approx.shape[0]
        if m == 0 or k <= 0:
            return []
        if k < m:
            kth = float(np.partition(approx, m - k)[m - k])
            cut = kth - 2.0 * self.error_bound(query)
            local = np.flatnonzero(approx >= cut) if np.isfinite(cut) else np.arange(m)
        else:
            local = np.arange(m)
        return self.ranked(query, local if rows is None else rows[local], k)

    def ranked(self, query: npt.NDArray[np.float32], positions: IntArray, k: int) -> list[tuple[int, float]]:
        """(row, exact score) of the ``k`` best of rows ``positions``, best first, ties by id ascending."""
        exact = self.exact_scores(query, positions)
        if positions.size > k:  # only rows reaching the k-th score (ties included) need their ids looked up
            keep = exact >= np.partition(exact, positions.size - k)[positions.size - k]
            positions, exact = positions[keep], exact[keep]
        ids = self.ids
        ranked = sorted(zip((-exact).tolist(), (ids[int(p)] for p in positions), positions.tolist(), strict=True))
        return [(pos, -neg) for neg, _, pos in ranked[:k]]

    def _int8_codes(self, settings: QuantizedSettings) -> Int8Codes:
        """The int8 codes, built on first use and again when writes drifted past their ranges."""
        if self.quant is None or self.quant.oversample != settings.oversample:
            self.quant = Int8Codes(self.dimension, self.metric, settings.oversample)
        if not self.quant.built or self.quant.stale or self.quant.n != self.n:  # (the last: never expected)
            self.quant.build(self.matrix, self.norms, self.n)
        return self.quant


    def _gathered_dots(self, qs: npt.NDArray[np.float32], rows: IntArray) -> npt.NDArray[np.float32]:
        """``qs @ matrix[rows].T`` without materialising ``matrix[rows]``. With the compiled kernel
        (:mod:`vectorseam.stores.gather_kernel`) each row is scored where it lies; otherwise each chunk
        of rows is copied into a buffer and scored from there. For one query the buffer stays in cache,
        so the rows are read from memory once (a full gather writes them out and reads them back), and
        a long list of rows is split over the CPU cores (numpy and BLAS release the GIL; BLAS already
        spreads a batch's products over the cores)."""
        batch = qs.shape[0]
        if batch <= KERNEL_MAX_BATCH and (compiled := self._kernel()) is not None:
            return self._kernel_dots(compiled, qs, np.ascontiguousarray(rows, dtype=np.int64))
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

        _split(work, rows.size, batch == 1)
        return out.T

    def _kernel(self) -> gather_kernel.GatherFn | None:
        """The compiled scoring loop for this collection's rows, where llvmlite is installed."""
        return gather_kernel.kernel(self.dimension) if self.matrix.flags.c_contiguous else None

    def _kernel_dots(self, compiled: gather_kernel.GatherFn, qs: npt.NDArray[np.float32],
                     rows: npt.NDArray[np.int64] | None) -> npt.NDArray[np.float32]:
        """``qs @ matrix[rows].T`` (every live row when ``rows`` is None) by the compiled loop, which
        reads each row once for all the queries: 0.7 ms instead of 1.6 ms for 10k scattered rows of 384
        floats on one core; 8 queries over 1M rows in 1.8x one query's time, where BLAS takes 3.9x."""
        count = self.n if rows is None else rows.size
        out = np.empty((qs.shape[0], count), dtype=np.float32)
        queries = np.ascontiguousarray(qs, dtype=np.float32)
        matrix = self.matrix

        def work(lo: int, hi: int) -> None:
            gather_kernel.gather_dots(compiled, matrix, rows, lo, hi, queries, out)

        _split(work, count, True)
        return out


def _split(work: Callable[[int, int], None], count: int, parallel: bool) -> None:
    """Run ``work`` over 0..count, split over the CPU cores when ``parallel`` and long enough. The
    calling thread takes the first share itself: waking a pool thread on a core that has gone idle
    costs about a millisecond here, so one fewer wake-up is worth it."""
    workers = min(_CPUS, count // PARALLEL_MIN_ROWS) if parallel else 1
    if workers <= 1:
        work(0, count)
        return
    bounds = np.linspace(0, count, workers + 1).astype(int).tolist()
    others = [_pool().submit(work, lo, hi) for lo, hi in itertools.pairwise(bounds[1:])]
    work(bounds[0], bounds[1])
    for done in others:
        done.result()


_CPUS = CPUS
_pool = pool  # threads for splitting one query's gather over the cores, shared with the int8 scan


def copy_metadata(metadata: Metadata) -> Metadata:
    """A copy deep enough that a caller editing a returned list value cannot change the store."""
    return {key: list(value) if isinstance(value, list) else value for key, value in metadata.items()}


def _approximate(
    coll: Collection,
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
