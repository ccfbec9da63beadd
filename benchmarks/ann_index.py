"""The memory store's optional approximate index (FAISS HNSW): recall@10 against exact search and
queries per second at several ``ef_search`` settings, on the same real-embedding-like vectors as
the exact benchmark, unfiltered and with the 10% filter (whose hits must all match).

The index is forced on (``min_rows = 0``) so the filtered rows measure the graph, not the exact
fallback the store would normally use for a 10% subset this small.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from benchmarks.common import Result, latency_stats, log, md_table, real_embeddings, synthesize, time_calls
from benchmarks.search import FILTER, K, build_store
from vectorseam.stores.memory import MemoryStore

EF = (16, 32, 64, 128, 256)


def recall(got: list[Any], truth: list[Any]) -> float:
    return float(np.mean([len({h.id for h in g} & {h.id for h in t}) / K for g, t in zip(got, truth, strict=True)]))


def run(quick: bool) -> Result:
    real = real_embeddings(quick)
    n = 20_000 if quick else 100_000
    log(f"ann: synthesising {n:,} vectors")
    vectors = synthesize(real.base, n, seed=7)
    queries = real.queries[: 100 if quick else 200]
    exact, _ = build_store(vectors)
    calls = len(queries)
    def timer(store: MemoryStore, flt: bool) -> dict[str, float]:
        def call(i: int) -> object:
            return store.query("bench", queries[i], k=K, filter=FILTER if flt else None)
        return latency_stats(time_calls(call, calls), 1)

    ex = {flt: timer(exact, flt) for flt in (False, True)}
    truth = {flt: exact.query("bench", queries, k=K, filter=FILTER if flt else None) for flt in (False, True)}
    approx, _ = build_store(vectors, MemoryStore(ann={"min_rows": 0, "m": 32, "ef_construction": 80}))
    start = time.perf_counter()
    approx.query("bench", queries[0], k=K)  # builds the graph
    build_s = time.perf_counter() - start
    settings: list[dict[str, Any]] = []
    for ef in EF:
        coll = approx._get("bench")
        assert coll.ann is not None
        coll.ann.settings = type(coll.ann.settings)(min_rows=0, m=32, ef_construction=80, ef_search=ef)
        for flt in (False, True):
            f = FILTER if flt else None
            stats = timer(approx, flt)
            got = approx.query("bench", queries, k=K, filter=f)
            settings.append({"ef_search": ef, "filtered": flt, **stats, "recall_at_10": recall(got, truth[flt]),
                             "all_hits_match": all(h.metadata["bucket"] == 3 for hs in got for h in hs) if flt
                             else None, "speedup_vs_exact": round(stats["qps"] / ex[flt]["qps"], 2)})
            log(f"ann: ef={ef} filtered={flt} recall={settings[-1]['recall_at_10']:.3f} qps={stats['qps']}")
    rows = [["exact (no index)", "10%" if flt else "none", ex[flt]["qps"], ex[flt]["p50_ms"], 1.0, "1.00x",
             "yes" if flt else ""] for flt in (False, True)]
    rows += [[f"HNSW ef_search={s['ef_search']}", "10%" if s["filtered"] else "none", s["qps"], s["p50_ms"],
              f"{s['recall_at_10']:.3f}", f"{s['speedup_vs_exact']:.2f}x",
              ("yes" if s["all_hits_match"] else "**no**") if s["filtered"] else ""] for s in settings]
    table = md_table(["search", "filter", "QPS (single query)", "p50 ms", "recall@10", "vs exact",
                      "all hits match filter"], rows)
    good = [s for s in settings if not s["filtered"] and s["recall_at_10"] >= 0.95]
    best = max(good, key=lambda s: s["qps"]) if good else None
    verdict = (f"Best setting with recall@10 >= 0.95: ef_search={best['ef_search']} at {best['qps']} QPS "
               f"({best['speedup_vs_exact']}x exact)." if best else "No setting reached recall@10 >= 0.95.")
    text = (f"{table}\n\n{n:,} vectors x 384, HNSW M=32, efConstruction=80 (graph build {build_s:.0f}s); "
            f"k = {K}; recall against the exact memory store on the same data. For a filtered query, "
            "ef_search is widened by sqrt(1/selectivity) and FAISS only admits matching ids. {verdict}")
    text = text.replace("{verdict}", verdict)
    return Result("ann", "Approximate index (HNSW) for the memory store", text,
                  {"n": n, "build_s": build_s, "exact": ex, "settings": settings})
