"""Ingest benchmark: records per second, the job's overhead over embedding alone, and re-run speed-up.

Not part of ``make bench`` (the full run embeds 2 x 105k texts with the real model: about an hour on
2 cores); run it with ``make bench-ingest`` or directly:

    .venv/bin/python -m benchmarks.ingest_bench                      # everything
    .venv/bin/python -m benchmarks.ingest_bench --corpus scifact --store memory --limit 500

Corpora, all embedded by the real local model (all-MiniLM-L6-v2):

* **SciFact** (5,183 abstracts, ``shared/data/scifact/corpus.jsonl``): long texts; the job chunks
  the abstracts over the model's 256 word pieces, so it embeds more texts than there are abstracts.
* **synthetic** (100,000 short generated rows with metadata): short texts are the hard case for the
  overhead goal, because the model spends least time on each while the job's per-record work
  (reading, hashing, record manager, cache, store writes) stays the same.

The **alternative** each job run is compared with is embedding alone: the same texts (the job's
own chunks), the same batch size, straight through ``embed_documents``, nothing stored. Because a
shared 2-core machine drifts by several per cent over minutes, it is timed both before and after the
job runs of a corpus, and the overhead is taken against their mean (both are reported).

For each store a first run (empty record manager and embedding cache, empty collection) and a
re-run over the unchanged source (same state) are timed; ``speed-up = first run / re-run``.

A last pass uses a **stand-in embedder** (a hash of the text expanded to a unit vector: NOT a model)
on the synthetic corpus to show the job's own cost per record, which the model's time otherwise hides.

Results: ``benchmarks/results/ingest.json`` and ``benchmarks/results/ingest.md``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from benchmarks.common import DATA, RESULTS, log, machine, md_table, require_data, versions
from vectorseam.embedders.local import LocalEmbedder
from vectorseam.embedding import WordTokens
from vectorseam.ingest.chunking import ChunkSpec, chunk_text
from vectorseam.ingest.job import IngestOptions, JobState, ingest_file
from vectorseam.ingest.sources import Document, RowSpec, Source
from vectorseam.stores.memory import MemoryStore

BATCH = 64
SYNTHETIC_ROWS = 100_000


class HashEmbedder(WordTokens):
    """Stand-in: SHAKE-256 of the text expanded to a unit vector. Not a model: it makes embedding
    nearly free so that the job's own cost per record shows."""

    dimension = 384
    fingerprint = "bench:shake256:384"

    def embed_documents(self, texts: Sequence[str], batch_size: int | None = None) -> npt.NDArray[np.float32]:
        raw = b"".join(hashlib.shake_256(t.encode("utf-8", "surrogatepass")).digest(2 * self.dimension)
                       for t in texts)
        out = np.frombuffer(raw, dtype=np.int16).reshape(len(texts), self.dimension).astype(np.float32)
        out /= np.linalg.norm(out, axis=1, keepdims=True)
        return out

    def embed_query(self, text: str) -> npt.NDArray[np.float32]:
        return self.embed_documents([text])[0]


def write_synthetic(path: Path, n: int) -> Path:
    words = ["river", "owl", "comet", "bridge", "violin", "tea", "glacier", "apple", "quiet", "bright",
             "ancient", "rapid", "silver", "harbor", "meadow", "lantern"]
    with open(path, "w", encoding="utf-8") as fh:
        for i in range(n):
            text = " ".join(words[(i * k + k * k) % len(words)] for k in range(3, 15)) + f", note {i}."
            fh.write(json.dumps({"id": f"s{i}", "text": text, "group": words[i % len(words)], "n": i,
                                 "even": i % 2 == 0}) + "\n")
    return path


def write_scifact(path: Path, limit: int | None) -> Path:
    source = require_data(DATA / "scifact" / "corpus.jsonl")
    with open(source, encoding="utf-8") as src, open(path, "w", encoding="utf-8") as dst:
        for i, line in enumerate(src):
            if limit is not None and i >= limit:
                break
            row = json.loads(line)
            dst.write(json.dumps({"id": row["_id"], "text": f"{row['title']}\n{row['text']}".strip(),
                                  "title": row["title"]}) + "\n")
    return path


def job_batches(path: Path, embedder: Any) -> list[list[str]]:
    """Exactly the texts the job embeds, in the calls it makes: the chunks of each batch of BATCH
    source documents (a long abstract gives two or three chunks, so a call holds more than BATCH
    texts, and sentence-transformers sorts a call's texts by length before padding them)."""
    spec = ChunkSpec(embedder.max_tokens, 32)
    batches: list[list[str]] = []
    docs = [doc for doc in Source(path, RowSpec()).documents() if isinstance(doc, Document)]
    for start in range(0, len(docs), BATCH):
        batches.append([t for doc in docs[start : start + BATCH] for t in chunk_text(doc.text, spec, embedder.token_spans)])
    return batches


