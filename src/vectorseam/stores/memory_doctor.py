"""Checking, recovering and upgrading memory-store collections (``vectorseam doctor``).

* :func:`check` runs SQLite's ``PRAGMA integrity_check``, reads every row against its checksum and
  the table's count and checksum sum, and verifies every snapshot.
* :func:`recover` rebuilds a damaged collection's database from what is intact: SQLite's own
  ``.recover`` (the ``sqlite3`` command-line tool reads every page it can, orphaned ones included;
  without the tool, rows are read in ranges that shrink around each unreadable one), keeping each row
  whose checksum holds; ids the database lost but the newest snapshot holds are restored from it and
  listed as such (a snapshot can predate a later write of the same id). The damaged file is kept, moved
  to ``damaged-<time>/`` inside the collection directory, never deleted.
* :func:`upgrade` converts a directory written by releases before the SQLite store (formats 1-3) into
  a database, under a lock so that concurrent openers convert once; the old files are moved to
  ``<root>/.upgraded/<name>-<time>/`` only after the new database committed every record.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import sqlite3
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vectorseam.durable import FileLock, move, private_dir
from vectorseam.errors import CollectionDamagedError, VectorseamError
from vectorseam.stores import legacy_format3, memory_snapshot
from vectorseam.stores.memory_db import (
    DB_NAME,
    SPEC_FILE,
    CollectionDB,
    Durability,
    damage_error,
    decode_metadata,
    decode_text,
    encode_metadata,
    record_crc,
)
from vectorseam.types import CollectionSpec, Record

UPGRADE_LOCK_TIMEOUT_S = 600.0


@dataclass
class Health:
    """What :func:`check` found in one collection."""

    name: str
    records: int = 0
    problems: list[str] = field(default_factory=list)
    snapshots: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass
class Recovery:
    """What :func:`recover` kept, restored and could not save."""

    name: str
    kept: int = 0
    from_snapshot: list[str] = field(default_factory=list)
    damaged_rows: list[str] = field(default_factory=list)  # ids (or row numbers) whose bytes were damaged
    expected: int | None = None  # the record count the damaged database claimed, when readable
    method: str = ""
    damaged_copy: str = ""

    @property
    def lost(self) -> int | None:
        if self.expected is None:
            return None
        return max(0, self.expected - self.kept - len(self.from_snapshot))


def check(directory: Path) -> Health:
    """Every check there is, without changing anything."""
    health = Health(directory.name)
    path = directory / DB_NAME
    if legacy_format3.is_legacy(directory) and not path.is_file():
        health.problems.append("written by an older release (format 1-3); `vectorseam doctor --upgrade` converts it")
        return health
    try:
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
            result = [row[0] for row in conn.execute("PRAGMA integrity_check(20)")]
        if result != ["ok"]:
            health.problems.extend(f"integrity_check: {line}" for line in result)
    except sqlite3.Error as exc:
        health.problems.append(f"integrity_check could not run: {exc}")
    db: CollectionDB | None = None
    try:
        db = CollectionDB.open(directory)
        if db is None:
            health.problems.append(f"{DB_NAME} holds no collection (dropped, or its creation never committed)")
        else:
            health.records = len(db.load_all().ids)
            for snap in memory_snapshot.available(directory):
                try:
                    memory_snapshot.read(snap, db.uid, db.spec.dimension, decode_metadata)
                    health.snapshots.append(f"{snap.name}: ok")
                except (memory_snapshot.SnapshotDamaged, FileNotFoundError) as exc:
                    health.snapshots.append(f"{snap.name}: {exc} (a cache: it is set aside on next open)")
    except (CollectionDamagedError, VectorseamError) as exc:
        health.problems.append(str(exc))
    finally:
        if db is not None:
            db.close()
    return health


def recover(directory: Path, durability: Durability = "power") -> Recovery:
    """Rebuild the collection's database from every intact record (see the module docstring)."""
    name = directory.name
    report = Recovery(name)
    old = directory / DB_NAME
    if old.is_file():
        stamp = time.strftime("%Y%m%d-%H%M%S")
        keep = directory / f"damaged-{stamp}"
        keep.mkdir(mode=0o700)
        for suffix in ("", "-wal", "-shm"):
            src = directory / f"{DB_NAME}{suffix}"
            if src.exists():
                shutil.copy2(src, keep / src.name)
        report.damaged_copy = str(keep)
        meta, rows, tombstones, report.method = _salvage(keep / DB_NAME)
    elif memory_snapshot.available(directory):
        meta, rows, tombstones, report.method = {}, [], [], "snapshot only (the database is missing)"
    else:
        raise VectorseamError(f"collection {name!r}: neither {DB_NAME} nor a snapshot in {directory} to recover from")
    spec = _spec_from(meta, directory)
    if spec is None:
        raise VectorseamError(
            f"collection {name!r}: its spec (dimension, metric) could not be recovered from its database nor from a "
            f"snapshot; nothing was changed. The damaged copy is kept in {report.damaged_copy or directory}")
    count = meta.get("count")
    report.expected = count if isinstance(count, int) else None
    records: dict[str, Record] = {}
    for row in rows:
        record_id, vector, text, metadata, crc = row
        try:
            if record_crc(record_id, vector, text, metadata) != crc or len(vector) != 4 * spec.dimension:
                raise ValueError("checksum")
            records[record_id] = Record(record_id, np.frombuffer(vector, dtype="<f4").astype(np.float32),
                                        decode_text(text), decode_metadata(metadata))
        except (ValueError, TypeError, AttributeError):  # UnicodeDecodeError is a ValueError
            report.damaged_rows.append(str(record_id))
    report.kept = len(records)
    complete = report.expected is not None and report.expected == report.kept and not report.damaged_rows
    snap = None if complete else _newest_snapshot(directory, meta, spec)
    if snap is not None:
        # an id deleted after the snapshot must stay deleted; one the database lost comes back as of then
        deleted_since = {rid for rid, seq in tombstones if seq > snap.seq}
        for i, rid in enumerate(snap.ids):
            if rid not in records and rid not in deleted_since:
                records[rid] = Record(rid, np.array(snap.matrix[i], dtype=np.float32), snap.texts[i], snap.metas[i])
                report.from_snapshot.append(rid)
    _replace_database(directory, spec, list(records.values()), durability)
    return report


