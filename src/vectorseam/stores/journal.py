"""Files of one memory-store collection, shared safely by any number of processes.

Why: the server, CLI jobs and scripts may all open one data directory, and each keeps the
collections in memory. Rewriting a whole collection per save (format 1 and 2) let two processes
overwrite each other's writes and delete each other's files, and cost O(collection) per write.
Here every write is one appended log entry, so any process can (a) serialize its writes with the
others (an OS lock), (b) apply exactly what others wrote since it last looked, cheaply, and (c)
never find a file it needs rewritten or half-written.

Layout of ``<root>/<name>/``::

    manifest.json            current base and log; replaced atomically (temp file, fsync, rename)
    vectors-<G>-<r>.npy      the vector arrays at generation G (np.save: rows as written, then norms)
    records-<G>-<r>.jsonl    ids, texts and metadata of those rows, one JSON object a line
    log-<G>-<r>.bin          every write after generation G: one checksummed entry per write call

and ``<root>/.locks/<name>.lock``, flock'd by the one process writing the collection.

* **Writes** (under the lock): catch up with the log, append one entry, ``fdatasync``: from then on
  the write is acknowledged and every process sees it. The log is only ever appended to, so a
  process reading while a write happens sees whole entries plus, at worst, an incomplete tail it
  leaves for later. The next writer cuts off an incomplete tail (a writer killed mid-append; such a
  write was never acknowledged).
* **Reads** (no lock): one ``fstat`` of the open log tells whether anything was appended since the
  last look; only new entries are read and applied, never the whole collection.
* **Compaction** (under the lock, when the log outgrows the base): a new base at the current
  generation and an empty log are written, the old log gets a *seal* entry naming the new log,
  then the manifest is replaced. A process that reaches the seal switches logs without reloading:
  the new base is exactly the state it already holds. The previous generation's files are kept
  until the compaction after, so a process that read the old manifest can still open them; one
  that is further behind finds a file gone, reads the manifest again and reloads (never an error).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import logging
import os
import shutil
import struct
import tempfile
import time
import uuid
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from vectorseam.errors import StoreUnavailableError, VectorseamError
from vectorseam.types import CollectionSpec, Metadata

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
FORMAT = 3
SNAPSHOT_FORMATS = (1, 2)  # one vectors file + one records file and no log; upgraded on open
LOCKS = ".locks"
LOCK_TIMEOUT_S = 60.0
_PREFIX = struct.Struct("<4sIQI")  # magic, header bytes, vector bytes, crc32 of header + vectors
_MAGIC = b"VSE1"

Op = Literal["upsert", "delete", "seal", "drop"]
Matrix = npt.NDArray[np.float32]


def damaged(directory: Path, what: str, recovery: str) -> VectorseamError:
    """The error for a collection directory that is really broken (not merely being written)."""
    return VectorseamError(f"cannot read the memory-store collection in {directory}: {what}. {recovery}")


def _restore_hint(directory: Path) -> str:
    return (f"The other files in {directory} are intact: restore the damaged file from a backup, or move the "
            f"whole directory out of the data directory (keep it) and ingest again")


# -- locking ----------------------------------------------------------------------------------------

class CollectionLock:
    """Exclusive write access to one collection across processes (``flock``; the kernel releases it
    when its holder dies, so a killed writer never leaves it stuck).

    A second writer waits up to ``timeout`` seconds, then gets :class:`StoreUnavailableError`
    (transient: load jobs retry it) naming the lock file.
    """

    def __init__(self, root: Path, name: str, timeout: float = LOCK_TIMEOUT_S) -> None:
        self.path = root / LOCKS / f"{name}.lock"
        self.name = name
        self.timeout = timeout
        self._fd: int | None = None

    def __enter__(self) -> CollectionLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + self.timeout
        pause = 0.0005
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    os.close(fd)
                    raise StoreUnavailableError(
                        f"collection {self.name!r}: another process has held its write lock ({self.path}) for "
                        f"over {self.timeout:.0f}s, so nothing was written; retry when it is done (`fuser "
                        f"{self.path}` names the process)"
                    ) from None
                time.sleep(pause)
                pause = min(pause * 2, 0.02)
        self._fd = fd
        return self

    def __exit__(self, *exc: object) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


# -- log entries --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Entry:
    """One write call: upserted records (with their vectors), deleted ids, a seal or a drop."""

    generation: int
    op: Op
    ids: Sequence[str] = ()
    texts: Sequence[str] = ()
    metadata: Sequence[Metadata] = ()
    vectors: Matrix | None = None
    log: str = ""  # seal: the log file that continues this one


def encode(entry: Entry) -> bytes:
    """The entry's bytes. Strings must be valid Unicode (``check_storable_text`` ensures it for
    records), so encoding cannot fail half-way through a write."""
    header: dict[str, Any] = {"gen": entry.generation, "op": entry.op}
    if entry.op == "upsert":
        header.update(ids=list(entry.ids), texts=list(entry.texts), metadata=list(entry.metadata))
    elif entry.op == "delete":
        header["ids"] = list(entry.ids)
    elif entry.op == "seal":
        header["log"] = entry.log
    head = json.dumps(header, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode("utf-8")
    blob = b"" if entry.vectors is None else np.ascontiguousarray(entry.vectors, dtype="<f4").tobytes()
    crc = zlib.crc32(blob, zlib.crc32(head))
    return _PREFIX.pack(_MAGIC, len(head), len(blob), crc) + head + blob


def _decode(head: bytes, blob: bytes, dimension: int) -> Entry:
    header = json.loads(head.decode("utf-8"))
    op = header["op"]
    if op == "upsert":
        ids = header["ids"]
        vectors = np.frombuffer(blob, dtype="<f4").astype(np.float32).reshape(len(ids), dimension)
        if not (len(header["texts"]) == len(header["metadata"]) == len(ids)):
            raise ValueError("ids, texts and metadata differ in length")
        return Entry(int(header["gen"]), "upsert", ids, header["texts"], header["metadata"], vectors)
    if op == "delete":
        return Entry(int(header["gen"]), "delete", header["ids"])
    if op == "seal":
        return Entry(int(header["gen"]), "seal", log=str(header["log"]))
    if op == "drop":
        return Entry(int(header["gen"]), "drop")
    raise ValueError(f"unknown entry type {op!r}")


def _pread_all(fd: int, size: int, offset: int) -> bytes:
    parts = []
    while size > 0:
        chunk = os.pread(fd, size, offset)
        if not chunk:
            break
        parts.append(chunk)
        size -= len(chunk)
        offset += len(chunk)
    return b"".join(parts)


@dataclass
class Log:
    """An open log file and how far this process has applied it.

    ``offset`` is the end of the last applied entry and ``generation`` the state's generation
    there; ``torn`` is set when bytes after ``offset`` do not (yet) form a whole entry.
    """

    directory: Path
    name: str
    fd: int
    dimension: int
    generation: int
    offset: int = 0
    entries: int = 0
    base_bytes: int = 0
    writable: bool = True
    torn: bool = field(default=False)

    @property
    def path(self) -> Path:
        return self.directory / self.name

    def changed(self) -> bool:
        """Whether anything was appended since the last read: one fstat, no file content read."""
        return os.fstat(self.fd).st_size != self.offset

    def poll(self) -> Iterator[Entry]:
        """The whole entries after ``offset``, in order. ``offset`` and ``generation`` advance past an
        entry when the consumer asks for the next one (or ends the loop normally), so a consumer that
        stops at an entry it cannot act on yet (a seal whose compaction is unfinished) stays before it."""
        self.torn = False
        size = os.fstat(self.fd).st_size
        while self.offset < size:
            got = self._read_at(self.offset, size)
            if got is None:
                self.torn = True
                return
            entry, end = got
            yield entry
            self.offset = end
            self.entries += 1
            self.generation = entry.generation

    def _read_at(self, offset: int, size: int) -> tuple[Entry, int] | None:
        """The entry at ``offset``, or None for an incomplete tail (a write in progress, or a writer
        that died mid-append); a bad entry that is followed by more data is damage."""
        prefix = _pread_all(self.fd, _PREFIX.size, offset)
        if len(prefix) < _PREFIX.size:
            return None
        magic, head_len, blob_len, crc = _PREFIX.unpack(prefix)
        end = offset + _PREFIX.size + head_len + blob_len
        if magic != _MAGIC:
            if not prefix.strip(b"\x00"):  # zeros: a torn append that extended the file
                return None
            raise self._damage(offset, "an entry does not start where the previous one ends")
        if end > size:
            return None
        body = _pread_all(self.fd, head_len + blob_len, offset + _PREFIX.size)
        if len(body) < head_len + blob_len:
            return None
        if zlib.crc32(body) != crc:
            if end >= size:
                return None  # the last entry, being (or having been) written
            raise self._damage(offset, "checksum mismatch")
        try:
            entry = _decode(body[:head_len], body[head_len:], self.dimension)
        except (ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
            raise self._damage(offset, f"unreadable entry ({exc})") from None
        want = self.generation if entry.op == "seal" else self.generation + 1
        if entry.generation != want:
            raise self._damage(offset, f"entry of generation {entry.generation} where {want} was expected")
        return entry, end

    def _damage(self, offset: int, reason: str) -> VectorseamError:
        return damaged(
            self.directory,
            f"the write log {self.path} is damaged at byte {offset} ({reason}), after generation {self.generation}",
            f"Everything up to that byte is intact. To keep it, back up the directory, then cut the log there "
            f"(`truncate -s {offset} {self.path}`); the writes stored after that byte are lost. Or restore "
            f"the directory from a backup",
        )

    def cut_tail(self) -> None:
        """Drop bytes after ``offset`` that no process has applied or acknowledged (under the lock:
        an incomplete append of a killed writer, or the seal of a compaction that never committed)."""
        if os.fstat(self.fd).st_size > self.offset:
            os.ftruncate(self.fd, self.offset)
        self.torn = False

    def append(self, entry: Entry) -> None:
        """Append and make durable (under the lock, after :meth:`poll` reached the end). On failure the
        log is cut back, so nothing half-written stays, and StoreUnavailableError says so."""
        data = encode(entry)
        try:
            if not self.writable:
                raise OSError(errno.EROFS, "opened read-only")
            written = 0
            while written < len(data):
                written += os.pwrite(self.fd, data[written:], self.offset + written)
            os.fdatasync(self.fd)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.ftruncate(self.fd, self.offset)
            raise StoreUnavailableError(
                f"saving a write to {self.path} failed ({exc}); nothing was written, and the collection "
                "is as it was: retry (other collections are not affected)"
            ) from exc
        self.offset += len(data)
        self.entries += 1
        self.generation = entry.generation

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self.fd)


def open_log(directory: Path, name: str, dimension: int, generation: int, base_bytes: int) -> Log:
    path = directory / name
    try:
        fd, writable = os.open(path, os.O_RDWR), True
    except PermissionError:
        fd, writable = os.open(path, os.O_RDONLY), False
    except OSError as exc:
        if exc.errno != errno.EROFS:
            raise
        fd, writable = os.open(path, os.O_RDONLY), False
    return Log(directory, name, fd, dimension, generation, base_bytes=base_bytes, writable=writable)


# -- manifest and base files --------------------------------------------------------------------------

def _fsync_write(path: Path, data: bytes) -> None:
    with open(path, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def _fsync_dir(directory: Path) -> None:
    dfd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


def write_manifest(directory: Path, manifest: dict[str, Any]) -> None:
    """Replace the manifest atomically: the commit point of a creation or compaction."""
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".manifest-", suffix=".tmp")
    os.close(fd)
    try:
        _fsync_write(Path(tmp), json.dumps(manifest, indent=1).encode())
        os.replace(tmp, directory / MANIFEST)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_dir(directory)


def read_manifest(directory: Path) -> tuple[dict[str, Any], bytes] | None:
    """The manifest and its bytes; None when there is none (no collection, or one being dropped)."""
    try:
        raw = (directory / MANIFEST).read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise damaged(directory, f"{MANIFEST} cannot be read ({exc!r})", _manifest_hint(directory)) from exc
    try:
        manifest = json.loads(raw)
        if not isinstance(manifest, dict):
            raise ValueError(f"{MANIFEST} holds a JSON {type(manifest).__name__}, not an object")
    except ValueError as exc:
        raise damaged(directory, f"{MANIFEST} is damaged ({exc!r})", _manifest_hint(directory)) from exc
    fmt = manifest.get("format")
    if fmt != FORMAT and fmt not in SNAPSHOT_FORMATS:
        readable = ", ".join(map(str, (*SNAPSHOT_FORMATS, FORMAT)))
        raise VectorseamError(
            f"{directory / MANIFEST} has format version {fmt!r}; this vectorseam reads versions {readable}. "
            "Use a matching vectorseam version, or move the directory out of the data directory and ingest again"
        )
    return manifest, raw


def _manifest_hint(directory: Path) -> str:
    return (f"The data files beside it (vectors-*, records-*, log-*) are not affected: restore {MANIFEST} from "
            f"a backup, or move the whole directory out of the data directory (keep it) and ingest again")


@dataclass
class Base:
    """What a base snapshot holds (rows as written; cosine norms or squared norms as the store keeps)."""

    matrix: Matrix
    norms: Matrix
    ids: list[str]
    texts: list[str]
    metas: list[Metadata]


def read_base(directory: Path, manifest: dict[str, Any]) -> Base:
    """The base files the manifest names. FileNotFoundError propagates (the caller re-reads the
    manifest: a compaction may have replaced it meanwhile); anything else is damage."""
    dimension = int(manifest["dimension"])
    count = manifest["count"]
    if manifest.get("vectors") is None:
        if count != 0:
            raise ValueError(f"the manifest counts {count} records but names no files")
        return Base(np.zeros((0, dimension), np.float32), np.zeros(0, np.float32), [], [], [])
    with open(directory / manifest["vectors"], "rb") as fh:
        matrix = np.load(fh, allow_pickle=False)
        norms = np.load(fh, allow_pickle=False)
    with open(directory / manifest["records"], encoding="utf-8") as fh:
        rows = [json.loads(line) for line in fh if line.strip()]
    ids = [r["id"] for r in rows]
    texts = [r["text"] for r in rows]
    metas = [r["metadata"] for r in rows]
    if len(rows) != count or matrix.shape != (count, dimension) or norms.shape != (count,):
        raise ValueError(f"the files hold {len(rows)} records and a {matrix.shape} matrix where the manifest "
                         f"says {count} records of dimension {dimension}")
    if manifest.get("format") == 1 and manifest.get("metric") == "cosine":
        # Format 1 kept unit rows: rebuild the vectors fetch gave (row * norm in float32).
        matrix = matrix * np.asarray(norms, dtype=np.float32)[:, None]
    return Base(np.ascontiguousarray(matrix, dtype=np.float32), np.ascontiguousarray(norms, dtype=np.float32),
                ids, texts, metas)


def _write_base(directory: Path, tag: str, base: Base, n: int) -> tuple[str, str, int]:
    vec_name, rec_name = f"vectors-{tag}.npy", f"records-{tag}.jsonl"
    with open(directory / vec_name, "wb") as fh:
        np.save(fh, base.matrix[:n], allow_pickle=False)
        np.save(fh, base.norms[:n], allow_pickle=False)
        fh.flush()
        os.fsync(fh.fileno())
    lines = (
        json.dumps({"id": i, "text": t, "metadata": m}, ensure_ascii=False)
        for i, t, m in zip(base.ids, base.texts, base.metas, strict=True)
    )
    _fsync_write(directory / rec_name, ("\n".join(lines) + "\n").encode() if n else b"")
    size = (directory / vec_name).stat().st_size + (directory / rec_name).stat().st_size
    return vec_name, rec_name, size


def spec_of(directory: Path, manifest: dict[str, Any]) -> CollectionSpec:
    """The collection's name, dimension, metric and metadata as the manifest records them."""
    try:
        return CollectionSpec(str(manifest["name"]), int(manifest["dimension"]), manifest["metric"],
                              dict(manifest.get("metadata", {})))
    except (KeyError, TypeError, ValueError) as exc:  # ValidationError is a ValueError
        raise damaged(directory, f"{MANIFEST} lacks a readable field ({exc!r})", _manifest_hint(directory)) from exc


