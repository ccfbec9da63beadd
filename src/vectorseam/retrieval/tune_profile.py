"""A retrieval profile: what ``vectorseam tune`` learned for one collection, and how search applies it.

A profile holds the fusion of dense and BM25 results (method, weight, RRF constant, candidate depth),
an optional query-side linear adapter (a d x d matrix the query embedding is multiplied by before the
store is queried), optional pseudo-relevance feedback, an optional learned ranker and an optional MMR
lambda. It is only valid for the vector space it was tuned in, so it records the embedder's fingerprint:
:meth:`RetrievalProfile.check` raises :class:`ProfileMismatchError` for another embedder, and search then
runs without it and says so (:meth:`ProfileBook.note`). It also records the corpus it was tuned on
(record count and a hash of the sorted ids), for the report only: documents added since are what the
profile's steps, which are about queries and scores, are meant to serve too.

It also records which judged queries trained it, so an evaluation on those queries (which would
measure the fit, not the quality) is refused.

A profile is one byte string (an ``.npz``: the adapter matrix plus a JSON header holding the rest,
pseudo-relevance feedback and the learned ranker included). It is kept with its collection in stores
that keep collection blobs, else in ``DATA_DIR/profiles/<hash of the store identity>/<collection>.npz``,
so two stores with a collection of the same name never share one (see :class:`ProfileBook`).
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, TypeAlias, get_args

import numpy as np
import numpy.typing as npt

from vectorseam.durable import atomic_write
from vectorseam.embedding import Embedder
from vectorseam.errors import ConfigError, EmbedderMismatchError, ValidationError
from vectorseam.retrieval.prf import Feedback
from vectorseam.retrieval.ranker import Ranker
from vectorseam.similarity import unit_rows_f32
from vectorseam.store import CollectionBlobs, VectorStore

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
    feedback: Feedback | None = None  # pseudo-relevance feedback before the dense list is searched again
    ranker: Ranker | None = None  # re-orders the hybrid candidates (vectorseam.retrieval.ranker)

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
        if self.feedback is not None:
            parts.append(self.feedback.describe())
        if self.ranker is not None:
            parts.append(self.ranker.describe())
        parts.append(f"MMR lambda {self.mmr:g}" if self.mmr is not None else "no MMR")
        where = f"{self.trained_on.dataset} {self.trained_on.split}".strip()
        return "; ".join(parts) + (f" (tuned on {len(self.trained_on.queries)} judged queries of {where})"
                                   if self.trained_on.queries else "")

    def check(self, embedder_fingerprint: str, corpus: str | None = None, count: int | None = None,
              collection: str = "the collection") -> None:
        """Refuse a profile made for another vector space. A profile tuned on other documents is not refused:
        its steps are about queries and scores, and users add documents every day."""
        if embedder_fingerprint != self.embedder:
            raise ProfileMismatchError(
                f"the retrieval profile of {collection} was tuned for embedder {self.embedder!r}, but the "
                f"configured embedder is {embedder_fingerprint!r}; tune again with this embedder "
                "(`vectorseam tune`), remove the profile (`vectorseam profile remove`), or search with --no-profile"
            )
        del corpus, count  # documents added since tuning are what the profile is for: reported, not refused

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
    def to_bytes(self) -> bytes:
        """The profile as one byte string (an ``.npz``: the adapter matrix and a JSON header)."""
        meta = {
            "format": FORMAT, "embedder": self.embedder, "corpus": self.corpus, "fusion": asdict(self.fusion),
            "mmr": self.mmr, "trained_on": asdict(self.trained_on), "report": self.report,
            "feedback": None if self.feedback is None else asdict(self.feedback),
            "ranker": None if self.ranker is None else self.ranker.to_dict(),
        }
        adapter = np.zeros((0, 0), np.float32) if self.adapter is None else np.ascontiguousarray(self.adapter)
        buf = io.BytesIO()
        np.savez(buf, adapter=adapter.astype(np.float32), meta=np.array(json.dumps(meta)))
        return buf.getvalue()

    def save(self, path: Path) -> Path:
        return atomic_write(path, self.to_bytes())  # a search never reads half a profile

    @classmethod
    def load(cls, path: Path) -> RetrievalProfile:
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise ConfigError(f"{path} cannot be read ({exc})") from None
        return cls.from_bytes(data, str(path))

    @classmethod
    def from_bytes(cls, data: bytes, where: str = "the stored profile") -> RetrievalProfile:
        path = where
        try:
            with np.load(io.BytesIO(data), allow_pickle=False) as npz:
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
                feedback=Feedback(**meta["feedback"]).check() if meta.get("feedback") else None,
                ranker=Ranker.from_dict(meta["ranker"]) if meta.get("ranker") else None,
            )
        except (OSError, KeyError, TypeError, ValueError, EOFError) as exc:
            raise ConfigError(f"{path} is not a retrieval profile written by `vectorseam tune` ({exc}); "
                              "remove it with `vectorseam profile remove` and tune again") from None
        if profile.adapter is not None and (profile.adapter.ndim != 2 or not np.isfinite(profile.adapter).all()):
            raise ConfigError(f"{path}: the query adapter is not a finite matrix; tune again")
        return profile

    def without_report(self) -> RetrievalProfile:
        return replace(self, report={})


def corpus_fingerprint(ids: Iterable[str]) -> str:
    """``<count>:<sha256 of the sorted ids, 16 hex digits>``: which documents a profile was tuned on."""
    ordered = sorted(ids)
    digest = hashlib.sha256("\n".join(ordered).encode()).hexdigest()[:16]
    return f"{len(ordered)}:{digest}"


def collection_fingerprint(store: VectorStore, collection: str) -> str:
    """The corpus fingerprint of a collection, from an id-only scan."""
    return corpus_fingerprint(r.id for batch in store.scan(collection, batch_size=1000, include_vectors=False)
                              for r in batch)


BLOB = "retrieval-profile"  # the profile's bytes, kept with the collection (CollectionBlobs stores)
VERSION_BLOB = "retrieval-profile.version"  # a short digest of them: what a process compares before reloading
RECHECK_SECONDS = 1.0  # a process looks for a newer profile at most this often per collection

_log = logging.getLogger(__name__)


def _version(data: bytes) -> bytes:
    return hashlib.sha256(data).hexdigest()[:24].encode()


class ProfileBook:
    """Where the profiles of one store's collections live, and a per-process cache of the checked ones.

    **With the collection** when the store keeps collection blobs (:class:`~vectorseam.store.CollectionBlobs`:
    pgvector in a table of its database, Qdrant in a companion collection, the memory store in its
    collection database): every process and replica over that store applies a profile on its next
    request, a dropped collection takes its profile along, and ``vectorseam migrate`` copies it. The
    profile is written first, then a 24-digit digest of it (``retrieval-profile.version``); a process
    reads only the digest, at most once a second per collection, and the profile itself when the digest
    changed, so a search does not pay a blob read. **In the data directory** otherwise (Pinecone,
    Weaviate: ``DATA_DIR/profiles/<store hash>/``, the file's modification time as the version), which
    only the processes sharing that directory see; :attr:`where` says which.

    A profile tuned for another embedder is not applied: :meth:`get` returns None, logs why once, and
    :meth:`note` tells the search's caller. Documents added or removed since tuning do not stop it: the
    fusion, feedback and ranker are about queries and scores, not about which documents exist (what
    changed is reported by ``vectorseam profile show``).
    """

    def __init__(self, root: str | Path, embedder: Embedder | None, store: VectorStore | None = None,
                 recheck_seconds: float = RECHECK_SECONDS) -> None:
        self.root = Path(root)
        self.embedder = embedder  # its fingerprint is read only when a profile exists (it may load the model)
        self.store = store
        self.recheck_seconds = recheck_seconds
        self._cache: dict[str, tuple[object, float, RetrievalProfile | None]] = {}  # version, checked at, profile
        self._notes: dict[str, str] = {}
        self._lock = threading.Lock()

    @property
    def blobs(self) -> CollectionBlobs | None:
        return self.store if isinstance(self.store, CollectionBlobs) else None

    @property
    def where(self) -> str:
        if self.blobs is not None:
            return f"with the collection in the {self.store.capabilities.name if self.store else ''} store"
        return f"in the data directory ({self.root}): this store keeps no collection blobs"

    def path(self, collection: str) -> Path:
        slug = "".join(c if c.isalnum() or c in "_-" else "-" for c in collection)[:60]
        return self.root / f"{slug}-{hashlib.sha256(collection.encode()).hexdigest()[:10]}.npz"

    # -- reading ----------------------------------------------------------------------------------
    def _version_of(self, collection: str) -> object:
        """The stored profile's version (None: there is none): its digest blob, or the file's mtime."""
        blobs = self.blobs
        if blobs is not None:
            version = blobs.get_blob(collection, VERSION_BLOB)
            if version is None and self.path(collection).is_file():
                self._import_file(blobs, collection)  # a profile saved before the store kept blobs
                version = blobs.get_blob(collection, VERSION_BLOB)
            return version
        try:
            return self.path(collection).stat().st_mtime_ns
        except FileNotFoundError:
            return None

    def _read(self, collection: str) -> RetrievalProfile | None:
        blobs = self.blobs
        if blobs is None:
            path = self.path(collection)
            return RetrievalProfile.load(path) if path.is_file() else None
        data = blobs.get_blob(collection, BLOB)
        return None if data is None else RetrievalProfile.from_bytes(data, f"the profile of collection {collection!r}")

    def _import_file(self, blobs: CollectionBlobs, collection: str) -> None:
        data = self.path(collection).read_bytes()
        RetrievalProfile.from_bytes(data, str(self.path(collection)))  # refuse to import a damaged file
        blobs.put_blob(collection, BLOB, data)
        blobs.put_blob(collection, VERSION_BLOB, _version(data))
        _log.info("moved the retrieval profile of %r from %s into the store", collection, self.path(collection))

    def find(self, collection: str) -> RetrievalProfile | None:
        """The collection's profile without any check (``vectorseam profile show``), or None."""
        self._version_of(collection)  # imports a data-directory profile into a store that keeps blobs
        return self._read(collection)

    def get(self, store: VectorStore | None, collection: str, count: int | None = None) -> RetrievalProfile | None:
        """The collection's profile if it has one this embedder can use, else None (:meth:`note` says why).
        ``store`` and ``count`` are accepted for callers of earlier releases; the book's store is used."""
        del store, count
        now = time.monotonic()
        with self._lock:
            cached = self._cache.get(collection)
        if cached is not None and now - cached[1] < self.recheck_seconds:
            return cached[2]
        version = self._version_of(collection)
        if cached is not None and cached[0] == version:
            with self._lock:
                self._cache[collection] = (version, now, cached[2])
            return cached[2]
        profile = None if version is None else self._read(collection)
        usable = None
        if profile is not None and self.embedder is not None:
            try:
                profile.check(self.embedder.fingerprint, collection=f"collection {collection!r}")
                usable = profile.without_report()
                self._notes.pop(collection, None)
            except ProfileMismatchError as exc:
                self._notes[collection] = f"the collection's tuned profile was not applied: {exc}"
                _log.warning("search of %r without its tuned profile: %s", collection, exc)
        else:
            self._notes.pop(collection, None)
        with self._lock:
            self._cache[collection] = (version, now, usable)
        return usable

    def note(self, collection: str) -> str | None:
        """Why the collection's profile was not applied on its last look-up (None: applied, or none)."""
        return self._notes.get(collection)

    # -- writing ----------------------------------------------------------------------------------
    def save(self, collection: str, profile: RetrievalProfile) -> Path | str:
        """Store the profile (with the collection where the store keeps blobs); returns where it went."""
        with self._lock:
            self._cache.pop(collection, None)
        blobs = self.blobs
        if blobs is None:
            return profile.save(self.path(collection))
        data = profile.to_bytes()
        blobs.put_blob(collection, BLOB, data)  # the profile first: a reader that sees the new digest finds it
        blobs.put_blob(collection, VERSION_BLOB, _version(data))
        return f"{self.store.capabilities.name if self.store else 'store'}:{collection}/{BLOB}"

    def put_bytes(self, collection: str, data: bytes) -> None:
        """Store a profile already serialised (``migrate`` and ``reindex`` carry them this way)."""
        self.save(collection, RetrievalProfile.from_bytes(data, f"the profile carried to {collection!r}"))

    def get_bytes(self, collection: str) -> bytes | None:
        profile = self.find(collection)
        return None if profile is None else profile.to_bytes()

    def remove(self, collection: str) -> bool:
        with self._lock:
            self._cache.pop(collection, None)
        removed = False
        blobs = self.blobs
        if blobs is not None:
            removed = blobs.delete_blob(collection, VERSION_BLOB)
            removed = blobs.delete_blob(collection, BLOB) or removed
        path = self.path(collection)
        if path.is_file():
            path.unlink()
            removed = True
        return removed


def carry_profile(source: ProfileBook, target: ProfileBook, collection: str, into: str,
                  embedder: str | None = None) -> str:
    """Copy ``collection``'s profile (if any) to ``into`` of the target book (``migrate``, ``reindex``);
    returns what happened, for the report ('' when there was none). A profile tuned for another embedder
    than ``embedder`` (the new collection's) is carried but says it will not be applied."""
    profile = source.find(collection)
    if profile is None:
        return ""
    target.save(into, profile)
    if embedder is not None and embedder != profile.embedder:
        message = (f"the tuned profile of {collection!r} was copied to {into!r}, but it was tuned for embedder "
                   f"{profile.embedder!r} and {into!r} is embedded by {embedder!r}: searches will not apply it "
                   f"(and say so) until `vectorseam tune` tunes {into!r} again")
        _log.warning(message)
        return message
    return f"the tuned profile of {collection!r} was copied to {into!r} ({target.where})"
