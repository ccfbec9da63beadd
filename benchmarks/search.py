"""Exact search: the memory store against FAISS ``IndexFlatIP`` on the same vectors, in the same run;
and how query time and memory grow with the collection (table and PNG plot).

Vectors are real-embedding-like: grown from real all-MiniLM-L6-v2 embeddings of AG News and SciFact
by :func:`benchmarks.common.synthesize`. Queries are real held-out embeddings. Every record carries
``{"bucket": i % 10}``, so the filter ``{"bucket": 3}`` admits 10%.

FAISS gets its filter as a precomputed ``IDSelectorBitmap`` (a FAISS user would have to build and
maintain that bitmap themselves); the memory store evaluates the portable filter from metadata on
every query (from cached typed columns, see src/vectorseam/stores/columns.py).
"""

from __future__ import annotations

import gc
import time
from typing import Any

import numpy as np

from benchmarks.common import (
    RESULTS,
    Matrix,
    Result,
    latency_stats,
    log,
    md_table,
    real_embeddings,
    settled_rss,
    synthesize,
    time_calls,
)
from vectorseam.stores.memory import MemoryStore
from vectorseam.types import CollectionSpec, Record

K = 10
BATCH = 64
FILTER = {"bucket": 3}


def build_store(vectors: Matrix, store: MemoryStore | None = None) -> tuple[MemoryStore, float]:
    store = store or MemoryStore()
    store.ensure_collection(CollectionSpec("bench", vectors.shape[1], "cosine"))
    start = time.perf_counter()
    step = 50_000
    for s in range(0, len(vectors), step):
        store.upsert("bench", [Record(f"doc-{i}", vectors[i], "", {"bucket": i % 10})
                               for i in range(s, min(len(vectors), s + step))])
    return store, time.perf_counter() - start


def measure_size(n: int, base: Matrix, queries: Matrix, quick: bool) -> dict[str, Any]:
    import faiss

    log(f"search: synthesising {n:,} vectors")
    vectors = synthesize(base, n, seed=n)
    rss0 = settled_rss()
    store, build_s = build_store(vectors)
    rss_store = settled_rss() - rss0
    coll = store._get("bench")
    matrix_bytes = int(coll.matrix.nbytes + coll.norms.nbytes)
    raw = n * vectors.shape[1] * 4
    index = faiss.IndexFlatIP(vectors.shape[1])
    index.add(vectors)
    del vectors
    gc.collect()
    bucket = np.arange(n) % 10 == 3
    selector = faiss.IDSelectorBitmap(np.packbits(bucket, bitorder="little"))  # type: ignore[call-arg, arg-type]
    fparams = faiss.SearchParameters(sel=selector)  # type: ignore[call-arg]

    big = n >= 500_000
    singles = 15 if big else (30 if quick else 100)
    batches = 2 if big else (3 if quick else 8)
    qn = len(queries)
    out: dict[str, Any] = {"n": n, "build_s": round(build_s, 1), "raw_vector_bytes": raw,
                           "store_matrix_bytes": matrix_bytes, "store_rss_bytes": rss_store,
                           "matrix_ratio": round(matrix_bytes / raw, 3), "rss_ratio": round(rss_store / raw, 3)}
    # The first filtered query builds the filter column: time it on its own.
    start = time.perf_counter()
    store.query("bench", queries[0], k=K, filter=FILTER)
    out["first_filtered_query_ms"] = round((time.perf_counter() - start) * 1e3, 1)

    def ours(batch: int, flt: dict[str, int] | None) -> Any:
        return lambda i: store.query("bench", queries[(i * batch) % (qn - batch) : (i * batch) % (qn - batch) + batch],
                                     k=K, filter=flt)

    def theirs(batch: int, flt: bool) -> Any:
        def call(i: int) -> Any:
            q = queries[(i * batch) % (qn - batch) : (i * batch) % (qn - batch) + batch]
            return index.search(q, K, params=fparams) if flt else index.search(q, K)
        return call

    rows = []
    for batch, calls in ((1, singles), (BATCH, batches)):
        for flt in (False, True):
            mem = latency_stats(time_calls(ours(batch, FILTER if flt else None), calls), batch)
            fai = latency_stats(time_calls(theirs(batch, flt), calls), batch)
            rows.append({"batch": batch, "filtered": flt, "memory": mem, "faiss": fai,
                         "ratio": round(mem["qps"] / fai["qps"], 3)})
    out["rows"] = rows
    # Exactness: the same top-10 as FAISS (ids and scores), unfiltered and filtered.
    check = queries[:BATCH]
    mine = store.query("bench", check, k=K)
    mine_f = store.query("bench", check, k=K, filter=FILTER)
    d, labels = index.search(check, K)
    df, labels_f = index.search(check, K, params=fparams)

    def agree(hits: list[Any], lab: Any, dist: Any) -> tuple[float, float]:
        ids = [int(h.id.split("-")[1]) for h in hits]
        overlap = len(set(ids) & set(lab.tolist())) / K
        return overlap, float(np.max(np.abs(np.array([h.score for h in hits]) - dist)))

    pairs = [agree(h, lab, dd) for h, lab, dd in zip(mine, labels, d, strict=True)]
    pairs += [agree(h, lab, dd) for h, lab, dd in zip(mine_f, labels_f, df, strict=True)]
    out["top10_overlap_min"] = min(p[0] for p in pairs)
    out["max_score_difference"] = max(p[1] for p in pairs)
    out["filtered_hits_all_match"] = all(h.metadata["bucket"] == 3 for hs in mine_f for h in hs)
    return out


