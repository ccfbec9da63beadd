"""The memory store: exact search in RAM, optionally persisted to a directory shared by processes.

Without a ``path`` it is a plain in-process store. With one, every collection's truth is a SQLite
database (:mod:`vectorseam.stores.memory_db`) and the process holds a copy in RAM
(:mod:`vectorseam.stores.memory_collection`) that it keeps current:

* **A write** opens a write transaction (other processes' writers wait for it), first applies what
  other processes committed since this process last looked, then writes its rows and commits. The
  call returns only once the commit is durable, and then every process sees it on its next call.
* **A read** first asks SQLite whether any other connection committed (``PRAGMA data_version``,
  microseconds); only then does it read and apply those changes. A server therefore sees the writes
  of CLI jobs and scripts before its next query, without reloading.
* **Opening** maps the newest snapshot (:mod:`vectorseam.stores.memory_snapshot`), a cache written
  when a process closes after many changes or on :meth:`MemoryStore.compact`, and applies the changes
  committed after it; without a snapshot every row is read from the database. Collections are opened
  on first use, so a command that touches one collection never loads the others.
* **Damage stays local**: a collection whose database fails SQLite's checks or a row's checksum is
  reported by name (:class:`~vectorseam.errors.CollectionDamagedError`) and set aside; every other
  collection keeps serving. ``vectorseam doctor`` checks and recovers it.
* **Older directories** (formats 1-3, a home-made log) are converted on first open, nothing lost
  (:mod:`vectorseam.stores.memory_doctor`).
* **BM25 keyword and hybrid search inside the store** (:mod:`vectorseam.stores.memory_keywords`): an
  index built from the collection's own texts on its first keyword search and kept current by every
  write applied, this process's or another's, so no BM25 sidecar is needed.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt

from vectorseam.contract import (
    check_batch_size,
    check_compatible,
    check_delete_args,
    check_k,
    collection_not_found,
)
from vectorseam.durable import move, private_dir
from vectorseam.errors import CollectionDamagedError, CollectionNotFoundError, ConfigError
from vectorseam.filters import FilterLike, parse_filter
from vectorseam.keywords import check_depth, fuse_hits
from vectorseam.options import StoreOptions, parse_options
from vectorseam.stores import legacy_format3, memory_keywords, memory_search_api, memory_snapshot
from vectorseam.stores.ann import AnnSettings, require_faiss
from vectorseam.stores.memory_collection import Collection
from vectorseam.stores.memory_db import (
    DB_NAME,
    Changes,
    CollectionDB,
    CollectionGone,
    Durability,
    decode_metadata,
    encode_metadata,
)
from vectorseam.stores.quantized import QuantizedSettings
from vectorseam.types import (
    Capabilities,
    CollectionInfo,
    CollectionSpec,
    Hit,
    Record,
    Scalar,
    as_query_matrix,
    ids_list,
    validate_records,
)

_log = logging.getLogger(__name__)
T = TypeVar("T")

# A snapshot is written when a process closes a collection with at least this many changes on top of
# the snapshot it loaded (or wrote): below it, reading the changes from SQLite costs less than writing one.
SNAPSHOT_MIN_CHANGES = 20_000
SNAPSHOT_MIN_SHARE = 0.05


@dataclass
class _Entry:
    """A collection this process knows: its database (None in an unpersisted store), and its rows in
    RAM once loaded, as of change ``seen``; ``version`` is the database's data_version then."""

    name: str
    db: CollectionDB | None
    coll: Collection | None = None
    seen: int = 0
    version: int = -1
    snapshot_seq: int = -1  # the snapshot the RAM copy was loaded from (-1: none)
    changes: int = 0  # changes applied since that snapshot

    def close(self) -> None:
        if self.coll is not None:
            self.coll.close()
        if self.db is not None:
            self.db.close()


