"""Ingest benchmark: records per second, the job's overhead over embedding alone, and re-run speed-up.

Two corpora:

* **SciFact** (5,183 abstracts, ``../shared/data/scifact/corpus.jsonl``) with the real local model.
  The job chunks abstracts longer than the model's 254 word pieces, so it embeds more texts than
  there are abstracts; the embedding-only baseline embeds exactly the same chunk texts.
* **synthetic** (100,000 short rows) with a fast deterministic stand-in embedder (a hash of the text
  seeds a random unit vector). It is NOT a model: it only makes embedding cheap so that the JOB's own
  cost (reading, hashing, the record manager, the embedding cache, store writes and flushes) shows.

For each store: the embedding-only time (same texts, same batch size, no job), a first run (empty
record manager and cache: overhead = job time / embedding time - 1), and a re-run over the unchanged
source (speed-up = first run time / re-run time). Results go to ``benchmarks/results/ingest_*.json``
and a Markdown table, ``benchmarks/results/ingest_summary.md``.

    .venv/bin/python benchmarks/ingest_bench.py --corpus synthetic --store memory
    .venv/bin/python benchmarks/ingest_bench.py --corpus scifact --store memory pgvector
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from vectorseam.chunking import ChunkSpec, chunk_text, tokenizer_for
from vectorseam.embedders.local import LocalEmbedder
from vectorseam.ingest import IngestOptions, JobState, ingest_file
from vectorseam.sources import RowSpec, Source
from vectorseam.store import VectorStore
from vectorseam.stores.memory import MemoryStore

RESULTS = Path(__file__).resolve().parent / "results"
SCIFACT = Path(__file__).resolve().parents[2] / "shared" / "data" / "scifact" / "corpus.jsonl"


class HashEmbedder:
    """Deterministic stand-in: a text's hash seeds a random unit vector (not a language model)."""

    dimension = 384
    fingerprint = "bench:hash:384"

    def embed_documents(self, texts: Sequence[str], batch_size: int | None = None) -> npt.NDArray[np.float32]:
        out = np.empty((len(texts), self.dimension), dtype=np.float32)
        for i, text in enumerate(texts):
            seed = int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little")
            vec = np.random.default_rng(seed).standard_normal(self.dimension)
            out[i] = vec / np.linalg.norm(vec)
        return out

    def embed_query(self, text: str) -> npt.NDArray[np.float32]:
        return np.asarray(self.embed_documents([text])[0], dtype=np.float32)


def synthetic(path: Path, n: int) -> Path:
    words = ["river", "owl", "comet", "bridge", "violin", "tea", "glacier", "apple", "quiet", "bright", "ancient", "rapid"]
    with open(path, "w") as fh:
        for i in range(n):
            text = " ".join(words[(i * k) % len(words)] for k in range(3, 13)) + f" #{i}"
            fh.write(json.dumps({"id": f"s{i}", "text": text, "group": words[i % len(words)], "n": i}) + "\n")
    return path


def scifact(path: Path, limit: int | None) -> Path:
    with open(SCIFACT) as src, open(path, "w") as dst:
        for i, line in enumerate(src):
            if limit is not None and i >= limit:
                break
            row = json.loads(line)
            dst.write(json.dumps({"id": row["_id"], "text": f"{row['title']}\n{row['text']}".strip(),
                                  "title": row["title"]}) + "\n")
    return path


def chunk_texts(path: Path, embedder: Any) -> list[str]:
    """Exactly the texts the job will embed (the same chunking), for the embedding-only baseline."""
    limit, factory = tokenizer_for(embedder)
    spec = ChunkSpec(limit, 32)
    texts: list[str] = []
    for doc in Source(path).documents():
        if not hasattr(doc, "text"):
            continue
        texts.extend(chunk_text(doc.text, spec, factory))
    return texts


@contextmanager
def open_store(name: str, tmp: Path) -> Iterator[VectorStore]:
    if name == "memory":
        store = MemoryStore(tmp / "memory")
        try:
            yield store
        finally:
            store.close()
        return
    from vectorseam_pgvector import create_store
    from vectorseam_pgvector.testing import PostgresServer

    with PostgresServer() as server:
        pg = create_store(dsn=server.dsn(), schema="bench")
        try:
            yield pg
        finally:
            pg.close()


def bench(corpus: str, store_name: str, limit: int | None, batch_size: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="ingest-bench-") as tmpdir:
        tmp = Path(tmpdir)
        if corpus == "synthetic":
            embedder: Any = HashEmbedder()
            path = synthetic(tmp / "synthetic.jsonl", limit or 100_000)
        else:
            embedder = LocalEmbedder()
            embedder.embed_query("warm up")  # model load is not part of either timing
            path = scifact(tmp / "scifact.jsonl", limit)
        texts = chunk_texts(path, embedder)
        started = time.perf_counter()
        for start in range(0, len(texts), batch_size):
            embedder.embed_documents(texts[start : start + batch_size])
        embed_only = time.perf_counter() - started
        state = JobState.under(tmp / "data", f"{store_name}:bench")
        with open_store(store_name, tmp) as store:
            opts = IngestOptions(batch_size=batch_size)
            first = ingest_file(store, embedder, "bench", path, RowSpec(), state, opts)
            rerun = ingest_file(store, embedder, "bench", path, RowSpec(), state, opts)
            count = store.count("bench")
        assert first.rejected == 0 and rerun.unchanged == first.added and count == first.chunks_written
        result = {
            "corpus": corpus, "store": store_name, "embedder": embedder.fingerprint,
            "documents": first.added, "records": first.chunks_written, "texts_embedded": first.embedded,
            "batch_size": batch_size,
            "embed_only_s": round(embed_only, 2),
            "first_run_s": round(first.seconds, 2),
            "first_run_docs_per_s": round(first.added / first.seconds, 1),
            "overhead_vs_embedding_pct": round(100 * (first.seconds / embed_only - 1), 1),
            "rerun_s": round(rerun.seconds, 3),
            "rerun_speedup": round(first.seconds / rerun.seconds, 1),
            "machine": f"{platform.machine()}, {os.cpu_count()} CPUs (shared with other jobs while measured)",
            "python": sys.version.split()[0],
        }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"ingest_{corpus}_{store_name}.json").write_text(json.dumps(result, indent=1) + "\n")
    return result


def write_table() -> Path:
    rows = [json.loads(p.read_text()) for p in sorted(RESULTS.glob("ingest_*_*.json"))]
    lines = [
        "| corpus | store | embedder | docs | records | embed only (s) | first run (s) | docs/s | overhead "
        "| re-run (s) | re-run speed-up |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['corpus']} | {r['store']} | {r['embedder']} | {r['documents']} | {r['records']} | "
            f"{r['embed_only_s']} | {r['first_run_s']} | {r['first_run_docs_per_s']} | "
            f"{r['overhead_vs_embedding_pct']}% | {r['rerun_s']} | {r['rerun_speedup']}x |"
        )
    out = RESULTS / "ingest_summary.md"
    out.write_text("\n".join(lines) + "\n")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", choices=["scifact", "synthetic"], nargs="+", default=["synthetic", "scifact"])
    parser.add_argument("--store", choices=["memory", "pgvector"], nargs="+", default=["memory", "pgvector"])
    parser.add_argument("--limit", type=int, default=None, help="documents to use (default: all / 100k)")
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args()
    for corpus in args.corpus:
        for store in args.store:
            result = bench(corpus, store, args.limit, args.batch_size)
            print(json.dumps(result), flush=True)
    print(write_table().read_text())


if __name__ == "__main__":
    main()
