"""The int8 scan with exact rescoring (src/vectorseam/stores/quantized.py) against the float32 scan and
FAISS, side by side in one run, with recall@10 against exact search.

    python -m benchmarks.quantized --sizes 100000            # one size (writes results/quantized.*)
    python -m benchmarks.run --only quantized                 # 100k and 1M (needs ~6 GB of memory)

Rows per size and batch (1 query, 64 queries), all on the same vectors and queries:

* **memory store, exact (float32 scan)** - ``MemoryStore.query``: one BLAS pass over every float32
  row, top-k, the exact float64 finish, hits built;
* **memory store, int8 + exact rescoring** - the same store with ``quantized`` on
  (src/vectorseam/stores/quantized.py): the codes scanned by the compiled kernel with selection
  inside it, the candidates scored exactly and ranked as the exact scan ranks (ties by id);
* **FAISS IndexFlatIP** - FAISS's exact scan (reference);
* **FAISS SQ8 + rescoring top 40** - ``IndexScalarQuantizer(QT_8bit)`` for the top 40, rescored in
  float32: the named alternative for the int8 path.

Both stores open one persisted collection and map the same snapshot (as a server's workers do), so
the float32 rows are in RAM once.

Vectors: the synthetic mix of :func:`benchmarks.common.synthesize` (grown from real all-MiniLM-L6-v2
embeddings of AG News and SciFact); queries: real held-out embeddings. Recall@10 is against the
memory store's exact answer. The 10%-filter rows score a row subset (every record with
``bucket == 3``), as a filtered query does.

Real data sets (used by tests/test_quantized.py too): :func:`real_sets` embeds SciFact (corpus and
train claims) and AG News once through the benchmark embedding cache.
"""

from __future__ import annotations

import argparse
import gc
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import (
    DATA,
    Matrix,
    Result,
    ag_news,
    embed_cached,
    latency_stats,
    log,
    md_table,
    real_embeddings,
    synthesize,
    time_calls,
)
from vectorseam.stores import quantized_kernel

K = 10
BATCH = 64
FAISS_RESCORE = 40  # the FAISS reference: SQ8 top 40, rescored in float32


# -- real data sets ------------------------------------------------------------------------------------

@dataclass
class RealSet:
    """A corpus and its queries, embedded (unit vectors), with ids; qrels where the set has them."""

    name: str
    ids: list[str]
    corpus: Matrix
    queries: Matrix
    query_ids: list[str]
    qrels: dict[str, dict[str, int]]


def scifact() -> RealSet:
    """SciFact: 5,183 abstracts (BEIR's ``title text``) and the 809 train claims with judgements."""
    from vectorseam.retrieval.evaluation import load_beir

    data = load_beir(DATA / "scifact", "train")
    ids = list(data.corpus)
    qids = sorted(data.qrels)
    corpus = embed_cached("scifact_beir_corpus", [data.corpus[i] for i in ids])
    queries = embed_cached("scifact_beir_train_queries", [data.queries[q] for q in qids])
    return RealSet("scifact", ids, corpus, queries, qids, data.qrels)


def agnews() -> RealSet:
    """The first 3,000 items of the AG News test split (those :func:`benchmarks.common.real_embeddings`
    embeds too): every tenth item is a query, the others the corpus."""
    texts = [t for _, t in ag_news(3000)]
    vectors = embed_cached("ag_news", texts)  # the name real_embeddings() caches under
    held = np.zeros(len(texts), dtype=bool)
    held[::10] = True
    ids = [f"ag-{i}" for i in np.flatnonzero(~held)]
    return RealSet("ag_news", ids, np.ascontiguousarray(vectors[~held]), np.ascontiguousarray(vectors[held]),
                   [f"agq-{i}" for i in np.flatnonzero(held)], {})


def real_sets() -> list[RealSet]:
    return [scifact(), agnews()]


# -- the paths measured ---------------------------------------------------------------------------------

