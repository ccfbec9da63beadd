"""Near-duplicate detection: every pair of records at or above a cosine threshold, and their groups.

Two methods, both without an n x n matrix in memory:

* ``exact``: the collection's unit vectors are compared tile by tile (``block x block`` matrix
  products over the upper triangle), so memory is O(n*d + block^2) and every pair is found.
* ``approximate``: a self-join through the store's own ``query`` (each record asks for its
  ``neighbours`` nearest), streaming the collection with ``scan``; memory is O(batch) and an
  approximate backend's index does the work. A record with more than ``neighbours`` duplicates
  may miss some pairs, though union-find usually still joins them into one group.

Similarity is always cosine (vectors are scaled to unit length), whatever the collection's metric.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, TypeAlias

import numpy as np
import numpy.typing as npt

from vectorseam.analysis.unionfind import UnionFind
from vectorseam.analysis.vectors import load_collection
from vectorseam.errors import ValidationError
from vectorseam.filters import FilterLike
from vectorseam.similarity import check_threshold, unit_rows_f32
from vectorseam.store import VectorStore

Method: TypeAlias = Literal["exact", "approximate", "auto"]
AUTO_EXACT_LIMIT = 200_000  # above this many records, "auto" uses the store's self-join
DEFAULT_MAX_PAIRS = 2_000_000


@dataclass(frozen=True, slots=True)
class DuplicatePair:
    a: str
    b: str
    score: float


@dataclass
class DedupResult:
    collection: str
    threshold: float
    method: str
    records: int
    pairs: list[DuplicatePair]
    groups: list[list[str]]
    texts: dict[str, str] = field(default_factory=dict)  # texts of the records in a pair

    @property
    def extra_records(self) -> int:
        """Records that would go if each group kept one."""
        return sum(len(g) - 1 for g in self.groups)

    def group_of(self) -> dict[str, int]:
        return {rid: gi for gi, g in enumerate(self.groups) for rid in g}

    def pair_rows(self) -> list[dict[str, object]]:
        groups = self.group_of()
        return [
            {"group": groups[p.a], "id_a": p.a, "id_b": p.b, "score": round(p.score, 6),
             "identical_text": self.texts.get(p.a) == self.texts.get(p.b),
             "text_a": self.texts.get(p.a, ""), "text_b": self.texts.get(p.b, "")}
            for p in self.pairs
        ]

    def to_json(self) -> dict[str, object]:
        return {
            "collection": self.collection, "threshold": self.threshold, "method": self.method,
            "records": self.records, "pair_count": len(self.pairs), "group_count": len(self.groups),
            "extra_records": self.extra_records, "groups": self.groups, "pairs": self.pair_rows(),
        }

    def write(self, path: Path, fmt: Literal["csv", "json"] | None = None) -> Path:
        """Pairs as CSV (one row per pair, with its group) or everything as JSON; chosen by suffix."""
        fmt = fmt or ("json" if path.suffix.lower() == ".json" else "csv")
        path.parent.mkdir(parents=True, exist_ok=True)
        if fmt == "json":
            path.write_text(json.dumps(self.to_json(), ensure_ascii=False, indent=1), encoding="utf-8")
            return path
        columns = ["group", "id_a", "id_b", "score", "identical_text", "text_a", "text_b"]
        with open(path, "w", encoding="utf-8", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=columns)
            writer.writeheader()
            writer.writerows(self.pair_rows())
        return path


def similar_pairs(
    x: npt.NDArray[np.float32], threshold: float, block: int = 1024, max_pairs: int = DEFAULT_MAX_PAIRS
) -> Iterator[tuple[int, int, float]]:
    """(i, j, cosine) for i < j with cosine >= threshold; x must hold unit rows. Tile by tile."""
    n = len(x)
    found = 0
    for i0 in range(0, n, block):
        xi = x[i0:i0 + block]
        for j0 in range(i0, n, block):
            tile = xi @ x[j0:j0 + block].T
            rows, cols = np.nonzero(tile >= threshold)
            for r, c in zip(rows.tolist(), cols.tolist(), strict=True):
                i, j = i0 + r, j0 + c
                if i < j:
                    found += 1
                    if found > max_pairs:
                        raise ValidationError(
                            f"more than {max_pairs} pairs score >= {threshold}: the threshold is too low for "
                            "near-duplicates; raise it (e.g. 0.95) or raise max_pairs"
                        )
                    yield i, j, float(tile[r, c])


def find_duplicates(
    store: VectorStore,
    collection: str,
    threshold: float = 0.95,
    method: Method = "auto",
    filter: FilterLike = None,
    block: int = 1024,
    neighbours: int = 10,
    max_pairs: int = DEFAULT_MAX_PAIRS,
) -> DedupResult:
    threshold = check_threshold(threshold)
    if method not in ("exact", "approximate", "auto"):
        raise ValidationError(f"unknown dedup method {method!r}; use exact, approximate or auto")
    if block <= 0 or neighbours <= 0:
        raise ValidationError("block and neighbours must be positive")
    info = store.collection_info(collection)
    if method == "auto":
        method = "exact" if store.count(collection, filter) <= AUTO_EXACT_LIMIT else "approximate"
    if method == "approximate":
        return _self_join(store, collection, info.metric, threshold, filter, neighbours, max_pairs)
    data = load_collection(store, collection, filter)
    uf = UnionFind()
    pairs: list[DuplicatePair] = []
    for i, j, score in similar_pairs(data.unit_vectors(), threshold, block, max_pairs):
        pairs.append(DuplicatePair(data.ids[i], data.ids[j], score))
        uf.union(data.ids[i], data.ids[j])
    position = {rid: p for p, rid in enumerate(data.ids)}
    groups = uf.groups(data.ids)
    texts = {rid: data.texts[position[rid]] for g in groups for rid in g}
    pairs.sort(key=lambda p: (-p.score, position[p.a], position[p.b]))
    return DedupResult(collection, threshold, "exact", len(data), pairs, groups, texts)


def _self_join(
    store: VectorStore, collection: str, metric: str, threshold: float, filter: FilterLike,
    neighbours: int, max_pairs: int,
) -> DedupResult:
    if metric != "cosine":
        raise ValidationError(
            f"collection {collection!r} uses the {metric} metric; the approximate self-join compares the "
            "store's scores with a cosine threshold, so it needs a cosine collection: use --method exact"
        )
    uf = UnionFind()
    best: dict[tuple[str, str], float] = {}
    texts: dict[str, str] = {}
    order: list[str] = []
    for batch in store.scan(collection, batch_size=256, filter=filter, include_vectors=True):
        vectors = unit_rows_f32(np.stack([np.asarray(r.vector, dtype=np.float32) for r in batch]))
        hits = store.query(collection, vectors, k=neighbours + 1, filter=filter)
        for record, row in zip(batch, hits, strict=True):
            order.append(record.id)
            for hit in row:
                if hit.id == record.id or hit.score < threshold:
                    continue
                key = (record.id, hit.id) if record.id < hit.id else (hit.id, record.id)
                best[key] = max(best.get(key, -2.0), float(hit.score))
                texts[hit.id] = hit.text
                texts[record.id] = record.text
                uf.union(record.id, hit.id)
                if len(best) > max_pairs:
                    raise ValidationError(
                        f"more than {max_pairs} pairs score >= {threshold}; raise the threshold"
                    )
    position = {rid: p for p, rid in enumerate(order)}
    pairs = [DuplicatePair(a, b, s) if position.get(a, 0) <= position.get(b, 0) else DuplicatePair(b, a, s)
             for (a, b), s in best.items()]
    pairs.sort(key=lambda p: (-p.score, position.get(p.a, 0), position.get(p.b, 0)))
    return DedupResult(collection, threshold, "approximate", len(order), pairs, uf.groups(order), texts)
