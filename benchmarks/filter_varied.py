"""Filtered exact search with a different filter on every query: the memory store against FAISS
``IndexFlatIP`` searched with a selector built from a numpy mask, in the same run.

Three filters, each drawn afresh for every query (never the same value twice in a row, so no cached
rows help the store): ``{"cat": v}`` admits 0.1% of records, ``{"bucket": v}`` 10%, and
``{"x": {"$gte": a, "$lt": a + 0.5}}`` a 50% range. Batch 1 and 64, 100k and 1M records
(``--quick``: 100k).

FAISS gets what a FAISS user would write: the metadata as numpy arrays, the mask computed with numpy
per query, then a selector. Both selectors are timed (``IDSelectorBitmap`` over the packed mask and
``IDSelectorBatch`` over the matching ids); the store is compared with the faster one in each cell.
The store evaluates the portable filter from its metadata columns (already built: the first
filtered query over a key builds them) and picks its plan from the filter's selectivity
(src/vectorseam/stores/memory.py). Store and FAISS calls alternate, so load on the shared machine
hits both alike; ratio = FAISS p50 / store p50 (above 1: the store is faster).
"""

from __future__ import annotations

import functools
import gc
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from benchmarks.common import RESULTS, Matrix, Result, log, md_table, real_embeddings, synthesize
from vectorseam.stores.memory import MemoryStore
from vectorseam.types import CollectionSpec, Record

K = 10
BATCH = 64
FILTERS = ("0.1%", "10%", "50% range")


def build(n: int, vectors: Matrix, seed: int) -> tuple[MemoryStore, dict[str, Any]]:
    """The store, and the same metadata as numpy arrays (for the FAISS side)."""
    rng = np.random.default_rng(seed)
    cols = {"cat": rng.integers(0, 1000, n), "bucket": rng.integers(0, 10, n), "x": rng.random(n)}
    store = MemoryStore()
    store.ensure_collection(CollectionSpec("bench", vectors.shape[1], "cosine"))
    cat, bucket, x = cols["cat"].tolist(), cols["bucket"].tolist(), cols["x"].tolist()
    step = 50_000
    for s in range(0, n, step):
        store.upsert("bench", [Record(f"doc-{i}", vectors[i], "", {"cat": cat[i], "bucket": bucket[i], "x": x[i]})
                               for i in range(s, min(n, s + step))])
    for f in ({"cat": 0}, {"bucket": 0}, {"x": {"$gte": 0.0}}):  # build the columns
        store.count("bench", filter=f)
    return store, cols


def mask_of(kind: str, value: float, cols: dict[str, Any]) -> np.ndarray[Any, Any]:
    """The numpy mask a FAISS user computes for one filter."""
    if kind == "0.1%":
        return cols["cat"] == value  # type: ignore[no-any-return]
    if kind == "10%":
        return cols["bucket"] == value  # type: ignore[no-any-return]
    return (cols["x"] >= value) & (cols["x"] < value + 0.5)  # type: ignore[no-any-return]


class FilterDraws:
    """A new filter of one kind per call, never equal to the previous one; the same sequence for the
    store and for FAISS."""

    def __init__(self, kind: str, seed: int) -> None:
        self.kind = kind
        self.rng = np.random.default_rng(seed)
        self.last: object = None

    def next(self) -> tuple[dict[str, Any], Callable[[dict[str, Any]], np.ndarray[Any, Any]]]:
        """The filter as the store takes it, and its mask over numpy columns."""
        while True:
            if self.kind == "0.1%":
                v: float = int(self.rng.integers(0, 1000))
                spec: dict[str, Any] = {"cat": v}
            elif self.kind == "10%":
                v = int(self.rng.integers(0, 10))
                spec = {"bucket": v}
            else:
                v = round(float(self.rng.random()) * 0.5, 4)
                spec = {"x": {"$gte": v, "$lt": v + 0.5}}
            if v != self.last:
                self.last = v
                return spec, functools.partial(mask_of, self.kind, v)


