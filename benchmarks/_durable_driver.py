"""One side of benchmarks/durable_store.py, run in its own process so both releases' code can be timed
in one run: ``python benchmarks/_durable_driver.py DIR N DIM [--snapshot-options JSON]`` with
``PYTHONPATH`` pointing at the release under test. Prints one JSON object.

Only the public MemoryStore API is used (``upsert``, ``delete``, ``query``, ``compact``, ``close``), which
both the write-log release and the SQLite release have.
"""

from __future__ import annotations

import gc
import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np


def stats(seconds: list[float]) -> dict[str, float]:
    ms = np.asarray(seconds) * 1000
    return {"p50_ms": round(float(np.percentile(ms, 50)), 3), "p99_ms": round(float(np.percentile(ms, 99)), 3),
            "n": len(seconds)}


def main() -> None:
    from vectorseam.stores.memory import MemoryStore
    from vectorseam.types import CollectionSpec, Record

    root, n, dim = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    options: dict[str, Any] = json.loads(sys.argv[4]) if len(sys.argv) > 4 else {}
    rng = np.random.default_rng(0)
    out: dict[str, Any] = {"n": n, "dim": dim, "options": options}

    def records(prefix: str, count: int) -> list[Record]:
        vectors = rng.standard_normal((count, dim)).astype(np.float32)
        return [Record(f"{prefix}{i}", vectors[i], f"text {prefix}{i}", {"i": i, "group": i % 10})
                for i in range(count)]

    store = MemoryStore(root, **options)
    store.ensure_collection(CollectionSpec("empty", dim, "cosine"))
    timings = []
    for b in range(40):
        batch = records(f"e{b}-", 64)
        t0 = time.perf_counter()
        store.upsert("empty", batch)
        timings.append(time.perf_counter() - t0)
    out["batch64_empty"] = stats(timings)

    store.ensure_collection(CollectionSpec("big", dim, "cosine"))
    t0 = time.perf_counter()
    for start in range(0, n, 10_000):
        store.upsert("big", records(f"r{start}-", min(10_000, n - start)))
    out["fill_s"] = round(time.perf_counter() - t0, 1)
    for name, size, count in (("single_upsert", 1, 200), ("batch64", 64, 40)):
        timings = []
        for b in range(count):
            batch = records(f"{name}{b}-", size)
            t0 = time.perf_counter()
            store.upsert("big", batch)
            timings.append(time.perf_counter() - t0)
        out[name] = stats(timings)
    timings = []
    for b in range(200):
        t0 = time.perf_counter()
        store.delete("big", ids=[f"single_upsert{b}-0"])
        timings.append(time.perf_counter() - t0)
    out["single_delete"] = stats(timings)
    query = rng.standard_normal(dim).astype(np.float32)
    expected = [h.id for h in store.query("big", query, k=10)[0]]
    store.compact("big")  # the write-log release: a new base; the SQLite release: a snapshot
    store.close()
    del store
    gc.collect()

    def reopen() -> float:
        t0 = time.perf_counter()
        again = MemoryStore(root, **options)
        got = [h.id for h in again.query("big", query, k=10)[0]]
        seconds = time.perf_counter() - t0
        assert got == expected, "reopened store answers differently"
        if hasattr(again, "_entries"):  # the SQLite release: leave without writing a snapshot on close
            for entry in again._entries.values():
                entry.changes = 0
        again.close()
        return seconds

    out["reopen_s"] = round(reopen(), 2)
    snapshots = [p for p in (root / "big").iterdir() if p.name.startswith("snapshot-")]
    if snapshots:  # the SQLite release: the same open without its snapshot (a cache)
        for snap in snapshots:
            shutil.rmtree(snap)
        out["reopen_without_snapshot_s"] = round(reopen(), 2)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
