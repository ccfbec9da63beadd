"""Optional approximate search for the memory store: a FAISS HNSW graph over the collection's rows.

Why: exact search reads every vector for every query, so its cost grows linearly with the
collection; past a few hundred thousand vectors an HNSW graph answers in a small fraction of that
time at a recall@10 near 1 (benchmarks/results/ann.md measures it on the same data as exact).

Choices, and why:

* **Exact below ``min_rows``**: small collections (or small filtered subsets) are answered exactly;
  there the scan is cheap and the answer is the true one.
* **Filters stay exact in what they admit**: a filtered query passes the filter mask to FAISS as an
  ``IDSelectorBitmap``, so only matching records can be returned, and ``efSearch`` is raised in
  proportion to how selective the filter is. A query for which the graph yields fewer hits than
  ``k`` while enough records match is answered exactly instead (the caller checks).
* **Maintained write by write**: the graph is built on the first approximate query; after that an
  upsert adds the new vectors to it (HNSW supports adding), an overwrite or delete marks the old
  graph node dead (a *tombstone*: searches pass a selector of live nodes, so a dead node is walked
  through but never returned). Graph nodes are *labels*, mapped to the collection's rows both ways,
  because the collection moves rows (a delete swaps the last row into the hole) while FAISS labels
  never change. Once a quarter of the nodes are dead the graph is rebuilt **in a background thread**
  from a snapshot of the rows, while the old graph keeps answering; the writes made meanwhile are
  replayed on the new graph when it is swapped in. Rebuilding on the first query after every write
  (the previous design) cost a whole build per write.
* **Memory**: FAISS keeps its own copy of the vectors plus the graph (about ``2 * m * 4`` bytes a
  vector), so enabling the index roughly doubles the store's vector memory.

The library comes from the ``ann`` extra (``pip install 'vectorseam[ann]'``).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np
import numpy.typing as npt

from vectorseam.errors import ConfigError
from vectorseam.types import Metric


@dataclass(frozen=True)
class AnnSettings:
    """``store.options.ann`` for the memory store, e.g. ``{"ef_search": 128}``."""

    min_rows: int = 50_000
    m: int = 32
    ef_construction: int = 80
    ef_search: int = 64
    max_ef_search: int = 1024

    @classmethod
    def parse(cls, options: object) -> AnnSettings | None:
        """``None``/``False`` turn the index off; ``True`` takes the defaults; a mapping sets fields."""
        if options is None or options is False:
            return None
        if options is True:
            return cls()
        if not isinstance(options, Mapping):
            raise ConfigError(f"memory store option 'ann' must be true, false or a table of settings, "
                              f"got {options!r}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(options) - known)
        if unknown:
            raise ConfigError(f"memory store option 'ann': unknown setting(s) {', '.join(unknown)}; "
                              f"known: {', '.join(sorted(known))}")
        for name, value in options.items():
            if isinstance(value, bool) or not isinstance(value, int) or value < (0 if name == "min_rows" else 1):
                raise ConfigError(f"memory store option 'ann.{name}' must be a positive integer, got {value!r}")
        return cls(**dict(options))


def require_faiss() -> Any:
    try:
        import faiss
    except ImportError:
        raise ConfigError(
            "the memory store's approximate index ('ann' option) needs FAISS: install the extra with "
            "`pip install 'vectorseam[ann]'` (faiss-cpu), or turn the option off"
        ) from None
    return faiss


IntArray = npt.NDArray[np.int64]
REBUILD_DEAD_FRACTION = 0.25  # rebuild the graph in the background once this share of its nodes is dead
REBUILD_MIN_DEAD = 1024


@dataclass
class _Graph:
    """One FAISS HNSW index and the label <-> row maps of the collection it covers."""

    index: Any
    label_row: IntArray  # row of each label (capacity >= ntotal); -1: dead
    row_label: IntArray  # label of each row (capacity >= n)
    n: int
    dead: int = 0
    _live: npt.NDArray[np.uint8] | None = field(default=None, repr=False)  # packed bitmap of live labels

    @property
    def ntotal(self) -> int:
        return int(self.index.ntotal)

    def set_rows(self, positions: IntArray, rows: npt.NDArray[np.float32]) -> None:
        """Rows ``positions`` now hold ``rows`` (unit rows for cosine); positions past ``n`` are new."""
        old = positions[positions < self.n]
        if old.size:
            self.label_row[self.row_label[old]] = -1
            self.dead += int(old.size)
        start = self.ntotal
        self.index.add(np.ascontiguousarray(rows, dtype=np.float32))
        labels = np.arange(start, start + positions.size, dtype=np.int64)
        self.label_row = _fit(self.label_row, start + positions.size)
        self.label_row[labels] = positions
        self.n = max(self.n, int(positions.max()) + 1 if positions.size else 0)
        self.row_label = _fit(self.row_label, self.n)
        self.row_label[positions] = labels
        self._live = None

    def delete_rows(self, removed: IntArray, moved_from: IntArray, moved_to: IntArray, n: int) -> None:
        if removed.size:
            self.label_row[self.row_label[removed]] = -1
            self.dead += int(removed.size)
        if moved_from.size:
            labels = self.row_label[moved_from]
            self.row_label[moved_to] = labels
            self.label_row[labels] = moved_to
        self.n = n
        self._live = None

    def selector_bitmap(self, mask: npt.NDArray[np.bool_] | None) -> npt.NDArray[np.uint8] | None:
        """Packed bitmap over labels: live, and (given a row mask) matching; None when every label is."""
        total = self.ntotal
        if mask is None:
            if self.dead == 0:
                return None
            if self._live is None:
                self._live = np.packbits(self.label_row[:total] >= 0, bitorder="little")
            return self._live
        rows = self.label_row[:total]
        admitted = (rows >= 0) & mask[np.maximum(rows, 0)]
        return np.packbits(admitted, bitorder="little")


def _fit(arr: IntArray, size: int) -> IntArray:
    if size <= arr.shape[0]:
        return arr
    out = np.full(max(size, int(arr.shape[0] * 1.25) + 1024), -1, dtype=np.int64)
    out[: arr.shape[0]] = arr
    return out


class HnswIndex:
    """One collection's HNSW graph, kept current by the collection's writes (see the module doc)."""

    def __init__(self, settings: AnnSettings, metric: Metric, dimension: int) -> None:
        self.faiss = require_faiss()
        self.settings = settings
        self.metric = metric
        self.dimension = dimension
        self._graph: _Graph | None = None
        # A background rebuild: its thread, its result slot, and the writes made since its snapshot.
        self._thread: threading.Thread | None = None
        self._built: list[Any] = []
        self._pending: list[tuple[str, tuple[Any, ...]]] = []
        self.rebuilds = 0

    @property
    def built(self) -> bool:
        return self._graph is not None

    def _new_index(self, rows: npt.NDArray[np.float32]) -> Any:
        faiss_metric = self.faiss.METRIC_L2 if self.metric == "euclidean" else self.faiss.METRIC_INNER_PRODUCT
        index = self.faiss.IndexHNSWFlat(self.dimension, self.settings.m, faiss_metric)
        index.hnsw.efConstruction = self.settings.ef_construction
        index.add(np.ascontiguousarray(rows, dtype=np.float32))
        return index

    def build(self, rows: npt.NDArray[np.float32]) -> None:
        """Build the graph over ``rows`` (row i gets label i), replacing any graph and pending rebuild."""
        self._join()
        self._graph = _identity_graph(self._new_index(rows), rows.shape[0])

    def set_rows(self, positions: IntArray, rows: npt.NDArray[np.float32]) -> None:
        if self._graph is None:
            return
        self._graph.set_rows(positions, rows)
        if self._thread is not None:
            self._pending.append(("set", (positions.copy(), np.array(rows, dtype=np.float32))))
        self._swap_if_built()

    def delete_rows(self, removed: IntArray, moved_from: IntArray, moved_to: IntArray, n: int) -> None:
        if self._graph is None:
            return
        self._graph.delete_rows(removed, moved_from, moved_to, n)
        if self._thread is not None:
            self._pending.append(("delete", (removed.copy(), moved_from.copy(), moved_to.copy(), n)))

    def drop(self) -> None:
        """Forget the graph (the next approximate query builds it again)."""
        self._join()
        self._graph = None

    def needs_rebuild(self) -> bool:
        g = self._graph
        return g is not None and g.dead >= max(REBUILD_MIN_DEAD, REBUILD_DEAD_FRACTION * g.ntotal)

    def start_rebuild(self, rows: npt.NDArray[np.float32]) -> None:
        """Build a fresh graph over a snapshot of ``rows`` in a thread; writes until it is swapped in
        are recorded and replayed on it."""
        if self._thread is not None or self._graph is None:
            return
        snapshot = np.array(rows, dtype=np.float32)
        self._pending = []
        self._built = []
        result = self._built

        def work() -> None:
            result.append(self._new_index(snapshot))

        self._thread = threading.Thread(target=work, name="vectorseam-hnsw-rebuild", daemon=True)
        self._thread.start()

    def _swap_if_built(self, wait: bool = False) -> None:
        thread = self._thread
        if thread is None or (thread.is_alive() and not wait):
            return
        thread.join()
        self._thread = None
        if not self._built:  # the build failed: keep the old graph (dead nodes and all)
            self._pending = []
            return
        index = self._built[0]
        graph = _identity_graph(index, int(index.ntotal))
        for kind, args in self._pending:
            if kind == "set":
                graph.set_rows(*args)
            else:
                graph.delete_rows(*args)
        self._graph, self._pending, self._built = graph, [], []
        self.rebuilds += 1

    def _join(self) -> None:
        if self._thread is not None:
            self._thread.join()
        self._thread, self._pending, self._built = None, [], []

    def search(
        self,
        queries: npt.NDArray[np.float32],
        k: int,
        mask: npt.NDArray[np.bool_] | None,
        selected: int,
    ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
        """Scores (higher is more similar) and row numbers, -1 where the graph found nothing.

        ``queries`` must already be in the stored space (unit rows for cosine collections).
        """
        self._swap_if_built()
        graph = self._graph
        assert graph is not None, "build() first"
        ef = max(self.settings.ef_search, k)
        params = self.faiss.SearchParametersHNSW()
        bitmap = graph.selector_bitmap(mask)
        if bitmap is not None:
            # A selective filter discards most of what the graph walk visits, and dead nodes take up
            # places in its candidate list: widen the walk to match. (Measured: 15% dead nodes cost
            # about as much recall as 1/1.4 of efSearch; (total / live)^2 gives that back.)
            live = max(graph.ntotal - graph.dead, 1)
            widen = (graph.ntotal / live) ** 2 * np.sqrt(live / max(selected, 1))
            ef = int(min(self.settings.max_ef_search, ef * widen))
            params.sel = self.faiss.IDSelectorBitmap(bitmap)
            params.sel.referenced_bitmap = bitmap  # keep the buffer alive while FAISS reads it
        params.efSearch = ef
        distances, labels = graph.index.search(np.ascontiguousarray(queries, dtype=np.float32), k, params=params)
        scores = -np.sqrt(np.maximum(distances, 0.0)) if self.metric == "euclidean" else distances
        found = labels >= 0
        rows = np.where(found, graph.label_row[np.maximum(labels, 0)], -1)
        return scores.astype(np.float32), rows.astype(np.int64)

    def memory_bytes(self) -> int:
        """Vectors plus graph links held by FAISS (an estimate from the index's own sizes)."""
        if self._graph is None:
            return 0
        n = self._graph.ntotal
        return n * self.dimension * 4 + n * self.settings.m * 2 * 4 + n * 8


def _identity_graph(index: Any, n: int) -> _Graph:
    return _Graph(index, np.arange(n, dtype=np.int64), np.arange(n, dtype=np.int64), n)
