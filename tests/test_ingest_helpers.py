"""Shared helpers for the ingest, migrate and reindex tests (this module holds no tests itself).

Vectors of the real local model (the session's ``local_embedder`` fixture) are kept per text
(``vectors_for``), so several tests and the subprocesses of the kill test (through a pre-filled
embedding cache file) never embed the same text twice.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from vectorseam.embedders.local import LocalEmbedder
from vectorseam.ingest.embed_cache import EmbeddingCache, text_hash
from vectorseam.store import VectorStore

_VECTORS: dict[str, npt.NDArray[np.float32]] = {}


def vectors_for(texts: Sequence[str], emb: LocalEmbedder) -> npt.NDArray[np.float32]:
    missing = list(dict.fromkeys(t for t in texts if t not in _VECTORS))
    if missing:
        for text, vec in zip(missing, emb.embed_documents(missing), strict=True):
            _VECTORS[text] = vec
    return np.stack([_VECTORS[t] for t in texts]) if texts else np.zeros((0, 384), dtype=np.float32)


def fill_cache(path: Path, texts: Sequence[str], emb: LocalEmbedder) -> None:
    """Put the real model's vectors of ``texts`` into an embedding cache file."""
    vecs = vectors_for(texts, emb)
    cache = EmbeddingCache(path)
    try:
        cache.put_many(emb.fingerprint, [(text_hash(t), v) for t, v in zip(texts, vecs, strict=True)])
    finally:
        cache.close()


def write_jsonl(path: Path, rows: Iterable[dict[str, Any]]) -> Path:
    with open(path, "w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    return path


def make_rows(n: int, start: int = 0, variant: str = "") -> list[dict[str, Any]]:
    """Short rows with metadata of every supported kind (str, int, float, bool, null, list)."""
    topics = ["apples", "rivers", "violins", "comets", "bridges", "tea", "glaciers", "owls"]
    rows = []
    for i in range(start, start + n):
        rows.append({
            "id": f"doc-{i:04d}",
            "text": f"Note {i}{variant}: a short remark about {topics[i % len(topics)]} and number {i * 7 % 13}.",
            "group": topics[i % len(topics)],
            "rank": i,
            "score": round(i / 7, 3),
            "flag": i % 2 == 0,
            "maybe": None if i % 5 == 0 else "x",
            "tags": [topics[i % 3], f"t{i % 4}"],
        })
    return rows


def expected_records(rows: Sequence[dict[str, Any]]) -> dict[str, tuple[str, dict[str, Any]]]:
    return {r["id"]: (r["text"], {k: v for k, v in r.items() if k not in ("id", "text")}) for r in rows}


def source_versions() -> list[list[dict[str, Any]]]:
    """Three versions of one source, for jobs killed and resumed: each changes every text, drops some
    rows and adds others, so every run has writes, updates and deletes to do."""
    return [
        make_rows(120, variant=" (a)"),
        make_rows(120, start=10, variant=" (b)"),  # rows 0-9 vanish, 120-129 appear
        make_rows(100, variant=" (c)") + make_rows(10, start=130, variant=" (c)"),
    ]


def check_store(store: VectorStore, collection: str, rows: list[dict[str, Any]], emb: LocalEmbedder) -> None:
    """Record by record: the collection holds exactly ``rows`` (ids, texts, metadata), with the
    model's vectors for the texts."""
    expected = expected_records(rows)
    stored = {r.id: r for page in store.scan(collection, batch_size=100) for r in page}
    assert sorted(stored) == sorted(expected), (
        f"missing {sorted(set(expected) - set(stored))[:5]}, extra {sorted(set(stored) - set(expected))[:5]}"
    )
    assert store.count(collection) == len(expected)
    ids = sorted(expected)
    want = vectors_for([expected[i][0] for i in ids], emb)
    for i, rid in enumerate(ids):
        rec = stored[rid]
        text, metadata = expected[rid]
        assert rec.text == text, rid
        assert rec.metadata == metadata, rid
        assert rec.vector is not None
        np.testing.assert_allclose(rec.vector, want[i], atol=1e-5, err_msg=rid)


def assert_nothing_to_do(report: dict[str, int], rows: list[dict[str, Any]]) -> None:
    """A re-run over an unchanged source after the kills: every row unchanged, nothing else."""
    assert report == {"added": 0, "updated": 0, "unchanged": len(rows), "deleted": 0, "rejected": 0,
                      "restored": 0}


# A job run as its own process, to be killed: it prints "ready" once imported, "batch N" after each
# batch written and "REPORT {...}" at the end. Its ingest options come as JSON in the last argument.
RUNNER = """
import sys, json
from pathlib import Path
from vectorseam.client import VectorSeam
from vectorseam.ingest_options import IngestOptions
from vectorseam.retrying import RetryPolicy
source, collection, cache, options = sys.argv[1:5]
print("ready", flush=True)
with VectorSeam() as vs:
    opts = IngestOptions(cleanup="full", embed_cache=Path(cache), retry=RetryPolicy(attempts=3, backoff=0.05),
                         **json.loads(options))
    report = vs.ingest_file(source, collection, options=opts,
                            progress=lambda r: print("batch", r.processed, flush=True))
print("REPORT " + json.dumps({k: getattr(report, k) for k in
      ("added", "updated", "unchanged", "deleted", "rejected", "restored")}), flush=True)
"""


@dataclass
class RunningJob:
    """A :data:`RUNNER` process that has finished its imports; ``seen`` is the output read so far."""

    proc: subprocess.Popen[str]
    seen: str
    started: float

    def until_batch(self, n: int) -> None:
        """Read the output until batch ``n`` was reported written (or the job ended before it)."""
        assert self.proc.stdout is not None
        while self.seen.count("batch ") < n:
            line = self.proc.stdout.readline()
            if not line:
                break
            self.seen += line

    def finish(self, timeout: float) -> tuple[int, str, float]:
        """Wait for the exit: the exit code, the whole output and how long the job worked."""
        out, err = self.proc.communicate(timeout=timeout)
        return self.proc.returncode, self.seen + out + err, time.monotonic() - self.started


def start_job(env: dict[str, str], source: Path, collection: str, cache: Path, **options: Any) -> RunningJob:
    """Start a :data:`RUNNER` job and wait for its imports: the job starts working from the return."""
    proc = subprocess.Popen([sys.executable, "-c", RUNNER, str(source), collection, str(cache), json.dumps(options)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    first = proc.stdout.readline()
    assert first.strip() == "ready", first + (proc.stderr.read() if proc.stderr else "")
    return RunningJob(proc, first, time.monotonic())
