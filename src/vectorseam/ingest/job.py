"""The load job: source -> chunks -> embeddings -> store, incremental, resumable and safe to kill.

Three stages run at once, joined by bounded queues (so memory stays flat whatever the source size):

* **read** (caller's thread): documents from the source, rejects counted and written to the rejects
  file, each document's content hash compared with the record manager. Unchanged documents are
  skipped, after checking that their chunks really are in the store (a record manager can be wrong:
  a store restored from an old backup, records deleted by hand); missing ones are restored.
* **embed**: chunk texts through the on-disk embedding cache, so no text is embedded twice.
* **write**: the duplicate screen (``duplicates="tag"|"drop"``), the record manager's pending mark,
  the store upsert and the delete of chunks a changed document no longer produces (durable when the
  store's call returns), then at checkpoints the record manager's done mark (see
  :mod:`vectorseam.ingest.record_manager` for why this order makes a kill harmless).

Duplicate screening runs in the write stage because only there are the vectors known *and* every
earlier batch already in the store, so a repeat in a later batch is found. The content hash stays
the hash of the *source* document: tags are derived from the store, and a re-run of an unchanged
source must not flip-flop on them. A dropped chunk is recorded as handled by leaving it out of the
document's recorded chunk ids (a document dropped whole is recorded with none), so re-runs count it
unchanged and never "restore" it; it is screened again only when its source content changes.

Store calls are retried with backoff and jitter; a store that stays down ends the job with
:class:`~vectorseam.errors.StoreUnavailableError`, and a re-run resumes.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import queue
import stat
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Literal, Protocol, TypeVar

from vectorseam.datadir import DataDir
from vectorseam.durable import FILE_MODE, FileLock
from vectorseam.embedding import Embedder, ensure_collection_for
from vectorseam.errors import ValidationError
from vectorseam.ingest.chunking import ChunkSpec, chunk_text
from vectorseam.ingest.dedup_screen import DUPLICATE_FIELD, SCORE_FIELD, DuplicateNote, DuplicateScreen
from vectorseam.ingest.embed_cache import CachingEmbedder, EmbeddingCache
from vectorseam.ingest.record_manager import Entry, Mark, RecordManager, job_lock
from vectorseam.ingest.sources import Document, Reject, RowSpec, Source
from vectorseam.ingest_options import IngestOptions
from vectorseam.retrying import call_with_retry
from vectorseam.store import BulkLoading, VectorStore
from vectorseam.types import MAX_ID_LENGTH, Metadata, Record

T = TypeVar("T")
SCREEN_KEYS = (DUPLICATE_FIELD, SCORE_FIELD)
CHUNK_KEYS = ("source_id", "chunk", "chunks")
MAX_REJECTS_KEPT = 1000  # in the report; the rejects file holds every one
# The done mark of a checkpoint (the record manager's transaction) is made at most once per this many
# of its own durations, so checkpoints cost the job about 3% whatever the record manager's database
# costs per commit. A kill redoes at most the writes since the last one, and no embedding: their
# vectors are in the cache by then.
CHECKPOINT_COST_RATIO = 30


@dataclass
class IngestReport:
    """What a run did, counted in source documents (``chunks_written`` counts store records)."""

    collection: str = ""
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    restored: int = 0  # the record manager had them, the store did not: written again
    deleted: int = 0
    kept: int = 0  # --cleanup full: documents not deleted because their source could not be read
    rejected: int = 0
    chunks_written: int = 0
    chunks_deleted: int = 0
    embedded: int = 0  # texts sent to the embedder
    cached: int = 0  # texts whose vectors came from the embedding cache
    untracked: int = 0  # --verify: store records no run of this collection wrote
    duplicates: int = 0  # store records (chunks) tagged or dropped as near-duplicates
    dropped: int = 0  # source documents not written at all: every chunk was a dropped duplicate
    expected: int | None = None  # source size estimate, for progress bars
    seconds: float = 0.0
    rejects: list[Reject] = field(default_factory=list)
    duplicate_notes: list[DuplicateNote] = field(default_factory=list)  # the first MAX_REJECTS_KEPT

    @property
    def processed(self) -> int:
        return self.added + self.updated + self.unchanged + self.restored + self.rejected + self.dropped

    @property
    def written(self) -> int:
        return self.added + self.updated + self.restored

    @property
    def nothing_accepted(self) -> bool:
        """Rows were rejected and not one became a document: a misnamed field, a wrong file. Callers
        report this as a failure (the CLI exits non-zero, a service job fails), not as a success."""
        return self.rejected > 0 and self.processed == self.rejected

    def summary(self) -> str:
        parts = [f"added {self.added}", f"updated {self.updated}", f"unchanged {self.unchanged}",
                 f"deleted {self.deleted}", f"rejected {self.rejected}"]
        if self.kept:
            parts.append(f"kept {self.kept} whose source could not be read (see the rejects)")
        if self.restored:
            parts.append(f"restored {self.restored} (missing from the store)")
        if self.untracked:
            parts.append(f"untracked {self.untracked}")
        if self.duplicates:
            parts.append(f"duplicates {self.duplicates}"
                         + (f" ({self.dropped} documents dropped whole)" if self.dropped else ""))
        return ", ".join(parts)


Progress = Callable[[IngestReport], None]


@dataclass(frozen=True, slots=True)
class JobState:
    """Where the job keeps its state: the record manager, embedding cache and locks."""

    data: DataDir
    store_key: str
    embed_cache: Path | None = None  # None: no cache

    @classmethod
    def under(cls, data_dir: DataDir | Path, store_key: str, use_cache: bool = True,
              cache_path: str | Path | None = None) -> JobState:
        data = data_dir if isinstance(data_dir, DataDir) else DataDir.at(data_dir)
        cache_file = Path(cache_path) if cache_path is not None else data.embedding_cache
        return cls(data, store_key, cache_file if use_cache else None)

    def record_manager(self, collection: str) -> RecordManager:
        return RecordManager(self.data.record_manager, self.store_key, collection)

    def lock(self, collection: str) -> FileLock:
        """One load job per (store, collection) at a time."""
        return job_lock(self.data.job_lock(self.store_key, collection), collection)


# -- work items flowing through the pipeline ------------------------------------------------------

@dataclass(slots=True)
class _Planned:
    """A document to write: its chunks and what the record manager knew of it."""

    doc: Document
    content_hash: str
    chunk_ids: list[str]
    chunk_texts: list[str]
    chunk_metadata: list[Metadata]
    previous: Entry | None
    kind: Literal["added", "updated", "restored"]


@dataclass(slots=True)
class _Batch:
    planned: list[_Planned]
    unchanged: int
    rejected: int
    vectors: Any = None


@dataclass(slots=True)
class _Unread:
    """What the source holds but the job could not read, so ``--cleanup full`` must not delete it.

    Only documents read whole count as seen; a cleanup deletes what was neither seen nor covered
    here. A reject that names no document (a row too broken to find its id) covers everything: the
    job cannot tell a row that vanished from that one.
    """

    ids: set[str] = field(default_factory=set)
    subtrees: list[str] = field(default_factory=list)  # id prefixes of folders that could not be listed
    anonymous: int = 0

    def add(self, reject: Reject) -> None:
        if reject.doc_id is not None:
            self.ids.add(reject.doc_id)
        elif reject.subtree is not None:
            self.subtrees.append(reject.subtree)
        else:
            self.anonymous += 1

    def covers(self, doc_id: str) -> bool:
        return self.anonymous > 0 or doc_id in self.ids or doc_id.startswith(tuple(self.subtrees))


# The work items and the record manager's roles as another engine (vectorseam.ingest.ray_engine)
# carries and provides them between its workers.
PlannedDocument = _Planned
PlannedBatch = _Batch
Unread = _Unread


class EntryLookup(Protocol):
    """The record manager as planning reads it (SQLite locally, PostgreSQL on Ray)."""

    def lookup(self, doc_ids: Sequence[str]) -> dict[str, Entry]: ...


class MarkWriter(Protocol):
    """The record manager as the write stage marks it."""

    def mark_pending(self, marks: Iterable[Mark]) -> None: ...

    def mark_done(self, marks: Iterable[Mark]) -> None: ...


class SourceEntries(Protocol):
    """The record manager as ``--cleanup full`` reads and prunes it."""

    def entries(self, source: str | None = None) -> Iterator[Entry]: ...

    def forget(self, doc_ids: Sequence[str]) -> None: ...


def _untagged(stored: Metadata, source: Metadata) -> Metadata:
    """Stored metadata without the duplicate screen's tags (unless the source row has such fields)."""
    return {k: v for k, v in stored.items() if k not in SCREEN_KEYS or k in source}


