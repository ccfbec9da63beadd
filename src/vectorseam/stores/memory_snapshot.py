"""Snapshots of a memory-store collection: a cache for opening fast and sharing RAM, never the truth.

A snapshot ``snapshot-<seq>/`` holds the collection as of change ``seq`` of its database
(:mod:`vectorseam.stores.memory_db`): the vectors and norms as ``.npy`` arrays and the ids, texts and
metadata packed into byte buffers with offsets (:mod:`vectorseam.stores.packed`), plus a
``manifest.json`` naming the collection's uid, the row count and a checksum of every file.

Why it exists: loading a million records row by row out of SQLite costs seconds of Python objects.
From a snapshot, opening is mapping files and checking their checksums; the changes committed since
``seq`` are then read from the database as for any other process. The vectors are mapped
copy-on-write, so the workers of ``serve --workers N`` share one copy in the page cache and a row a
worker writes becomes private to it. The vectors file holds spare zero rows past the last record
(a hole in the file, no disk) so appends land in the mapping too.

Why it cannot lose anything: it is written to a temporary directory and renamed into place, it is
only used when its uid matches the database and its checksums hold, and deleting it only makes the
next open slower. A snapshot whose ``seq`` is *ahead* of the database means the database lost commits:
that is reported as damage, never papered over.

Checksums are word sums (a sum and a position-weighted sum of 64-bit words, per 8 MiB block): they
catch flipped bits, zeroed blocks and truncation at memory speed; they are not a defence against
deliberate tampering (anyone who can write the data directory can write the database too).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from vectorseam.durable import FILE_MODE, fsync_dir, move
from vectorseam.stores.packed import PackedList, pack
from vectorseam.types import Metadata

FORMAT = 1
PREFIX = "snapshot-"
MANIFEST = "manifest.json"
_BLOCK_WORDS = 1 << 20  # 8 MiB
_SPARE_SHARE = 0.1  # spare rows in the vectors file, for appends after opening


@dataclass
class Snapshot:
    seq: int
    n: int
    matrix: npt.NDArray[np.float32]  # (capacity, dimension), copy-on-write mapping
    norms: npt.NDArray[np.float32]  # (capacity,), in RAM
    ids: PackedList[str]
    texts: PackedList[str]
    metas: PackedList[Metadata]
    path: Path


class SnapshotDamaged(Exception):
    """A snapshot that fails its checks (it is set aside and the database is read instead)."""


def checksum(path: Path) -> list[int]:
    """[size, sum of words, position-weighted sum of block sums] of a file, modulo 2**64."""
    size = path.stat().st_size
    if size == 0:
        return [0, 0, 0]
    raw = np.memmap(path, dtype=np.uint8, mode="r")
    whole = size // 8 * 8
    words = raw[:whole].view(np.uint64)
    total = np.uint64(0)
    weighted = np.uint64(0)
    with np.errstate(over="ignore"):
        for block, start in enumerate(range(0, words.shape[0], _BLOCK_WORDS), start=1):
            part = np.add.reduce(words[start : start + _BLOCK_WORDS], dtype=np.uint64)
            total += part
            weighted += part * np.uint64(block)
        tail = int.from_bytes(raw[whole:].tobytes().ljust(8, b"\x00"), "little") if whole < size else 0
    del words, raw
    return [size, (int(total) + tail) % (1 << 64), int(weighted)]


def _save(directory: Path, name: str, array: npt.NDArray[Any]) -> None:
    with open(directory / name, "wb") as fh:
        os.fchmod(fh.fileno(), FILE_MODE)
        np.save(fh, array, allow_pickle=False)
        fh.flush()
        os.fsync(fh.fileno())


def _save_vectors(directory: Path, matrix: npt.NDArray[np.float32], n: int, capacity: int) -> None:
    """``matrix[:n]`` as a (capacity, d) array whose rows past ``n`` are a hole in the file."""
    path = directory / "vectors.npy"
    with open(path, "wb") as fh:
        os.fchmod(fh.fileno(), FILE_MODE)
        np.lib.format.write_array_header_1_0(fh, {"descr": "<f4", "fortran_order": False,
                                                  "shape": (capacity, matrix.shape[1])})
        start = fh.tell()
        for lo in range(0, n, 65536):  # in blocks: a copy of a memory-mapped matrix would double the RAM
            fh.write(np.ascontiguousarray(matrix[lo : min(lo + 65536, n)], dtype="<f4").tobytes())
        fh.truncate(start + capacity * matrix.shape[1] * 4)
        fh.flush()
        os.fsync(fh.fileno())


def write(collection_dir: Path, uid: str, seq: int, matrix: npt.NDArray[np.float32], norms: npt.NDArray[np.float32],
          ids: Any, texts: Any, metas: Any, encode_metadata: Any) -> Path:
    """Write the snapshot of state ``seq`` (rows ``0..len(ids)-1``), rename it into place and remove older
    ones. Returns its directory (an existing one for the same ``seq`` is kept: its content is the same)."""
    n = len(ids)
    capacity = max(n + 1024, int(n * (1 + _SPARE_SHARE)))
    final = collection_dir / f"{PREFIX}{seq}"
    tmp = collection_dir / f".{PREFIX}{seq}-{uuid.uuid4().hex[:8]}.tmp"
    tmp.mkdir(mode=0o700)
    try:
        _save_vectors(tmp, matrix, n, capacity)
        spare = np.zeros(capacity, dtype=np.float32)
        spare[:n] = norms[:n]
        _save(tmp, "norms.npy", spare)
        columns = {
            "ids": (s.encode("utf-8") for s in ids),
            "texts": (s.encode("utf-8") for s in texts),
            "metas": (encode_metadata(m) for m in metas),
        }
        for name, items in columns.items():
            blob, offsets = pack(items)
            _save(tmp, f"{name}.npy", blob)
            _save(tmp, f"{name}_off.npy", offsets)
        files = {p.name: checksum(p) for p in sorted(tmp.iterdir())}
        manifest = {"format": FORMAT, "uid": uid, "seq": seq, "n": n, "capacity": capacity,
                    "dimension": int(matrix.shape[1]), "files": files}
        with open(tmp / MANIFEST, "w", encoding="utf-8") as fh:
            os.fchmod(fh.fileno(), FILE_MODE)
            json.dump(manifest, fh)
            fh.flush()
            os.fsync(fh.fileno())
        fsync_dir(tmp)
        try:
            move(tmp, final)
        except OSError:
            if not final.is_dir():
                raise
            shutil.rmtree(tmp, ignore_errors=True)  # another process wrote the same state first
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    remove_older(collection_dir, seq)
    return final


def remove_older(collection_dir: Path, seq: int) -> None:
    """Delete snapshots older than ``seq`` and leftovers of writers that died. A process that has one
    mapped keeps reading it (the files live until unmapped)."""
    for path in collection_dir.iterdir():
        name = path.name
        if name.startswith(PREFIX) and name[len(PREFIX):].isdigit() and int(name[len(PREFIX):]) < seq:
            shutil.rmtree(path, ignore_errors=True)
        elif name.startswith(f".{PREFIX}") and name.endswith(".tmp"):
            with contextlib.suppress(OSError):
                if (path.stat().st_mtime + 3600) < time.time():
                    shutil.rmtree(path, ignore_errors=True)


def available(collection_dir: Path) -> list[Path]:
    """The snapshot directories, newest first."""
    found = [p for p in collection_dir.iterdir()
             if p.name.startswith(PREFIX) and p.name[len(PREFIX):].isdigit() and p.is_dir()]
    return sorted(found, key=lambda p: int(p.name[len(PREFIX):]), reverse=True)


def read(path: Path, uid: str | None, dimension: int, decode_metadata: Any) -> Snapshot:
    """The snapshot at ``path``, every check passed, or SnapshotDamaged saying which failed (``uid``
    None: of whichever database wrote it, for recovering a collection whose database is lost).
    FileNotFoundError propagates (removed meanwhile by a newer snapshot's writer: take that one)."""
    try:
        manifest = json.loads((path / MANIFEST).read_text(encoding="utf-8"))
        if manifest.get("format") != FORMAT or (uid is not None and manifest.get("uid") != uid) or \
                manifest.get("dimension") != dimension:
            raise SnapshotDamaged(f"{path.name} belongs to another collection or format")
        for name, expected in manifest["files"].items():
            got = checksum(path / name)
            if got != list(expected):
                raise SnapshotDamaged(f"{path.name}/{name} fails its checksum")
        n, capacity = int(manifest["n"]), int(manifest["capacity"])
        matrix = np.load(path / "vectors.npy", mmap_mode="c", allow_pickle=False)
        norms = np.array(np.load(path / "norms.npy", allow_pickle=False), dtype=np.float32)
        if matrix.shape != (capacity, dimension) or matrix.dtype != np.float32 or norms.shape != (capacity,):
            raise SnapshotDamaged(f"{path.name}: arrays of the wrong shape")
        columns: dict[str, PackedList[Any]] = {}
        decoders: dict[str, Any] = {"ids": _utf8, "texts": _utf8, "metas": decode_metadata}
        for name, decode in decoders.items():
            blob = np.load(path / f"{name}.npy", mmap_mode="r", allow_pickle=False)
            offsets = np.load(path / f"{name}_off.npy", allow_pickle=False)
            if offsets.shape != (n + 1,) or int(offsets[-1]) != blob.shape[0] or int(offsets[0]) != 0 or \
                    bool(np.any(np.diff(offsets) < 0)):
                raise SnapshotDamaged(f"{path.name}/{name}: offsets do not fit the buffer")
            columns[name] = PackedList(blob, offsets, decode)
        return Snapshot(int(manifest["seq"]), n, matrix, norms, columns["ids"], columns["texts"], columns["metas"],
                        path)
    except FileNotFoundError:
        raise
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise SnapshotDamaged(f"{path.name} cannot be read ({exc})") from exc


def set_aside(path: Path) -> None:
    """Move a damaged snapshot out of the way (kept for inspection; it was only a cache)."""
    with contextlib.suppress(OSError):
        move(path, path.with_name(f".{path.name}.damaged-{uuid.uuid4().hex[:6]}"))


def _utf8(raw: bytes) -> str:
    return raw.decode("utf-8")
