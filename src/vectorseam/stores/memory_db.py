"""One memory-store collection's durable state: a SQLite database, the truth for every process.

Layout of ``<root>/<collection>/``::

    records.sqlite3 (-wal, -shm)   the spec, every record, a change sequence, tombstones, blobs
    spec.json                      a copy of the spec (name, dimension, metric), for recovery only
    snapshot-<seq>/                a cache of the records as of change <seq> (memory_snapshot.py)

Why SQLite: the server's workers, CLI jobs and scripts open one data directory at once. A home-made
log with a compaction protocol lost acknowledged writes in one interleaving and hid damage in
another; SQLite gives what that code tried to (one writer at a time, crash-safe commits, readers that
never block the writer in WAL mode) and has been tested far harder than we could test ours.

* **A write is acknowledged when its transaction commits** (``synchronous=FULL``: also across a power
  cut; ``durability="process"`` relaxes that to a killed process). Each write transaction bumps
  ``seq`` and stamps the rows it writes with it; a delete leaves a tombstone ``(id, seq)``.
* **Other processes follow cheaply**: ``PRAGMA data_version`` (microseconds, no I/O beyond the WAL
  index) says whether another connection committed; only then are the rows and tombstones with
  ``seq`` past the last one applied read and applied to the process's in-RAM collection.
* **Damage is found, not served**: every row carries a CRC-32 of its id, vector, text and metadata,
  checked whenever the row is read; triggers keep the record count and the sum of the CRCs in the
  same transaction as every write, so a row that vanished (a damaged page a scan skips) is noticed
  when the collection is loaded. SQLite's own "malformed" errors count as damage too. Damage is
  reported as :class:`CollectionDamagedError` for this collection only.
* **Dropping** marks the database dropped in a transaction before its directory is renamed away, so a
  process that still has it open learns of the drop on its next check and never writes into a
  database that is gone.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import sqlite3
import uuid
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import numpy.typing as npt

from vectorseam.durable import (
    BUSY_TIMEOUT_S,
    atomic_write,
    connect,
    fsync_dir,
    insert_rows,
    move,
    private_dir,
    transaction,
)
from vectorseam.errors import CollectionDamagedError, StoreUnavailableError
from vectorseam.stores.packed import PackedList, pack
from vectorseam.types import CollectionSpec, Metadata, Record

DB_NAME = "records.sqlite3"
SPEC_FILE = "spec.json"  # a copy of the spec, written at creation, for recovering a database whose spec is damaged
FORMAT = 4  # 1-3: the snapshot and log formats of earlier releases (stores/legacy_format3.py)
Durability = Literal["power", "process"]
_SYNCHRONOUS: dict[str, str] = {"power": "FULL", "process": "NORMAL"}
_DAMAGE_CODES = {"SQLITE_CORRUPT", "SQLITE_NOTADB", "SQLITE_CORRUPT_INDEX", "SQLITE_CORRUPT_SEQUENCE",
                 "SQLITE_CORRUPT_VTAB"}

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS stats (one INTEGER PRIMARY KEY CHECK (one = 1), count INTEGER NOT NULL, "
    "crcsum INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS records (rid INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, seq INTEGER NOT NULL, "
    "vector BLOB NOT NULL, text BLOB NOT NULL, metadata BLOB NOT NULL, crc INTEGER NOT NULL)",
    "CREATE INDEX IF NOT EXISTS records_seq ON records (seq)",
    "CREATE TABLE IF NOT EXISTS tombstones (id TEXT PRIMARY KEY, seq INTEGER NOT NULL) WITHOUT ROWID",
    "CREATE INDEX IF NOT EXISTS tombstones_seq ON tombstones (seq)",
    "CREATE TABLE IF NOT EXISTS blobs (name TEXT PRIMARY KEY, data BLOB NOT NULL)",
    "CREATE TRIGGER IF NOT EXISTS records_ins AFTER INSERT ON records BEGIN "
    "UPDATE stats SET count = count + 1, crcsum = crcsum + NEW.crc WHERE one = 1; END",
    "CREATE TRIGGER IF NOT EXISTS records_del AFTER DELETE ON records BEGIN "
    "UPDATE stats SET count = count - 1, crcsum = crcsum - OLD.crc WHERE one = 1; END",
    "CREATE TRIGGER IF NOT EXISTS records_upd AFTER UPDATE OF crc ON records BEGIN "
    "UPDATE stats SET crcsum = crcsum - OLD.crc + NEW.crc WHERE one = 1; END",
)
_UPSERT = ("INSERT INTO records (id, seq, vector, text, metadata, crc) VALUES (?, ?, ?, ?, ?, ?) "
           "ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, vector = excluded.vector, text = excluded.text, "
           "metadata = excluded.metadata, crc = excluded.crc")
_CHUNK = 500


class CollectionGone(Exception):
    """The collection was dropped (by this or another process) since this database was opened."""


def encode_metadata(metadata: Metadata) -> bytes:
    """Metadata as stored: compact UTF-8 JSON (ints of any size stay exact)."""
    return json.dumps(metadata, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode("utf-8")


def decode_metadata(raw: bytes) -> Metadata:
    value = json.loads(raw.decode("utf-8"))  # given bytes, json.loads first guesses their encoding: twice the time
    if not isinstance(value, dict):
        raise ValueError("metadata is not a JSON object")
    return value


def decode_text(raw: bytes) -> str:
    return raw.decode("utf-8")


def record_crc(rid: str, vector: bytes, text: bytes, metadata: bytes) -> int:
    """The checksum every row carries: any changed byte of the row changes it. Texts and metadata are
    stored as UTF-8 bytes, so loading checks them without decoding (NUL never occurs in them)."""
    return zlib.crc32(b"".join((rid.encode("utf-8"), b"\x00", vector, text, b"\x00", metadata)))


def damage_error(name: str, directory: Path, what: str) -> CollectionDamagedError:
    return CollectionDamagedError(
        f"collection {name!r} is damaged ({what}); it is not served, every other collection is. Run `vectorseam "
        f"doctor {name}` to check it and recover every intact record into a new database (the damaged file is "
        f"kept beside it). Files: {directory}")


def is_damage(exc: sqlite3.Error) -> bool:
    """SQLite's verdict that a file is not a sound database (as opposed to busy, full or unwritable)."""
    name = getattr(exc, "sqlite_errorname", "") or ""
    if name in _DAMAGE_CODES:
        return True
    text = str(exc).lower()
    return "malformed" in text or "not a database" in text


