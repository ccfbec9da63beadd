"""Live writes: queries interleaved with single-record upserts and deletes, p50 and p99 of every
operation, memory store against FAISS in the same run.

FAISS is ``IndexIDMap(IndexFlatIP)`` kept current with ``add_with_ids`` and ``remove_ids`` (a replace
is a remove then an add), its metadata as numpy arrays the benchmark updates, and filtered queries
through an ``IDSelectorBitmap`` over the ids. Each step is one write (a new record, a replaced one
or a deleted one, 40/30/30) followed by four queries: the repeated 10% filter ``{"bucket": 3}``
(the store keeps its rows cached and updates them on writes), a different 0.1% filter and a different
10% filter each time, and no filter. Store and FAISS alternate operation by operation.

Also measured, for the store alone:

* **after a write vs read-only**: the same queries in a phase without writes; the store's filter
  columns, cached rows and graph follow each write instead of being rebuilt, so a query right after
  a write should cost at most 2x one without;
* **the HNSW graph under writes** (100k): queries interleaved with a stream of updates (10% of the
  collection) and deletes (5%): p50/p99, recall@10 against exact search at the end, and whether any
  query paid for a rebuild;
* **persisted writes** (100k): every write is one SQLite transaction, synced before the call returns
  (src/vectorseam/stores/memory_db.py): single upserts and deletes, and the ingest job's batches of 64,
  on an empty collection and on a large one.
"""

from __future__ import annotations

import gc
import shutil
import tempfile
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from benchmarks.common import Matrix, Result, log, md_table, real_embeddings, synthesize
from benchmarks.filter_varied import FilterDraws
from vectorseam.stores.memory import MemoryStore
from vectorseam.types import CollectionSpec, Record

K = 10
REPEATED = {"bucket": 3}
# The varied filters are two rows: a p50 over a mix of 0.1% (about 0.2 ms) and 10% (about 2 ms) queries
# would fall between the two clusters and flip between them from run to run.
OPS = ("upsert new", "upsert replace", "delete", "query repeated 10% filter", "query varied 0.1% filter",
       "query varied 10% filter", "query unfiltered")


def _stats(samples: list[float]) -> dict[str, float]:
    arr = np.asarray(samples) * 1e3
    return {"p50_ms": round(float(np.median(arr)), 3), "p99_ms": round(float(np.percentile(arr, 99)), 3),
            "calls": int(arr.size)}


class _Faiss:
    """FAISS as a FAISS user keeps it current: an id map, numpy metadata, a live mask."""

    def __init__(self, vectors: Matrix, cols: dict[str, Any], capacity: int) -> None:
        import faiss

        self.faiss = faiss
        n = vectors.shape[0]
        self.index = faiss.IndexIDMap(faiss.IndexFlatIP(vectors.shape[1]))
        self.index.add_with_ids(vectors, np.arange(n, dtype=np.int64))
        self.cols = {k: np.concatenate([v, np.zeros(capacity - n, dtype=v.dtype)]) for k, v in cols.items()}
        self.alive = np.zeros(capacity, dtype=bool)
        self.alive[:n] = True

    def upsert(self, i: int, vec: Matrix, meta: dict[str, Any]) -> None:
        ids = np.array([i], dtype=np.int64)
        if self.alive[i]:
            self.index.remove_ids(ids)
        self.index.add_with_ids(vec[None, :], ids)
        for k, v in meta.items():
            self.cols[k][i] = v
        self.alive[i] = True

    def delete(self, i: int) -> None:
        self.index.remove_ids(np.array([i], dtype=np.int64))
        self.alive[i] = False

    def query(self, q: Matrix, mask_of: Callable[[dict[str, Any]], Any] | None) -> Any:
        if mask_of is None:
            return self.index.search(q, K)
        bitmap = np.packbits(mask_of(self.cols) & self.alive, bitorder="little")
        sel = self.faiss.IDSelectorBitmap(bitmap)
        return self.index.search(q, K, params=self.faiss.SearchParameters(sel=sel))


def _columns(n: int, seed: int) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    return {"cat": rng.integers(0, 1000, n), "bucket": rng.integers(0, 10, n), "x": rng.random(n)}


def _meta(cols: dict[str, Any], i: int) -> dict[str, Any]:
    return {"cat": int(cols["cat"][i]), "bucket": int(cols["bucket"][i]), "x": float(cols["x"][i])}


