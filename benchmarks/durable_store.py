"""The memory store's durable state: SQLite (this release) against the previous release's write log,
side by side in one run, plus the RAM that ``serve --workers N`` uses over one million records.

    python -m benchmarks.run --only durable_store            # 1M records: about 15 minutes
    python -m benchmarks.run --only durable_store --quick    # 100k

The previous release is the code at PREVIOUS (its ``src/`` exported with ``git archive`` into a temporary
folder); both sides run the same driver (benchmarks/_durable_driver.py) in their own process. Rows:
single upsert and delete latency at N records, batches of 64 (into an empty collection and at N),
and the time from opening the directory to the first answered query, with the snapshot and
without it (the SQLite release's snapshot is a cache; the log release always reads its base).

RAM: ``vectorseam serve --workers W`` over a snapshot of N 384-d records, every worker having answered
queries; the proportional set size (PSS, shared pages split between the processes that map them)
summed over the server's processes, from /proc/<pid>/smaps_rollup.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import REPO, Result, log, md_table

PREVIOUS = "092f063"  # the last release with the write-log store
DIM = 384


def _export_previous(into: Path) -> Path | None:
    archive = subprocess.run(["git", "-C", str(REPO), "archive", PREVIOUS, "src"], capture_output=True, check=False)
    if archive.returncode != 0:
        log(f"durable_store: cannot export {PREVIOUS} ({archive.stderr.decode().strip()}); the previous release's "
            "column is left out")
        return None
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
    return into / "src"


def _drive(pythonpath: Path, n: int, options: dict[str, Any] | None = None) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="vectorseam-durable-"))
    try:
        env = {**os.environ, "PYTHONPATH": str(pythonpath)}
        args = [sys.executable, str(REPO / "benchmarks" / "_durable_driver.py"), str(work / "store"), str(n), str(DIM)]
        if options:
            args.append(json.dumps(options))
        done = subprocess.run(args, env=env, capture_output=True, text=True, check=False, timeout=7200)
        if done.returncode != 0:
            raise RuntimeError(f"driver failed: {done.stderr[-2000:]}")
        return dict(json.loads(done.stdout.strip().splitlines()[-1]))
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _pss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1])
    return 0


def _tree(pid: int) -> list[int]:
    out = [pid]
    for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
        out.extend(_tree(int(child)))
    return out


def _serve_pss(data_dir: Path, workers: int, queries: np.ndarray[Any, Any]) -> dict[str, Any]:
    import httpx

    sys.path.insert(0, str(REPO))
    from tests.serve_process import ServeProcess, clean_env

    server = ServeProcess.start(clean_env(data_dir), data_dir / f"serve-{workers}.log", workers=workers)
    try:
        server.wait_ready(time.monotonic() + 300, in_a_row=workers)
        served: set[int] = set()
        deadline = time.monotonic() + 600
        sent = 0
        while (len(served) < workers or sent < 50) and time.monotonic() < deadline:
            body = {"vector": queries[sent % len(queries)].tolist(), "k": 10}
            with httpx.Client(timeout=300) as client:  # a new connection each time: any worker may answer
                reply = client.post(f"{server.url}/v1/collections/big/search", json=body)
            reply.raise_for_status()
            sent += 1
            served = server.serving_pids()
        pids = _tree(server.proc.pid)
        pss = sum(_pss_kib(p) for p in pids)
        return {"workers": workers, "processes": len(pids), "served_by": len(served), "requests": sent,
                "pss_mib": round(pss / 1024, 1)}
    finally:
        server.stop()


def _memory(n: int) -> dict[str, Any]:
    sys.path.insert(0, str(REPO / "src"))
    from vectorseam.stores.memory import MemoryStore
    from vectorseam.types import CollectionSpec, Record

    data_dir = Path(tempfile.mkdtemp(prefix="vectorseam-pss-"))
    try:
        rng = np.random.default_rng(1)
        with MemoryStore(data_dir / "memory") as store:
            store.ensure_collection(CollectionSpec("big", DIM, "cosine"))
            for start in range(0, n, 20_000):
                vectors = rng.standard_normal((min(20_000, n - start), DIM)).astype(np.float32)
                store.upsert("big", [Record(f"r{start + i}", v, f"text {start + i}", {"i": start + i})
                                     for i, v in enumerate(vectors)])
            store.compact("big")
        queries = rng.standard_normal((64, DIM)).astype(np.float32)
        rows = [_serve_pss(data_dir, w, queries) for w in (1, 4)]
        return {"n": n, "rows": rows, "ratio": round(rows[1]["pss_mib"] / rows[0]["pss_mib"], 2)}
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


def run(quick: bool) -> Result:
    n = 100_000 if quick else 1_000_000
    sides: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="vectorseam-prev-") as tmp:
        previous = _export_previous(Path(tmp))
        log(f"durable_store: SQLite store, {n:,} records")
        sides["SQLite (durability=power)"] = _drive(REPO / "src", n)
        sides["SQLite (durability=process)"] = _drive(REPO / "src", n, {"durability": "process"})
        if previous is not None:
            log(f"durable_store: the write log of {PREVIOUS}, {n:,} records")
            sides[f"write log ({PREVIOUS})"] = _drive(previous, n)
    log("durable_store: serve --workers 1 and 4, PSS")
    ram = _memory(n)

    def cell(side: dict[str, Any], key: str) -> str:
        v = side.get(key)
        return "-" if v is None else f"{v['p50_ms']} / {v['p99_ms']} ms"

    table = md_table(
        ["store", "single upsert p50/p99", "single delete p50/p99", "64 into an empty collection",
         f"64 at {n:,}", "open + first query (snapshot)", "open + first query (no snapshot)", f"fill {n:,}"],
        [[name, cell(s, "single_upsert"), cell(s, "single_delete"), cell(s, "batch64_empty"), cell(s, "batch64"),
          f"{s['reopen_s']} s", f"{s.get('reopen_without_snapshot_s', '-')} s" if "reopen_without_snapshot_s" in s
          else "n/a", f"{s['fill_s']} s"] for name, s in sides.items()])
    pss = md_table(["serve", "processes", "workers that answered", "PSS total"],
                   [[f"--workers {r['workers']}", r["processes"], r["served_by"], f"{r['pss_mib']} MiB"]
                    for r in ram["rows"]])
    text = (f"{table}\n\nEvery write is acknowledged only once durable: `durability=power` syncs each commit "
            "(a power cut loses nothing acknowledged), `durability=process` survives a killed process. The write "
            f"log of {PREVIOUS} appended and fdatasync'ed one entry per call. \"Open + first query\": a new "
            "process from opening the directory to its first answer; the write log read its whole base, the "
            "SQLite store maps its snapshot (a cache: without it, every row is read from SQLite).\n\n"
            f"**RAM of `vectorseam serve` over {ram['n']:,} records** (one snapshot mapped copy-on-write by every "
            f"worker)\n\n{pss}\n\n{ram['rows'][1]['pss_mib']} / {ram['rows'][0]['pss_mib']} = **{ram['ratio']}x** "
            "one worker's, for four workers.")
    return Result("durable_store", "Durable state: SQLite against the write log, and RAM shared by workers", text,
                  {"sides": sides, "ram": ram})