def measure(n: int, base: Matrix, queries: Matrix, quick: bool) -> list[dict[str, Any]]:
    import faiss

    log(f"filter_varied: synthesising {n:,} vectors")
    vectors = synthesize(base, n, seed=n + 1)
    store, cols = build(n, vectors, seed=n)
    index = faiss.IndexFlatIP(vectors.shape[1])
    index.add(vectors)
    del vectors
    gc.collect()
    big = n >= 500_000
    qn = len(queries)
    out = []
    for kind in FILTERS:
        for batch in (1, BATCH):
            calls = (12 if big else 40) if batch == 1 else (3 if big else 6)
            if quick:
                calls = max(3, calls // 2)
            draws = FilterDraws(kind, seed=hash((n, kind, batch)) % 2**32)
            samples: dict[str, list[float]] = {"store": [], "bitmap": [], "batch": []}
            selected: list[int] = []
            agree: list[float] = []
            for i in range(calls + 1):  # the first round warms up and is not timed
                spec, mask_of = draws.next()
                s = (i * batch) % (qn - batch)
                q = queries[s : s + batch]
                t0 = time.perf_counter()
                hits = store.query("bench", q, k=K, filter=spec)
                t1 = time.perf_counter()
                mask = mask_of(cols)
                bitmap = np.packbits(mask, bitorder="little")
                sel = faiss.IDSelectorBitmap(bitmap)  # type: ignore[call-arg]
                _, labels = index.search(q, K, params=faiss.SearchParameters(sel=sel))  # type: ignore[call-arg]
                t2 = time.perf_counter()
                mask = mask_of(cols)
                sel_b = faiss.IDSelectorBatch(np.flatnonzero(mask).astype(np.int64))  # type: ignore[call-arg]
                index.search(q, K, params=faiss.SearchParameters(sel=sel_b))  # type: ignore[call-arg]
                t3 = time.perf_counter()
                if i == 0:
                    continue
                samples["store"].append(t1 - t0)
                samples["bitmap"].append(t2 - t1)
                samples["batch"].append(t3 - t2)
                selected.append(int(mask.sum()))
                for h, lab in zip(hits, labels, strict=True):
                    agree.append(len({int(x.id.split("-")[1]) for x in h} & set(lab.tolist())) / K)
            p50 = {k: float(np.median(v)) * 1e3 for k, v in samples.items()}
            p99 = {k: float(np.percentile(v, 99)) * 1e3 for k, v in samples.items()}
            faiss_best = "bitmap" if p50["bitmap"] <= p50["batch"] else "batch"
            row = {"n": n, "filter": kind, "batch": batch, "calls": calls,
                   "selected_mean": float(np.mean(selected)) / n,
                   "store_p50_ms": round(p50["store"], 3), "store_p99_ms": round(p99["store"], 3),
                   "faiss_bitmap_p50_ms": round(p50["bitmap"], 3), "faiss_batch_p50_ms": round(p50["batch"], 3),
                   "faiss_best": faiss_best, "faiss_p99_ms": round(p99[faiss_best], 3),
                   "store_qps": round(batch * 1e3 / p50["store"], 1),
                   "faiss_qps": round(batch * 1e3 / p50[faiss_best], 1),
                   "ratio": round(p50[faiss_best] / p50["store"], 2),
                   "top10_overlap_min": min(agree)}
            log(f"filter_varied: n={n:,} {kind} batch={batch}: store {row['store_p50_ms']} ms, FAISS "
                f"{faiss_best} {p50[faiss_best]:.2f} ms -> {row['ratio']}x")
            out.append(row)
    del store, index
    gc.collect()
    return out


def run(quick: bool) -> Result:
    real = real_embeddings(quick)
    sizes = [100_000] if quick else [100_000, 1_000_000]
    rows: list[dict[str, Any]] = []
    for n in sizes:
        rows += measure(n, real.base, real.queries, quick)
    table = md_table(
        ["records", "filter", "batch", "memory QPS", "FAISS QPS", "ratio", "memory p50 ms", "memory p99 ms",
         "FAISS p50 ms (selector)", "top-10 = FAISS"],
        [[f"{r['n']:,}", r["filter"], r["batch"], r["store_qps"], r["faiss_qps"], f"**{r['ratio']:.2f}x**",
          r["store_p50_ms"], r["store_p99_ms"], f"{min(r['faiss_bitmap_p50_ms'], r['faiss_batch_p50_ms'])} "
          f"({r['faiss_best']})", "yes" if r["top10_overlap_min"] == 1.0 else f"min {r['top10_overlap_min']:.1f}"]
         for r in rows])
    text = (f"{table}\n\nk = {K}; 384-d cosine; a new filter value on every query (0.1%: `{{\"cat\": v}}`, 10%: "
            "`{\"bucket\": v}`, 50%: `{\"x\": {\"$gte\": a, \"$lt\": a + 0.5}}`). FAISS: `IndexFlatIP` + the mask "
            "computed with numpy + the faster of `IDSelectorBitmap` / `IDSelectorBatch`, all inside its timing. "
            "QPS = batch / p50; ratio = FAISS p50 / memory p50 (goal >= 1.0 in every row).")
    RESULTS.mkdir(parents=True, exist_ok=True)
    return Result("filter_varied", "Exact search, a different filter on every query: memory store vs FAISS",
                  text, {"k": K, "rows": rows})