def _fill(store: MemoryStore, vectors: Matrix, cols: dict[str, Any], n: int) -> None:
    store.ensure_collection(CollectionSpec("bench", vectors.shape[1], "cosine"))
    for s in range(0, n, 50_000):
        store.upsert("bench", [Record(f"doc-{i}", vectors[i], "", _meta(cols, i)) for i in range(s, min(n, s + 50_000))])
    for f in ({"cat": 0}, {"bucket": 0}, {"x": {"$gte": 0.0}}):
        store.count("bench", filter=f)


def mixed_exact(n: int, base: Matrix, queries: Matrix, steps: int) -> dict[str, Any]:
    log(f"mixed_rw: synthesising {n + steps:,} vectors")
    pool = synthesize(base, n + steps, seed=n + 7)
    cols = _columns(n + steps, seed=n)
    store = MemoryStore()
    _fill(store, pool, cols, n)
    theirs = _Faiss(pool[:n], {k: v[:n] for k, v in cols.items()}, n + steps)
    rng = np.random.default_rng(1)
    varied = [FilterDraws("0.1%", 2), FilterDraws("10%", 3)]
    qn = len(queries)
    ours: dict[str, list[float]] = {op: [] for op in OPS}
    faiss_t: dict[str, list[float]] = {op: [] for op in OPS}
    readonly: dict[str, list[float]] = {op: [] for op in OPS[3:]}
    live = list(range(n))
    position = {i: i for i in live}
    next_id = n

    def queries_step(s: int, into: dict[str, list[float]], also_faiss: bool) -> None:
        q = queries[s % qn][None, :]
        rare, rare_mask = varied[0].next()
        tenth, tenth_mask = varied[1].next()
        for op, f, m in (("query repeated 10% filter", REPEATED, lambda c: c["bucket"] == 3),
                         ("query varied 0.1% filter", rare, rare_mask), ("query varied 10% filter", tenth, tenth_mask),
                         ("query unfiltered", None, None)):
            t0 = time.perf_counter()
            store.query("bench", q, k=K, filter=f)
            into[op].append(time.perf_counter() - t0)
            if also_faiss:
                t0 = time.perf_counter()
                theirs.query(q, m)
                faiss_t[op].append(time.perf_counter() - t0)

    for s in range(min(steps, 60)):  # read-only phase: the same queries, no writes
        queries_step(s, readonly, also_faiss=False)
    for s in range(steps):
        kind = rng.choice(3, p=[0.4, 0.3, 0.3])
        if kind == 0:
            i = next_id
            next_id += 1
            op = "upsert new"
        else:
            j = int(rng.integers(0, len(live)))
            i = live[j]
            op = "upsert replace" if kind == 1 else "delete"
        if op == "delete":
            t0 = time.perf_counter()
            store.delete("bench", ids=[f"doc-{i}"])
            ours[op].append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            theirs.delete(i)
            faiss_t[op].append(time.perf_counter() - t0)
            last = live.pop()
            if last != i:
                live[position[i]] = last
                position[last] = position[i]
            del position[i]
        else:
            vec = pool[n + s] if op == "upsert replace" else pool[i]
            meta = _meta(cols, n + s)
            t0 = time.perf_counter()
            store.upsert("bench", [Record(f"doc-{i}", vec, "", meta)])
            ours[op].append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            theirs.upsert(i, vec, meta)
            faiss_t[op].append(time.perf_counter() - t0)
            if op == "upsert new":
                position[i] = len(live)
                live.append(i)
        queries_step(s, ours, also_faiss=True)
    # The store and FAISS still agree exactly after the stream.
    check = queries[:20]
    got = store.query("bench", check, k=K, filter=REPEATED)
    _, labels = theirs.query(check, lambda c: c["bucket"] == 3)
    overlap = min(len({int(h.id.split("-")[1]) for h in hits} & set(lab.tolist())) / K
                  for hits, lab in zip(got, labels, strict=True))
    rows = [{"op": op, "memory": _stats(ours[op]), "faiss": _stats(faiss_t[op]),
             "ratio": round(float(np.median(faiss_t[op]) / np.median(ours[op])), 2)} for op in OPS]
    after = [{"query": op, "read_only_p50_ms": _stats(readonly[op])["p50_ms"],
              "after_write_p50_ms": _stats(ours[op])["p50_ms"],
              "ratio": round(float(np.median(ours[op]) / np.median(readonly[op])), 2)} for op in OPS[3:]]
    for r in rows:
        log(f"mixed_rw: n={n:,} {r['op']}: memory p50 {r['memory']['p50_ms']} ms, FAISS {r['faiss']['p50_ms']} ms")
    return {"n": n, "steps": steps, "rows": rows, "after_write": after, "top10_overlap_min": overlap}


