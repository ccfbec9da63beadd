"""Shared helpers for the ingest, migrate and reindex tests (this module holds no tests itself).

Vectors of the real local model (the session's ``local_embedder`` fixture) are kept per text
(``vectors_for``), so several tests and the subprocesses of the kill test (through a pre-filled
embedding cache file) never embed the same text twice.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from vectorseam.embedders.local import LocalEmbedder
from vectorseam.ingest.embed_cache import EmbeddingCache, text_hash

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