class MemoryStore:
    """Exact in-process vector store; pass ``path`` to keep collections on disk, shared by processes.

    With a ``path``, every write is durable and visible to other processes when the call returns,
    and every read first applies what other processes wrote (see the module docstring).
    ``durability="power"`` (default) syncs every commit to the device; ``"process"`` survives a killed
    process but may lose the last commits in a power cut, for faster writes. ``lock_timeout`` bounds
    how long a write waits for another process's write to the same collection.
    """

    def __init__(self, path: str | os.PathLike[str] | None = None, ann: object = None,
                 lock_timeout: float = 60.0, durability: Durability = "power", quantized: object = None) -> None:
        self._path = Path(path) if path is not None else None
        self._ann = AnnSettings.parse(ann)  # None: exact search only (see stores/ann.py)
        self._quantized = QuantizedSettings.parse(quantized)  # None: no int8 scan (see stores/quantized.py)
        if self._ann is not None:
            require_faiss()
        if durability not in ("power", "process"):
            raise ConfigError(f"durability must be 'power' or 'process', got {durability!r}")
        self._durability: Durability = durability
        self._lock_timeout = lock_timeout
        self._lock = threading.RLock()
        self._entries: dict[str, _Entry] = {}
        self._damaged: dict[str, tuple[str, object]] = {}  # name -> (what is wrong, its files' signature)
        self._blobs: dict[str, dict[str, bytes]] = {}  # unpersisted store: blobs per collection
        if self._path is not None:
            private_dir(self._path)

    @property
    def capabilities(self) -> Capabilities:
        return Capabilities(
            name="memory", persistent=self._path is not None,
            approximate=self._ann is not None or self._quantized is not None,  # both may miss a true neighbour
            one_process=None if self._path is not None else "keeps its records in this process's memory (no path)",
            one_machine="keeps its data in data_dir on one machine (its SQLite files need one kernel)",
            native_keywords=True,
        )

    # -- collections ------------------------------------------------------------------------------
    def ensure_collection(self, spec: CollectionSpec) -> CollectionInfo:
        with self._lock:
            entry = self._entry(spec.name, must_exist=False)
            if entry is None:
                entry = self._create(spec)
            check_compatible(self._info(entry), spec)
            return self._info(entry)

    def collections(self) -> list[CollectionInfo]:
        with self._lock:
            if self._path is not None:
                for name in sorted(set(self._names_on_disk()) | set(self._entries)):
                    with contextlib.suppress(CollectionDamagedError):
                        self._entry(name, must_exist=False)
            infos = []
            for _, entry in sorted(self._entries.items()):
                with contextlib.suppress(CollectionDamagedError):
                    infos.append(self._info(entry))
            return infos

    def collection_info(self, collection: str) -> CollectionInfo:
        with self._lock:
            return self._info(self._require(collection))

    def drop_collection(self, collection: str) -> bool:
        with self._lock:
            if self._path is None:
                self._blobs.pop(collection, None)
                entry = self._entries.pop(collection, None)
                return entry is not None
            self._damaged.pop(collection, None)
            directory = self._path / collection
            try:
                entry = self._entry(collection, must_exist=False, quarantine=False)
            except CollectionDamagedError:  # dropping is how a user may give up on a damaged collection
                _remove_dir(directory)
                return True
            if entry is None:
                if (directory / DB_NAME).is_file() or legacy_format3.is_legacy(directory):
                    _remove_dir(directory)  # a drop or creation whose process died half-way
                return False
            assert entry.db is not None
            with contextlib.suppress(CollectionGone):
                entry.db.mark_dropped()
            self._forget(collection)
            _remove_dir(directory)
            return True

    def damaged(self) -> dict[str, str]:
        """The collections this process found damaged, with what is wrong (``vectorseam doctor``)."""
        with self._lock:
            return {name: what for name, (what, _) in self._damaged.items()}

    # -- records ----------------------------------------------------------------------------------
    def upsert(self, collection: str, records: Iterable[Record]) -> int:
        with self._lock:
            entry = self._require(collection, load=True)
            coll = entry.coll
            assert coll is not None
            checked = validate_records(records, coll.dimension)
            if not checked:
                return 0
            with self._writing(entry) as writer:
                coll = entry.coll
                assert coll is not None
                coll.check(checked)
                if writer is not None:
                    writer.upsert(checked)
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
            return coll.search(as_query_matrix(vectors, coll.dimension), k, f, include_vectors, self._ann,
                               self._quantized)

    def fetch(self, collection: str, ids: Sequence[str], include_vectors: bool = True) -> list[Record]:
        wanted = ids_list(ids)
        with self._lock:
            coll = self._get(collection)
            index = coll.index
            return [coll.record(index[i], include_vectors) for i in wanted if i in index]

    def delete(self, collection: str, ids: Sequence[str] | None = None, filter: FilterLike = None) -> int:
        check_delete_args(ids, filter)
        wanted = ids_list(ids) if ids is not None else None
        f = parse_filter(filter) if ids is None else None
        with self._lock:
            entry = self._require(collection, load=True)
            with self._writing(entry) as writer:
                coll = entry.coll
                assert coll is not None
                if wanted is not None:
                    index = coll.index
                    doomed = list(dict.fromkeys(i for i in wanted if i in index))
                else:
                    mask = coll.mask(f)
                    assert mask is not None
                    doomed = [coll.ids[i] for i in np.flatnonzero(mask)]
                if not doomed:
                    return 0
                if writer is not None:
                    writer.delete(doomed)
            return coll.delete_ids(doomed)

    def count(self, collection: str, filter: FilterLike = None) -> int:
        f = parse_filter(filter)
        with self._lock:
            if f is None:
                return self._info(self._require(collection)).count
            coll = self._get(collection)
            mask = coll.mask(f)
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

    def scroll(self, collection: str, limit: int, after: str | None = None, filter: FilterLike = None,
               include_vectors: bool = True) -> tuple[list[Record], str | None]:
        """Keyset paging by id (:class:`~vectorseam.store.Scrollable`; see :mod:`.memory_search_api`)."""
        check_k(limit)
        f = parse_filter(filter)
        with self._lock:
            coll = self._get(collection)
            return memory_search_api.scroll(coll, limit, after, coll.mask(f), include_vectors)

    def facet_counts(self, collection: str, fields: Sequence[str], filter: FilterLike = None,
                     limit: int = 10) -> dict[str, list[tuple[Scalar, int]]]:
        """Value counts from the filter columns (:class:`~vectorseam.store.NativeFacets`, :mod:`.memory_search_api`)."""
        check_k(limit)
        f = parse_filter(filter)
        with self._lock:
            coll = self._get(collection)
            return memory_search_api.facet_counts(coll, fields, coll.mask(f), limit)

    def keyword_search(self, collection: str, query: str, k: int = 10, filter: FilterLike = None) -> list[Hit]:
        """BM25 from the collection's own keyword index (see :mod:`vectorseam.stores.memory_keywords`)."""
        check_k(k)
        f = parse_filter(filter)
        with self._lock:
            return memory_keywords.search(self._get(collection), query, k, f)

    def hybrid_search(self, collection: str, query: str, vector: npt.ArrayLike, k: int = 10, filter: FilterLike = None,
                      rrf_k: float = 60, weights: Sequence[float] = (1.0, 1.0), depth: int = 100) -> list[Hit]:
        """RRF of the dense and the BM25 top ``depth``, both read under one hold of the lock (one snapshot)."""
        check_k(k)
        d = check_depth(depth, k)
        f = parse_filter(filter)
        with self._lock:
            dense = self.query(collection, vector, d, f)[0]
            sparse = self.keyword_search(collection, query, d, f)
        return fuse_hits(dense, sparse, k, rrf_k, weights)

    # -- blobs kept with a collection (CollectionBlobs) --------------------------------------------
    def get_blob(self, collection: str, name: str) -> bytes | None:
        with self._lock:
            entry = self._require(collection)
            if entry.db is None:
                return self._blobs.get(collection, {}).get(name)
            return self._guarded(entry, lambda db: db.get_blob(name))

    def put_blob(self, collection: str, name: str, data: bytes) -> None:
        with self._lock:
            entry = self._require(collection)
            if entry.db is None:
                self._blobs.setdefault(collection, {})[name] = bytes(data)
                return
            self._guarded(entry, lambda db: db.put_blob(name, data))

    def delete_blob(self, collection: str, name: str) -> bool:
        with self._lock:
            entry = self._require(collection)
            if entry.db is None:
                return self._blobs.get(collection, {}).pop(name, None) is not None
            return bool(self._guarded(entry, lambda db: db.delete_blob(name)))

    # -- persistence ------------------------------------------------------------------------------
    def compact(self, collection: str) -> None:
        """Write a snapshot of the collection now (opening it is then fast and shares RAM between
        processes); tombstones older than the previous snapshot are pruned."""
        if self._path is None:
            return
        with self._lock:
            entry = self._require(collection, load=True)
            self._write_snapshot(entry)

    def close(self) -> None:
        """Close the files of a persisted store (snapshotting collections with many new changes); it
        reopens them if used again. (An in-memory store keeps its collections: closing must not lose them.)"""
        with self._lock:
            if self._path is None:
                return
            for name, entry in list(self._entries.items()):
                if entry.coll is not None and self._snapshot_due(entry):
                    try:
                        self._write_snapshot(entry)
                    except (OSError, CollectionDamagedError, CollectionGone) as exc:
                        _log.warning("collection %r: could not write its snapshot on close (%s); nothing is lost, "
                                     "the next open reads the database", name, exc)
                self._forget(name)

    def __enter__(self) -> MemoryStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- finding, opening and following collections -----------------------------------------------
    def _names_on_disk(self) -> list[str]:
        assert self._path is not None
        return sorted(child.name for child in self._path.iterdir()
                      if not child.name.startswith(".") and child.is_dir())

    def _get(self, name: str) -> Collection:
        coll = self._require(name, load=True).coll
        assert coll is not None
        return coll

    def _require(self, name: str, load: bool = False) -> _Entry:
        entry = self._entry(name, must_exist=True, load=load)
        assert entry is not None
        return entry

    def _entry(self, name: str, must_exist: bool, load: bool = False, quarantine: bool = True) -> _Entry | None:
        """The collection as committed now (opened and, with ``load``, in RAM and caught up), or None
        (CollectionNotFoundError with ``must_exist``). A damaged collection raises CollectionDamagedError,
        every time, until it is recovered or dropped."""
        if self._path is None:
            entry = self._entries.get(name)
            if entry is None and must_exist:
                raise collection_not_found("memory", name, self._entries)
            return entry
        if quarantine and name in self._damaged:
            what, signature = self._damaged[name]
            if signature == self._signature(name):
                raise CollectionDamagedError(what)
            del self._damaged[name]  # its files changed (recovered by `vectorseam doctor`): look again
        try:
            for _ in range(10):
                entry = self._entries.get(name)
                if entry is None:
                    entry = self._open(name)
                    if entry is None:
                        if must_exist:
                            raise collection_not_found("memory", name, self._names_on_disk())
                        return None
                    self._entries[name] = entry
                try:
                    if entry.coll is not None:
                        self._follow(entry)
                    elif load:
                        self._load(entry)
                    elif not self._alive(entry):
                        raise CollectionGone(name)
                    return entry
                except CollectionGone:
                    self._forget(name)  # dropped by another process (maybe created again since): look again
        except CollectionDamagedError as exc:
            self._forget(name)
            if quarantine:
                self._quarantine(name, exc)
                _log.error("%s", exc)
            raise
        raise CollectionNotFoundError(f"collection {name!r} kept being dropped and created while being opened; retry")

    def _quarantine(self, name: str, exc: CollectionDamagedError) -> None:
        """Refuse the collection until its files change (``vectorseam doctor`` replaced the database)."""
        self._damaged[name] = (str(exc), self._signature(name))

    def _signature(self, name: str) -> object:
        assert self._path is not None
        try:
            st = (self._path / name / DB_NAME).stat()
        except OSError:
            return None
        return (st.st_ino, st.st_mtime_ns, st.st_size)

    def _alive(self, entry: _Entry) -> bool:
        assert entry.db is not None
        return not entry.db.state()[2]

    def _open(self, name: str) -> _Entry | None:
        assert self._path is not None
        directory = self._path / name
        if legacy_format3.is_legacy(directory) and not (directory / DB_NAME).is_file():
            from vectorseam.stores.memory_doctor import upgrade

            upgrade(directory, self._durability)
        db = CollectionDB.open(directory, self._durability, self._lock_timeout)
        return None if db is None else _Entry(name, db)

    def _create(self, spec: CollectionSpec) -> _Entry:
        if self._path is None:
            entry = _Entry(spec.name, None, Collection(spec))
            self._entries[spec.name] = entry
            return entry
        directory = self._path / spec.name
        for _ in range(10):
            try:
                db = CollectionDB.create(directory, spec, self._durability, self._lock_timeout)
            except CollectionGone:
                _remove_dir(directory)  # a drop whose process died before removing the directory
                continue
            entry = _Entry(spec.name, db)
            self._entries[spec.name] = entry
            self._load(entry)
            return entry
        raise CollectionNotFoundError(f"collection {spec.name!r} kept being dropped while being created; retry")

    def _info(self, entry: _Entry) -> CollectionInfo:
        if entry.coll is not None:
            return entry.coll.info()
        assert entry.db is not None
        spec = entry.db.spec
        count = self._guarded(entry, lambda db: db.state()[1])
        return CollectionInfo(spec.name, spec.dimension, spec.metric, dict(spec.metadata), count)

    def _load(self, entry: _Entry) -> None:
        """Bring the collection into RAM: from its newest sound snapshot plus the changes after it, or
        from every row of the database. (A snapshot is written when the collection is closed with many
        changes on top of the one it was loaded from, never here: the first query must not wait for it.)"""
        db = entry.db
        assert db is not None
        coll = Collection(db.spec)
        version = db.data_version()
        snap = self._read_snapshot(db)
        changes: Changes | None = None
        if snap is not None:
            changes = db.changes_since(snap.seq)
            if changes is not None:
                coll.load(snap.matrix, snap.norms, snap.ids, snap.texts, snap.metas)
                _apply(coll, changes)
                if coll.n != changes.count:  # a change the sequence index did not yield: read everything
                    changes = None
        if changes is not None and snap is not None:
            entry.snapshot_seq, entry.seen, entry.changes = snap.seq, changes.seq, len(changes.upserted) + len(
                changes.deleted)
        else:
            loaded = db.load_all()
            coll = Collection(db.spec)
            coll.load_rows(loaded.matrix, loaded.ids, loaded.texts, loaded.metas)
            entry.snapshot_seq, entry.seen, entry.changes = -1, loaded.seq, len(loaded.ids)
        entry.coll, entry.version = coll, version

    def _read_snapshot(self, db: CollectionDB) -> memory_snapshot.Snapshot | None:
        seq = db.state()[0]
        for path in memory_snapshot.available(db.directory):
            try:
                snap = memory_snapshot.read(path, db.uid, db.spec.dimension, decode_metadata)
            except FileNotFoundError:
                continue  # replaced by a newer one meanwhile
            except memory_snapshot.SnapshotDamaged as exc:
                _log.warning("collection %r: snapshot set aside (%s); reading the database instead", db.name, exc)
                memory_snapshot.set_aside(path)
                continue
            if snap.seq > seq:
                raise CollectionDamagedError(
                    f"collection {db.name!r} is damaged (its database is at change {seq} but a snapshot holds change "
                    f"{snap.seq}: committed writes are missing from {db.path}); it is not served, every other "
                    f"collection is. Run `vectorseam doctor {db.name}`")
            return snap
        return None

    def _follow(self, entry: _Entry) -> None:
        """Apply what other processes committed since this process last looked (nothing to read when
        SQLite says no other connection committed)."""
        db, coll = entry.db, entry.coll
        if db is None or coll is None:
            return
        version = db.data_version()
        if version == entry.version:
            return
        changes = db.changes_since(entry.seen)
        if changes is None:  # fell behind pruned tombstones: reload from the newest snapshot
            entry.coll = None
            coll.close()
            self._load(entry)
            return
        _apply(coll, changes)
        entry.changes += len(changes.upserted) + len(changes.deleted)
        entry.seen, entry.version = changes.seq, version
        if coll.n != changes.count:
            entry.coll = None
            coll.close()
            self._load(entry)

    @contextlib.contextmanager
    def _writing(self, entry: _Entry) -> Iterator[Any]:
        """A write transaction with the RAM copy caught up inside it (yields None when unpersisted).
        The RAM copy is changed by the caller only after the block, i.e. after the commit."""
        if entry.db is None:
            yield None
            return
        coll = entry.coll
        assert coll is not None
        try:
            with entry.db.writing() as writer:
                if writer.start != entry.seen:
                    changes = writer.changes_since(entry.seen)
                    if changes is None:  # fell behind pruned tombstones: reload, inside this transaction
                        entry.coll = None
                        coll.close()
                        self._load(entry)
                    else:
                        _apply(coll, changes)
                        entry.changes += len(changes.upserted) + len(changes.deleted)
                        entry.seen = changes.seq
                yield writer
            entry.version = writer.data_version
            if writer.seq != writer.start:
                entry.seen = writer.seq
                entry.changes += 1
        except CollectionGone:
            self._forget(entry.name)
            raise collection_not_found("memory", entry.name, self._names_on_disk()) from None
        except CollectionDamagedError as exc:
            self._forget(entry.name)
            self._quarantine(entry.name, exc)
            raise

    def _guarded(self, entry: _Entry, fn: Callable[[CollectionDB], T]) -> T:
        assert entry.db is not None
        try:
            return fn(entry.db)
        except CollectionDamagedError as exc:
            self._forget(entry.name)
            self._quarantine(entry.name, exc)
            raise

    def _snapshot_due(self, entry: _Entry) -> bool:
        n = entry.coll.n if entry.coll is not None else 0
        return entry.db is not None and entry.changes >= max(SNAPSHOT_MIN_CHANGES, SNAPSHOT_MIN_SHARE * n)

    def _write_snapshot(self, entry: _Entry) -> None:
        db, coll = entry.db, entry.coll
        if db is None or coll is None:
            return
        self._follow(entry)
        coll = entry.coll
        assert coll is not None
        memory_snapshot.write(db.directory, db.uid, entry.seen, coll.matrix, coll.norms, coll.ids, coll.texts,
                              coll.metas, encode_metadata)
        previous = entry.snapshot_seq
        entry.snapshot_seq, entry.changes = entry.seen, 0
        if previous > 0:
            db.prune_tombstones(previous)

    def _forget(self, name: str) -> None:
        entry = self._entries.pop(name, None)
        if entry is not None:
            entry.close()


