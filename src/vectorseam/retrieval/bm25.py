"""A BM25 keyword index kept beside a collection, for backends without native sparse search.

Why a sidecar of our own rather than bm25s's index files: bm25s cannot add or remove documents, so
every upsert would mean re-tokenising the whole corpus (tens of seconds for SciFact on this machine).
Here each document is tokenised once (the same tokeniser as bm25s: lower-cased ``\\w\\w+`` words,
bm25s's English stop words, PyStemmer's English Snowball stemmer) and the scores are Lucene's BM25
(``idf = ln(1 + (N - df + 0.5) / (df + 0.5))``, ``tf / (tf + k1 (1 - b + b dl / avgdl))``), which is
bm25s's default ``lucene`` method; the tests check the two agree.

How it stays in step with the collection:

* Files live in ``DATA_DIR/bm25/<store>/<collection>/``: ``tokens.jsonl`` (a snapshot: id, a hash of
  the text, its tokens), ``journal.jsonl`` (puts and deletes appended since the snapshot) and
  ``state.json``. Writes are atomic (temp file + ``os.replace``) under an ``flock``.
* Writes made through :class:`~vectorseam.retrieval.hybrid.SyncedStore` (the CLI and API wrap the configured
  store in it) append to the journal right after the store accepted them; deletes by filter and
  dropped collections discard the sidecar.
* Before every search the record count is compared with the store's; once per process the content
  is verified too (a text-only scan hashed per record, order-independently). Any difference, e.g.
  from a process that wrote to the backend directly, rebuilds the sidecar from ``store.scan``.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import tempfile
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import Stemmer
from bm25s.stopwords import STOPWORDS_EN
from scipy import sparse

from vectorseam.errors import VectorseamError
from vectorseam.store import VectorStore
from vectorseam.types import Record

_TOKEN = re.compile(r"(?u)\b\w\w+\b")
_STOP = frozenset(STOPWORDS_EN)
_STEMMER = Stemmer.Stemmer("english")
_FORMAT = 1
_MASK64 = (1 << 64) - 1


def tokenize(text: str) -> list[str]:
    """bm25s's default tokenisation with its English stop words and the Snowball stemmer."""
    words = [w for w in _TOKEN.findall(text.lower()) if w not in _STOP]
    return list(_STEMMER.stemWords(words))


def text_hash(record_id: str, text: str) -> int:
    return int.from_bytes(hashlib.blake2b(f"{record_id}\x00{text}".encode(), digest_size=8).digest(), "big")


class BM25Model:
    """Lucene BM25 over a docs x terms count matrix; rebuilt from token lists in well under a second."""

    def __init__(self, ids: list[str], token_lists: list[list[str]], k1: float = 1.5, b: float = 0.75) -> None:
        self.ids = ids
        self.k1, self.b = k1, b
        self.vocab: dict[str, int] = {}
        rows: list[int] = []
        cols: list[int] = []
        vals: list[int] = []
        lengths = np.zeros(len(ids), dtype=np.float64)
        for row, tokens in enumerate(token_lists):
            lengths[row] = len(tokens)
            for term, tf in Counter(tokens).items():
                rows.append(row)
                cols.append(self.vocab.setdefault(term, len(self.vocab)))
                vals.append(tf)
        self.tf = sparse.csc_matrix(
            (np.asarray(vals, dtype=np.float64), (rows, cols)), shape=(len(ids), max(len(self.vocab), 1))
        )
        n = len(ids)
        avgdl = float(lengths.mean()) if n else 1.0
        self.norm = k1 * (1.0 - b + b * lengths / (avgdl or 1.0))
        df = np.diff(self.tf.indptr).astype(np.float64)
        self.idf = np.log(1.0 + (n - df + 0.5) / (df + 0.5))

    def scores(self, query: str) -> npt.NDArray[np.float64]:
        """The BM25 score of every document for ``query`` (zeros where no query term occurs)."""
        out = np.zeros(len(self.ids), dtype=np.float64)
        for term in tokenize(query):
            col = self.vocab.get(term)
            if col is None:
                continue
            start, end = self.tf.indptr[col], self.tf.indptr[col + 1]
            rows = self.tf.indices[start:end]
            tf = self.tf.data[start:end]
            out[rows] += self.idf[col] * tf / (tf + self.norm[rows])
        return out

    def top(self, query: str, k: int | None = None) -> list[tuple[str, float]]:
        """Documents with a positive score, best first (ties by id); all of them when k is None."""
        scores = self.scores(query)
        nz = np.flatnonzero(scores > 0)
        order = sorted(nz.tolist(), key=lambda i: (-scores[i], self.ids[i]))
        if k is not None:
            order = order[:k]
        return [(self.ids[i], float(scores[i])) for i in order]