def recall(got: list[list[Any]], truth: list[list[Any]]) -> float:
    return float(np.mean([len(set(g) & set(t)) / max(len(t), 1) for g, t in zip(got, truth, strict=True)]))


def open_pair(vectors: Matrix, workdir: Path) -> tuple[Any, Any]:
    """Two memory stores over one persisted collection, exact and with the int8 option, as two
    processes of a server would hold it: both map the same snapshot, so the float32 rows are in RAM once."""
    from benchmarks.search import build_store
    from vectorseam.stores.memory import MemoryStore

    writer = MemoryStore(workdir, durability="process")
    build_store(vectors, writer)
    writer.compact("bench")
    writer.close()
    return MemoryStore(workdir), MemoryStore(workdir, quantized={"min_rows": 0})


def measure(n: int, base: Matrix, queries: Matrix, workdir: Path) -> dict[str, Any]:
    import faiss

    from benchmarks.search import FILTER

    log(f"quantized: synthesising {n:,} vectors")
    vectors = synthesize(base, n, seed=n)
    norms = np.linalg.norm(vectors.astype(np.float64), axis=1).astype(np.float32)
    exact, int8 = open_pair(vectors, workdir / f"store-{n}")
    exact.query("bench", queries[0], k=K)  # loads the collection
    start = time.perf_counter()
    int8.query("bench", queries[0], k=K)  # loads it and codes every row
    build_s = time.perf_counter() - start
    codes = int8._entries["bench"].coll.quant
    flat = faiss.IndexFlatIP(vectors.shape[1])
    flat.add(vectors)
    sq8 = faiss.IndexScalarQuantizer(vectors.shape[1], faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT)
    sq8.train(vectors[: min(n, 200_000)])
    sq8.add(vectors)

    def unit(q: Matrix) -> Matrix:
        return q / np.linalg.norm(q, axis=-1, keepdims=True)  # type: ignore[no-any-return]

    def faiss_sq8(q: Matrix) -> list[list[int]]:
        _, labels = sq8.search(unit(q), FAISS_RESCORE)
        out = []
        for qi in range(q.shape[0]):
            cand = labels[qi][labels[qi] >= 0].astype(np.int64)
            exact_scores = vectors[cand] @ unit(q[qi]) / norms[cand]
            out.append(cand[np.argsort(-exact_scores, kind="stable")[:K]].tolist())
        return out

    def ids_of(result: list[list[Any]]) -> list[list[int]]:
        return [[int(h.id.split("-")[1]) for h in hits] for hits in result]

    big = n >= 500_000
    calls = {1: 30 if big else 90, BATCH: 3 if big else 6}
    qn = len(queries)
    rows_out = []
    for batch in (1, BATCH):
        for filtered in (False, True):
            flt = FILTER if filtered else None

            def pick(i: int, batch: int = batch) -> Matrix:
                s = (i * batch) % (qn - batch)
                return queries[s : s + batch]

            paths: dict[str, Callable[[int], object]] = {
                "memory store, exact (float32 scan)": lambda i, flt=flt: exact.query("bench", pick(i), k=K, filter=flt),
                "memory store, int8 + exact rescoring": lambda i, flt=flt: int8.query("bench", pick(i), k=K, filter=flt),
            }
            if not filtered:
                paths["FAISS IndexFlatIP"] = lambda i: flat.search(unit(pick(i)), K)
                paths["FAISS SQ8 + rescoring top 40"] = lambda i: faiss_sq8(pick(i))
            # interleaved rounds, so a burst of other load on the machine hits every path alike
            samples: dict[str, list[float]] = {name: [] for name in paths}
            for fn in paths.values():
                fn(0)  # warm-up
            rounds = 3
            for r in range(rounds):
                for name, fn in paths.items():
                    samples[name] += time_calls(lambda i, fn=fn, r=r: fn(i + r * 1000), calls[batch] // rounds,
                                                warmup=0)
            stats = {name: latency_stats(s, batch) for name, s in samples.items()}
            # recall@10 against the exact store's answer, on 200 real queries
            check = queries[:200]
            truth = ids_of(exact.query("bench", check, k=K, filter=flt))
            got = {"memory store, int8 + exact rescoring": ids_of(int8.query("bench", check, k=K, filter=flt))}
            if not filtered:
                got["FAISS SQ8 + rescoring top 40"] = faiss_sq8(check)
                got["FAISS IndexFlatIP"] = flat.search(unit(check), K)[1].tolist()
            base_qps = stats["memory store, exact (float32 scan)"]["qps"]
            for name, st in stats.items():
                rows_out.append({"n": n, "batch": batch, "filtered": filtered, "path": name, **st,
                                 "vs_store_exact": round(st["qps"] / base_qps, 2),
                                 "recall_at_10": round(recall(got[name], truth), 4) if name in got else 1.0})
                log(f"quantized: n={n:,} batch={batch} filter={filtered} {name}: {st['qps']} QPS "
                    f"p50 {st['p50_ms']} ms ({rows_out[-1]['vs_store_exact']}x), recall {rows_out[-1]['recall_at_10']}")
    out = {"n": n, "codes_build_s": round(build_s, 2), "codes_bytes": int(codes.codes[:n].nbytes),
           "float32_bytes": int(vectors.nbytes), "kernel": quantized_kernel.kernel_name(codes.row_bytes),
           "rows": rows_out}
    exact.close()
    int8.close()
    return out