def run(quick: bool) -> list[Result]:
    real = real_embeddings(quick)
    queries = real.queries
    sizes = [10_000, 50_000] if quick else [10_000, 30_000, 100_000, 300_000, 1_000_000]
    measured = []
    for n in sizes:
        measured.append(measure_size(n, real.base, queries, quick))
        gc.collect()  # the previous size's store and index are garbage now
    data = {"k": K, "batch": BATCH, "filter": FILTER, "sizes": measured,
            "real_base_vectors": len(real.base), "queries": len(queries)}
    return [Result("search", "Exact search: memory store vs FAISS IndexFlatIP", search_md(measured), data),
            growth(measured)]


def search_md(measured: list[dict[str, Any]]) -> str:
    shown = [m for m in measured if m["n"] in (50_000, 100_000, 1_000_000)] or measured
    rows = []
    for m in shown:
        for r in m["rows"]:
            rows.append([f"{m['n']:,}", r["batch"], "10%" if r["filtered"] else "none",
                         r["memory"]["qps"], r["faiss"]["qps"], f"**{r['ratio']:.2f}x**",
                         r["memory"]["p50_ms"], r["memory"]["p99_ms"], r["faiss"]["p50_ms"], r["faiss"]["p99_ms"]])
    table = md_table(["records", "batch", "filter", "memory QPS", "FAISS QPS", "ratio", "memory p50 ms",
                      "memory p99 ms", "FAISS p50 ms", "FAISS p99 ms"], rows)
    mem = md_table(["records", "raw float32 vectors MB", "store matrix MB (ratio)", "store RSS growth MB (ratio)",
                    "top-10 = FAISS", "max score diff", "first filtered query ms"],
                   [[f"{m['n']:,}", m["raw_vector_bytes"] / 1e6, f"{m['store_matrix_bytes'] / 1e6:,.0f} "
                     f"({m['matrix_ratio']:.2f}x)", f"{m['store_rss_bytes'] / 1e6:,.0f} ({m['rss_ratio']:.2f}x)",
                     "yes" if m["top10_overlap_min"] == 1.0 else f"min overlap {m['top10_overlap_min']}",
                     f"{m['max_score_difference']:.1e}", m["first_filtered_query_ms"]] for m in measured])
    return (f"{table}\n\nk = {K}; 384-d cosine; ratio = memory-store QPS / FAISS QPS (goal >= 0.8). "
            "Filtered rows use `{\"bucket\": 3}` (10% of records).\n\n**Memory and exactness**\n\n"
            f"{mem}\n\nStore matrix = the vector matrix and norms the store allocates (it grows in 10% steps, "
            "so up to 1.1x); RSS growth = the whole process's resident memory added by building the store, "
            "which also counts the Python ids, texts (empty here) and metadata dicts and the id index.")


def growth(measured: list[dict[str, Any]]) -> Result:
    rows = []
    for m in measured:
        single = next(r for r in m["rows"] if r["batch"] == 1 and not r["filtered"])
        single_f = next(r for r in m["rows"] if r["batch"] == 1 and r["filtered"])
        rows.append([f"{m['n']:,}", single["memory"]["p50_ms"], single_f["memory"]["p50_ms"],
                     single["faiss"]["p50_ms"], m["store_rss_bytes"] / 1e6, m["raw_vector_bytes"] / 1e6])
    files = []
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        ns = [m["n"] for m in measured]
        fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 4))
        a1.loglog(ns, [r[1] for r in rows], "o-", label="memory store")
        a1.loglog(ns, [r[2] for r in rows], "s--", label="memory store, 10% filter")
        a1.loglog(ns, [r[3] for r in rows], "^-", label="FAISS IndexFlatIP")
        a1.set_xlabel("records")
        a1.set_ylabel("single-query p50 latency (ms)")
        a1.legend()
        a1.grid(True, which="both", alpha=0.3)
        a2.loglog(ns, [r[4] for r in rows], "o-", label="store RSS growth")
        a2.loglog(ns, [r[5] for r in rows], "k:", label="raw float32 vectors")
        a2.set_xlabel("records")
        a2.set_ylabel("MB")
        a2.legend()
        a2.grid(True, which="both", alpha=0.3)
        fig.tight_layout()
        RESULTS.mkdir(parents=True, exist_ok=True)
        fig.savefig(RESULTS / "growth.png", dpi=100)
        plt.close(fig)
        files.append("growth.png")
    except ImportError:
        log("matplotlib is missing: no growth plot (install the bench extra)")
    table = md_table(["records", "query p50 ms", "filtered p50 ms", "FAISS p50 ms", "store RSS MB", "raw vectors MB"],
                     rows)
    plot = "\n\n![query time and memory against collection size](growth.png)" if files else ""
    return Result("growth", "Growth: query time and memory from 10k records up", table + plot,
                  {"rows": rows}, files)
