"""Re-embedding a collection with another embedder, into a new collection, then switching an alias.

Vectors from two models are not comparable, so a collection cannot change embedder in place. The
reindex reads every record's text and metadata, embeds the texts with the new embedder (through the
embedding cache, so a resumed or repeated reindex embeds nothing twice) and writes them, same ids,
into a new collection. Only when the new collection holds every record does the alias (by default
the name the user gave) switch to it, atomically; until then searches keep using the old one.
Resumable: records already in the new collection with the same text and metadata are skipped.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass

from vectorseam.embedding import Embedder, collection_spec, ensure_collection_for
from vectorseam.errors import ValidationError, VectorseamError
from vectorseam.ingest.aliases import AliasMap
from vectorseam.ingest.copying import copy_pages
from vectorseam.ingest.embed_cache import CachingEmbedder, EmbeddingCache
from vectorseam.ingest.job import JobState
from vectorseam.retrying import RetryPolicy, call_with_retry
from vectorseam.store import VectorStore
from vectorseam.types import Record


@dataclass
class ReindexReport:
    source: str
    target: str
    alias: str
    total: int = 0
    written: int = 0
    skipped: int = 0  # already in the target (a resumed reindex)
    embedded: int = 0
    cached: int = 0
    switched: bool = False
    seconds: float = 0.0
    profile: str = ""  # what became of the collection's tuned retrieval profile ('' when it had none)


ReindexProgress = Callable[[ReindexReport], None]


def target_name(alias: str, embedder: Embedder) -> str:
    """A portable collection name derived from the alias and the new embedder's fingerprint."""
    digest = hashlib.sha256(embedder.fingerprint.encode()).hexdigest()[:8]
    return f"{alias[:50]}__{digest}"


def reindex_collection(
    store: VectorStore,
    aliases: AliasMap,
    name: str,
    embedder: Embedder,
    state: JobState,
    target: str | None = None,
    batch_size: int = 64,
    retry: RetryPolicy | None = None,
    progress: ReindexProgress | None = None,
    before_switch: Callable[[ReindexReport], None] | None = None,
) -> ReindexReport:
    """Re-embed the collection ``name`` (or the one the alias ``name`` points at) and point ``name`` at it.
    ``before_switch`` runs once the new collection is complete, before the alias moves (the facade
    carries the tuned profile there, so searches find it with the collection)."""
    policy = retry or RetryPolicy()
    started = time.monotonic()
    source = aliases.resolve(name)
    info = store.collection_info(source)
    into = target or target_name(name, embedder)
    if into == source:
        raise ValidationError(f"the new collection must differ from {source!r}; pass another --into name")
    report = ReindexReport(source, into, name, total=info.count)
    with state.lock(into):
        call_with_retry("creating the new collection", lambda: ensure_collection_for(store, into, embedder), policy)
        _copy_embedded(store, source, into, embedder, state, batch_size, policy, report, progress)
        _check_complete(store, source, into)
        _carry_record_manager(state, source, into)
        if before_switch is not None:
            before_switch(report)
        aliases.set(name, into)
        report.switched = True
    report.seconds = time.monotonic() - started
    if progress is not None:
        progress(report)
    return report


def _copy_embedded(store: VectorStore, source: str, into: str, embedder: Embedder, state: JobState,
                   batch_size: int, policy: RetryPolicy, report: ReindexReport,
                   progress: ReindexProgress | None) -> None:
    """Every record of ``source`` into ``into`` with a vector of ``embedder`` (through the embedding cache);
    records already there with the same text and metadata are skipped (a resumed reindex)."""
    cache = EmbeddingCache(state.embed_cache) if state.embed_cache else None
    caching = CachingEmbedder(embedder, cache)

    def embedded(page: list[Record]) -> list[Record]:
        empty = [r.id for r in page if not r.text.strip()]
        if empty:
            raise VectorseamError(
                f"records {', '.join(map(repr, empty[:5]))} of {source!r} have no text, so they cannot be "
                "re-embedded; ingest them again from their source instead"
            )
        present = {r.id: r for r in store.fetch(into, [r.id for r in page], include_vectors=False)}
        todo = [r for r in page if not (r.id in present and present[r.id].text == r.text
                                        and present[r.id].metadata == r.metadata)]
        report.skipped += len(page) - len(todo)
        if not todo:
            return []
        vectors = caching.embed([r.text for r in todo])
        return [Record(r.id, v, r.text, r.metadata) for r, v in zip(todo, vectors, strict=True)]

    def write(records: list[Record]) -> None:
        call_with_retry(f"writing to {into!r}", lambda: store.upsert(into, records), policy)
        report.written += len(records)

    def after(position: int, page: list[Record]) -> None:
        report.embedded, report.cached = caching.embedded, caching.cached
        if progress is not None:
            progress(report)

    try:
        copy_pages(store.scan(source, batch_size=batch_size, include_vectors=False), write, convert=embedded,
                   after=after)
    finally:
        if cache is not None:
            cache.close()


def _check_complete(store: VectorStore, source: str, into: str) -> None:
    source_count = store.count(source)
    target_count = store.count(into)
    if target_count != source_count:
        raise VectorseamError(
            f"reindex of {source!r} into {into!r} is incomplete ({target_count} of {source_count} records; "
            "the source changed meanwhile?); the alias was not switched. Run the same command again"
        )


def _carry_record_manager(state: JobState, source: str, into: str) -> None:
    """The new collection holds the same chunks, so later ingests into it stay incremental."""
    if not state.data.record_manager.exists():
        return
    old = state.record_manager(source)
    new = state.record_manager(into)
    try:
        from vectorseam.ingest.record_manager import Mark

        entries = [e for e in old.entries() if e.done]
        new.mark_done(Mark(e.doc_id, e.source, e.content_hash, e.chunk_ids) for e in entries)
    finally:
        old.close()
        new.close()


__all__ = ["ReindexReport", "collection_spec", "reindex_collection", "target_name"]