def embed_only(embedder: Any, batches: Sequence[Sequence[str]]) -> float:
    started = time.perf_counter()
    for batch in batches:
        embedder.embed_documents(batch)
    return time.perf_counter() - started


def rebaseline(corpus: str, path: Path, embedder: Any, out: str) -> None:
    """Time embedding alone in the job's own calls and use it as the baseline of ``corpus``'s rows.

    The first SciFact run timed the baseline in calls of 64 texts, while the job's calls hold the
    chunks of 64 abstracts (about 119 texts), which pad less after sorting by length; the job then
    looked faster than embedding alone. Both baselines stay in the results."""
    result_file = RESULTS / f"{out}.json"
    data = json.loads(result_file.read_text())
    log(f"{corpus}: embedding alone in the job's calls")
    baseline = embed_only(embedder, job_batches(path, embedder))
    for row in data["rows"]:
        if row["corpus"] == corpus and row["embedder"] == embedder.fingerprint:
            row["embed_only_job_calls_s"] = round(baseline, 2)
            _derive(row, baseline)
    data["rebaselined"] = {corpus: time.strftime("%Y-%m-%d %H:%M")}
    result_file.write_text(json.dumps(data, indent=1) + "\n")
    (RESULTS / f"{out}.md").write_text(markdown(data["rows"], machine()))
    print(markdown(data["rows"], machine()))


def _derive(row: dict[str, Any], baseline: float) -> None:
    first = row["first_run_s"]
    row["overhead_pct"] = round(100 * (first / baseline - 1), 1)
    row["job_cost_us_per_record"] = round(1e6 * (first - baseline) / row["records"], 1)
    row["overhead_without_index_build_pct"] = round(100 * ((first - row["index_build_s"]) / baseline - 1), 1)


class IndexTimer:
    """Passes every call to the store and times the index build at the end of its bulk load (pgvector
    defers its HNSW index while the job fills an empty collection, then builds it in one go)."""

    def __init__(self, store: Any) -> None:
        self._store = store
        self.index_build_s = 0.0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    @contextmanager
    def bulk_load(self, collection: str) -> Iterator[None]:
        inner = self._store.bulk_load(collection)
        inner.__enter__()
        try:
            yield
        except BaseException as exc:
            if not inner.__exit__(type(exc), exc, exc.__traceback__):
                raise
        else:
            started = time.perf_counter()
            inner.__exit__(None, None, None)
            self.index_build_s += time.perf_counter() - started


@contextmanager
def open_store(name: str, tmp: Path) -> Iterator[Any]:
    if name == "memory":
        with MemoryStore(tmp / "memory") as store:
            yield store
        return
    from vectorseam_pgvector import create_store
    from vectorseam_pgvector.testing import PostgresServer

    with PostgresServer() as server:
        pg = create_store(dsn=server.dsn(), schema="bench")
        try:
            yield IndexTimer(pg)
        finally:
            pg.close()


def run_job(store_name: str, embedder: Any, path: Path, texts: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="ingest-bench-") as tmpdir:
        tmp = Path(tmpdir)
        state = JobState.under(tmp / "data", f"{store_name}:bench")
        opts = IngestOptions(batch_size=BATCH)
        with open_store(store_name, tmp) as store:
            first = ingest_file(store, embedder, "bench", path, RowSpec(), state, opts)
            rerun = ingest_file(store, embedder, "bench", path, RowSpec(), state, opts)
            count = store.count("bench")
            index_build = getattr(store, "index_build_s", 0.0)
    if not (first.rejected == 0 and first.embedded == texts and rerun.unchanged == first.added
            and rerun.embedded == 0 and count == first.chunks_written):
        raise RuntimeError(f"unexpected job outcome: first {first.summary()}, re-run {rerun.summary()}, "
                           f"{count} records in the store")
    return {"documents": first.added, "records": first.chunks_written, "first_run_s": round(first.seconds, 2),
            "index_build_s": round(index_build, 2), "rerun_s": round(rerun.seconds, 3)}


def bench_corpus(corpus: str, embedder: Any, path: Path, stores: Sequence[str]) -> list[dict[str, Any]]:
    batches = job_batches(path, embedder)
    texts = sum(len(b) for b in batches)
    log(f"{corpus} ({embedder.fingerprint}): {texts} texts; embedding alone")
    before = embed_only(embedder, batches)
    runs = []
    for store in stores:
        log(f"{corpus} ({embedder.fingerprint}): job into {store}")
        runs.append((store, run_job(store, embedder, path, texts)))
    log(f"{corpus} ({embedder.fingerprint}): embedding alone again")
    after = embed_only(embedder, batches)
    baseline = statistics.mean([before, after])
    rows = []
    for store, run in runs:
        row = {"corpus": corpus, "store": store, "embedder": embedder.fingerprint, "texts_embedded": texts, **run,
               "embed_only_before_s": round(before, 2), "embed_only_after_s": round(after, 2),
               "records_per_s": round(run["records"] / run["first_run_s"], 1),
               "rerun_speedup": round(run["first_run_s"] / run["rerun_s"], 1)}
        _derive(row, baseline)
        rows.append(row)
        log(json.dumps(row))
    return rows