@dataclass
class Loaded:
    """Every record of a collection, column by column: texts and metadata stay packed UTF-8 until read."""

    seq: int
    ids: list[str]
    matrix: npt.NDArray[np.float32]  # the vectors in the first len(ids) rows, spare capacity after
    texts: PackedList[str]
    metas: PackedList[Metadata]


@dataclass
class Changes:
    """What other processes committed after some ``seq``: rows to upsert and ids to delete."""

    seq: int
    count: int
    upserted: list[Record] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)


class CollectionDB:
    """The open database of one collection; every method runs under the caller's (the store's) lock."""

    def __init__(self, directory: Path, conn: sqlite3.Connection, spec: CollectionSpec, uid: str) -> None:
        self.directory = directory
        self.conn = conn
        self.spec = spec
        self.uid = uid
        self._blobs: dict[str, bytes | None] = {}
        self._blobs_version: int | None = None

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def path(self) -> Path:
        return self.directory / DB_NAME

    # -- opening and creating ---------------------------------------------------------------------
    @classmethod
    def open(cls, directory: Path, durability: Durability = "power",
             timeout: float = BUSY_TIMEOUT_S) -> CollectionDB | None:
        """The collection's database, or None when there is no collection here or it is dropped.

        A collection directory always holds a committed database (:meth:`create` renames it into
        place), so a database without its spec, or snapshots without a database, is damage."""
        path = directory / DB_NAME
        if not path.is_file():
            if directory.is_dir() and any(p.name.startswith("snapshot-") for p in directory.iterdir()):
                raise damage_error(directory.name, directory, f"{DB_NAME} is missing while a snapshot remains")
            return None
        try:
            conn = connect(path, create=False, synchronous=_SYNCHRONOUS[durability], timeout=timeout)
        except sqlite3.Error as exc:
            if is_damage(exc):
                raise damage_error(directory.name, directory, f"{DB_NAME}: {exc}") from exc
            raise _unavailable(directory.name, exc) from exc
        try:
            meta = _read_meta(conn)
            if meta.get("dropped"):
                conn.close()
                return None
            if "name" not in meta:
                raise damage_error(directory.name, directory, f"{DB_NAME} holds no collection spec")
            return cls(directory, conn, _spec_of(directory, meta), str(meta["uid"]))
        except sqlite3.Error as exc:
            conn.close()
            if is_damage(exc):
                raise damage_error(directory.name, directory, f"{DB_NAME}: {exc}") from exc
            raise _unavailable(directory.name, exc) from exc
        except BaseException:
            conn.close()
            raise

    @classmethod
    def create(cls, directory: Path, spec: CollectionSpec, durability: Durability = "power",
               timeout: float = BUSY_TIMEOUT_S) -> CollectionDB:
        """Create the collection: its database is made in a staging directory and renamed into place, so
        no process ever sees a half-made collection. When another process created it first, that one is
        opened (the caller compares specs). Raises CollectionGone when the directory holds a dropped
        database (the caller clears it and retries)."""
        if not (directory / DB_NAME).is_file():
            staging = directory.parent / f".{directory.name}.creating-{uuid.uuid4().hex[:8]}"
            private_dir(staging.parent)
            staging.mkdir(mode=0o700)
            try:
                conn = connect(staging / DB_NAME, synchronous=_SYNCHRONOUS[durability], timeout=timeout)
                try:
                    with transaction(conn):
                        for statement in _SCHEMA:
                            conn.execute(statement)
                        meta = {"format": FORMAT, "name": spec.name, "dimension": spec.dimension,
                                "metric": spec.metric, "metadata": json.dumps(dict(spec.metadata), sort_keys=True),
                                "uid": uuid.uuid4().hex, "seq": 0, "pruned": 0}
                        conn.executemany("INSERT INTO meta (key, value) VALUES (?, ?)", list(meta.items()))
                        conn.execute("INSERT INTO stats (one, count, crcsum) VALUES (1, 0, 0)")
                    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # one file to move
                finally:
                    conn.close()
                atomic_write(staging / SPEC_FILE, json.dumps(
                    {"name": spec.name, "dimension": spec.dimension, "metric": spec.metric,
                     "metadata": dict(spec.metadata)}).encode())
                fsync_dir(staging)
                try:
                    move(staging, directory)  # replaces an empty leftover directory; fails on a full one
                except OSError:
                    if not (directory / DB_NAME).is_file():
                        raise
            finally:
                shutil.rmtree(staging, ignore_errors=True)
        db = cls.open(directory, durability, timeout)
        if db is None:
            raise CollectionGone(spec.name)
        return db

    def close(self) -> None:
        """Close the connection, folding the WAL into the database first (so a cleanly closed collection
        is one file, and damage to a leftover WAL cannot silently drop commits)."""
        with contextlib.suppress(sqlite3.Error):
            self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        with contextlib.suppress(sqlite3.Error):
            self.conn.close()

    # -- reading ----------------------------------------------------------------------------------
    def data_version(self) -> int:
        """Changes whenever another connection commits (never for this connection's own commits)."""
        return int(self.conn.execute("PRAGMA data_version").fetchone()[0])

    def state(self) -> tuple[int, int, bool]:
        """(seq, record count, dropped) as committed now."""
        with self._guard():
            return self._state()

    def _state(self) -> tuple[int, int, bool]:
        rows = dict(self.conn.execute("SELECT key, value FROM meta WHERE key IN ('seq', 'dropped')").fetchall())
        stats = self.conn.execute("SELECT count FROM stats WHERE one = 1").fetchone()
        if stats is None:
            raise damage_error(self.name, self.directory, "its record count is missing")
        return int(rows.get("seq", 0)), int(stats[0]), bool(rows.get("dropped"))

    def changes_since(self, seen: int) -> Changes | None:
        """What was committed after ``seen`` (one consistent read), or None when tombstones that old are
        pruned (the caller reloads). Raises CollectionGone when the collection was dropped."""
        with self._guard(), self._read():
            return self._changes_since(seen)

    def _changes_since(self, seen: int) -> Changes | None:
        seq, count, dropped = self._state()
        if dropped:
            raise CollectionGone(self.name)
        changes = Changes(seq, count)
        if seq == seen:
            return changes
        pruned = self.conn.execute("SELECT value FROM meta WHERE key = 'pruned'").fetchone()
        if seen < int(pruned[0] if pruned else 0):
            return None
        changes.deleted = [r[0] for r in self.conn.execute("SELECT id FROM tombstones WHERE seq > ?", (seen,))]
        rows = self.conn.execute("SELECT rid, id, vector, text, metadata, crc FROM records WHERE seq > ? ORDER BY rid",
                                 (seen,))
        changes.upserted = [self._record(row) for row in rows]
        return changes

    def load_all(self) -> Loaded:
        """Every record in one consistent read, each row's checksum and the count and checksum sum of
        the whole table verified, so a row that vanished or changed is reported, never skipped."""
        with self._guard(), self._read():
            seq, count, dropped = self._state()
            if dropped:
                raise CollectionGone(self.name)
            crcsum = int(self.conn.execute("SELECT crcsum FROM stats WHERE one = 1").fetchone()[0])
            ids: list[str] = []
            texts: list[bytes] = []
            metas: list[bytes] = []
            total = 0
            width = 4 * self.spec.dimension
            # the rows are copied into the matrix as they come: no second copy of a million vectors
            matrix = np.zeros((count + max(1024, count // 10), self.spec.dimension), dtype="<f4")
            into = matrix.data.cast("B")
            rows = self.conn.execute("SELECT rid, id, vector, text, metadata, crc FROM records ORDER BY rid")
            for rid, record_id, vector, text, metadata, crc in rows:
                try:
                    ok = len(vector) == width and record_crc(record_id, vector, text, metadata) == crc
                except (TypeError, AttributeError):  # a value of the wrong type where bytes belong
                    ok = False
                if not ok or len(ids) >= count:
                    raise damage_error(self.name, self.directory,
                                       f"record {record_id!r} (row {rid}) fails its checksum" if not ok else
                                       f"more records than its count ({count}) says")
                into[len(ids) * width : (len(ids) + 1) * width] = vector
                ids.append(record_id)
                texts.append(text)
                metas.append(metadata)
                total += crc
            if len(ids) != count or total != crcsum:
                raise damage_error(self.name, self.directory,
                                   f"{len(ids)} readable records where its count says {count}"
                                   if len(ids) != count else "the records' checksums do not add up")
        return Loaded(seq, ids, matrix.view(np.float32), PackedList(*pack(texts), decode_text),
                      PackedList(*pack(metas), decode_metadata))

    def _record(self, row: tuple[int, str, bytes, bytes, bytes, int]) -> Record:
        rid, record_id, vector, text, metadata, crc = row
        try:
            ok = len(vector) == 4 * self.spec.dimension and record_crc(record_id, vector, text, metadata) == crc
        except (TypeError, AttributeError):
            ok = False
        if not ok:
            raise damage_error(self.name, self.directory, f"record {record_id!r} (row {rid}) fails its checksum")
        return Record(record_id, np.frombuffer(vector, dtype="<f4").astype(np.float32), decode_text(text),
                      decode_metadata(metadata))

    # -- writing ----------------------------------------------------------------------------------
    @contextlib.contextmanager
    def writing(self) -> Iterator[Writer]:
        """A write transaction (other processes' writers wait, readers don't); committed when the
        block ends, rolled back if it raises. Raises CollectionGone when the collection was dropped."""
        with self._guard():
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                seq, _count, dropped = self._state()
                if dropped:
                    raise CollectionGone(self.name)
                writer = Writer(self, seq, self.data_version())
                yield writer
                if writer.seq != seq:
                    self.conn.execute("UPDATE meta SET value = ? WHERE key = 'seq'", (writer.seq,))
            except BaseException:
                with contextlib.suppress(sqlite3.Error):
                    self.conn.execute("ROLLBACK")
                raise
            self.conn.execute("COMMIT")

    def mark_dropped(self) -> None:
        with self.writing():
            self.conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('dropped', 1)")

    def prune_tombstones(self, upto: int) -> None:
        """Forget tombstones up to ``upto`` (a snapshot at or past it exists); a process that had read no
        further reloads from that snapshot instead of applying them."""
        with self.writing():
            self.conn.execute("DELETE FROM tombstones WHERE seq <= ?", (upto,))
            self.conn.execute("UPDATE meta SET value = max(value, ?) WHERE key = 'pruned'", (upto,))

    # -- blobs kept with the collection -------------------------------------------------------------
    def get_blob(self, name: str) -> bytes | None:
        """Cached per process until another connection commits, so a search can read the collection's
        tuned profile on every request for the cost of one ``data_version``."""
        with self._guard():
            version = self.data_version()
            if version != self._blobs_version:
                self._blobs.clear()
                self._blobs_version = version
            if name not in self._blobs:
                row = self.conn.execute("SELECT data FROM blobs WHERE name = ?", (name,)).fetchone()
                self._blobs[name] = bytes(row[0]) if row else None
            return self._blobs[name]

    def put_blob(self, name: str, data: bytes) -> None:
        with self.writing():
            self.conn.execute("INSERT OR REPLACE INTO blobs (name, data) VALUES (?, ?)", (name, bytes(data)))
        self._blobs[name] = bytes(data)

    def delete_blob(self, name: str) -> bool:
        with self.writing():
            gone = self.conn.execute("DELETE FROM blobs WHERE name = ?", (name,)).rowcount > 0
        self._blobs[name] = None
        return gone

    # -- errors -------------------------------------------------------------------------------------
    @contextlib.contextmanager
    def _read(self) -> Iterator[None]:
        """One read transaction: every SELECT inside sees the same committed state."""
        in_txn = self.conn.in_transaction
        if not in_txn:
            self.conn.execute("BEGIN")
        try:
            yield
        finally:
            if not in_txn:
                with contextlib.suppress(sqlite3.Error):
                    self.conn.execute("COMMIT")

    @contextlib.contextmanager
    def _guard(self) -> Iterator[None]:
        """SQLite's errors as the store's: damage names this collection, anything else is transient."""
        try:
            yield
        except sqlite3.Error as exc:
            if is_damage(exc):
                raise damage_error(self.name, self.directory, f"{DB_NAME}: {exc}") from exc
            raise _unavailable(self.name, exc) from exc


class Writer:
    """The open write transaction of :meth:`CollectionDB.writing`: ``seq`` is the committed sequence
    at its start (catch up to it first), each write stamps the next one."""

    def __init__(self, db: CollectionDB, seq: int, data_version: int) -> None:
        self.db = db
        self.start = seq
        self.seq = seq
        self.data_version = data_version

    def changes_since(self, seen: int) -> Changes | None:
        return self.db._changes_since(seen)

    def upsert(self, records: Sequence[Record]) -> int:
        """Stamp ``records`` (validated) with the next sequence number; returns it."""
        self.seq = self.start + 1
        rows = []
        for r in records:
            assert r.vector is not None
            vector = np.ascontiguousarray(r.vector, dtype="<f4").tobytes()
            text = r.text.encode("utf-8")
            metadata = encode_metadata(r.metadata)
            rows.append((r.id, self.seq, vector, text, metadata, record_crc(r.id, vector, text, metadata)))
        self.db.conn.executemany(_UPSERT, rows)
        return self.seq

    def delete(self, ids: Sequence[str]) -> int:
        self.seq = self.start + 1
        conn = self.db.conn
        for start in range(0, len(ids), _CHUNK):
            part = list(ids[start : start + _CHUNK])
            conn.execute(f"DELETE FROM records WHERE id IN ({','.join('?' * len(part))})", part)
        insert_rows(conn, "INSERT OR REPLACE INTO tombstones (id, seq) VALUES", [(i, self.seq) for i in ids])
        return self.seq


def _read_meta(conn: sqlite3.Connection) -> dict[str, object]:
    try:
        return dict(conn.execute("SELECT key, value FROM meta").fetchall())
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):
            return {}  # a database whose creation never committed
        raise


def _spec_of(directory: Path, meta: dict[str, object]) -> CollectionSpec:
    try:
        return CollectionSpec(str(meta["name"]), int(meta["dimension"]),  # type: ignore[call-overload]
                              meta["metric"], json.loads(str(meta.get("metadata") or "{}")))  # type: ignore[arg-type]
    except (KeyError, TypeError, ValueError) as exc:  # ValidationError is a ValueError
        raise damage_error(directory.name, directory, f"its spec cannot be read ({exc})") from exc


def _unavailable(name: str, exc: sqlite3.Error) -> StoreUnavailableError:
    if getattr(exc, "sqlite_errorname", "") in ("SQLITE_BUSY", "SQLITE_LOCKED"):
        return StoreUnavailableError(
            f"collection {name!r}: another process has held its write lock for longer than the lock timeout, so "
            "nothing was written; retry when it is done")
    return StoreUnavailableError(
        f"collection {name!r}: the database could not be used ({exc}); nothing was written. Retry; if it persists, "
        "check that the data directory is writable and has free space")
