"""The load job on Ray against the local job: records/s with 1 and 2 embedding workers, and where the
store's write rate becomes the limit. Not part of ``make bench`` (it starts PostgreSQL and a Ray
cluster, and embeds with the real model); run it directly:

    .venv/bin/python -m benchmarks.ingest_ray                  # 300 SciFact abstracts
    .venv/bin/python -m benchmarks.ingest_ray --limit 2000

One run, one corpus (the first ``--limit`` SciFact abstracts, chunked to the model's 256 word pieces),
one model (all-MiniLM-L6-v2 on the CPU), fresh state for every job (empty collection, record manager
and embedding cache), on a local Ray cluster with this machine's CPUs:

* **local**: the local job (:mod:`vectorseam.ingest.job`) into the memory store.
* **ray, 1 / 2 workers**: the Ray engine into the memory store with one and two embedding actors.
  A second Ray run over the unchanged source shows the engine's fixed cost (cluster connection,
  actor start, record manager claims), which a small corpus does not amortize.
* **write limit, pgvector**: the same records upserted straight into pgvector in batches of 64 from
  1 and 2 threads (the store's own write rate), and the Ray engine into pgvector with every vector
  already in the embedding cache (embedding free: what is left is reading, planning, the record
  manager and the writes) with 1 and 2 writers.

Results: ``benchmarks/results/ingest_ray.json`` and ``benchmarks/results/ingest_ray.md``; the capacity
model built on them is in benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from benchmarks.common import RESULTS, log, machine, md_table, versions
from benchmarks.ingest_bench import write_scifact
from vectorseam.config import EmbedderSettings
from vectorseam.embedders.local import LocalEmbedder
from vectorseam.embedding import ensure_collection_for
from vectorseam.ingest.job import IngestOptions, IngestReport, JobState, ingest_file
from vectorseam.ingest.ray_engine import RayCluster, WorkerSetup, expand_sources, ingest_on_ray
from vectorseam.ingest.sources import RowSpec
from vectorseam.stores.memory import MemoryStore
from vectorseam.types import CollectionSpec, Record

BATCH = 64


def _row(name: str, workers: int | str, report: IngestReport, note: str = "") -> dict[str, Any]:
    return {"job": name, "workers": workers, "documents": report.added + report.updated + report.unchanged,
            "records": report.chunks_written, "embedded": report.embedded, "seconds": round(report.seconds, 2),
            "records_per_s": round(report.chunks_written / report.seconds, 1) if report.chunks_written else None,
            "note": note}


def _ray(store: Any, emb: LocalEmbedder, collection: str, path: Path, store_name: str, options: dict[str, Any],
         dsn: str, workers: int, writers: int, cache: Path | None) -> IngestReport:
    ensure_collection_for(store, collection, emb)
    cluster = RayCluster(workers=workers, writers=writers, record_manager_dsn=dsn)
    setup = WorkerSetup(store_name, options, f"{store_name}:bench", EmbedderSettings())
    return ingest_on_ray(store, emb, collection, expand_sources(path), setup, cluster,
                         options=IngestOptions(batch_size=BATCH), embed_cache=cache)


def _upsert_rate(store: Any, records: list[Record], threads: int) -> float:
    """Records/s of plain upserts in batches of BATCH from ``threads`` threads (a fresh collection)."""
    collection = f"raw{threads}"
    dimension = records[0].vector.shape[0] if records[0].vector is not None else 0
    store.ensure_collection(CollectionSpec(collection, dimension, "cosine"))
    batches = [records[i : i + BATCH] for i in range(0, len(records), BATCH)]
    started = time.perf_counter()

    def work(part: list[list[Record]]) -> None:
        for batch in part:
            store.upsert(collection, batch)

    pool = [threading.Thread(target=work, args=(batches[t::threads],)) for t in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return len(records) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--limit", type=int, default=300, help="SciFact abstracts (default 300: a shared machine)")
    parser.add_argument("--out", default="ingest_ray", help="result file stem under benchmarks/results")
    args = parser.parse_args()
    started = time.time()
    rows: list[dict[str, Any]] = []
    try:
        _measure(args.limit, rows)
    finally:  # what was measured is kept even when a later step fails
        _save(rows, args.limit, args.out, started)


def _measure(limit: int, rows: list[dict[str, Any]]) -> None:
    import ray
    from vectorseam_pgvector import create_store
    from vectorseam_pgvector.testing import PostgresServer

    emb = LocalEmbedder()
    emb.embed_query("warm up")  # the local job's model load is in no timing (each Ray actor loads its own)
    with tempfile.TemporaryDirectory(prefix="ingest-ray-bench-") as tmpdir, PostgresServer() as pg:
        tmp = Path(tmpdir)
        path = write_scifact(tmp / "scifact.jsonl", limit)
        ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False)
        try:
            with MemoryStore(tmp / "memory") as store:
                mem = {"path": str(tmp / "memory")}
                log("local job")
                state = JobState.under(tmp / "local", "memory:bench")
                local = ingest_file(store, emb, "local", path, RowSpec(), state, IngestOptions(batch_size=BATCH))
                rows.append(_row("local", "-", local, "2 torch threads in one process"))
                for workers in (1, 2):
                    log(f"ray, {workers} worker(s)")
                    report = _ray(store, emb, f"ray{workers}", path, "memory", mem, pg.dsn(), workers, 2, None)
                    rows.append(_row("ray", workers, report, "embedding actors load the model in the run"))
                log("ray, unchanged source (fixed cost)")
                again = _ray(store, emb, "ray1", path, "memory", mem, pg.dsn(), 1, 2, None)
                rows.append({**_row("ray re-run, unchanged", 1, again), "note": "the engine's fixed cost"})
                records = [r for page in store.scan("local", 500, include_vectors=True) for r in page]
            pgstore = create_store(dsn=pg.dsn(), schema="bench")
            try:
                for threads in (1, 2):
                    log(f"pgvector upserts, {threads} thread(s)")
                    rate = _upsert_rate(pgstore, records, threads)
                    rows.append({"job": "pgvector upserts", "workers": threads, "documents": None,
                                 "records": len(records), "embedded": 0, "seconds": round(len(records) / rate, 2),
                                 "records_per_s": round(rate, 1), "note": f"{threads} thread(s), batches of {BATCH}"})
                pgopts = {"dsn": pg.dsn(), "schema": "bench"}
                for writers in (1, 2):
                    log(f"ray into pgvector, vectors cached, {writers} writer(s)")
                    report = _ray(pgstore, emb, f"pgray{writers}", path, "pgvector", pgopts, pg.dsn(), 1, writers,
                                  state.embed_cache)
                    rows.append(_row("ray into pgvector, embedding cached", f"{writers} writer(s)", report,
                                     "every vector from the cache: the write path's limit"))
            finally:
                pgstore.close()
        finally:
            ray.shutdown()


def _save(rows: list[dict[str, Any]], limit: int, out: str, started: float) -> None:
    info = machine()
    data = {"rows": rows, "machine": info, "corpus": f"scifact, first {limit} abstracts",
            "versions": versions("ray", "torch", "sentence-transformers", "psycopg"),
            "minutes": round((time.time() - started) / 60, 1),
            "command": f"python -m benchmarks.ingest_ray --limit {limit}"}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{out}.json").write_text(json.dumps(data, indent=1) + "\n")
    (RESULTS / f"{out}.md").write_text(markdown(data))
    print(markdown(data))


def markdown(data: dict[str, Any]) -> str:
    info = data["machine"]
    table = md_table(["job", "workers", "documents", "records", "texts embedded", "seconds", "records/s", "note"],
                     [[r["job"], r["workers"], r["documents"] if r["documents"] is not None else "-", r["records"],
                       r["embedded"], r["seconds"], r["records_per_s"] if r["records_per_s"] is not None else "-",
                       r["note"]] for r in data["rows"]])
    return (f"### Load job on Ray vs the local job ({data['corpus']}, all-MiniLM-L6-v2 on the CPU)\n\n{table}\n\n"
            f"Records are the chunks written. Machine: {info.get('cpu', '?')}, {info['cpus']} CPUs, load average "
            f"{info['load_average_1m']} at the end, shared with other work while this ran: absolute numbers are "
            "low and noisy; see benchmarks/README.md (capacity model) for what they imply.\n")


if __name__ == "__main__":
    main()
