"""A retrieval profile: what ``vectorseam tune`` learned for one collection, and how search applies it.

A profile holds the fusion of dense and BM25 results (method, weight, RRF constant, candidate depth),
an optional query-side linear adapter (a d x d matrix the query embedding is multiplied by before the
store is queried) and an optional MMR lambda. It is only valid for the vector space and the documents
it was tuned on, so it records both fingerprints: the embedder's, and the corpus's (record count and a
hash of the sorted ids). Loading it for another embedder or another corpus raises
:class:`ProfileMismatchError` with what to do, exactly like a collection embedded by another model.

It also records which judged queries trained it, so an evaluation on those queries (which would
measure the fit, not the quality) is refused.

Profiles live in ``DATA_DIR/profiles/<hash of the store identity>/<collection>.npz`` (the adapter
matrix plus a JSON header), so two stores with a collection of the same name never share one.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, TypeAlias, get_args

import numpy as np
import numpy.typing as npt

from vectorseam.durable import atomic_write
from vectorseam.embedders.base import Embedder
from vectorseam.errors import ConfigError, EmbedderMismatchError, ValidationError
from vectorseam.retrieval.mmr import mmr_order
from vectorseam.similarity import unit_rows_f32
from vectorseam.store import VectorStore

FORMAT = "vectorseam-retrieval-profile/1"
FusionMethod: TypeAlias = Literal["rrf", "minmax", "zscore"]
FUSION_METHODS: tuple[str, ...] = get_args(FusionMethod)
ABSENT = np.iinfo(np.int32).max  # the rank of a document a list does not hold

F64 = npt.NDArray[np.float64]
I32 = npt.NDArray[np.int32]


class ProfileMismatchError(EmbedderMismatchError):
    """The collection's profile was tuned for another embedder or another set of documents."""


@dataclass(frozen=True)
class Fusion:
    """How the dense and the BM25 candidate lists become one ranking.

    * ``rrf``: ``w / (rrf_k + rank_dense) + (1 - w) / (rrf_k + rank_bm25)`` (ranks from 1);
    * ``minmax``: each list's scores scaled to [0, 1] over its candidates, then ``w * dense + (1 - w) * bm25``;
    * ``zscore``: each list's scores standardised over its candidates, then the same convex combination.

    A document missing from one list gets that list's lowest value (0 for RRF and min-max), so it can
    never outrank a candidate of the list on that list's account. ``depth`` candidates come from each list.
    The untuned search is ``Fusion()``: RRF with k = 60, equal weights, 100 candidates each.
    """

    method: FusionMethod = "rrf"
    dense_weight: float = 0.5
    rrf_k: float = 60.0
    depth: int = 100

    def check(self) -> Fusion:
        if self.method not in FUSION_METHODS:
            raise ValidationError(f"unknown fusion {self.method!r}; use one of {', '.join(FUSION_METHODS)}")
        if not 0.0 <= self.dense_weight <= 1.0:
            raise ValidationError(f"the dense weight must be in [0, 1], got {self.dense_weight}")
        if self.rrf_k < 0 or self.depth <= 0:
            raise ValidationError(f"the RRF constant must be >= 0 and the depth positive, got {self.rrf_k}, "
                                  f"{self.depth}")
        return self

    def describe(self) -> str:
        if self.method == "rrf":
            return (f"RRF k={self.rrf_k:g}, dense weight {self.dense_weight:.2f}, "
                    f"{self.depth} candidates per list")
        return f"{self.method} score fusion, dense weight {self.dense_weight:.2f}, {self.depth} candidates per list"

    def fuse(self, dense: Sequence[tuple[str, float]], sparse: Sequence[tuple[str, float]]) -> list[tuple[str, float]]:
        """Fuse two best-first ``(id, score)`` lists; best first, ties by id.

        The first ``depth`` entries of each list make the tuned ranking. Entries beyond (when a caller
        asks for more results than the two tuned lists hold) follow it, ranked by the same fusion over
        the whole lists, their scores shifted to stay below the tuned ranking's last one."""
        head = _fuse_lists(dense[: self.depth], sparse[: self.depth], self)
        if len(dense) <= self.depth and len(sparse) <= self.depth:
            return head
        seen = {rid for rid, _ in head}
        tail = [p for p in _fuse_lists(dense, sparse, replace(self, depth=max(len(dense), len(sparse))))
                if p[0] not in seen]
        if not head or not tail:
            return head + tail
        shift = tail[0][1] - head[-1][1] + 1e-9 if tail[0][1] >= head[-1][1] else 0.0
        return head + [(rid, score - shift) for rid, score in tail]