Row = tuple[str, bytes, bytes, bytes, int]


def _salvage(source: Path) -> tuple[dict[str, object], list[Row], list[tuple[str, int]], str]:
    """(meta, record rows, tombstones, method) from a damaged database: SQLite's ``.recover`` when the sqlite3 tool
    is installed, else reads in ranges that shrink around unreadable rows."""
    tool = shutil.which("sqlite3")
    if tool is not None:
        recovered = source.with_name("recovered.sqlite3")
        dump = subprocess.run([tool, str(source), ".recover"], capture_output=True, timeout=3600, check=False)
        # Some builds lack what .recover needs (the sqlite_dbpage table) and say "sql error": then the
        # ranges below are the way. The tool replays the SQL itself: it goes on past a failing statement.
        if dump.returncode == 0 and b"sql error" not in dump.stderr and dump.stdout.rstrip().endswith(b"COMMIT;"):
            subprocess.run([tool, str(recovered)], input=dump.stdout, capture_output=True, timeout=3600, check=False)
            with contextlib.closing(sqlite3.connect(recovered)) as conn:
                meta = _meta_of(conn)
                rows = _rows_of(conn)
                tombstones = _tombstones_of(conn)
            recovered.unlink(missing_ok=True)
            if rows or "name" in meta:
                return meta, rows, tombstones, "sqlite3 .recover"
    with contextlib.closing(sqlite3.connect(f"file:{source}?mode=ro", uri=True)) as conn:
        meta = _meta_of(conn)
        rows = []
        try:
            top = int(conn.execute("SELECT max(rid) FROM records").fetchone()[0] or 0)
        except sqlite3.Error:  # rowids grow by one per new record, and a 4 KiB page holds a few dozen rows
            top = source.stat().st_size // 4096 * 64
        for lo in range(0, top + 1, _RANGE):
            _read_range(conn, lo, min(lo + _RANGE - 1, top), rows)
        tombstones = _tombstones_of(conn)
    return meta, rows, tombstones, "row ranges"


_RANGE = 256


def _read_range(conn: sqlite3.Connection, lo: int, hi: int, out: list[Row]) -> None:
    """Rows ``lo..hi``; a range that cannot be read is halved until the unreadable rows are alone
    (at most two queries per row of a range of ``_RANGE``)."""
    try:
        out.extend(conn.execute("SELECT id, vector, text, metadata, crc FROM records WHERE rid BETWEEN ? AND ?",
                                (lo, hi)).fetchall())
    except sqlite3.Error:
        if hi <= lo:
            return
        mid = (lo + hi) // 2
        _read_range(conn, lo, mid, out)
        _read_range(conn, mid + 1, hi, out)


def _meta_of(conn: sqlite3.Connection) -> dict[str, object]:
    meta: dict[str, object] = {}
    with contextlib.suppress(sqlite3.Error):
        meta.update(dict(conn.execute("SELECT key, value FROM meta").fetchall()))
    with contextlib.suppress(sqlite3.Error, TypeError):
        meta["count"] = int(conn.execute("SELECT count FROM stats WHERE one = 1").fetchone()[0])
    return meta


