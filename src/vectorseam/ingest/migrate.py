"""Copying a collection between any two stores: ids, vectors, text and metadata, batched and resumable.

The copy reads the source with ``scan`` (stable order) and writes pages with ``upsert`` (idempotent),
so an interrupted migration run again just redoes at most one page (:mod:`vectorseam.ingest.copying`,
the loop reindex shares). Progress is a count of records copied in scan order, kept in the target data
directory's state database, saved after each page the target wrote (every store's write is durable when
its call returns). At the end the two collections are compared: record counts, then a random sample of
records field by field (vectors to 1e-5; for cosine collections by direction, since some backends store
cosine vectors normalised).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from vectorseam.embedding import FINGERPRINT_KEY
from vectorseam.errors import EmbedderMismatchError
from vectorseam.ingest.copying import copy_pages
from vectorseam.retrying import RetryPolicy, call_with_retry
from vectorseam.store import VectorStore
from vectorseam.types import CollectionInfo, CollectionSpec, Metric, Record


@dataclass
class MigrationReport:
    collection: str
    target_collection: str
    source_count: int = 0
    copied: int = 0
    resumed_from: int = 0
    target_count: int = 0
    sampled: int = 0
    mismatches: list[str] = field(default_factory=list)
    seconds: float = 0.0
    profile: str = ""  # what became of the collection's tuned retrieval profile ('' when it had none)

    @property
    def verified(self) -> bool:
        return not self.mismatches and self.source_count == self.target_count


MigrationProgress = Callable[[MigrationReport], None]


def records_equal(a: Record, b: Record, metric: Metric, atol: float = 1e-5) -> str | None:
    """Why two copies of a record differ, or None when they are the same."""
    if a.text != b.text:
        return "text differs"
    if a.metadata != b.metadata:
        return f"metadata differs: {a.metadata!r} != {b.metadata!r}"
    if a.vector is None or b.vector is None:
        return "vector missing"
    va, vb = np.asarray(a.vector, dtype=np.float64), np.asarray(b.vector, dtype=np.float64)
    if va.shape != vb.shape:
        return f"vector shape {va.shape} != {vb.shape}"
    if metric == "cosine":
        va, vb = va / (np.linalg.norm(va) or 1.0), vb / (np.linalg.norm(vb) or 1.0)
    if not np.allclose(va, vb, atol=atol, rtol=atol):
        return f"vector differs (max abs difference {float(np.max(np.abs(va - vb))):.2e})"
    return None


class Progress(Protocol):
    """Where a migration keeps how many records (in scan order) are copied: :class:`vectorseam.state.
    MigrationState` in the target's data directory."""

    def load(self) -> int: ...

    def save(self, copied: int) -> None: ...

    def clear(self) -> None: ...


def migrate_collection(
    source: VectorStore,
    target: VectorStore,
    collection: str,
    state: Progress,
    target_collection: str | None = None,
    batch_size: int = 500,
    sample: int = 200,
    retry: RetryPolicy | None = None,
    progress: MigrationProgress | None = None,
    seed: int | None = None,
) -> MigrationReport:
    """Copy ``collection`` from ``source`` to ``target`` and verify the copy.

    ``state`` holds this migration's progress (keyed by source, target and collection, so progress of
    another migration is never mistaken for this one's); it is saved after every page the target wrote.
    """
    policy = retry or RetryPolicy()
    started = time.monotonic()
    into = target_collection or collection
    report = MigrationReport(collection, into)
    info = source.collection_info(collection)
    _ensure_target(target, into, info, policy)
    report.source_count = info.count
    report.resumed_from = done = state.load()
    sampler = _Reservoir(sample, random.Random(seed))

    def write(records: list[Record]) -> None:
        call_with_retry(f"writing to {into!r}", lambda: target.upsert(into, records), policy)
        report.copied += len(records)

    def after(position: int, page: list[Record]) -> None:
        sampler.add(r.id for r in page)  # every id, copied now or before
        if position > done:
            state.save(position)
        if progress is not None:
            progress(report)

    state.save(copy_pages(source.scan(collection, batch_size=batch_size, include_vectors=True), write,
                          start=done, after=after))
    _verify(source, target, collection, into, info.metric, sampler.ids, report, policy)
    report.seconds = time.monotonic() - started
    if report.verified:
        state.clear()
    if progress is not None:
        progress(report)
    return report


def _ensure_target(target: VectorStore, into: str, info: CollectionInfo, policy: RetryPolicy) -> None:
    """The target collection, created like the source's; one filled by another embedder is refused."""
    spec = CollectionSpec(into, info.dimension, info.metric, dict(info.metadata))
    target_info = call_with_retry("creating the target collection", lambda: target.ensure_collection(spec), policy)
    theirs, ours = target_info.metadata.get(FINGERPRINT_KEY), info.metadata.get(FINGERPRINT_KEY)
    if theirs is not None and ours is not None and theirs != ours:
        raise EmbedderMismatchError(
            f"the target collection {into!r} exists with embedder {theirs!r}, the source's is {ours!r}; "
            "migrate into another collection name (--to-collection)"
        )


class _Reservoir:
    """A uniform sample of ``size`` ids out of every id seen (Algorithm R)."""

    def __init__(self, size: int, rng: random.Random) -> None:
        self.size, self.rng = size, rng
        self.ids: list[str] = []
        self.seen = 0

    def add(self, ids: Iterable[str]) -> None:
        for rid in ids:
            self.seen += 1
            if len(self.ids) < self.size:
                self.ids.append(rid)
            else:
                j = self.rng.randrange(self.seen)
                if j < self.size:
                    self.ids[j] = rid


def _verify(source: VectorStore, target: VectorStore, collection: str, into: str, metric: Metric,
            sample: list[str], report: MigrationReport, policy: RetryPolicy) -> None:
    """Compare the copy with the source: the record counts, then ``sample`` field by field."""
    report.target_count = call_with_retry("counting the target", lambda: target.count(into), policy)
    if report.target_count != report.source_count:
        report.mismatches.append(f"count: source has {report.source_count}, target has {report.target_count}")
    theirs_by_id = {r.id: r for r in target.fetch(into, sample, include_vectors=True)}
    for rec in source.fetch(collection, sample, include_vectors=True):
        other = theirs_by_id.get(rec.id)
        why = "missing in the target" if other is None else records_equal(rec, other, metric)
        if why is not None:
            report.mismatches.append(f"record {rec.id!r}: {why}")
    report.sampled = len(sample)