def report(measured: list[dict[str, Any]]) -> str:
    rows = [[f"{m['n']:,}", r["batch"], "10%" if r["filtered"] else "none", r["path"], r["qps"], r["p50_ms"],
             r["p99_ms"], f"**{r['vs_store_exact']:.2f}x**" if r["path"].startswith("int8") else
             f"{r['vs_store_exact']:.2f}x", f"{r['recall_at_10']:.3f}"]
            for m in measured for r in m["rows"]]
    table = md_table(["records", "batch", "filter", "path", "QPS", "p50 ms", "p99 ms", "vs store exact",
                      "recall@10"], rows)
    sizes = "; ".join(f"{m['n']:,}: codes {m['codes_bytes'] / 1e6:,.0f} MB beside {m['float32_bytes'] / 1e6:,.0f} MB "
                      f"of float32, built in {m['codes_build_s']} s, kernel `{m['kernel']}`" for m in measured)
    return (f"{table}\n\nk = {K}; 384-d cosine; QPS counts queries (a batch of 64 is 64 queries). Recall@10 is "
            "against the exact store's answer on 200 real held-out queries. The int8 path keeps "
            f"max(4k, k + 32) candidates per query and scores them exactly, so its hits carry exact scores. The 10% "
            "rows repeat one filter, whose rows the store keeps as a contiguous copy after two queries: both stores "
            f"then scan that copy exactly (the planner leaves a cached filter to the float32 scan). {sizes}.")


def run(quick: bool, sizes: list[int] | None = None) -> Result:
    real = real_embeddings(quick)
    sizes = sizes or ([20_000, 100_000] if quick else [100_000, 1_000_000])
    measured = []
    with tempfile.TemporaryDirectory(prefix="vectorseam-quantized-") as workdir:
        for n in sizes:
            measured.append(measure(n, real.base, real.queries, Path(workdir)))
            gc.collect()  # the previous size's stores, indexes and codes are garbage now
    return Result("quantized", "int8 scan with exact rescoring vs the float32 scan and FAISS SQ8", report(measured),
                  {"k": K, "batch": BATCH, "sizes": measured})


def main(argv: list[str] | None = None) -> None:
    from benchmarks.run import write

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000])
    args = parser.parse_args(argv)
    start = time.perf_counter()
    result = run(False, args.sizes)
    write(result, False, time.perf_counter() - start, "python -m benchmarks.quantized " + " ".join(sys.argv[1:]))
    print(result.markdown)


if __name__ == "__main__":
    main()