def _baseline_cell(row: dict[str, Any]) -> str:
    if "embed_only_job_calls_s" in row:  # re-timed in the job's calls; the 64-text calls in brackets
        return f"{row['embed_only_job_calls_s']} ({row['embed_only_before_s']} / {row['embed_only_after_s']})"
    return f"{row['embed_only_before_s']} / {row['embed_only_after_s']}"


def markdown(rows: Sequence[dict[str, Any]], info: dict[str, Any]) -> str:
    table = md_table(
        ["corpus", "embedder", "store", "docs", "records", "embed alone (s)", "first run (s)",
         "records/s", "overhead", "of which index build", "job cost / record", "re-run (s)", "re-run speed-up"],
        [[r["corpus"], r["embedder"], r["store"], f"{r['documents']:,}", f"{r['records']:,}",
          _baseline_cell(r), r["first_run_s"], r["records_per_s"],
          f"{r['overhead_pct']}%", f"{r['index_build_s']} s" if r["index_build_s"] else "-",
          f"{r['job_cost_us_per_record']} µs", r["rerun_s"], f"{r['rerun_speedup']}x"]
         for r in rows],
    )
    return (f"### Load job: records/s, overhead over embedding alone, re-run speed-up\n\n{table}\n\nOverhead = first run / embedding alone - 1: the same texts in the same calls (the "
            f"chunks of {BATCH} documents per call), timed before and after the job runs (their mean), or re-timed "
            "once where a single figure stands before the brackets (the bracketed pair were calls of "
            f"{BATCH} texts, which pad more). `bench:shake256:384` is a stand-in embedder (a hash, not a model) that shows the "
            f"job's own cost per record. Machine: {info.get('cpu', '?')}, {info['cpus']} CPUs, load average "
            f"{info['load_average_1m']} at the end; shared with other work.\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", choices=["scifact", "synthetic", "stand-in"], nargs="+",
                        default=["scifact", "synthetic", "stand-in"])
    parser.add_argument("--store", choices=["memory", "pgvector"], nargs="+", default=["memory", "pgvector"])
    parser.add_argument("--limit", type=int, default=None, help="documents per corpus (default: all / 100k)")
    parser.add_argument("--out", default="ingest", help="result file stem under benchmarks/results")
    parser.add_argument("--rebaseline", action="store_true",
                        help="only re-time embedding alone (in the job's calls) for --corpus, in the saved results")
    args = parser.parse_args()
    if args.rebaseline:
        if "stand-in" in args.corpus:
            parser.error("--rebaseline re-times the real model: use it with --corpus scifact or synthetic")
        model = LocalEmbedder()
        model.embed_query("warm up")
        with tempfile.TemporaryDirectory(prefix="ingest-bench-src-") as tmpdir:
            for corpus in args.corpus:
                path = (write_scifact(Path(tmpdir) / "s.jsonl", args.limit) if corpus == "scifact"
                        else write_synthetic(Path(tmpdir) / "s.jsonl", args.limit or SYNTHETIC_ROWS))
                rebaseline(corpus, path, model if corpus != "stand-in" else HashEmbedder(), args.out)
        return
    started = time.time()
    rows: list[dict[str, Any]] = []
    model = LocalEmbedder()
    model.embed_query("warm up")  # the model load is in neither timing
    with tempfile.TemporaryDirectory(prefix="ingest-bench-src-") as tmpdir:
        tmp = Path(tmpdir)
        for corpus in args.corpus:
            if corpus == "scifact":
                rows += bench_corpus("scifact", model, write_scifact(tmp / "scifact.jsonl", args.limit), args.store)
            else:
                path = tmp / "synthetic.jsonl"
                if not path.exists():
                    write_synthetic(path, args.limit or SYNTHETIC_ROWS)
                embedder = model if corpus == "synthetic" else HashEmbedder()
                rows += bench_corpus("synthetic", embedder, path, args.store)
    info = machine()
    data = {"rows": rows, "machine": info, "versions": versions("torch", "sentence-transformers", "psycopg"),
            "minutes": round((time.time() - started) / 60, 1),
            "command": "python -m benchmarks.ingest_bench " + " ".join(
                f"--{k} {' '.join(map(str, v)) if isinstance(v, list) else v}"
                for k, v in vars(args).items() if v is not None)}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{args.out}.json").write_text(json.dumps(data, indent=1) + "\n")
    (RESULTS / f"{args.out}.md").write_text(markdown(rows, info))
    print(markdown(rows, info))


if __name__ == "__main__":
    main()