def _rows_of(conn: sqlite3.Connection) -> list[Row]:
    rows: list[Row] = []
    with contextlib.suppress(sqlite3.Error):
        rows.extend(conn.execute("SELECT id, vector, text, metadata, crc FROM records").fetchall())
    return rows


def _tombstones_of(conn: sqlite3.Connection) -> list[tuple[str, int]]:
    found: list[tuple[str, int]] = []
    with contextlib.suppress(sqlite3.Error):
        found.extend(conn.execute("SELECT id, seq FROM tombstones").fetchall())
    return found


def _spec_from(meta: dict[str, object], directory: Path) -> CollectionSpec | None:
    """The collection's spec from its database, else the copy written beside it at creation, else a
    snapshot's manifest."""
    try:
        return CollectionSpec(str(meta["name"]), int(meta["dimension"]),  # type: ignore[call-overload]
                              meta["metric"], json.loads(str(meta.get("metadata") or "{}")))  # type: ignore[arg-type]
    except (KeyError, TypeError, ValueError):
        pass
    with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
        saved = json.loads((directory / SPEC_FILE).read_text())
        return CollectionSpec(directory.name, int(saved["dimension"]), saved["metric"], dict(saved["metadata"]))
    for snap in memory_snapshot.available(directory):
        with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
            manifest = json.loads((snap / memory_snapshot.MANIFEST).read_text())
            return CollectionSpec(directory.name, int(manifest["dimension"]), manifest["metric"],
                                  dict(manifest.get("metadata") or {}))
    return None


def _newest_snapshot(directory: Path, meta: dict[str, object], spec: CollectionSpec) -> memory_snapshot.Snapshot | None:
    uid = str(meta["uid"]) if meta.get("uid") else None
    for path in memory_snapshot.available(directory):
        with contextlib.suppress(memory_snapshot.SnapshotDamaged, FileNotFoundError):
            return memory_snapshot.read(path, uid, spec.dimension, decode_metadata)
    return None


def _replace_database(directory: Path, spec: CollectionSpec, records: list[Record], durability: Durability) -> None:
    """Write ``records`` into a new database beside the old one, then put it in the old one's place."""
    staging = directory.parent / f".{directory.name}.recover-{uuid.uuid4().hex[:8]}"
    try:
        _write_database(staging, spec, records, durability)
        for suffix in ("-wal", "-shm"):
            (directory / f"{DB_NAME}{suffix}").unlink(missing_ok=True)
        move(staging / DB_NAME, directory / DB_NAME)
        for snap in memory_snapshot.available(directory):  # they belong to the old database's uid
            shutil.rmtree(snap, ignore_errors=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _write_database(staging: Path, spec: CollectionSpec, records: list[Record], durability: Durability) -> None:
    db = CollectionDB.create(staging, spec, durability)
    try:
        with db.writing() as writer:
            for start in range(0, len(records), 1000):
                writer.upsert(records[start : start + 1000])
    finally:
        db.close()


def upgrade(directory: Path, durability: Durability = "power") -> bool:
    """Convert a format 1-3 collection directory into a database (see the module docstring); False
    when there was nothing to convert (already done, possibly by another process)."""
    root = directory.parent
    with FileLock(root / ".locks" / f"{directory.name}.upgrade.lock", f"converting collection {directory.name!r}",
                  timeout=UPGRADE_LOCK_TIMEOUT_S):
        if (directory / DB_NAME).is_file() or not legacy_format3.is_legacy(directory):
            return False
        try:
            old = legacy_format3.read(directory)
        except legacy_format3.LegacyUnreadable as exc:
            raise damage_error(directory.name, directory, f"its files from an older release cannot be converted: "
                                                          f"{exc}; they are left as they are") from exc
        records = [Record(i, v, t, m) for i, v, t, m in zip(old.ids, old.vectors, old.texts, old.metas, strict=True)]
        staging = root / f".{directory.name}.upgrade-{uuid.uuid4().hex[:8]}"
        try:
            _write_database(staging, old.spec, records, durability)
            check = CollectionDB.open(staging)
            assert check is not None
            try:
                if check.state()[1] != len(records):
                    raise damage_error(directory.name, directory, "the converted database does not hold every record")
            finally:
                check.close()
            backup = root / ".upgraded" / f"{directory.name}-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:4]}"
            private_dir(backup)
            old_files = [p for p in directory.iterdir() if p.is_file()]
            move(staging / DB_NAME, directory / DB_NAME)  # the commit point: from now on it is a database
            for path in old_files:
                move(path, backup / path.name)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return True


__all__ = ["Health", "Recovery", "check", "encode_metadata", "recover", "upgrade"]
