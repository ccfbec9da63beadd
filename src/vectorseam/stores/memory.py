"""The in-memory store: exact search over a contiguous float32 matrix, optionally persisted to disk.

Design choices, and why:

* **One contiguous matrix per collection**, grown by 10% steps (not doubled) so spare capacity stays
  small next to the vectors themselves; queries are one BLAS matrix product.
* **Cosine collections store unit rows plus each row's norm**, so a query is a plain dot product and
  ``fetch`` still returns the vector that was written (row * norm), without keeping two copies.
* **Deletes swap the last row into the hole**: O(d) per id instead of rebuilding the matrix.
* **Filters become a boolean mask before top-k**, so a selective filter never returns fewer than k
  hits while matches exist (post-filtering would).
* **Ties are broken by id** so results are deterministic and comparable across backends.
* **Persistence is generation-based**: data files are written under a new generation name and a small
  manifest is atomically replaced (temp file + fsync + ``os.replace``) to point at them. A crash at
  any moment leaves either the old or the new state, never a mix.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from vectorseam.contract import check_batch_size, check_compatible, check_delete_args, check_k
from vectorseam.errors import (
    CollectionNotFoundError,
    ConfigError,
    ValidationError,
    VectorseamError,
)
from vectorseam.filters import Filter, FilterLike, parse_filter
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

_MANIFEST = "manifest.json"
_FORMAT_VERSION = 1


class _Collection:
    """Rows 0..n-1 of ``matrix`` are live; ``ids[i]`` names row i and ``index`` maps back."""

    def __init__(self, spec: CollectionSpec) -> None:
        self.name = spec.name
        self.dimension = spec.dimension
        self.metric: Metric = spec.metric
        self.metadata: dict[str, str] = dict(spec.metadata)
        self.matrix = np.zeros((0, spec.dimension), dtype=np.float32)
        # cosine: the original norm of each (unit) row; euclidean: the squared norm; dot: unused.
        self.norms = np.zeros(0, dtype=np.float32)
        self.ids: list[str] = []
        self.texts: list[str] = []
        self.metas: list[Metadata] = []
        self.index: dict[str, int] = {}
        self.dirty = False
        # Bumped by every write: derived structures (filter columns, the ANN graph) check it.
        self.generation = 0
        # (generation, filter) -> the matching rows' vectors, for the last selective filter queried
        self._subset: tuple[tuple[int, Filter], npt.NDArray[np.float32]] | None = None
        self.columns = ColumnIndex()
        self.ann: HnswIndex | None = None

    @property
    def n(self) -> int:
        return len(self.ids)

    def info(self) -> CollectionInfo:
        return CollectionInfo(self.name, self.dimension, self.metric, dict(self.metadata), self.n)

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
            norms = np.linalg.norm(vectors, axis=1).astype(np.float32)
            zero = np.flatnonzero(norms == 0)
            if zero.size:
                raise ValidationError(
                    f"record {ids[int(zero[0])]!r}: a zero vector has no direction, so cosine similarity "
                    "is undefined; use the 'dot' or 'euclidean' metric or drop the record"
                )
            return vectors / norms[:, None], norms
        if self.metric == "euclidean":
            return vectors, np.einsum("ij,ij->i", vectors, vectors).astype(np.float32)
        return vectors, np.zeros(len(ids), dtype=np.float32)

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
        self.dirty = True
        self.generation += 1
        return len(records)

    def delete_ids(self, ids: Iterable[str]) -> int:
        removed = 0
        for rid in ids:
            pos = self.index.pop(rid, None)
            if pos is None:
                continue
            last = self.n - 1
            if pos != last:  # move the last row into the hole
                moved = self.ids[last]
                self.matrix[pos] = self.matrix[last]
                self.norms[pos] = self.norms[last]
                self.ids[pos], self.texts[pos], self.metas[pos] = moved, self.texts[last], self.metas[last]
                self.index[moved] = pos
            self.ids.pop()
            self.texts.pop()
            self.metas.pop()
            removed += 1
        if removed:
            self.dirty = True
            self.generation += 1
        return removed

    # -- reads ----------------------------------------------------------------------------------
    def mask(self, f: Filter | None) -> npt.NDArray[np.bool_] | None:
        if f is None:
            return None
        return self.columns.mask(f, self.metas, self.generation)

    def vector(self, pos: int) -> npt.NDArray[np.float32]:
        row: npt.NDArray[np.float32] = self.matrix[pos]
        if self.metric == "cosine":
            row = row * self.norms[pos]
        return np.array(row, dtype=np.float32)

    def record(self, pos: int, include_vector: bool) -> Record:
        return Record(
            id=self.ids[pos],
            vector=self.vector(pos) if include_vector else None,
            text=self.texts[pos],
            metadata=copy_metadata(self.metas[pos]),
        )

    def _gather(self, rows: npt.NDArray[np.int64], f: Filter | None) -> npt.NDArray[np.float32]:
        """The filtered rows' vectors. The last selective filter's copy is kept until the next write:
        repeated queries under one filter (a tenant, a category) then cost one small matrix product
        instead of a gather of every matching row (the bulk of a filtered single query's time)."""
        key = (self.generation, f) if f is not None else None
        if key is not None and self._subset is not None and self._subset[0] == key:
            return self._subset[1]
        sub: npt.NDArray[np.float32] = self.matrix[rows]
        if key is not None and rows.size * 4 <= self.n:  # at most 25% extra memory
            self._subset = (key, sub)
        return sub

    def scores(
        self, queries: npt.NDArray[np.float32], rows: npt.NDArray[np.int64] | None, f: Filter | None = None
    ) -> npt.NDArray[np.float32]:
        matrix = self.matrix[: self.n] if rows is None else self._gather(rows, f)
        if self.metric == "cosine":
            qn = np.linalg.norm(queries, axis=1, keepdims=True)
            qn[qn == 0] = 1.0
            return (queries / qn) @ matrix.T  # type: ignore[no-any-return]
        dots = queries @ matrix.T
        if self.metric == "dot":
            return dots
        sq = self.norms[: self.n] if rows is None else self.norms[rows]
        qsq = np.einsum("ij,ij->i", queries, queries)[:, None]
        return -np.sqrt(np.maximum(qsq + sq[None, :] - 2.0 * dots, 0.0))  # type: ignore[no-any-return]

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


class MemoryStore:
    """Exact in-process vector store; pass ``path`` to keep collections between processes."""

    def __init__(self, path: str | os.PathLike[str] | None = None, ann: object = None) -> None:
        self._path = Path(path) if path is not None else None
        self._ann = AnnSettings.parse(ann)  # None: exact search only (see stores/ann.py)
        if self._ann is not None:
            require_faiss()
        self._lock = threading.RLock()
        self._collections: dict[str, _Collection] = {}
        if self._path is not None:
            self._path.mkdir(parents=True, exist_ok=True)
            for child in sorted(self._path.iterdir()):
                if not child.name.startswith(".") and (child / _MANIFEST).is_file():
                    coll = _load(child)
                    self._collections[coll.name] = coll

    @property
    def capabilities(self) -> Capabilities:
        return Capabilities(
            name="memory", persistent=self._path is not None, approximate=self._ann is not None
        )

    # -- collections ------------------------------------------------------------------------------
    def ensure_collection(self, spec: CollectionSpec) -> CollectionInfo:
        with self._lock:
            coll = self._collections.get(spec.name)
            if coll is None:
                coll = _Collection(spec)
                coll.dirty = True
                self._collections[spec.name] = coll
                self.flush()
                return coll.info()
            check_compatible(coll.info(), spec)
            return coll.info()

    def collections(self) -> list[CollectionInfo]:
        with self._lock:
            return [c.info() for c in sorted(self._collections.values(), key=lambda c: c.name)]

    def drop_collection(self, collection: str) -> bool:
        with self._lock:
            coll = self._collections.pop(collection, None)
            if coll is None:
                return False
            if self._path is not None:
                _remove_dir(self._path / collection)
            return True

    def _get(self, name: str) -> _Collection:
        coll = self._collections.get(name)
        if coll is None:
            existing = ", ".join(sorted(self._collections)) or "none"
            raise CollectionNotFoundError(
                f"collection {name!r} does not exist in the memory store (existing: {existing})"
            )
        return coll

    # -- records ----------------------------------------------------------------------------------
    def upsert(self, collection: str, records: Iterable[Record]) -> int:
        with self._lock:
            coll = self._get(collection)
            checked = validate_records(records, coll.dimension)
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
            mask = coll.mask(f)
            rows = None if mask is None else np.flatnonzero(mask)
            if (rows is not None and rows.size == 0) or coll.n == 0:
                return [[] for _ in range(queries.shape[0])]
            approx: list[list[Hit] | None] | None = None
            if self._ann is not None and (coll.n if rows is None else rows.size) >= self._ann.min_rows:
                approx = _approximate(coll, self._ann, queries, k, mask, include_vectors)
                missing = [i for i, hits in enumerate(approx) if hits is None]
                if not missing:
                    return [hits or [] for hits in approx]
                queries = queries[missing]  # the graph came up short: answer these exactly
            scores = coll.scores(queries, rows, f)
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
        with self._lock:
            coll = self._get(collection)
            if ids is not None:
                return coll.delete_ids(ids_list(ids))
            mask = coll.mask(parse_filter(filter))
            assert mask is not None
            return coll.delete_ids([coll.ids[i] for i in np.flatnonzero(mask)])

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

    # -- persistence ------------------------------------------------------------------------------
    def flush(self) -> None:
        """Write every changed collection to disk (no-op for a purely in-memory store)."""
        if self._path is None:
            return
        with self._lock:
            for coll in self._collections.values():
                if coll.dirty:
                    _save(coll, self._path / coll.name)
                    coll.dirty = False

    def close(self) -> None:
        self.flush()

    def __enter__(self) -> MemoryStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def copy_metadata(metadata: Metadata) -> Metadata:
    """A copy deep enough that a caller editing a returned list value cannot change the store."""
    return {key: list(value) if isinstance(value, list) else value for key, value in metadata.items()}


# -- disk format ----------------------------------------------------------------------------------

def _fsync_write(path: Path, data: bytes) -> None:
    with open(path, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def _save(coll: _Collection, directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    gen = uuid.uuid4().hex[:12]
    vec_name, rec_name = f"vectors-{gen}.npy", f"records-{gen}.jsonl"
    with open(directory / vec_name, "wb") as fh:
        np.save(fh, coll.matrix[: coll.n], allow_pickle=False)
        np.save(fh, coll.norms[: coll.n], allow_pickle=False)
        fh.flush()
        os.fsync(fh.fileno())
    lines = (
        json.dumps({"id": i, "text": t, "metadata": m}, ensure_ascii=False)
        for i, t, m in zip(coll.ids, coll.texts, coll.metas, strict=True)
    )
    _fsync_write(directory / rec_name, ("\n".join(lines) + "\n").encode() if coll.n else b"")
    manifest = {
        "format": _FORMAT_VERSION,
        "name": coll.name,
        "dimension": coll.dimension,
        "metric": coll.metric,
        "metadata": coll.metadata,
        "count": coll.n,
        "vectors": vec_name,
        "records": rec_name,
    }
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".manifest-", suffix=".tmp")
    os.close(fd)
    _fsync_write(Path(tmp), json.dumps(manifest, indent=1).encode())
    os.replace(tmp, directory / _MANIFEST)  # the commit point
    dfd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)
    for stale in directory.iterdir():  # older generations and temp files of crashed saves
        if stale.name not in (_MANIFEST, vec_name, rec_name):
            stale.unlink(missing_ok=True)


def _load(directory: Path) -> _Collection:
    """Read one collection; any damage becomes a VectorseamError naming the directory.

    Everything that parses untrusted file content sits inside the ``try``: a manifest that is valid
    JSON but not an object, a missing key or a malformed row must not escape as a bare
    KeyError/TypeError/AttributeError traceback.
    """
    try:
        manifest = json.loads((directory / _MANIFEST).read_text())
        if not isinstance(manifest, dict):
            raise ValueError(f"{_MANIFEST} holds a JSON {type(manifest).__name__}, not an object")
        if manifest.get("format") != _FORMAT_VERSION:
            raise VectorseamError(
                f"{directory / _MANIFEST} has format version {manifest.get('format')!r}; this vectorseam "
                f"reads version {_FORMAT_VERSION}. Use a matching vectorseam version or ingest again"
            )
        spec = CollectionSpec(
            name=manifest["name"],
            dimension=int(manifest["dimension"]),
            metric=manifest["metric"],
            metadata=dict(manifest.get("metadata", {})),
        )
        count = manifest["count"]
        coll = _Collection(spec)
        with open(directory / manifest["vectors"], "rb") as fh:
            matrix = np.load(fh, allow_pickle=False)
            norms = np.load(fh, allow_pickle=False)
        with open(directory / manifest["records"], encoding="utf-8") as fh:
            rows = [json.loads(line) for line in fh if line.strip()]
        ids = [r["id"] for r in rows]
        texts = [r["text"] for r in rows]
        metas = [r["metadata"] for r in rows]
    except (OSError, EOFError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise VectorseamError(
            f"cannot read the memory-store collection in {directory}: {exc!r}. The directory is damaged; "
            "restore it from a backup or remove it and ingest again"
        ) from exc
    if len(rows) != count or matrix.shape != (count, spec.dimension) or norms.shape != (count,):
        raise VectorseamError(f"collection files in {directory} disagree with their manifest; "
                              "remove the directory and ingest again")
    coll.matrix = np.ascontiguousarray(matrix, dtype=np.float32)
    coll.norms = np.ascontiguousarray(norms, dtype=np.float32)
    coll.ids, coll.texts, coll.metas = ids, texts, metas
    coll.index = {rid: i for i, rid in enumerate(coll.ids)}
    return coll


def _remove_dir(directory: Path) -> None:
    if not directory.exists():
        return
    trash = directory.with_name(f".{directory.name}.deleted-{uuid.uuid4().hex[:8]}")
    os.replace(directory, trash)  # atomic: the collection is gone at once, then cleaned up
    shutil.rmtree(trash, ignore_errors=True)


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
    coll.ann.ensure(coll.matrix[: coll.n], coll.generation)
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