# -- whole-collection operations ----------------------------------------------------------------------

@dataclass
class Loaded:
    manifest: dict[str, Any]
    spec: CollectionSpec
    base: Base
    log: Log | None  # None: a format 1/2 directory that could not be upgraded (read-only)


def load(directory: Path) -> Loaded | None:
    """The collection in ``directory`` (base loaded, log opened at its start), or None if there is none.

    A file the manifest names may vanish because another process compacted in between: the manifest
    is then read again and the load retried. Only a file missing under an unchanged manifest, or a
    file that cannot be parsed, is reported as damage.
    """
    for _ in range(20):
        got = read_manifest(directory)
        if got is None:
            return None
        manifest, raw = got
        spec = spec_of(directory, manifest)
        try:
            base = read_base(directory, manifest)
            logf = None
            if manifest.get("format") == FORMAT:
                logf = open_log(directory, str(manifest["log"]), spec.dimension, int(manifest["generation"]),
                                int(manifest.get("base_bytes", 0)))
            return Loaded(manifest, spec, base, logf)
        except FileNotFoundError as exc:
            again = read_manifest(directory)
            if again is None:
                return None
            if again[1] != raw:
                continue  # compacted meanwhile: load the new generation
            raise damaged(directory, f"{MANIFEST} names {exc.filename}, which is missing",
                          _restore_hint(directory)) from exc
        except (OSError, EOFError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise damaged(directory, f"its files cannot be read ({exc!r})", _restore_hint(directory)) from exc
    raise StoreUnavailableError(f"{directory} changed 20 times while being loaded; retry")


def create(directory: Path, spec: CollectionSpec) -> Log:
    """A new, empty collection (under the lock). Leftovers of a creation that crashed (an empty log,
    a temp manifest) are removed; a directory that holds data but no manifest is refused, not emptied."""
    directory.mkdir(parents=True, exist_ok=True)
    leftovers = list(directory.iterdir())
    data = [p.name for p in leftovers if p.is_dir() or (not p.name.startswith(".") and p.stat().st_size > 0)]
    if data:
        raise damaged(directory, f"it holds data files ({', '.join(sorted(data)[:4])}) but no {MANIFEST}",
                      _manifest_hint(directory))
    for leftover in leftovers:
        leftover.unlink(missing_ok=True)
    name = f"log-0-{uuid.uuid4().hex[:8]}.bin"
    _fsync_write(directory / name, b"")
    write_manifest(directory, _manifest(spec, uuid.uuid4().hex, 0, 0, None, None, name, 0))
    return open_log(directory, name, spec.dimension, 0, 0)


def _manifest(spec: CollectionSpec, uid: str, generation: int, count: int, vectors: str | None, records: str | None,
              log_name: str, base_bytes: int, previous: Sequence[str] = ()) -> dict[str, Any]:
    return {
        "format": FORMAT, "uid": uid, "name": spec.name, "dimension": spec.dimension,
        "metric": spec.metric, "metadata": dict(spec.metadata), "generation": generation, "count": count,
        "vectors": vectors, "records": records, "log": log_name, "base_bytes": base_bytes,
        "previous": list(previous),
    }


def compact(directory: Path, old: Log, spec: CollectionSpec, uid: str, base: Base, n: int,
            previous: Sequence[str]) -> tuple[Log, dict[str, Any]]:
    """Write the state (generation ``old.generation``) as a new base with an empty log; under the lock.

    Order: new files, then the seal in the old log, then the manifest (the commit point). A crash
    before the manifest leaves the old files current and the seal pending; the next writer cuts the
    seal off and removes the orphan files. ``previous`` are the files the old manifest named: they
    stay one more generation for processes that read that manifest just before.
    """
    generation = old.generation
    tag = f"{generation}-{uuid.uuid4().hex[:8]}"
    log_name = f"log-{tag}.bin"
    before = (old.offset, old.entries, old.generation)
    try:
        vec_name, rec_name, size = _write_base(directory, tag, base, n)
        _fsync_write(directory / log_name, b"")
        old.append(Entry(generation, "seal", log=log_name))
        manifest = _manifest(spec, uid, generation, n, vec_name, rec_name, log_name, size, previous)
        write_manifest(directory, manifest)
    except BaseException:
        if old.offset != before[0]:  # the seal was appended: take it back
            old.offset, old.entries, old.generation = before
            with contextlib.suppress(OSError):
                old.cut_tail()
        for name in (f"vectors-{tag}.npy", f"records-{tag}.jsonl", log_name):
            with contextlib.suppress(OSError):
                (directory / name).unlink()
        raise
    new = open_log(directory, log_name, spec.dimension, generation, size)
    remove_unreferenced(directory, manifest)
    return new, manifest


def referenced(manifest: dict[str, Any]) -> set[str]:
    names = {MANIFEST, *manifest.get("previous", [])}
    names.update(str(manifest[k]) for k in ("vectors", "records", "log") if manifest.get(k))
    return names


def remove_unreferenced(directory: Path, manifest: dict[str, Any]) -> None:
    """Delete what no process can still need (under the lock): files of generations before the
    previous one, and leftovers of crashed writers (temp manifests, unfinished compactions)."""
    keep = referenced(manifest)
    for path in directory.iterdir():
        if path.name not in keep:
            with contextlib.suppress(OSError):
                path.unlink()


def upgrade(directory: Path, loaded: Loaded) -> tuple[Log, dict[str, Any]]:
    """Rewrite a format 1/2 collection (whole snapshots, no log) as format 3; under the lock."""
    spec, base = loaded.spec, loaded.base
    n = len(base.ids)
    tag = f"0-{uuid.uuid4().hex[:8]}"
    vec_name, rec_name, size = _write_base(directory, tag, base, n) if n else (None, None, 0)
    log_name = f"log-{tag}.bin"
    _fsync_write(directory / log_name, b"")
    manifest = _manifest(spec, uuid.uuid4().hex, 0, n, vec_name, rec_name, log_name, size)
    write_manifest(directory, manifest)
    remove_unreferenced(directory, manifest)
    return open_log(directory, log_name, spec.dimension, 0, size), manifest


def drop(root: Path, name: str, current: Log | None) -> None:
    """Remove a collection (under the lock). A drop entry first tells every process that holds the
    log open; then the directory leaves the data directory in one rename and is deleted."""
    directory = root / name
    if current is not None and current.writable:
        with contextlib.suppress(OSError):
            current.append(Entry(current.generation + 1, "drop"))
    if not directory.exists():
        return
    trash = directory.with_name(f".{directory.name}.deleted-{uuid.uuid4().hex[:8]}")
    os.replace(directory, trash)
    shutil.rmtree(trash, ignore_errors=True)


def follow_seal(directory: Path, seal: Entry, current: Log) -> Log | Literal["wait", "reload"]:
    """Where a process that reached a seal goes next: the new log (its base is exactly the state the
    process holds), "wait" while that compaction has not committed, or "reload" when the process is
    further behind than one compaction (or the collection was replaced)."""
    got = read_manifest(directory)
    if got is None:
        return "reload"
    manifest, _ = got
    if manifest.get("format") != FORMAT:
        return "reload"
    generation = int(manifest.get("generation", -1))
    if manifest.get("log") == seal.log and generation == seal.generation:
        try:
            return open_log(directory, seal.log, current.dimension, generation, int(manifest.get("base_bytes", 0)))
        except FileNotFoundError:
            return "reload"
    if generation > seal.generation:
        return "reload"
    return "wait"