def content_hash(doc: Document, chunking: ChunkSpec | None) -> str:
    payload = json.dumps(
        [doc.text, doc.metadata, [chunking.max_tokens, chunking.overlap] if chunking else None],
        sort_keys=True, ensure_ascii=False, separators=(",", ":"),
    )
    return hashlib.sha256(payload.encode("utf-8", "surrogatepass")).hexdigest()


class _Stop(Exception):
    """Another stage failed; this one stops quietly and the first error is raised."""


class IngestJob:
    def __init__(
        self,
        store: VectorStore,
        embedder: Embedder,
        collection: str,
        state: JobState,
        options: IngestOptions | None = None,
        progress: Progress | None = None,
    ) -> None:
        self.store = store
        self.embedder = embedder
        self.collection = collection
        self.state = state
        self.options = options or IngestOptions()
        self.progress = progress
        self.report = IngestReport(collection=collection)
        limit = embedder.max_tokens
        if self.options.chunk_tokens == 0:
            self.chunking: ChunkSpec | None = None
        else:
            size = self.options.chunk_tokens or limit
            if size > limit:
                raise ValidationError(f"chunk size {size} is over the embedder's limit of {limit} tokens")
            self.chunking = ChunkSpec(size, min(self.options.chunk_overlap, size // 2 - 1))
        self._error: BaseException | None = None
        self._stop = threading.Event()
        self._pending_done: list[Mark] = []
        self._last_checkpoint = time.monotonic()
        self._mark_cost = 0.0  # seconds the record manager's last done mark took
        self._source_key = ""
        self._unread = _Unread()
        self._strict_error: ValidationError | None = None
        self._screen: DuplicateScreen | None = None
        self._rejects_file: IO[str] | None = None
        self._rejects_lock = threading.Lock()  # the read and write stages both write the rejects file

    # -- helpers ----------------------------------------------------------------------------------
    def _retry(self, what: str, fn: Callable[[], T]) -> T:
        return call_with_retry(f"{what} (collection {self.collection!r})", fn, self.options.retry)

    def _chunks(self, doc: Document) -> tuple[list[str], list[str], list[Metadata]] | Reject:
        texts = [doc.text] if self.chunking is None else chunk_text(doc.text, self.chunking, self.embedder.token_spans)
        if len(texts) == 1:
            return [doc.id], texts, [doc.metadata]
        clash = [k for k in CHUNK_KEYS if k in doc.metadata]
        if clash:
            return Reject(doc.origin, f"the text is split into {len(texts)} chunks, whose metadata keys "
                                      f"{', '.join(map(repr, clash))} the row already uses; rename that field")
        ids = [f"{doc.id}#{i}" for i in range(len(texts))]
        if len(ids[-1]) > MAX_ID_LENGTH:
            return Reject(doc.origin, f"chunk id {ids[-1][:40]!r}... is over {MAX_ID_LENGTH} characters")
        metas: list[Metadata] = [{**doc.metadata, "source_id": doc.id, "chunk": i, "chunks": len(texts)}
                                 for i in range(len(texts))]
        return ids, texts, metas

    # -- the stages as another engine runs them on its own workers (vectorseam.ingest.ray_engine) -
    def plan(self, docs: list[Document], rm: EntryLookup, rejects: list[Reject]) -> PlannedBatch:
        """Stage 1 for one batch: hash, skip the unchanged (after checking the store has them), chunk."""
        return self._plan(docs, rm, rejects)

    def write(self, batch: PlannedBatch, rm: MarkWriter, source_key: str) -> None:
        """Stage 3 for one embedded batch of ``source_key``: written, durable and marked done on return."""
        self._source_key = source_key
        self._write(batch, rm)
        self._checkpoint(rm, force=True)

    def check_empty_source(self, rm: SourceEntries, source_key: str, documents: int) -> None:
        """Refuse ``--cleanup full`` of a source that yielded no document while records of it are stored.

        An unmounted volume (an empty directory) or a truncated file looks exactly like a source whose
        documents were all removed, and the cleanup would delete them all. Nothing is deleted unless
        ``allow_empty_source`` says the source really is empty now.
        """
        if documents or self.options.allow_empty_source:
            return
        tracked = sum(1 for _ in rm.entries(source_key))
        if tracked:
            raise ValidationError(
                f"{source_key}: the source yielded no documents, but {tracked} of its documents are stored in "
                f"collection {self.collection!r}, and --cleanup full would delete them all; nothing was deleted. "
                "Check that the source is there (a mounted volume, a whole file); if it is empty on purpose, run "
                "again with --allow-empty-source")

    def cleanup(self, rm: SourceEntries, source_key: str, seen: set[str], unread: Unread) -> None:
        """``--cleanup full`` of one source: what it no longer holds (not in ``seen``, not ``unread``)."""
        self._source_key, self._unread = source_key, unread
        self._cleanup(rm, seen)

    # -- stage 1: read and plan -------------------------------------------------------------------
    def _plan(self, docs: list[Document], rm: EntryLookup, rejects: list[Reject]) -> _Batch:
        hashes = [content_hash(d, self.chunking) for d in docs]
        known = rm.lookup([d.id for d in docs])
        batch = _Batch([], 0, 0)
        unchanged: list[tuple[Document, str, Entry]] = []
        for doc, h in zip(docs, hashes, strict=True):
            entry = known.get(doc.id)
            if entry is not None and entry.done and entry.content_hash == h:
                unchanged.append((doc, h, entry))
            else:
                self._add_plan(batch, doc, h, entry, "added" if entry is None else "updated", rejects)
        if unchanged:
            missing = self._missing(unchanged)
            batch.unchanged = len(unchanged) - len(missing)
            for doc, h, entry in unchanged:
                if doc.id in missing:
                    self._add_plan(batch, doc, h, entry, "restored", rejects)
        return batch

    def _add_plan(self, batch: _Batch, doc: Document, h: str, entry: Entry | None,
                  kind: Literal["added", "updated", "restored"], rejects: list[Reject]) -> None:
        chunks = self._chunks(doc)
        if isinstance(chunks, Reject):
            rejects.append(chunks)
            return
        ids, texts, metas = chunks
        batch.planned.append(_Planned(doc, h, ids, texts, metas, entry, kind))

    def _missing(self, unchanged: list[tuple[Document, str, Entry]]) -> set[str]:
        """Unchanged documents whose chunks are not (all) in the store; with --verify, also those whose
        stored text or metadata differ from what the source would write."""
        ids = [cid for _, _, e in unchanged for cid in e.chunk_ids]
        found = self._retry("checking records in the store",
                            lambda: self.store.fetch(self.collection, ids, include_vectors=False)) if ids else []
        stored = {r.id: r for r in found}
        missing: set[str] = set()
        for doc, _, entry in unchanged:
            if not all(cid in stored for cid in entry.chunk_ids):
                missing.add(doc.id)
            elif self.options.verify:
                # Chunks dropped as duplicates are not in the entry (on purpose); the rest must match
                # what the source writes, apart from duplicate tags the screen added.
                chunks = self._chunks(doc)
                if isinstance(chunks, Reject) or not set(entry.chunk_ids) <= set(chunks[0]) or any(
                    stored[cid].text != text or _untagged(stored[cid].metadata, meta) != meta
                    for cid, text, meta in zip(*chunks, strict=True) if cid in entry.chunk_ids
                ):
                    missing.add(doc.id)
        return missing

    def _read(self, items: Iterable[Document | Reject], rm: RecordManager, out: queue.Queue[_Batch | None],
              seen: set[str]) -> None:
        docs: list[Document] = []
        rejects: list[Reject] = []

        def emit() -> None:
            batch = self._plan(docs, rm, rejects) if docs else _Batch([], 0, 0)
            batch.rejected = len(rejects)
            for reject in rejects:
                if self.options.strict and self._strict_error is None:
                    self._strict_error = ValidationError(
                        f"{reject} (stopped at the first bad row because of --strict; the rows before it were "
                        "written; fix it, or run without --strict to collect bad rows in a rejects file)")
                if len(self.report.rejects) < MAX_REJECTS_KEPT:
                    self.report.rejects.append(reject)
            self._write_rejects([str(r) for r in rejects])
            docs.clear()
            rejects.clear()
            self._put(out, batch)

        for item in items:
            if self._stop.is_set():
                raise _Stop
            if isinstance(item, Reject):
                rejects.append(item)
                self._unread.add(item)
                if self.options.strict:
                    emit()
                    return
            else:
                seen.add(item.id)
                docs.append(item)
                if len(docs) >= self.options.batch_size:
                    emit()
        if docs or rejects:
            emit()

    def _write_rejects(self, lines: Sequence[str]) -> None:
        if self._rejects_file is None or not lines:
            return
        with self._rejects_lock:
            for line in lines:
                self._rejects_file.write(f"{line}\n")
            self._rejects_file.flush()

    def _put(self, q: queue.Queue[_Batch | None], item: _Batch | None) -> None:
        while True:
            if self._stop.is_set():
                raise _Stop
            try:
                q.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def _get(self, q: queue.Queue[_Batch | None]) -> _Batch | None:
        while True:
            if self._stop.is_set():
                raise _Stop
            try:
                return q.get(timeout=0.1)
            except queue.Empty:
                continue

    # -- stage 2: embed ---------------------------------------------------------------------------
    def _embed_stage(self, embedder: CachingEmbedder, inq: queue.Queue[_Batch | None],
                     outq: queue.Queue[_Batch | None]) -> None:
        while (batch := self._get(inq)) is not None:
            texts = [t for p in batch.planned for t in p.chunk_texts]
            batch.vectors = embedder.embed(texts) if texts else None
            self.report.embedded, self.report.cached = embedder.embedded, embedder.cached
            self._put(outq, batch)
        self._put(outq, None)

    # -- stage 3: write ---------------------------------------------------------------------------
    def _write_stage(self, rm: RecordManager, inq: queue.Queue[_Batch | None]) -> None:
        while (batch := self._get(inq)) is not None:
            self._write(batch, rm)
        self._checkpoint(rm, force=True)

    def _screen_batch(self, batch: _Batch) -> list[list[Record]]:
        """Each planned document's records to write, after the duplicate screen (if any)."""
        per_doc: list[list[Record]] = []
        row = 0
        for p in batch.planned:
            recs = []
            for cid, text, meta in zip(p.chunk_ids, p.chunk_texts, p.chunk_metadata, strict=True):
                recs.append(Record(cid, batch.vectors[row], text, meta))
                row += 1
            per_doc.append(recs)
        if self._screen is None or row == 0:
            return per_doc
        docs = [Document(r.id, r.text or "", dict(r.metadata), p.doc.origin)
                for p, recs in zip(batch.planned, per_doc, strict=True) for r in recs]
        kept_docs, _ = self._screen(docs, batch.vectors)
        notes, self._screen.notes[:] = list(self._screen.notes), []
        self.report.duplicates += len(notes)
        room = MAX_REJECTS_KEPT - len(self.report.duplicate_notes)
        self.report.duplicate_notes.extend(notes[:max(room, 0)])
        if self.options.duplicates == "drop":
            self._write_rejects([str(n) for n in notes])
            kept = {id(d) for d in kept_docs}  # the screen returns kept documents as they came
            flat = iter(id(d) in kept for d in docs)
            return [[r for r in recs if next(flat)] for recs in per_doc]
        tagged = iter(kept_docs)  # tag mode keeps every document, in order
        return [[Record(r.id, r.vector, r.text, next(tagged).metadata) for r in recs] for recs in per_doc]

    def _write(self, batch: _Batch, rm: MarkWriter) -> None:
        if batch.planned:
            marks_pending: list[Mark] = []
            marks_done: list[Mark] = []
            stale: list[str] = []
            records: list[Record] = []
            kinds: list[str] = []
            for p, recs in zip(batch.planned, self._screen_batch(batch), strict=True):
                written = [r.id for r in recs]  # a dropped duplicate is left out: recorded as handled
                new_ids = set(written)
                before = p.previous.chunk_ids if p.previous is not None else ()
                stale.extend(cid for cid in before if cid not in new_ids)
                union = list(dict.fromkeys([*before, *written]))
                marks_pending.append(Mark(p.doc.id, self._source_key, p.content_hash, union))
                marks_done.append(Mark(p.doc.id, self._source_key, p.content_hash, written))
                records.extend(recs)
                kinds.append(p.kind if recs else "dropped")
            rm.mark_pending(marks_pending)
            if records:
                self._retry("writing records", lambda: self.store.upsert(self.collection, records))
            if stale:
                self._retry("deleting replaced chunks", lambda: self.store.delete(self.collection, ids=stale))
            self._pending_done.extend(marks_done)
            self._checkpoint(rm)
            for kind in kinds:
                setattr(self.report, kind, getattr(self.report, kind) + 1)
            self.report.chunks_written += len(records)
            self.report.chunks_deleted += len(stale)
        self.report.unchanged += batch.unchanged
        self.report.rejected += batch.rejected
        if self.progress is not None:
            self.progress(self.report)

    def _checkpoint(self, rm: MarkWriter, force: bool = False) -> None:
        """Tell the record manager what the store holds durably (its calls returned)."""
        if not self._pending_done and not force:
            return
        interval = self.options.checkpoint_seconds
        if interval is None:
            interval = CHECKPOINT_COST_RATIO * self._mark_cost
        if not force and time.monotonic() - self._last_checkpoint < interval:
            return
        started = time.monotonic()
        rm.mark_done(self._pending_done)
        self._mark_cost = time.monotonic() - started
        self._pending_done = []
        self._last_checkpoint = time.monotonic()

    # -- cleanup and verify -----------------------------------------------------------------------
    def _cleanup(self, rm: SourceEntries, seen: set[str]) -> None:
        """Delete the records of documents the source no longer has, and only those: a document
        whose row, file or folder could not be read is kept (and counted in ``kept``)."""
        stale = []
        for entry in rm.entries(self._source_key):
            if entry.doc_id in seen:
                continue
            if self._unread.covers(entry.doc_id):
                self.report.kept += 1
            else:
                stale.append(entry)
        for start in range(0, len(stale), 500):
            part = stale[start : start + 500]
            ids = [cid for e in part for cid in e.chunk_ids]
            if ids:
                self._retry("deleting records whose source vanished",
                            lambda ids=ids: self.store.delete(self.collection, ids=ids))  # type: ignore[misc]
            rm.forget([e.doc_id for e in part])
            self.report.deleted += len(part)
            self.report.chunks_deleted += len(ids)

    def _verify(self, rm: RecordManager) -> None:
        """Reconcile the store with the record manager over the whole collection.

        Documents of this source were already checked chunk by chunk while reading. Here: store
        records no entry accounts for are counted and left alone, with or without ``--cleanup full``
        (the API, another tool or another store's migration wrote them, and a cleanup deletes only
        what a load job wrote), and entries of other sources whose chunks are gone are forgotten, so
        the next ingest of that source writes them again instead of trusting them.
        """
        tracked: dict[str, str] = {}
        for entry in rm.entries():
            for cid in entry.chunk_ids:
                tracked[cid] = entry.doc_id
        present: set[str] = set()
        untracked: list[str] = []
        for page in self._retry("scanning the collection",
                                lambda: list(self.store.scan(self.collection, 1000, include_vectors=False))):
            for rec in page:
                present.add(rec.id)
                if rec.id not in tracked:
                    untracked.append(rec.id)
        self.report.untracked = len(untracked)
        lost = sorted({doc for cid, doc in tracked.items() if cid not in present})
        if lost:
            rm.forget(lost)

    # -- run --------------------------------------------------------------------------------------
    def run(self, source: Source) -> IngestReport:
        source.check()
        self._source_key = source.key
        started = time.monotonic()
        self.report.expected = source.estimate()
        opts = self.options
        with self.state.lock(self.collection):
            self._retry("creating the collection",
                        lambda: ensure_collection_for(self.store, self.collection, self.embedder))
            rm = self.state.record_manager(self.collection)
            cache_db = EmbeddingCache(self.state.embed_cache) if self.state.embed_cache else None
            seen: set[str] = set()
            try:
                self._pipeline(source, rm, CachingEmbedder(self.embedder, cache_db), seen)
                if opts.cleanup == "full":
                    self.check_empty_source(rm, self._source_key, len(seen))
                    self._cleanup(rm, seen)
                if opts.verify:
                    self._verify(rm)
            finally:
                rm.close()
                if cache_db is not None:
                    cache_db.close()
        self.report.seconds = time.monotonic() - started
        if self.progress is not None:
            self.progress(self.report)
        return self.report

    def _pipeline(self, source: Source, rm: RecordManager, embedder: CachingEmbedder, seen: set[str]) -> None:
        """The three stages over the whole source: read here, embed and write on threads of their own."""
        opts = self.options
        to_embed: queue.Queue[_Batch | None] = queue.Queue(opts.queue_depth)
        to_write: queue.Queue[_Batch | None] = queue.Queue(opts.queue_depth)
        rejects_cm = (open(opts.rejects_path, "w", encoding="utf-8", errors="backslashreplace",  # noqa: SIM115
                           opener=private_file) if opts.rejects_path is not None else contextlib.nullcontext())
        # A store that builds its index faster over all rows at once (pgvector's HNSW) defers it
        # while the job fills an empty collection.
        bulk_cm: contextlib.AbstractContextManager[None] = (
            self.store.bulk_load(self.collection) if isinstance(self.store, BulkLoading)
            else contextlib.nullcontext())
        with rejects_cm as rejects_file, bulk_cm:
            self._rejects_file = rejects_file
            if opts.duplicates != "off":
                self._screen = DuplicateScreen(self.store, self.collection, opts.duplicate_threshold,
                                               opts.duplicates)
            threads = [
                threading.Thread(target=self._guard, args=(self._embed_stage, embedder, to_embed, to_write),
                                 name="ingest-embed", daemon=True),
                threading.Thread(target=self._guard, args=(self._write_stage, rm, to_write),
                                 name="ingest-write", daemon=True),
            ]
            for t in threads:
                t.start()
            try:
                self._read(source.documents(), rm, to_embed, seen)
                self._put(to_embed, None)
            except _Stop:
                pass
            except BaseException as exc:
                self._fail(exc)
            for t in threads:
                t.join()
            if self._error is not None:
                raise self._error
            if self._strict_error is not None:
                raise self._strict_error

    def _fail(self, exc: BaseException) -> None:
        if self._error is None:
            self._error = exc
        self._stop.set()

    def _guard(self, fn: Callable[..., None], *args: Any) -> None:
        try:
            fn(*args)
        except _Stop:
            pass
        except BaseException as exc:
            self._fail(exc)


def private_file(path: str, flags: int) -> int:
    """``open``'s opener for the rejects file: created 0600, since it quotes rows of a tenant's data; an
    older file is made 0600 too (a regular file only: ``--rejects-file /dev/stderr`` stays as it is)."""
    fd = os.open(path, flags, FILE_MODE)
    if stat.S_ISREG(os.fstat(fd).st_mode):
        with contextlib.suppress(PermissionError):  # another user's file: left as its owner made it
            os.fchmod(fd, FILE_MODE)
    return fd


def ingest_source(
    store: VectorStore,
    embedder: Embedder,
    collection: str,
    source: Source,
    state: JobState | None = None,
    options: IngestOptions | None = None,
    progress: Progress | None = None,
) -> IngestReport:
    """Run the load job. Without ``state`` the run keeps no record manager or cache between runs (a
    throw-away one is used), so every document counts as added; pass one for incremental re-runs."""
    if state is None:
        with tempfile.TemporaryDirectory(prefix="vectorseam-ingest-") as tmp:
            ephemeral = JobState(DataDir.at(tmp), "ephemeral", None)
            return IngestJob(store, embedder, collection, ephemeral, options, progress).run(source)
    return IngestJob(store, embedder, collection, state, options, progress).run(source)


def ingest_file(
    store: VectorStore,
    embedder: Embedder,
    collection: str,
    path: Path,
    spec: RowSpec | None = None,
    state: JobState | None = None,
    options: IngestOptions | None = None,
    progress: Progress | None = None,
) -> IngestReport:
    """Ingest a row file (.csv/.tsv/.jsonl/.parquet) or a directory of documents."""
    return ingest_source(store, embedder, collection, Source(Path(path), spec or RowSpec()), state, options,
                         progress)


def iter_batches(items: Iterable[T], size: int) -> Iterator[list[T]]:
    batch: list[T] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


__all__: Sequence[str] = [
    "IngestJob", "IngestReport", "JobState", "Progress", "content_hash", "ingest_file", "ingest_source",
]
