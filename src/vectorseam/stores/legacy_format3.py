"""Reading collections written by releases before the SQLite store (formats 1-3), to convert them.

Read-only: nothing here writes, locks or deletes. Layout of those directories ``<root>/<name>/``::

    manifest.json            current base and log
    vectors-<G>-<r>.npy      vector arrays at generation G (rows as written, then norms)
    records-<G>-<r>.jsonl    ids, texts and metadata of those rows, one JSON object a line
    log-<G>-<r>.bin          format 3: every write after generation G, one checksummed entry per call

Formats 1 and 2 are a vectors file and a records file named by the manifest (format 1 kept unit rows
and their norms). Conversion (:func:`vectorseam.stores.memory_doctor.upgrade`) reads the base, applies
every whole log entry, and refuses a log whose damage it cannot read past: an entry that fails its
checksum with more entries after it stops the conversion with an error (nothing is converted, and
the old files stay), where the old code would have cut everything after it.
"""

from __future__ import annotations

import json
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from vectorseam.types import CollectionSpec, Metadata

MANIFEST = "manifest.json"
_PREFIX = struct.Struct("<4sIQI")  # magic, header bytes, vector bytes, crc32 of header + vectors
_MAGIC = b"VSE1"


class LegacyUnreadable(Exception):
    """The old files cannot be read whole; the message says where."""


@dataclass
class LegacyCollection:
    spec: CollectionSpec
    ids: list[str]
    texts: list[str]
    metas: list[Metadata]
    vectors: npt.NDArray[np.float32]
    torn_tail: int  # bytes of an unfinished last log entry (a write that was never acknowledged)


def is_legacy(directory: Path) -> bool:
    return (directory / MANIFEST).is_file()


def read(directory: Path) -> LegacyCollection:
    """The collection as the old files hold it: base, then every log entry applied in order."""
    try:
        manifest = json.loads((directory / MANIFEST).read_text(encoding="utf-8"))
        fmt = manifest.get("format")
        if fmt not in (1, 2, 3):
            raise LegacyUnreadable(f"{directory / MANIFEST} has format {fmt!r}, not 1-3")
        spec = CollectionSpec(str(manifest["name"]), int(manifest["dimension"]), manifest["metric"],
                              dict(manifest.get("metadata", {})))
        rows: dict[str, tuple[npt.NDArray[np.float32], str, Metadata]] = {}
        if manifest.get("vectors"):
            with open(directory / manifest["vectors"], "rb") as fh:
                matrix = np.load(fh, allow_pickle=False)
                norms = np.load(fh, allow_pickle=False)
            with open(directory / manifest["records"], encoding="utf-8") as fh:
                lines = [json.loads(line) for line in fh if line.strip()]
            if matrix.shape != (len(lines), spec.dimension) or len(lines) != manifest["count"]:
                raise LegacyUnreadable(f"{directory}: {len(lines)} records and a {matrix.shape} matrix where the "
                                       f"manifest says {manifest['count']}")
            if fmt == 1 and spec.metric == "cosine":
                matrix = matrix * np.asarray(norms, dtype=np.float32)[:, None]
            for line, vector in zip(lines, np.asarray(matrix, dtype=np.float32), strict=True):
                rows[line["id"]] = (vector, line["text"], line["metadata"])
        torn = 0
        if fmt == 3 and manifest.get("log"):
            torn = _apply_log(directory / str(manifest["log"]), spec.dimension, int(manifest["generation"]), rows)
    except LegacyUnreadable:
        raise
    except (OSError, ValueError, KeyError, TypeError, EOFError) as exc:
        raise LegacyUnreadable(f"{directory}: {exc!r}") from exc
    ids = list(rows)
    vectors = np.stack([rows[i][0] for i in ids]) if ids else np.zeros((0, spec.dimension), np.float32)
    return LegacyCollection(spec, ids, [rows[i][1] for i in ids], [rows[i][2] for i in ids],
                            vectors.astype(np.float32), torn)


def _apply_log(path: Path, dimension: int, generation: int,
               rows: dict[str, tuple[npt.NDArray[np.float32], str, Metadata]]) -> int:
    """Apply every whole entry of a format-3 log; returns the bytes of an unfinished tail."""
    data = path.read_bytes()
    offset = 0
    while offset < len(data):
        if len(data) - offset < _PREFIX.size:
            return len(data) - offset
        magic, head_len, blob_len, crc = _PREFIX.unpack_from(data, offset)
        end = offset + _PREFIX.size + head_len + blob_len
        if magic != _MAGIC:
            if not data[offset:].strip(b"\x00"):
                return len(data) - offset  # zeros: a torn append that extended the file
            raise LegacyUnreadable(f"{path} is damaged at byte {offset}: no entry starts there")
        if end > len(data):
            return len(data) - offset
        body = data[offset + _PREFIX.size : end]
        if zlib.crc32(body) != crc:
            if end == len(data):
                return len(data) - offset  # the last entry, never acknowledged
            raise LegacyUnreadable(f"{path} is damaged at byte {offset}: an entry fails its checksum and "
                                   f"{len(data) - end} bytes follow it")
        header: dict[str, Any] = json.loads(body[:head_len].decode("utf-8"))
        op = header["op"]
        want = generation if op == "seal" else generation + 1
        if int(header["gen"]) != want:
            raise LegacyUnreadable(f"{path} is damaged at byte {offset}: generation {header['gen']} where {want} "
                                   "was expected")
        if op == "upsert":
            vectors = np.frombuffer(body[head_len:], dtype="<f4").astype(np.float32)
            vectors = vectors.reshape(len(header["ids"]), dimension)
            for rid, text, meta, vector in zip(header["ids"], header["texts"], header["metadata"], vectors,
                                               strict=True):
                rows.pop(rid, None)
                rows[rid] = (vector, text, meta)
        elif op == "delete":
            for rid in header["ids"]:
                rows.pop(rid, None)
        elif op == "drop":
            rows.clear()
        generation = want
        offset = end
    return 0
