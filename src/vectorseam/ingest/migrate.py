"""Copying a collection between any two stores: ids, vectors, text and metadata, batched and resumable.

The copy reads the source with ``scan`` (stable order) and writes pages with ``upsert`` (idempotent),
so an interrupted migration run again just redoes at most one page. Progress is a count of records
copied in scan order, kept in the target data directory's state database, updated only after the target has made the
page durable (the memory store flushes). At the end the two collections are compared: record counts,
then a random sample of records field by field (vectors to 1e-5; for cosine collections by direction,
since some backends store cosine vectors normalised).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from vectorseam.embedders.base import FINGERPRINT_KEY
from vectorseam.errors import EmbedderMismatchError, VectorseamError
from vectorseam.retrying import RetryPolicy, call_with_retry
from vectorseam.store import Flushable, VectorStore
from vectorseam.types import CollectionSpec, Metric, Record


class MigrationError(VectorseamError):
    """The copy finished but the target does not match the source."""


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
    checkpoint_seconds: float = 2.0,
) -> MigrationReport:
    """Copy ``collection`` from ``source`` to ``target`` and verify the copy.

    ``state`` holds this migration's progress (keyed by source, target and collection, so progress of
    another migration is never mistaken for this one's).
    """
    policy = retry or RetryPolicy()
    started = time.monotonic()
    into = target_collection or collection
    report = MigrationReport(collection, into)

    def again(what: str, fn: Callable[[], object]) -> object:
        return call_with_retry(what, fn, policy)

    info = source.collection_info(collection)
    spec = CollectionSpec(into, info.dimension, info.metric, dict(info.metadata))
    target_info = call_with_retry("creating the target collection", lambda: target.ensure_collection(spec), policy)
    theirs, ours = target_info.metadata.get(FINGERPRINT_KEY), info.metadata.get(FINGERPRINT_KEY)
    if theirs is not None and ours is not None and theirs != ours:
        raise EmbedderMismatchError(
            f"the target collection {into!r} exists with embedder {theirs!r}, the source's is {ours!r}; "
            "migrate into another collection name (--to-collection)"
        )
    report.source_count = info.count
    done = state.load()
    report.resumed_from = done
    flush = target.flush if isinstance(target, Flushable) else None
    rng = random.Random(seed)
    reservoir: list[str] = []
    seen = 0
    position = 0
    last_save = time.monotonic()
    for page in source.scan(collection, batch_size=batch_size, include_vectors=True):
        for rec in page:  # reservoir sample of every id, copied now or before
            seen += 1
            if len(reservoir) < sample:
                reservoir.append(rec.id)
            else:
                j = rng.randrange(seen)
                if j < sample:
                    reservoir[j] = rec.id
        end = position + len(page)
        if end > done:
            todo = page[max(done - position, 0):]
            again(f"writing to {into!r}", lambda todo=todo: target.upsert(into, todo))  # type: ignore[misc]
            report.copied += len(todo)
            if flush is None or time.monotonic() - last_save >= checkpoint_seconds:
                if flush is not None:
                    again("flushing the target", flush)
                state.save(end)
                last_save = time.monotonic()
        position = end
        if progress is not None:
            progress(report)
    if flush is not None:
        again("flushing the target", flush)
    state.save(position)
    report.target_count = int(again("counting the target", lambda: target.count(into)))  # type: ignore[call-overload]
    if report.target_count != report.source_count:
        report.mismatches.append(f"count: source has {report.source_count}, target has {report.target_count}")
    theirs_by_id = {r.id: r for r in target.fetch(into, reservoir, include_vectors=True)}
    for rec in source.fetch(collection, reservoir, include_vectors=True):
        other = theirs_by_id.get(rec.id)
        why = "missing in the target" if other is None else records_equal(rec, other, info.metric)
        if why is not None:
            report.mismatches.append(f"record {rec.id!r}: {why}")
    report.sampled = len(reservoir)
    report.seconds = time.monotonic() - started
    if report.verified:
        state.clear()
    if progress is not None:
        progress(report)
    return report