def _fuse_lists(dense: Sequence[tuple[str, float]], sparse: Sequence[tuple[str, float]],
                fusion: Fusion) -> list[tuple[str, float]]:
    ids = sorted({rid for rid, _ in dense} | {rid for rid, _ in sparse})
    if not ids:
        return []
    column = {rid: i for i, rid in enumerate(ids)}
    scores, ranks = np.zeros((2, 1, len(ids))), np.full((2, 1, len(ids)), ABSENT, dtype=np.int32)
    for which, ranking in enumerate((dense, sparse)):
        for r, (rid, s) in enumerate(ranking):
            scores[which, 0, column[rid]], ranks[which, 0, column[rid]] = s, r
    fused = fuse_matrix(scores[0], ranks[0], scores[1], ranks[1], fusion)[0]
    order = np.argsort(-fused, kind="stable")  # ids are sorted, so stable order breaks ties by id
    return [(ids[i], float(fused[i])) for i in order.tolist()]


def _normalized(score: F64, present: npt.NDArray[np.bool_], method: str) -> F64:
    """Each row's scores over its present entries scaled (min-max) or standardised (z); absent: the row minimum."""
    count = present.sum(axis=1, keepdims=True)
    if method == "minmax":
        low = np.where(present, score, np.inf).min(axis=1, keepdims=True)
        high = np.where(present, score, -np.inf).max(axis=1, keepdims=True)
        span = np.where(high > low, high - low, 1.0)
        out = (score - np.where(count > 0, low, 0.0)) / span
    else:
        mean = np.where(present, score, 0.0).sum(axis=1, keepdims=True) / np.maximum(count, 1)
        var = np.where(present, (score - mean) ** 2, 0.0).sum(axis=1, keepdims=True) / np.maximum(count, 1)
        out = (score - mean) / np.where(var > 0, np.sqrt(var), 1.0)
    floor = np.where(present, out, np.inf).min(axis=1, keepdims=True)
    return np.where(present, out, np.where(np.isfinite(floor), floor, 0.0))


def fuse_matrix(dense_score: F64, dense_rank: I32, bm25_score: F64, bm25_rank: I32, fusion: Fusion) -> F64:
    """Fused scores of candidate matrices (one row per query; ranks from 0, ``ABSENT`` where a list lacks the
    document). Entries beyond ``fusion.depth`` count as absent; entries absent from both lists get -inf.

    The tuner scores thousands of settings on whole query sets with it, and :meth:`Fusion.fuse` calls it
    on one query, so what is tuned is exactly what is searched.
    """
    d_in, b_in = dense_rank < fusion.depth, bm25_rank < fusion.depth
    w = fusion.dense_weight
    if fusion.method == "rrf":
        fused = (np.where(d_in, w / (fusion.rrf_k + dense_rank + 1.0), 0.0)
                 + np.where(b_in, (1.0 - w) / (fusion.rrf_k + bm25_rank + 1.0), 0.0))
    else:
        fused = w * _normalized(dense_score, d_in, fusion.method) + (1.0 - w) * _normalized(bm25_score, b_in,
                                                                                              fusion.method)
    return np.where(d_in | b_in, fused, -np.inf)


@dataclass(frozen=True)
class TrainedOn:
    """The judged queries a profile was tuned on (their ids), so evaluating on them can be refused."""

    dataset: str
    split: str
    queries: tuple[str, ...]


