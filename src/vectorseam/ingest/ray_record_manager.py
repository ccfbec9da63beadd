"""The record manager of the Ray engine: the local job's record manager, kept in PostgreSQL.

Ray workers may run on many machines, so the record manager must be one service they all reach.
It keeps the local record manager's rows and its crash-safety rule (an entry is ``pending`` with
every chunk id that may be in the store before the store is written, ``done`` only after the
write is durable: see :mod:`vectorseam.ingest.record_manager`), and adds what many processes
writing at once need:

* **Claims.** Every document a run reads is claimed with the run's id before it is planned
  (:meth:`PgRecordManager.claim`): that is how ``--cleanup full`` knows which documents the run saw
  without the driver holding millions of ids, and how a document id found in two sources of one
  run is caught (the second is rejected, as a repeated id within one file is).
* **A job lock** (a session advisory lock held by the driver): one run per (store, collection) at a
  time; PostgreSQL releases it when the driver's connection ends, however the driver died.
* **A write fence.** When a driver is killed, Ray stops its workers a moment later, not at once; a
  writer of the dead run could otherwise write an old version after the next run wrote the new one.
  Workers hold a shared advisory lock around every claim and every batch they write and check that
  their run is still the current one; a new run takes the lock exclusively (waiting for batches in
  flight, which are bounded) before it makes itself current. A worker of a superseded run then stops
  with :class:`SupersededError` before touching anything.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from vectorseam.errors import StoreUnavailableError, VectorseamError
from vectorseam.ingest.record_manager import Entry, Mark

DEFAULT_SCHEMA = "vectorseam_ingest"
# Advisory lock namespaces (the first key of PostgreSQL's two-key advisory locks).
_JOB_LOCK = 0x76730001
_FENCE_LOCK = 0x76730002
_PLACEHOLDER = ""  # content hash of a claimed document not yet written (treated as absent)


class SupersededError(VectorseamError):
    """A worker of a run that a newer run of the same (store, collection) replaced."""


def _lock_key(store: str, collection: str) -> int:
    digest = hashlib.sha256(f"{store}\x00{collection}".encode("utf-8", "surrogatepass")).digest()
    return int.from_bytes(digest[:4], "big", signed=True)


def _quote_ident(name: str) -> str:
    if not name or len(name) > 63 or "\x00" in name:
        raise VectorseamError(f"invalid record manager schema name {name!r}")
    return '"' + name.replace('"', '""') + '"'


class PgRecordManager:
    """Record manager rows of one (store, collection) in PostgreSQL; one connection per instance.

    The methods the load job calls (:meth:`lookup`, :meth:`mark_pending`, :meth:`mark_done`,
    :meth:`forget`, :meth:`entries`) behave as those of the SQLite
    :class:`~vectorseam.ingest.record_manager.RecordManager`, so the job's own planning, write and
    cleanup code runs unchanged on Ray workers.
    """

    def __init__(self, dsn: str, store: str, collection: str, schema: str = DEFAULT_SCHEMA) -> None:
        import psycopg

        self.store = store
        self.collection = collection
        self.schema = schema
        self._q = _quote_ident(schema)
        self._key = _lock_key(store, collection)
        self._lock = threading.Lock()
        try:
            self._conn = psycopg.connect(dsn, autocommit=True, connect_timeout=30)
        except psycopg.OperationalError as exc:
            raise StoreUnavailableError(f"cannot reach the record manager's PostgreSQL: {exc}") from exc

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> PgRecordManager:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _exec(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        import psycopg

        with self._lock:
            try:
                cur = self._conn.execute(sql.replace("{s}", self._q), params)
                return cur.fetchall() if cur.description is not None else []
            except psycopg.OperationalError as exc:
                raise StoreUnavailableError(f"the record manager's PostgreSQL failed: {exc}") from exc

    # -- setup and the locks (driver) ----------------------------------------------------------------
    def create_schema(self) -> None:
        """Tables and index, once per run by the driver (workers never run DDL concurrently)."""
        self._exec(f"CREATE SCHEMA IF NOT EXISTS {self._q}")
        self._exec("""
            CREATE TABLE IF NOT EXISTS {s}.records (
                store text NOT NULL, collection text NOT NULL, doc_id text NOT NULL, source text NOT NULL,
                content_hash text NOT NULL, chunk_ids jsonb NOT NULL,
                state text NOT NULL CHECK (state IN ('pending', 'done')), run text NOT NULL,
                updated_at timestamptz NOT NULL DEFAULT now(),
                PRIMARY KEY (store, collection, doc_id))""")
        self._exec("CREATE INDEX IF NOT EXISTS records_by_source ON {s}.records (store, collection, source, run)")
        self._exec("""
            CREATE TABLE IF NOT EXISTS {s}.runs (
                store text NOT NULL, collection text NOT NULL, run text NOT NULL,
                started_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (store, collection))""")

    def try_job_lock(self) -> bool:
        """Take the job lock (held until :meth:`release_job_lock` or the connection ends)."""
        rows = self._exec("SELECT pg_try_advisory_lock(%s, %s)", (_JOB_LOCK, self._key))
        return bool(rows[0][0])

    def release_job_lock(self) -> None:
        self._exec("SELECT pg_advisory_unlock(%s, %s)", (_JOB_LOCK, self._key))

    def begin_run(self, run: str) -> None:
        """Make ``run`` the current run, after every batch of an earlier run still in flight is done."""
        self._exec("SELECT pg_advisory_lock(%s, %s)", (_FENCE_LOCK, self._key))
        try:
            self._exec("INSERT INTO {s}.runs (store, collection, run) VALUES (%s, %s, %s) ON CONFLICT "
                       "(store, collection) DO UPDATE SET run = EXCLUDED.run, started_at = now()",
                       (self.store, self.collection, run))
        finally:
            self._exec("SELECT pg_advisory_unlock(%s, %s)", (_FENCE_LOCK, self._key))

    # -- the fence (workers) -------------------------------------------------------------------------
    @contextmanager
    def fenced(self, run: str) -> Iterator[None]:
        """Hold the write fence for one batch; raise :class:`SupersededError` if ``run`` is no longer current."""
        self._exec("SELECT pg_advisory_lock_shared(%s, %s)", (_FENCE_LOCK, self._key))
        try:
            rows = self._exec("SELECT run FROM {s}.runs WHERE store = %s AND collection = %s",
                              (self.store, self.collection))
            if not rows or rows[0][0] != run:
                raise SupersededError(f"run {run} of collection {self.collection!r} was superseded by a newer run")
            yield
        finally:
            self._exec("SELECT pg_advisory_unlock_shared(%s, %s)", (_FENCE_LOCK, self._key))

    # -- claims --------------------------------------------------------------------------------------
    def claim(self, run: str, source: str, doc_ids: Sequence[str]) -> tuple[dict[str, Entry], dict[str, str]]:
        """Mark ``doc_ids`` as read by ``run`` from ``source``; call inside :meth:`fenced`.

        Returns the entries the documents had (a document claimed but never written counts as
        absent) and, separately, the ids another source of this same run claimed first (mapped to
        that source): those are not claimed again.
        """
        ids = list(dict.fromkeys(doc_ids))
        if not ids:
            return {}, {}
        import psycopg

        try:
            return self._claim(run, source, ids)
        except psycopg.OperationalError as exc:
            raise StoreUnavailableError(f"the record manager's PostgreSQL failed: {exc}") from exc

    def _claim(self, run: str, source: str, ids: list[str]) -> tuple[dict[str, Entry], dict[str, str]]:
        before: dict[str, Entry] = {}
        clashes: dict[str, str] = {}
        with self._lock, self._conn.transaction():
            rows = self._conn.execute(
                "SELECT doc_id, source, content_hash, chunk_ids, state, run FROM {s}.records WHERE store = %s "
                "AND collection = %s AND doc_id = ANY(%s) FOR UPDATE".replace("{s}", self._q),
                (self.store, self.collection, ids)).fetchall()
            for doc_id, src, chash, chunk_ids, state, claimed_by in rows:
                if claimed_by == run and src != source:
                    clashes[doc_id] = src
                elif chash != _PLACEHOLDER:
                    before[doc_id] = Entry(doc_id, src, chash, tuple(chunk_ids), state)
            mine = [i for i in ids if i not in clashes]
            if mine:
                self._conn.execute(
                    "INSERT INTO {s}.records (store, collection, doc_id, source, content_hash, chunk_ids, state, run) "
                    "SELECT %s, %s, d, %s, %s, '[]'::jsonb, 'pending', %s FROM unnest(%s::text[]) AS d "
                    "ON CONFLICT (store, collection, doc_id) DO UPDATE SET source = EXCLUDED.source, "
                    "run = EXCLUDED.run".replace("{s}", self._q),
                    (self.store, self.collection, source, _PLACEHOLDER, run, mine))
        return before, clashes

    # -- the record manager's interface, as the load job uses it --------------------------------------
    def lookup(self, doc_ids: Sequence[str]) -> dict[str, Entry]:
        rows = self._exec(
            "SELECT doc_id, source, content_hash, chunk_ids, state FROM {s}.records WHERE store = %s AND "
            "collection = %s AND doc_id = ANY(%s) AND content_hash <> ''",
            (self.store, self.collection, list(doc_ids)))
        return {r[0]: Entry(r[0], r[1], r[2], tuple(r[3]), r[4]) for r in rows}

    def _write(self, marks: Iterable[Mark], state: str) -> None:
        batch = list(marks)
        if not batch:
            return
        self._exec(
            "INSERT INTO {s}.records (store, collection, doc_id, source, content_hash, chunk_ids, state, run) "
            "SELECT %s, %s, m.doc_id, m.source, m.content_hash, m.chunk_ids::jsonb, %s, '' FROM "
            "unnest(%s::text[], %s::text[], %s::text[], %s::text[]) AS m(doc_id, source, content_hash, chunk_ids) "
            "ON CONFLICT (store, collection, doc_id) DO UPDATE SET source = EXCLUDED.source, "
            "content_hash = EXCLUDED.content_hash, chunk_ids = EXCLUDED.chunk_ids, state = EXCLUDED.state, "
            "updated_at = now()",
            (self.store, self.collection, state, [m.doc_id for m in batch], [m.source for m in batch],
             [m.content_hash for m in batch], [json.dumps(list(m.chunk_ids)) for m in batch]))

    def mark_pending(self, marks: Iterable[Mark]) -> None:
        """Before a store write: the ids listed may be in the store, whatever happens next."""
        self._write(marks, "pending")

    def mark_done(self, marks: Iterable[Mark]) -> None:
        """After the store write is durable: the store holds exactly these chunk ids for the document."""
        self._write(marks, "done")

    def forget(self, doc_ids: Sequence[str]) -> None:
        self._exec("DELETE FROM {s}.records WHERE store = %s AND collection = %s AND doc_id = ANY(%s)",
                   (self.store, self.collection, list(doc_ids)))

    def entries(self, source: str | None = None) -> Iterator[Entry]:
        """Every entry of this collection (of one source, if given), claims never written left out."""
        yield from self._entries(source, None)

    def unseen_sources(self, scope: str, run: str) -> list[str]:
        """Source keys of ``scope`` (a source key, or a glob whose files are keyed ``<glob>|<file>``)
        holding entries ``run`` did not claim."""
        rows = self._exec("SELECT DISTINCT source FROM {s}.records WHERE store = %s AND collection = %s AND "
                          "(source = %s OR left(source, %s) = %s) AND run <> %s ORDER BY source",
                          (self.store, self.collection, scope, len(scope) + 1, f"{scope}|", run))
        return [r[0] for r in rows]

    def unseen(self, source: str, run: str) -> Iterator[Entry]:
        """Entries of ``source`` that ``run`` did not claim: what ``--cleanup full`` considers deleting.

        Claims of an earlier, killed run for documents it never wrote (and this run did not see) are
        dropped here: they hold no chunk, so there is nothing to delete or to count."""
        self._exec("DELETE FROM {s}.records WHERE store = %s AND collection = %s AND source = %s AND run <> %s "
                   "AND content_hash = ''", (self.store, self.collection, source, run))
        yield from self._entries(source, run)

    def _entries(self, source: str | None, not_run: str | None) -> Iterator[Entry]:
        sql = ("SELECT doc_id, source, content_hash, chunk_ids, state FROM {s}.records "
               "WHERE store = %s AND collection = %s AND content_hash <> ''")
        params: list[Any] = [self.store, self.collection]
        if source is not None:
            sql += " AND source = %s"
            params.append(source)
        if not_run is not None:
            sql += " AND run <> %s"
            params.append(not_run)
        for r in self._exec(sql + " ORDER BY doc_id", params):
            yield Entry(r[0], r[1], r[2], tuple(r[3]), r[4])

    def drop(self) -> None:
        self._exec("DELETE FROM {s}.records WHERE store = %s AND collection = %s", (self.store, self.collection))


class UnseenEntries:
    """The record manager as the job's cleanup sees it on Ray: only entries this run did not claim.

    The local job's cleanup skips the ids it saw in a set; on Ray the claims in PostgreSQL are that set.
    """

    def __init__(self, rm: PgRecordManager, run: str) -> None:
        self.rm = rm
        self.run = run

    def entries(self, source: str | None = None) -> Iterator[Entry]:
        if source is None:
            raise ValueError("the cleanup is always scoped to one source")
        return self.rm.unseen(source, self.run)

    def forget(self, doc_ids: Sequence[str]) -> None:
        self.rm.forget(doc_ids)


__all__ = ["DEFAULT_SCHEMA", "PgRecordManager", "SupersededError", "UnseenEntries"]