class BM25Sidecar:
    """The keyword index of one collection of one store, persisted under ``directory``."""

    def __init__(self, store: VectorStore, collection: str, directory: Path, verify: bool = True) -> None:
        self.store = store
        self.collection = collection
        self.directory = Path(directory)
        self.verify = verify
        self._docs: dict[str, tuple[int, list[str]]] | None = None  # id -> (text hash, tokens)
        self._model: BM25Model | None = None
        self._verified = False
        self.rebuilds = 0

    # -- files ------------------------------------------------------------------------------------
    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.directory.mkdir(parents=True, exist_ok=True)
        with open(self.directory / ".lock", "a+") as fh:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh.fileno(), fcntl.LOCK_UN)

    def _read(self) -> dict[str, tuple[int, list[str]]] | None:
        state_file = self.directory / "state.json"
        if not state_file.is_file():
            return None
        try:
            state = json.loads(state_file.read_text())
            if state.get("format") != _FORMAT:
                return None
            docs: dict[str, tuple[int, list[str]]] = {}
            for name in ("tokens.jsonl", "journal.jsonl"):
                path = self.directory / name
                if not path.is_file():
                    continue
                with open(path, encoding="utf-8") as fh:
                    for line in fh:
                        if not line.strip():
                            continue
                        op = json.loads(line)
                        if op.get("op") == "del":
                            docs.pop(op["id"], None)
                        else:
                            docs[op["id"]] = (int(op["h"]), list(op["t"]))
        except (OSError, ValueError, KeyError, TypeError):
            return None  # damaged: rebuilt from the store, which holds the truth
        return docs

    def _write_snapshot(self, docs: dict[str, tuple[int, list[str]]]) -> None:
        lines = (json.dumps({"id": i, "h": h, "t": t}, ensure_ascii=False) for i, (h, t) in docs.items())
        _atomic_write(self.directory / "tokens.jsonl", "".join(f"{line}\n" for line in lines))
        (self.directory / "journal.jsonl").unlink(missing_ok=True)
        _atomic_write(self.directory / "state.json", json.dumps({"format": _FORMAT, "count": len(docs)}))

    def _append(self, ops: Iterable[dict[str, Any]]) -> None:
        with open(self.directory / "journal.jsonl", "a", encoding="utf-8") as fh:
            fh.write("".join(json.dumps(op, ensure_ascii=False) + "\n" for op in ops))
            fh.flush()
            os.fsync(fh.fileno())

    # -- keeping in step --------------------------------------------------------------------------
    def rebuild(self) -> None:
        """Re-read every text from the store and re-tokenise (only what is new or changed)."""
        old = self._docs or {}
        docs: dict[str, tuple[int, list[str]]] = {}
        for batch in self.store.scan(self.collection, batch_size=1000, include_vectors=False):
            for rec in batch:
                h = text_hash(rec.id, rec.text)
                prev = old.get(rec.id)
                docs[rec.id] = prev if prev is not None and prev[0] == h else (h, tokenize(rec.text))
        with self._locked():
            self._write_snapshot(docs)
        self._docs, self._model = docs, None
        self._verified = True
        self.rebuilds += 1

    def _store_digest(self) -> tuple[int, int]:
        total, count = 0, 0
        for batch in self.store.scan(self.collection, batch_size=1000, include_vectors=False):
            for rec in batch:
                total = (total + text_hash(rec.id, rec.text)) & _MASK64
                count += 1
        return count, total

    def ensure_fresh(self) -> None:
        if self._docs is None:
            with self._locked():
                self._docs = self._read()
            self._model = None
            if self._docs is None:
                self.rebuild()
                return
        assert self._docs is not None
        if self.store.count(self.collection) != len(self._docs):
            with self._locked():  # another process may have journalled writes since we loaded
                self._docs = self._read() or {}
            self._model = None
            if self.store.count(self.collection) != len(self._docs):
                self.rebuild()
                return
        if self.verify and not self._verified:
            count, digest = self._store_digest()
            mine = sum(h for h, _ in self._docs.values()) & _MASK64
            if count != len(self._docs) or digest != mine:
                self.rebuild()
            self._verified = True

    def apply_upsert(self, records: Iterable[Record]) -> None:
        """Journal records the store has just accepted; a missing sidecar is built later from a scan."""
        with self._locked():
            if not (self.directory / "state.json").is_file():
                self._docs, self._model = None, None
                return
            if self._docs is None:
                self._docs = self._read()
                if self._docs is None:
                    return
            ops = []
            for rec in records:
                h = text_hash(rec.id, rec.text)
                prev = self._docs.get(rec.id)
                if prev is not None and prev[0] == h:
                    continue
                tokens = tokenize(rec.text)
                self._docs[rec.id] = (h, tokens)
                ops.append({"op": "put", "id": rec.id, "h": h, "t": tokens})
            if ops:
                self._append(ops)
                self._model = None
                self._maybe_compact()

    def apply_delete(self, ids: Iterable[str]) -> None:
        with self._locked():
            if not (self.directory / "state.json").is_file():
                self._docs, self._model = None, None
                return
            if self._docs is None:
                self._docs = self._read()
                if self._docs is None:
                    return
            ops = [{"op": "del", "id": i} for i in ids if self._docs.pop(i, None) is not None]
            if ops:
                self._append(ops)
                self._model = None
                self._maybe_compact()

    def _maybe_compact(self) -> None:
        journal = self.directory / "journal.jsonl"
        snapshot = self.directory / "tokens.jsonl"
        if self._docs is not None and journal.is_file() and (
            not snapshot.is_file() or journal.stat().st_size > snapshot.stat().st_size // 2
        ):
            self._write_snapshot(self._docs)

    def discard(self) -> None:
        """Forget the index (after a delete by filter or a dropped collection); rebuilt on next use."""
        self._docs, self._model, self._verified = None, None, False
        if self.directory.exists():
            with self._locked():
                for name in ("state.json", "tokens.jsonl", "journal.jsonl"):
                    (self.directory / name).unlink(missing_ok=True)

    # -- search -----------------------------------------------------------------------------------
    def model(self) -> BM25Model:
        self.ensure_fresh()
        if self._model is None:
            assert self._docs is not None
            ids = sorted(self._docs)
            self._model = BM25Model(ids, [self._docs[i][1] for i in ids])
        return self._model

    def search(self, query: str, k: int | None = None) -> list[tuple[str, float]]:
        return self.model().top(query, k)


def _atomic_write(path: Path, data: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}-", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise VectorseamError(f"cannot write the BM25 index file {path}: {exc}") from exc


def remove_dir(directory: Path) -> None:
    shutil.rmtree(directory, ignore_errors=True)
