"""Shared plumbing for the analysis benchmarks: data loaders and an on-disk embedding cache.

Embedding is the slow part on a CPU (tens of texts a second), so every text is embedded once and
kept as .npy under ``$VECTORSEAM_BENCH_CACHE`` (default: the system temp dir), keyed by a hash of
the model fingerprint and the texts; a rerun of any benchmark then costs seconds.
"""

from __future__ import annotations

import csv
import hashlib
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("VECTORSEAM_SHARED_DATA", REPO.parent / "shared" / "data"))
RESULTS = REPO / "benchmarks" / "results"
CACHE = Path(os.environ.get("VECTORSEAM_BENCH_CACHE", Path(tempfile.gettempdir()) / "vectorseam-bench-cache"))

_embedder = None


def embedder():  # type: ignore[no-untyped-def]
    global _embedder
    if _embedder is None:
        from vectorseam.embedders.local import LocalEmbedder

        _embedder = LocalEmbedder()
    return _embedder


def embed_cached(name: str, texts: Sequence[str]) -> npt.NDArray[np.float32]:
    """Embeddings of ``texts`` (unique or not), computed once per distinct text list."""
    emb = embedder()
    digest = hashlib.sha256(emb.fingerprint.encode())
    for t in texts:
        digest.update(t.encode("utf-8", "surrogatepass"))
        digest.update(b"\x00")
    path = CACHE / f"{name}-{digest.hexdigest()[:16]}.npy"
    if path.is_file():
        return np.load(path)
    CACHE.mkdir(parents=True, exist_ok=True)
    unique = list(dict.fromkeys(texts))
    start = time.perf_counter()
    print(f"[{name}] embedding {len(unique)} distinct texts ...", file=sys.stderr, flush=True)
    vecs = emb.embed_documents(unique, batch_size=64)
    print(f"[{name}] done in {time.perf_counter() - start:.0f}s", file=sys.stderr, flush=True)
    lookup = {t: i for i, t in enumerate(unique)}
    out = np.ascontiguousarray(vecs[[lookup[t] for t in texts]], dtype=np.float32)
    tmp = path.with_suffix(".tmp.npy")
    np.save(tmp, out)
    os.replace(tmp, path)
    return out


def ag_news() -> tuple[list[str], list[int], list[str]]:
    """AG News test: texts (title + description), labels 0..3, class names."""
    classes = (DATA / "ag_news" / "classes.txt").read_text().split()
    texts, labels = [], []
    with open(DATA / "ag_news" / "test.csv", encoding="utf-8", newline="") as fh:
        for cls, title, desc in csv.reader(fh):
            texts.append(f"{title}. {desc}".replace("\\", " "))
            labels.append(int(cls) - 1)
    return texts, labels, classes


def fine_food() -> list[dict[str, str]]:
    with open(DATA / "cookbook" / "fine_food_reviews_1k.csv", encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def combined(row: dict[str, str]) -> str:
    """The Cookbook's text for a review."""
    return f"Title: {row['Summary'].strip()}; Content: {row['Text'].strip()}"


def mrpc() -> list[tuple[int, str, str]]:
    out = []
    with open(DATA / "mrpc" / "msr_paraphrase_train.txt", encoding="utf-8-sig", newline="") as fh:
        reader = csv.reader(fh, delimiter="\t", quoting=csv.QUOTE_NONE)
        next(reader)
        for row in reader:
            out.append((int(row[0]), row[3], row[4]))
    return out


def snli() -> list[dict[str, str]]:
    with open(DATA / "cookbook" / "snli_1.0_train_2k.csv", encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))