@dataclass(frozen=True)
class RetrievalProfile:
    embedder: str  # the embedder fingerprint the adapter and the weights were tuned for
    corpus: str  # corpus_fingerprint() of the collection when tuned
    fusion: Fusion = Fusion()
    adapter: npt.NDArray[np.float32] | None = None  # d x d, applied to query embeddings
    mmr: float | None = None  # MMR lambda applied to hybrid results, when it helped
    trained_on: TrainedOn = TrainedOn("", "", ())
    report: dict[str, Any] = field(default_factory=dict)  # the cross-validation report that chose it

    @property
    def count(self) -> int:
        return int(self.corpus.split(":", 1)[0])

    def adapt(self, vectors: npt.ArrayLike) -> npt.NDArray[np.float32]:
        """Query vectors (n, d) or (d,) through the adapter, unit length again; unchanged without one."""
        x = np.asarray(vectors, dtype=np.float32)
        if self.adapter is None:
            return x
        if x.shape[-1] != self.adapter.shape[0]:
            raise ProfileMismatchError(f"the profile's query adapter maps {self.adapter.shape[0]}-d vectors, "
                                       f"got {x.shape[-1]}-d ones")
        out = unit_rows_f32(np.atleast_2d(x) @ self.adapter)
        return out[0] if x.ndim == 1 else out

    def describe(self) -> str:
        parts = [self.fusion.describe()]
        parts.append("query adapter" if self.adapter is not None else "no query adapter")
        parts.append(f"MMR lambda {self.mmr:g}" if self.mmr is not None else "no MMR")
        where = f"{self.trained_on.dataset} {self.trained_on.split}".strip()
        return "; ".join(parts) + (f" (tuned on {len(self.trained_on.queries)} judged queries of {where})"
                                   if self.trained_on.queries else "")

    def check(self, embedder_fingerprint: str, corpus: str | None = None, count: int | None = None,
              collection: str = "the collection") -> None:
        """Refuse a profile made for another vector space or another set of documents."""
        if embedder_fingerprint != self.embedder:
            raise ProfileMismatchError(
                f"the retrieval profile of {collection} was tuned for embedder {self.embedder!r}, but the "
                f"configured embedder is {embedder_fingerprint!r}; tune again with this embedder "
                "(`vectorseam tune`), remove the profile (`vectorseam profile remove`), or search with --no-profile"
            )
        if (corpus is not None and corpus != self.corpus) or (count is not None and count != self.count):
            now = corpus or f"{count} records"
            raise ProfileMismatchError(
                f"the retrieval profile of {collection} was tuned on another corpus ({self.corpus}: records:ids "
                f"hash), the collection is now {now}; tune again (`vectorseam tune`), remove the profile "
                "(`vectorseam profile remove`), or search with --no-profile"
            )

    def check_unseen(self, dataset: str, split: str, queries: Iterable[str]) -> None:
        """Refuse to evaluate on the split or the queries the profile was tuned on: that measures its fit."""
        seen = set(self.trained_on.queries)
        overlap = [q for q in queries if q in seen]
        same_split = (dataset, split) == (self.trained_on.dataset, self.trained_on.split)
        if same_split or overlap:
            raise ValidationError(
                f"the collection's retrieval profile was tuned on split {self.trained_on.split!r} of "
                f"{self.trained_on.dataset!r} ({len(overlap) or len(seen)} of these judged queries); scoring it "
                "there would measure how well it fits its training queries, not how well it retrieves. Evaluate "
                "on a split it has not seen (e.g. --split test), read the cross-validated figures of "
                "`vectorseam profile show`, or pass --no-profile"
            )

    # -- files ------------------------------------------------------------------------------------
    def save(self, path: Path) -> Path:
        meta = {
            "format": FORMAT, "embedder": self.embedder, "corpus": self.corpus, "fusion": asdict(self.fusion),
            "mmr": self.mmr, "trained_on": asdict(self.trained_on), "report": self.report,
        }
        adapter = np.zeros((0, 0), np.float32) if self.adapter is None else np.ascontiguousarray(self.adapter)
        buf = io.BytesIO()
        np.savez(buf, adapter=adapter.astype(np.float32), meta=np.array(json.dumps(meta)))
        return atomic_write(path, buf.getvalue())  # a search never reads half a profile

    @classmethod
    def load(cls, path: Path) -> RetrievalProfile:
        try:
            with np.load(path, allow_pickle=False) as npz:
                adapter = np.asarray(npz["adapter"], dtype=np.float32)
                meta = json.loads(str(npz["meta"]))
            if meta.get("format") != FORMAT:
                raise ValueError(f"unknown format {meta.get('format')!r}")
            trained = meta["trained_on"]
            profile = cls(
                embedder=str(meta["embedder"]), corpus=str(meta["corpus"]), fusion=Fusion(**meta["fusion"]).check(),
                adapter=adapter if adapter.size else None, mmr=meta.get("mmr"),
                trained_on=TrainedOn(str(trained["dataset"]), str(trained["split"]), tuple(trained["queries"])),
                report=dict(meta.get("report") or {}),
            )
        except (OSError, KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"{path} is not a retrieval profile written by `vectorseam tune` ({exc}); "
                              "remove it with `vectorseam profile remove` and tune again") from None
        if profile.adapter is not None and (profile.adapter.ndim != 2 or not np.isfinite(profile.adapter).all()):
            raise ConfigError(f"{path}: the query adapter is not a finite matrix; tune again")
        return profile

    def without_report(self) -> RetrievalProfile:
        return replace(self, report={})