def _apply(coll: Collection, changes: Changes) -> None:
    """Changes read from the database (checked when they were written) applied to the RAM copy."""
    if changes.deleted:
        coll.delete_ids(changes.deleted)
    if changes.upserted:
        coll.upsert(changes.upserted)


def _remove_dir(directory: Path) -> None:
    """Take a collection directory out of the data directory in one rename, then delete it."""
    if not directory.exists():
        return
    trash = directory.with_name(f".{directory.name}.deleted-{uuid.uuid4().hex[:8]}")
    try:
        move(directory, trash)
    except FileNotFoundError:
        return
    shutil.rmtree(trash, ignore_errors=True)


class MemoryOptions(StoreOptions):
    """The memory store's ``store.options``, checked as every adapter's are (:mod:`vectorseam.options`);
    ``ann`` and ``quantized`` are tables of their own, checked by the index they configure."""

    path: str | Path | None = None
    ann: Any = None
    durability: Durability = "power"
    quantized: Any = None


def create_store(**options: object) -> MemoryStore:
    """Entry-point factory (``vectorseam.stores`` group, name ``memory``)."""
    opts = parse_options(MemoryOptions, options, backend="memory")
    return MemoryStore(opts.path, ann=opts.ann, durability=opts.durability, quantized=opts.quantized)