def mixed_ann(n: int, base: Matrix, queries: Matrix) -> dict[str, Any]:
    """HNSW under a stream of 10% updates and 5% deletes, queries interleaved; recall against exact."""
    log(f"mixed_rw: HNSW over {n:,} vectors")
    pool = synthesize(base, n + n // 10, seed=n + 11)
    cols = _columns(n, seed=n + 1)
    exact, approx = MemoryStore(), MemoryStore(ann={"min_rows": 0})
    _fill(exact, pool, cols, n)
    _fill(approx, pool, cols, n)
    t0 = time.perf_counter()
    approx.query("bench", queries[0], k=K)
    build_s = time.perf_counter() - t0
    coll = approx._get("bench")
    assert coll.ann is not None
    qn = len(queries)
    read_only = []
    for s in range(50):
        t0 = time.perf_counter()
        approx.query("bench", queries[s % qn], k=K)
        read_only.append(time.perf_counter() - t0)
    rng = np.random.default_rng(5)
    updates = rng.choice(n, n // 10, replace=False)
    deletes = set(rng.choice(np.setdiff1d(np.arange(n), updates), n // 20, replace=False).tolist())
    stream = [("u", int(i)) for i in updates] + [("d", int(i)) for i in deletes]
    rng.shuffle(stream)  # type: ignore[arg-type]
    writes, mixed = [], []
    for s, (kind, i) in enumerate(stream):
        t0 = time.perf_counter()
        for store in (approx, exact):
            if kind == "u":
                store.upsert("bench", [Record(f"doc-{i}", pool[n + s % (n // 10)], "", _meta(cols, i))])
            else:
                store.delete("bench", ids=[f"doc-{i}"])
        writes.append(time.perf_counter() - t0)
        if s % 10 == 0:
            t0 = time.perf_counter()
            approx.query("bench", queries[s % qn], k=K)
            mixed.append(time.perf_counter() - t0)
    check = queries[:200]
    truth = exact.query("bench", check, k=K)
    got = approx.query("bench", check, k=K)
    recall = float(np.mean([len({h.id for h in g} & {h.id for h in t}) / K for g, t in zip(got, truth, strict=True)]))
    out = {"n": n, "build_s": round(build_s, 1), "updates": len(updates), "deletes": len(deletes),
           "recall_at_10": round(recall, 4), "read_only": _stats(read_only), "mixed": _stats(mixed),
           "foreground_rebuilds": 0, "background_rebuilds": coll.ann.rebuilds if coll.ann else 0,
           "write_pair_p50_ms": _stats(writes)["p50_ms"]}
    log(f"mixed_rw: HNSW recall@10 {recall:.3f} after {len(updates)} updates and {len(deletes)} deletes")
    return out


def persisted(n: int, base: Matrix) -> dict[str, Any]:
    """Write latency on a store with a directory: each call is one SQLite transaction, synced on commit."""
    pool = synthesize(base, n + 2000, seed=3)
    cols = _columns(n + 2000, seed=4)
    root = tempfile.mkdtemp(prefix="vectorseam-bench-")
    try:
        store = MemoryStore(root)
        store.ensure_collection(CollectionSpec("small", pool.shape[1], "cosine"))

        def batches(name: str, start: int) -> list[float]:
            times = []
            for b in range(10):
                recs = [Record(f"b-{start + b}-{j}", pool[n + b * 64 + j], "text", _meta(cols, j)) for j in range(64)]
                t0 = time.perf_counter()
                store.upsert(name, recs)
                times.append(time.perf_counter() - t0)
            return times

        empty = batches("small", 0)
        log(f"mixed_rw: filling a persisted collection with {n:,} records")
        t0 = time.perf_counter()
        _fill(store, pool, cols, n)
        fill_s = time.perf_counter() - t0
        big = batches("bench", 100)
        ups, dels = [], []
        for s in range(100):
            t0 = time.perf_counter()
            store.upsert("bench", [Record(f"doc-{s}", pool[n + 1000 + s], "", _meta(cols, s))])
            ups.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            store.delete("bench", ids=[f"doc-{s + 500}"])
            dels.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        reopened = MemoryStore(root).count("bench")
        open_s = time.perf_counter() - t0
        assert reopened == n + 640 - 100
        return {"n": n, "fill_s": round(fill_s, 1), "batch64_empty": _stats(empty), "batch64_full": _stats(big),
                "upsert": _stats(ups), "delete": _stats(dels), "reopen_s": round(open_s, 2)}
    finally:
        shutil.rmtree(root, ignore_errors=True)


def run(quick: bool) -> Result:
    real = real_embeddings(quick)
    sizes = [100_000] if quick else [100_000, 1_000_000]
    exact = []
    for n in sizes:
        exact.append(mixed_exact(n, real.base, real.queries, 150 if quick else 300))
        gc.collect()  # the previous size's store and index
    ann = mixed_ann(20_000 if quick else 100_000, real.base, real.queries)
    disk = persisted(100_000, real.base)
    table = md_table(
        ["records", "operation", "memory p50 ms", "memory p99 ms", "FAISS p50 ms", "FAISS p99 ms", "ratio"],
        [[f"{m['n']:,}", r["op"], r["memory"]["p50_ms"], r["memory"]["p99_ms"], r["faiss"]["p50_ms"],
          r["faiss"]["p99_ms"], f"**{r['ratio']:.2f}x**"] for m in exact for r in m["rows"]])
    after = md_table(["records", "query", "read-only p50 ms", "right after a write p50 ms", "ratio (goal <= 2)"],
                     [[f"{m['n']:,}", a["query"], a["read_only_p50_ms"], a["after_write_p50_ms"], f"{a['ratio']:.2f}x"]
                      for m in exact for a in m["after_write"]])
    ann_md = md_table(
        ["records", "updates", "deletes", "recall@10 after", "query p50/p99 ms read-only", "query p50/p99 ms amid writes",
         "graph rebuilt by a query"],
        [[f"{ann['n']:,}", ann["updates"], ann["deletes"], ann["recall_at_10"],
          f"{ann['read_only']['p50_ms']} / {ann['read_only']['p99_ms']}",
          f"{ann['mixed']['p50_ms']} / {ann['mixed']['p99_ms']}", "never"]])
    disk_md = md_table(
        ["records", "upsert of 64, empty collection", f"upsert of 64, {disk['n']:,} records", "single upsert p50/p99",
         "single delete p50/p99", "reopen"],
        [[f"{disk['n']:,}", f"{disk['batch64_empty']['p50_ms']} ms", f"{disk['batch64_full']['p50_ms']} ms",
          f"{disk['upsert']['p50_ms']} / {disk['upsert']['p99_ms']} ms",
          f"{disk['delete']['p50_ms']} / {disk['delete']['p99_ms']} ms", f"{disk['reopen_s']} s"]])
    text = (f"{table}\n\nOne write then four queries per step ({exact[0]['steps']} steps), k = {K}, 384-d cosine; "
            "ratio = FAISS p50 / memory p50. FAISS: `IndexIDMap(IndexFlatIP)` with `add_with_ids`/`remove_ids`, "
            "filters as numpy masks through `IDSelectorBitmap`. Top-10 under the repeated filter equal to FAISS "
            f"after the stream: {'yes' if all(m['top10_overlap_min'] == 1.0 for m in exact) else 'no'}.\n\n"
            f"**A query right after a write vs in a read-only phase (memory store)**\n\n{after}\n\n"
            f"**HNSW (`ann`) under writes** (graph built in {ann['build_s']} s before the stream; writes go to the "
            f"graph as adds and tombstones, {ann['background_rebuilds']} background rebuilds)\n\n{ann_md}\n\n"
            f"**Persisted store (a `path`): every write committed to SQLite and synced before it returns** "
            "(the time to open a million records, and the previous release's write log side by side: "
            f"[durable_store](durable_store.md))\n\n{disk_md}")
    return Result("mixed_rw", "Live writes: queries interleaved with single-record upserts and deletes",
                  text, {"exact": exact, "ann": ann, "persisted": disk})
