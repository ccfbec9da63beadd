"""The record manager: what each load job wrote, kept beside the collection so re-runs are incremental.

For every source document it holds the content hash and the ids of the chunks written for it, keyed
by (store identity, collection, document id). A re-run skips documents whose hash is unchanged,
rewrites changed ones and deletes the chunks a changed document no longer produces; ``--cleanup
full`` deletes the documents of a source that no longer appear in it.

Crash safety rests on one ordering rule, applied per batch:

1. the entry is marked ``pending`` with every chunk id that *may* be in the store afterwards
   (the old ids and the new ones), and committed;
2. the store is written (upsert, delete of the ids no longer produced) and made durable (a memory
   store flushes);
3. only then is the entry marked ``done`` with the new hash and ids.

A process killed anywhere leaves entries either ``done`` (and then the store holds exactly their
chunks) or ``pending`` (and then the next run rewrites them and deletes any id of the pending set it
no longer produces), so nothing is lost, duplicated or left half-written. The record manager is never
trusted blindly: every run checks that the chunks of "unchanged" documents really are in the store.

SQLite in WAL mode: commits survive a killed process, and readers do not block the writer thread.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vectorseam.durable import FileLock, connect, insert_rows, transaction
from vectorseam.errors import VectorseamError

_SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    store TEXT NOT NULL,
    collection TEXT NOT NULL,
    doc_id TEXT NOT NULL,
    source TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    chunk_ids TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('pending', 'done')),
    updated_at REAL NOT NULL,
    PRIMARY KEY (store, collection, doc_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS records_by_source ON records (store, collection, source);
"""
_CHUNK = 400


@dataclass(frozen=True, slots=True)
class Entry:
    doc_id: str
    source: str
    content_hash: str
    chunk_ids: tuple[str, ...]
    state: str

    @property
    def done(self) -> bool:
        return self.state == "done"


@dataclass(frozen=True, slots=True)
class Mark:
    """One document's new state: its source, content hash and chunk ids."""

    doc_id: str
    source: str
    content_hash: str
    chunk_ids: Sequence[str]


def store_identity(name: str, options: dict[str, Any]) -> str:
    """A stable name for "this store": the memory store by its path, others by a hash of their options.

    Hashing keeps secrets in the options (a DSN's password) out of the state files.
    """
    if name == "memory" and options.get("path"):
        return f"memory:{Path(str(options['path'])).resolve()}"
    digest = hashlib.sha256(json.dumps(options, sort_keys=True, default=str).encode()).hexdigest()[:16]
    return f"{name}:{digest}"


class RecordManager:
    def __init__(self, path: str | Path, store: str, collection: str) -> None:
        self.path = Path(path)
        self.store = store
        self.collection = collection
        self._lock = threading.Lock()
        self._conn = connect(self.path)
        self._conn.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def _entry(self, row: Sequence[Any]) -> Entry:
        return Entry(row[0], row[1], row[2], tuple(json.loads(row[3])), row[4])

    def lookup(self, doc_ids: Sequence[str]) -> dict[str, Entry]:
        out: dict[str, Entry] = {}
        with self._lock:
            for start in range(0, len(doc_ids), _CHUNK):
                part = list(doc_ids[start : start + _CHUNK])
                rows = self._conn.execute(
                    "SELECT doc_id, source, content_hash, chunk_ids, state FROM records "
                    f"WHERE store = ? AND collection = ? AND doc_id IN ({','.join('?' * len(part))})",
                    [self.store, self.collection, *part],
                ).fetchall()
                for row in rows:
                    out[row[0]] = self._entry(row)
        return out

    def _write(self, marks: Iterable[Mark], state: str) -> None:
        now = time.time()
        rows = [(self.store, self.collection, m.doc_id, m.source, m.content_hash, json.dumps(list(m.chunk_ids)),
                 state, now) for m in marks]
        if not rows:
            return
        with self._lock, transaction(self._conn):
            insert_rows(self._conn, "INSERT OR REPLACE INTO records (store, collection, doc_id, source, "
                                    "content_hash, chunk_ids, state, updated_at) VALUES", rows)

    def mark_pending(self, marks: Iterable[Mark]) -> None:
        """Before a store write: the ids listed may be in the store, whatever happens next."""
        self._write(marks, "pending")

    def mark_done(self, marks: Iterable[Mark]) -> None:
        """After the store write is durable: the store holds exactly these chunk ids for the document."""
        self._write(marks, "done")

    def forget(self, doc_ids: Sequence[str]) -> None:
        with self._lock, transaction(self._conn):
            for start in range(0, len(doc_ids), _CHUNK):
                part = list(doc_ids[start : start + _CHUNK])
                self._conn.execute(
                    f"DELETE FROM records WHERE store = ? AND collection = ? AND doc_id IN "
                    f"({','.join('?' * len(part))})",
                    [self.store, self.collection, *part],
                )

    def entries(self, source: str | None = None) -> Iterator[Entry]:
        """Every entry of this collection (of one source, if given)."""
        query = ("SELECT doc_id, source, content_hash, chunk_ids, state FROM records "
                 "WHERE store = ? AND collection = ?")
        params: list[Any] = [self.store, self.collection]
        if source is not None:
            query += " AND source = ?"
            params.append(source)
        with self._lock:
            rows = self._conn.execute(query + " ORDER BY doc_id", params).fetchall()
        for row in rows:
            yield self._entry(row)

    def drop(self) -> None:
        """Forget the whole collection (it was dropped, or is being rebuilt from scratch)."""
        with self._lock:
            self._conn.execute("DELETE FROM records WHERE store = ? AND collection = ?",
                               (self.store, self.collection))


def job_lock(path: Path, collection: str) -> FileLock:
    """One load job per (store, collection) at a time; the kernel releases the lock if the job dies."""
    return FileLock(path, f"collection {collection!r}", busy=lambda pid: VectorseamError(
        f"another job (pid {pid}) is writing to collection {collection!r} of this store; wait for it to finish "
        "(or stop it) and run again"))