def mmr_rerank(store: VectorStore, collection: str, query: npt.ArrayLike, ranked: Sequence[tuple[str, float]],
               pool: int, k: int, lam: float) -> list[tuple[str, float]]:
    """``ranked`` with its top ``k`` re-chosen by MMR out of its first ``pool`` entries (the rest kept in
    order): what hybrid search with a profile's MMR lambda returns first, for evaluation's deeper runs."""
    candidates = list(ranked[:pool])
    found = {r.id: r.vector for r in store.fetch(collection, [rid for rid, _ in candidates], include_vectors=True)}
    usable = [c for c in candidates if found.get(c[0]) is not None]
    if not usable:
        return list(ranked)
    matrix = np.stack([np.asarray(found[rid]) for rid, _ in usable])
    top = [usable[i] for i in mmr_order(query, matrix, k, lam, store.collection_info(collection).metric)]
    chosen = {rid for rid, _ in top}
    return top + [c for c in ranked if c[0] not in chosen]


def corpus_fingerprint(ids: Iterable[str]) -> str:
    """``<count>:<sha256 of the sorted ids, 16 hex digits>``: which documents a profile was tuned on."""
    ordered = sorted(ids)
    digest = hashlib.sha256("\n".join(ordered).encode()).hexdigest()[:16]
    return f"{len(ordered)}:{digest}"


def collection_fingerprint(store: VectorStore, collection: str) -> str:
    """The corpus fingerprint of a collection, from an id-only scan."""
    return corpus_fingerprint(r.id for batch in store.scan(collection, batch_size=1000, include_vectors=False)
                              for r in batch)


class ProfileBook:
    """Where the profiles of one store's collections live, and a per-process cache of the checked ones.

    A profile is checked against the embedder when loaded and against the collection's documents once
    per process (an id scan); every search then only compares the record count, which it reads anyway.
    """

    def __init__(self, root: str | Path, embedder: Embedder) -> None:
        self.root = Path(root)
        self.embedder = embedder  # its fingerprint is read only when a profile exists (it may load the model)
        self._cache: dict[str, tuple[float, RetrievalProfile]] = {}

    def path(self, collection: str) -> Path:
        slug = "".join(c if c.isalnum() or c in "_-" else "-" for c in collection)[:60]
        return self.root / f"{slug}-{hashlib.sha256(collection.encode()).hexdigest()[:10]}.npz"

    def find(self, collection: str) -> RetrievalProfile | None:
        """The collection's profile without any check (``vectorseam profile show``), or None."""
        path = self.path(collection)
        return RetrievalProfile.load(path) if path.is_file() else None

    def get(self, store: VectorStore, collection: str, count: int | None = None) -> RetrievalProfile | None:
        """The collection's checked profile, or None if it has none. ``count``: the record count, if known."""
        path = self.path(collection)
        try:
            mtime = path.stat().st_mtime
        except FileNotFoundError:
            self._cache.pop(collection, None)
            return None
        cached = self._cache.get(collection)
        if cached is None or cached[0] != mtime:
            profile = RetrievalProfile.load(path)
            profile.check(self.embedder.fingerprint, collection_fingerprint(store, collection),
                          collection=f"collection {collection!r}")
            cached = (mtime, profile.without_report())
            self._cache[collection] = cached
        cached[1].check(self.embedder.fingerprint, count=count, collection=f"collection {collection!r}")
        return cached[1]

    def save(self, collection: str, profile: RetrievalProfile) -> Path:
        self._cache.pop(collection, None)
        return profile.save(self.path(collection))

    def remove(self, collection: str) -> bool:
        self._cache.pop(collection, None)
        path = self.path(collection)
        if path.is_file():
            path.unlink()
            return True
        return False
