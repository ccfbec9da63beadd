"""An on-disk embedding cache keyed by (embedder fingerprint, text hash).

Embedding is the expensive step of every load job (tens of texts per second on a CPU, money on a
paid API), so a text is embedded once per embedder, ever: re-runs, resumed runs after a crash,
re-ingests into another collection and reindexes back to a previous model all read it from here.
The key includes the fingerprint (model, dimension, customization), so two vector spaces never mix.

SQLite in WAL mode: each batch is one transaction, so a killed process leaves whole batches.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt

from vectorseam.durable import connect, insert_rows, transaction
from vectorseam.embedding import Embedder

_SCHEMA = """
CREATE TABLE IF NOT EXISTS vectors (
    key BLOB PRIMARY KEY,
    vector BLOB NOT NULL
);
"""
# Version 1 kept (fingerprint, text_hash) as a WITHOUT ROWID key. SQLite stores such rows in the key's
# B-tree, and 1.5 KB vectors there made every insert split pages: writes ran 4x slower than with a
# rowid table, and the cache was the biggest cost of a load job after embedding itself.
_V1_TABLE = "embeddings"
_CHUNK = 500  # SQLite's default limit on host parameters is 999 (older builds)


def text_hash(text: str) -> bytes:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()[:20]


def cache_key(fingerprint: str, hashed_text: bytes) -> bytes:
    """One key per (embedder fingerprint, text hash): two vector spaces never share an entry."""
    return hashlib.sha256(fingerprint.encode("utf-8", "surrogatepass") + b"\x00" + hashed_text).digest()[:20]


class EmbeddingCache:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._conn = connect(self.path, synchronous="NORMAL")  # a cache: a lost commit costs time, not data
        self._conn.executescript(_SCHEMA)
        self._lock = threading.Lock()
        self._upgrade_v1()

    def _upgrade_v1(self) -> None:
        """Move a version-1 cache's entries to the current table (once), so no vector is computed again."""
        if self._conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?",
                              (_V1_TABLE,)).fetchone() is None:
            return
        with transaction(self._conn):
            rows = self._conn.execute(f"SELECT fingerprint, text_hash, vector FROM {_V1_TABLE}")
            while part := rows.fetchmany(_CHUNK):
                insert_rows(self._conn, "INSERT OR IGNORE INTO vectors (key, vector) VALUES",
                            [(cache_key(fp, bytes(h)), v) for fp, h, v in part])
            self._conn.execute(f"DROP TABLE {_V1_TABLE}")

    def get_many(self, fingerprint: str, hashes: Sequence[bytes], dimension: int) -> dict[bytes, npt.NDArray[
        np.float32
    ]]:
        found: dict[bytes, npt.NDArray[np.float32]] = {}
        by_key = {cache_key(fingerprint, h): h for h in hashes}
        keys = list(by_key)
        with self._lock:
            for start in range(0, len(keys), _CHUNK):
                part = keys[start : start + _CHUNK]
                rows = self._conn.execute(
                    f"SELECT key, vector FROM vectors WHERE key IN ({','.join('?' * len(part))})", part,
                ).fetchall()
                for key, blob in rows:
                    vec = np.frombuffer(blob, dtype=np.float32)
                    if vec.shape[0] == dimension:
                        found[by_key[bytes(key)]] = vec
        return found

    def put_many(self, fingerprint: str, items: Sequence[tuple[bytes, npt.NDArray[np.float32]]]) -> None:
        if not items:
            return
        rows = [(cache_key(fingerprint, h), np.ascontiguousarray(v, dtype=np.float32).tobytes()) for h, v in items]
        with self._lock, transaction(self._conn, mode="DEFERRED"):
            insert_rows(self._conn, "INSERT OR REPLACE INTO vectors (key, vector) VALUES", rows)

    def close(self) -> None:
        with self._lock:
            self._conn.close()


class CachingEmbedder:
    """Embeds only the texts the cache lacks; counts how many came from the cache."""

    def __init__(self, embedder: Embedder, cache: EmbeddingCache | None) -> None:
        self.embedder = embedder
        self.cache = cache
        self.cached = 0
        self.embedded = 0

    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        dim = self.embedder.dimension
        out = np.zeros((len(texts), dim), dtype=np.float32)
        if not texts:
            return out
        if self.cache is None:
            out[:] = self.embedder.embed_documents(list(texts))
            self.embedded += len(texts)
            return out
        fp = self.embedder.fingerprint
        hashes = [text_hash(t) for t in texts]
        found = self.cache.get_many(fp, hashes, dim)
        missing: dict[bytes, list[int]] = {}
        for i, h in enumerate(hashes):
            vec = found.get(h)
            if vec is None:
                missing.setdefault(h, []).append(i)
            else:
                out[i] = vec
        self.cached += len(texts) - sum(len(v) for v in missing.values())
        if missing:
            order = list(missing)
            vectors = self.embedder.embed_documents([texts[missing[h][0]] for h in order])
            for h, vec in zip(order, vectors, strict=True):
                out[missing[h]] = vec
            self.cache.put_many(fp, list(zip(order, vectors, strict=True)))
            self.embedded += len(order)
        return out
