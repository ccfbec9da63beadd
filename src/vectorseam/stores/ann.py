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
* **Rebuilt lazily**: the graph is (re)built on the first query after a write, tracked by the
  collection's generation counter. This suits collections that are loaded, then queried many times;
  a collection under constant writes should stay exact.
* **Memory**: FAISS keeps its own copy of the vectors plus the graph (about ``2 * m * 4`` bytes a
  vector), so enabling the index roughly doubles the store's vector memory.

The library comes from the ``ann`` extra (``pip install 'vectorseam[ann]'``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
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


class HnswIndex:
    """One collection's HNSW graph, valid for one generation of its rows."""

    def __init__(self, settings: AnnSettings, metric: Metric, dimension: int) -> None:
        self.faiss = require_faiss()
        self.settings = settings
        self.metric = metric
        self.dimension = dimension
        self.generation: int | None = None
        self._index: Any = None

    def ensure(self, rows: npt.NDArray[np.float32], generation: int) -> None:
        """Build the graph over ``rows`` unless it already holds this generation."""
        if self._index is not None and self.generation == generation:
            return
        faiss_metric = self.faiss.METRIC_L2 if self.metric == "euclidean" else self.faiss.METRIC_INNER_PRODUCT
        index = self.faiss.IndexHNSWFlat(self.dimension, self.settings.m, faiss_metric)
        index.hnsw.efConstruction = self.settings.ef_construction
        index.add(np.ascontiguousarray(rows, dtype=np.float32))
        self._index, self.generation = index, generation

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
        ef = max(self.settings.ef_search, k)
        params = self.faiss.SearchParametersHNSW()
        if mask is not None:
            n = int(mask.shape[0])
            # A selective filter discards most of what the graph walk visits; widen the walk to match.
            ef = int(min(self.settings.max_ef_search, ef * np.sqrt(n / max(selected, 1))))
            bitmap = np.packbits(mask, bitorder="little")
            params.sel = self.faiss.IDSelectorBitmap(bitmap)
            params.sel.referenced_bitmap = bitmap  # keep the buffer alive while FAISS reads it
        params.efSearch = ef
        distances, labels = self._index.search(np.ascontiguousarray(queries, dtype=np.float32), k,
                                               params=params)
        scores = -np.sqrt(np.maximum(distances, 0.0)) if self.metric == "euclidean" else distances
        return scores.astype(np.float32), labels.astype(np.int64)

    def memory_bytes(self) -> int:
        """Vectors plus graph links held by FAISS (an estimate from the index's own sizes)."""
        if self._index is None:
            return 0
        n = int(self._index.ntotal)
        return n * self.dimension * 4 + n * self.settings.m * 2 * 4 + n * 8
