"""int8 codes beside the float32 rows: a scan that reads a quarter of the bytes, then exact scores.

The exact scan is bound by memory bandwidth: every query reads every float32 row. Here each row also
has a 1-byte code per dimension; a query scans the codes (:mod:`vectorseam.stores.quantized_kernel`),
keeps a few candidates per query, and scores only those exactly from the float32 rows. Hits carry
exact scores, ordered by the store's rules (ties by id); what can differ from the exact scan is only
a true top-k row whose code scored outside the candidates (recall, measured in
benchmarks/results/quantized.md).

Choices, and why:

* **Per-dimension ranges** (scalar quantization, as FAISS ``QT_8bit``): dimension ``d`` maps
  ``[lo_d, hi_d]`` onto 0..255 with step ``s_d``. With weights ``w = q * s``,
  ``q . x ~ q . lo + sum_d w_d code_d``; the first term is the same for every row, so a query ranks
  rows by an integer dot product of the codes with ``w`` rounded to int8 (``w`` times one per-query
  scale). Every metric becomes that one product:

  - ``cosine``: the codes are of the unit rows and the query is made unit, so the product ranks by
    cosine (the exact score divides by the stored norm, as the store does);
  - ``dot``: the codes are of the rows as written;
  - ``euclidean``: ``-|q - x|^2 = 2 (q . x - |x|^2 / 2) - |q|^2``, so each row gets one more
    coordinate, ``|x|^2``, weighted ``-1/2``: a dot product on the widened rows ranks by distance.

* **Ranges are fixed when the codes are built** (on first use, from the rows then present, widened
  by ``RANGE_MARGIN``: codes built on half of AG News saw 44% of the other half step outside the
  plain extremes, some by 64 steps; the widened ranges cost no measurable recall), so a write
  re-encodes only its own rows. A value a little outside its dimension's range is clipped (an
  error of up to ``OUTLIER_STEPS`` steps in one coordinate, next to the half step of rounding in every
  coordinate); a row with a value further out is an *outlier*: a candidate of every query (scored
  exactly), so a badly clipped code never costs recall. When outliers
  pass ``max(OUTLIER_MIN, OUTLIER_SHARE * rows)`` (the data drifted from what the ranges were built
  on) :attr:`Int8Codes.stale` says so and the owner rebuilds.
* **Candidates**: ``max(k * oversample, k + MIN_EXTRA)`` per query, plus every row whose integer score
  ties the last one kept (so equal vectors at the cut are all scored and ordered by id, as the exact
  scan orders them). To avoid partitioning an int32 score per row, a strided sample of the rows is
  scanned first: the c-th best sample score is a lower bound on the c-th best overall, so every row
  of the true top c scores at least that; the kernel keeps only rows reaching it (about ``c`` times
  the sampling ratio). If more rows pass than the slots allow, that query is scanned again with room
  for all of them.
* **Filtered queries** scan only the rows the filter admits (``rows``), as the exact scan does.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields

import numpy as np
import numpy.typing as npt

from vectorseam.errors import ConfigError
from vectorseam.extras import require
from vectorseam.stores import quantized_kernel as kernel
from vectorseam.types import Metric

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]
I32 = npt.NDArray[np.int32]
I64 = npt.NDArray[np.int64]

OVERSAMPLE = 4  # candidates per hit wanted; recall@10 >= 0.99 measured with 4 on real embeddings
MIN_EXTRA = 32  # ... and never fewer than k + this many (small k: the code error is a fixed score width)
SAMPLE_SHARE = 64  # one row in this many is scanned to set the threshold ...
SAMPLE_ROWS = 4096  # ... but at least this many rows
SAMPLE_MIN = 65_536  # below this many rows the sample is skipped: every score is kept and partitioned
SLOT_FACTOR = 4  # slots per query: this times the expected count of rows above the threshold
RANGE_MARGIN = 0.25  # ranges reach this share of their span past the extremes seen at build
OUTLIER_STEPS = 2.0  # a value this many steps outside its range makes its row an outlier (less is clipped)
OUTLIER_MIN = 1024
OUTLIER_SHARE = 0.01
CODE_MAX = 255
BUILD_ROWS = 2048  # rows coded at a time: the float32 temporaries stay in the CPU cache


@dataclass(frozen=True)
class QuantizedSettings:
    """``store.options.quantized`` for the memory store, e.g. ``true`` or ``{"min_rows": 200000}``.

    ``min_rows``: a query scans the codes when it searches at least this many rows (the whole
    collection, or the rows its filter admits); below it the float32 scan is as fast (the rows fit
    the CPU caches) and exact. ``oversample``: candidates per hit wanted (see :data:`OVERSAMPLE`).
    """

    min_rows: int = 50_000
    oversample: int = OVERSAMPLE

    @classmethod
    def parse(cls, options: object) -> QuantizedSettings | None:
        """``None``/``False`` turn the scan off (the default); ``True`` takes the defaults; a mapping sets fields.
        The compiled kernel's extra is required: without it the scan would be slower than float32's."""
        if options is None or options is False:
            return None
        if options is True:
            settings = cls()
        elif isinstance(options, Mapping):
            known = {f.name for f in fields(cls)}
            unknown = sorted(set(options) - known)
            if unknown:
                raise ConfigError(f"memory store option 'quantized': unknown setting(s) {', '.join(unknown)}; "
                                  f"known: {', '.join(sorted(known))}")
            for name, value in options.items():
                if isinstance(value, bool) or not isinstance(value, int) or value < (0 if name == "min_rows" else 1):
                    raise ConfigError(f"memory store option 'quantized.{name}' must be a "
                                      f"{'non-negative' if name == 'min_rows' else 'positive'} integer, got {value!r}")
            settings = cls(**dict(options))
        else:
            raise ConfigError(f"memory store option 'quantized' must be true, false or a table of settings, "
                              f"got {options!r}")
        require("quantized")
        return settings


class Int8Codes:
    """The codes of rows ``0..n-1`` of a collection's float32 matrix, kept current by its writes.

    The owner (the memory store's collection) calls :meth:`build` once, :meth:`update` with the
    positions a write set or moved (after writing the float32 rows), :meth:`truncate` after deletes,
    and :meth:`build` again when :attr:`stale`. It passes its matrix and norms on every call rather
    than this object keeping them: the owner reallocates them as it grows.
    """

    def __init__(self, dimension: int, metric: Metric, oversample: int = OVERSAMPLE) -> None:
        if oversample < 1:
            raise ValueError(f"oversample must be at least 1, got {oversample}")
        self.dimension = dimension
        self.metric: Metric = metric
        self.oversample = oversample
        self.width = dimension + (1 if metric == "euclidean" else 0)  # coordinates coded per row
        self.row_bytes = kernel.padded(self.width)
        self.codes = np.zeros((0, self.row_bytes), dtype=np.uint8)
        self.outlier = np.zeros(0, dtype=np.bool_)  # per row: scored exactly by every query
        self.outliers = self.built_outliers = 0
        self.n = 0
        self.built_rows = 0
        self.lo = np.zeros(self.width, dtype=np.float64)
        self.step = np.ones(self.width, dtype=np.float64)
        self.lo32, self.inv_step32 = self.lo.astype(np.float32), (1.0 / self.step).astype(np.float32)
        self.built = False

    # -- coding ---------------------------------------------------------------------------------------
    def _coordinates(self, rows: F32, norms: F32) -> F32:
        """What is coded for each row: the unit row (cosine), the row (dot), the row and |x|^2 (euclidean)."""
        if self.metric == "cosine":
            return rows / norms[:, None]
        if self.metric == "euclidean":
            out = np.empty((rows.shape[0], self.width), dtype=np.float32)
            out[:, : self.dimension] = rows
            out[:, self.dimension] = norms  # the store keeps squared norms for euclidean
            return out
        return rows

    def _encode(self, coords: F32, out: npt.NDArray[np.uint8]) -> npt.NDArray[np.bool_]:
        """Codes of ``coords`` into ``out`` (rows x row_bytes, padding left as it is); which rows are outliers."""
        with np.errstate(over="ignore", invalid="ignore"):  # huge values: inf or nan, outliers below
            scaled = coords - self.lo32
            scaled *= self.inv_step32
            inside = (scaled >= -OUTLIER_STEPS) & (scaled <= CODE_MAX + OUTLIER_STEPS)  # nan is never inside
            np.rint(scaled, out=scaled)
            np.clip(scaled, 0, CODE_MAX, out=scaled)
            np.nan_to_num(scaled, copy=False)
        out[:, : self.width] = scaled
        return np.asarray(~inside.all(axis=1), dtype=np.bool_)

    def _blocks(self, n: int) -> list[tuple[int, int]]:
        return [(start, min(n, start + BUILD_ROWS)) for start in range(0, n, BUILD_ROWS)]

    def build(self, matrix: F32, norms: F32, n: int) -> None:
        """Ranges from rows ``0..n-1`` and their codes (O(n d); the owner calls it on first use and when stale)."""
        self.n = self.built_rows = n
        self.codes = np.zeros((max(n, 1), self.row_bytes), dtype=np.uint8)
        self.outlier = np.zeros(max(n, 1), dtype=np.bool_)
        if n:
            lo = np.full(self.width, np.inf, dtype=np.float32)
            hi = np.full(self.width, -np.inf, dtype=np.float32)
            for start, stop in self._blocks(n):
                with np.errstate(over="ignore", invalid="ignore"):
                    c = self._coordinates(matrix[start:stop], norms[start:stop])
                c = c[np.isfinite(c).all(axis=1)]  # a row too large for float32 is an outlier, not a range
                if c.shape[0]:
                    np.minimum(lo, c.min(axis=0), out=lo)
                    np.maximum(hi, c.max(axis=0), out=hi)
            lo[~np.isfinite(lo)] = 0.0
            hi[~np.isfinite(hi)] = 0.0
            # widened by RANGE_MARGIN of the span on each side: later rows reach past the extremes seen
            # here (text embeddings are heavy-tailed), and a coarser step costs no measurable recall
            span = hi.astype(np.float64) - lo.astype(np.float64)
            self.lo = lo.astype(np.float64) - RANGE_MARGIN * span
            # a constant dimension gets a tiny step: any other value written later is an outlier
            tiny = np.maximum(np.abs(self.lo), 1.0) * 1e-6
            self.step = np.maximum(span * (1 + 2 * RANGE_MARGIN) / CODE_MAX, tiny)
            self.lo32, self.inv_step32 = self.lo.astype(np.float32), (1.0 / self.step).astype(np.float32)
            for start, stop in self._blocks(n):
                with np.errstate(over="ignore", invalid="ignore"):
                    coords = self._coordinates(matrix[start:stop], norms[start:stop])
                self.outlier[start:stop] = self._encode(coords, self.codes[start:stop])
        self.outliers = self.built_outliers = int(self.outlier[:n].sum())  # rows beyond float32's range
        self.built = True

    def _reserve(self, rows: int) -> None:
        if rows <= self.codes.shape[0]:
            return
        capacity = max(rows, int(self.codes.shape[0] * 1.1) + 1024)
        codes = np.zeros((capacity, self.row_bytes), dtype=np.uint8)
        codes[: self.n] = self.codes[: self.n]
        outlier = np.zeros(capacity, dtype=np.bool_)
        outlier[: self.n] = self.outlier[: self.n]
        self.codes, self.outlier = codes, outlier

    def update(self, positions: I64, matrix: F32, norms: F32, n: int) -> None:
        """Re-encode the rows at ``positions`` from the float32 rows now there (written or moved)."""
        if not self.built or positions.size == 0:
            self.n = max(self.n, n)
            return
        self._reserve(n)
        self.n = max(self.n, n)
        codes = np.zeros((positions.size, self.row_bytes), dtype=np.uint8)
        with np.errstate(over="ignore", invalid="ignore"):
            coords = self._coordinates(matrix[positions], norms[positions])
        outlier = self._encode(coords, codes)
        self.outliers -= int(self.outlier[positions].sum())
        self.codes[positions] = codes
        self.outlier[positions] = outlier
        self.outliers += int(self.outlier[positions].sum())  # (a position written twice counts once)

    def truncate(self, n: int) -> None:
        """Forget rows ``n..`` (the owner deleted rows: it moved its last rows into the holes first and
        called :meth:`update` for their new positions)."""
        if n < self.n:
            self.outliers -= int(self.outlier[n : self.n].sum())
            self.outlier[n : self.n] = False
            self.n = n

    @property
    def stale(self) -> bool:
        """Too many rows fall outside the ranges built on: rebuild (the answers stay exact meanwhile)."""
        return self.built and self.outliers - self.built_outliers > max(OUTLIER_MIN, OUTLIER_SHARE * self.n)

    # -- queries ----------------------------------------------------------------------------------------
    def query_weights(self, queries: F32) -> npt.NDArray[np.int8]:
        """Each query's coordinates times the steps, rounded to int8 after one per-query scale."""
        q = queries.astype(np.float64)
        if self.metric == "cosine":
            qn = np.linalg.norm(q, axis=1, keepdims=True)
            qn[qn == 0] = 1.0
            q = q / qn
        elif self.metric == "euclidean":
            q = np.concatenate([q, np.full((q.shape[0], 1), -0.5)], axis=1)
        w = q * self.step
        top = np.abs(w).max(axis=1, keepdims=True)
        top[top == 0] = 1.0
        out = np.zeros((q.shape[0], self.row_bytes), dtype=np.int8)
        out[:, : self.width] = np.rint(w * (127.0 / top))
        return out

    def wanted(self, k: int) -> int:
        return max(k * self.oversample, k + MIN_EXTRA)

    def candidates(self, queries: F32, k: int, rows: I64 | None = None) -> list[I64]:
        """Per query, the local row numbers to score exactly (sorted): into ``rows`` when given
        (a filter's rows), else row positions ``0..n-1``."""
        assert self.built, "build() the codes first"
        size = self.n if rows is None else int(rows.size)
        idx_rows = None if rows is None else np.ascontiguousarray(rows, dtype=np.int64)
        weights = self.query_weights(queries)
        batch, want = weights.shape[0], self.wanted(k)
        stride = max(1, min(SAMPLE_SHARE, size // SAMPLE_ROWS))
        if size <= SAMPLE_MIN or size // stride <= 2 * want:  # keep every score
            thresholds, cap = np.full(batch, kernel.INT_MIN, dtype=np.int32), size
        else:
            thresholds, cap = self._thresholds(weights, idx_rows, size, stride, want)
        parts = kernel.scan(self.codes, idx_rows, size, weights, thresholds, cap)
        extra = self._outliers(rows)
        out: list[I64] = []
        for qi in range(batch):
            counts = [int(p[2][qi]) for p in parts]
            mine = parts
            if max(counts) > cap:  # more rows passed than there were slots: once more, with room for all
                mine = kernel.scan(self.codes, idx_rows, size, weights[qi : qi + 1], thresholds[qi : qi + 1],
                                   sum(counts))
            local, scores = _gather(mine, qi if mine is parts else 0)
            if scores.size > want:
                kth = np.partition(scores, scores.size - want)[scores.size - want]
                local = local[scores >= kth]  # every row tying the last kept one comes too
            out.append(np.union1d(local.astype(np.int64), extra))
        return out

    def _thresholds(self, weights: npt.NDArray[np.int8], rows: I64 | None, size: int, stride: int,
                    want: int) -> tuple[I32, int]:
        """From every ``stride``-th row's score: the ``want``-th best per query, and how many slots."""
        local = np.arange(0, size, stride, dtype=np.int64)
        sample = local if rows is None else rows[local]
        batch = weights.shape[0]
        parts = kernel.scan(self.codes, sample, sample.size, weights,
                            np.full(batch, kernel.INT_MIN, dtype=np.int32), sample.size)
        scores = np.concatenate([p[1][:, : int(p[2][0])] for p in parts], axis=1)  # every row kept: equal counts
        thresholds = np.partition(scores, scores.shape[1] - want, axis=1)[:, scores.shape[1] - want]
        expected = want * size / sample.size
        return thresholds.astype(np.int32), int(min(size, SLOT_FACTOR * expected + 1024))

    def _outliers(self, rows: I64 | None) -> I64:
        if self.outliers == 0:
            return np.zeros(0, dtype=np.int64)
        if rows is None:
            return np.flatnonzero(self.outlier[: self.n]).astype(np.int64)
        return np.flatnonzero(self.outlier[rows]).astype(np.int64)


def _gather(parts: list[tuple[I32, I32, I64]], qi: int) -> tuple[I32, I32]:
    local = np.concatenate([p[0][qi, : int(p[2][qi])] for p in parts])
    scores = np.concatenate([p[1][qi, : int(p[2][qi])] for p in parts])
    return local, scores


def exact_scores(matrix: F32, metric: Metric, query: F32, positions: I64) -> F64:
    """Scores of rows ``positions`` for one query in float64, the memory store's exact finish
    (``Collection.exact_scores``). Each row's products are summed by ``einsum``'s own loop, the same
    way for every row: a BLAS product can sum two equal rows differently by where they fall in its
    blocks (measured: 1.0 and 0.9999999999999998), which would order exact ties by position, not id."""
    x = matrix[positions].astype(np.float64)
    q = query.astype(np.float64)
    if metric == "euclidean":
        diff = x - q[None, :]
        return -np.sqrt(np.einsum("ij,ij->i", diff, diff))  # type: ignore[no-any-return]
    dots = np.einsum("ij,j->i", x, q)
    if metric == "dot":
        return dots  # type: ignore[no-any-return]
    qn = float(np.sqrt(np.dot(q, q))) or 1.0
    return dots / (np.sqrt(np.einsum("ij,ij->i", x, x)) * qn)  # type: ignore[no-any-return]


def rank(ids: Sequence[str], positions: I64, scores: F64, k: int) -> list[tuple[int, float]]:
    """(position, score) of the ``k`` best, best first, ties by id ascending (the store's order)."""
    ranked = sorted(zip((-scores).tolist(), (ids[int(p)] for p in positions), positions.tolist(), strict=True))
    return [(pos, -neg) for neg, _, pos in ranked[:k]]
