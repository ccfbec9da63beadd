"""Load test of the HTTP service's /search: p50/p99 latency, throughput and errors, from a second process.

    python -m benchmarks.load_search                    # 100k records, the full run (a few minutes)
    python -m benchmarks.load_search --records 2000 --requests 200 --text-requests 10   # a smoke run

What it does, and why:

* **Data**: a few hundred real review texts (the Cookbook's fine-food reviews when ../shared/data
  has them, else built-in sentences) are embedded with the real model; 100k record vectors are those
  embeddings plus Gaussian noise, re-normalised. Embedding 100k texts here would take over an hour
  at ~20-60 texts/s, and the store's cost depends on the count and dimension, not on where the
  vectors came from. The records go into the memory store on disk, which the server then loads.
* **Server**: ``vectorseam serve`` in its own process on 127.0.0.1 (one worker: the memory store
  lives in one process), configured only through environment variables, like a deployment.
* **Client**: this process, asyncio + httpx with a fixed number of requests in flight, bounded in
  request count *and* wall time. Three phases: query by vector (store-bound: one exact top-k over
  100k x 384), query by vector with a metadata filter, and query by text (adds one embedding per
  request on the server: model-bound).

Caveat: the machine has 2 CPU cores, shared with other work while this runs, and client and server
compete for them; the numbers are a floor, not a capacity plan.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import numpy.typing as npt

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
SHARED = Path(os.environ.get("VECTORSEAM_SHARED_DATA", REPO.parent / "shared" / "data"))
COLLECTION = "load"
QUERIES = ["delicious beans", "whole wheat pasta", "bad delivery", "spoilt", "pet food", "great coffee",
           "too salty", "healthy snack for kids", "arrived broken", "tastes like cardboard"]
FALLBACK_TEXTS = [f"{adj} {food}, {verdict}" for adj in ("Crunchy", "Stale", "Fresh", "Spicy", "Sweet")
                  for food in ("coffee beans", "pasta", "dog treats", "green tea", "chips", "hot sauce")
                  for verdict in ("would buy again", "arrived late", "not worth the price")]


@dataclass
class Phase:
    name: str
    requests: int
    errors: int
    seconds: float
    throughput_rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    concurrency: int
    statuses: dict[str, int]


def base_texts(n: int) -> list[str]:
    path = SHARED / "cookbook" / "fine_food_reviews_1k.csv"
    if path.is_file():
        with open(path, encoding="utf-8", newline="") as fh:
            rows = [f"{r['Summary']}: {r['Text']}" for r in csv.DictReader(fh)]
        return rows[:n]
    return (FALLBACK_TEXTS * (n // len(FALLBACK_TEXTS) + 1))[:n]


def synthesize(base: npt.NDArray[np.float32], n: int, noise: float, seed: int) -> npt.NDArray[np.float32]:
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, base.shape[0], size=n)
    out = base[picks] + rng.normal(0.0, noise, size=(n, base.shape[1])).astype(np.float32)
    out /= np.linalg.norm(out, axis=1, keepdims=True)
    return out.astype(np.float32)


def build_store(embedder: Any, data_dir: Path, records: int, texts: list[str], seed: int = 7) -> dict[str, Any]:
    """Writes the collection into the memory store under ``data_dir`` (as the server will open it)."""
    from vectorseam.embedders.fingerprint import collection_spec
    from vectorseam.stores.memory import MemoryStore
    from vectorseam.types import Record

    t0 = time.perf_counter()
    base = np.asarray(embedder.embed_documents(texts), dtype=np.float32)
    embed_s = time.perf_counter() - t0
    vectors = synthesize(base, records, 0.05, seed)
    store = MemoryStore(data_dir / "memory")
    store.ensure_collection(collection_spec(COLLECTION, embedder))
    batch = 5000
    for start in range(0, records, batch):
        store.upsert(COLLECTION, [
            Record(f"rec-{i}", vectors[i], f"{texts[i % len(texts)][:200]} (variant {i})",
                   {"Score": i % 5 + 1, "bucket": i % 10})
            for i in range(start, min(start + batch, records))])
    store.close()
    return {"base_texts": len(texts), "embed_seconds": round(embed_s, 2),
            "build_seconds": round(time.perf_counter() - t0, 2), "query_pool": base[:64]}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(data_dir: Path, port: int, log_path: Path, ready_timeout: float = 300) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VECTORSEAM_")}
    env.update({"VECTORSEAM_DATA_DIR": str(data_dir), "VECTORSEAM_SERVICE__LOG_LEVEL": "warning",
                "VECTORSEAM_SERVICE__MAX_BATCH": "1000", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"})
    log = open(log_path, "wb")  # noqa: SIM115 - closed with the process
    proc = subprocess.Popen([sys.executable, "-c", "from vectorseam.cli import main; main()", "serve",
                             "--host", "127.0.0.1", "--port", str(port)],
                            env=env, stdout=log, stderr=subprocess.STDOUT, cwd=data_dir)
    deadline = time.monotonic() + ready_timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with {proc.returncode}; see {log_path}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5).status_code == 200:
                return proc
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    proc.terminate()
    raise TimeoutError(f"the server was not ready after {ready_timeout} s; see {log_path}")


async def run_phase(url: str, name: str, bodies: list[dict[str, Any]], concurrency: int,
                    time_limit: float) -> Phase:
    """Sends ``bodies`` with ``concurrency`` in flight; stops early at ``time_limit`` seconds."""
    latencies: list[float] = []
    statuses: dict[str, int] = {}
    errors = 0
    next_index = 0
    deadline = time.perf_counter() + time_limit
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:
        async def worker() -> None:
            nonlocal next_index, errors
            while next_index < len(bodies) and time.perf_counter() < deadline:
                body = bodies[next_index]
                next_index += 1
                t0 = time.perf_counter()
                try:
                    resp = await client.post(f"/v1/collections/{COLLECTION}/search", json=body)
                    key = str(resp.status_code)
                    ok = resp.status_code == 200 and len(resp.json()["hits"]) == body["k"]
                except httpx.HTTPError as exc:
                    key, ok = type(exc).__name__, False
                latencies.append(time.perf_counter() - t0)
                statuses[key] = statuses.get(key, 0) + 1
                errors += 0 if ok else 1

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        seconds = time.perf_counter() - start
    ms = np.asarray(latencies) * 1000 if latencies else np.zeros(1)
    return Phase(name, len(latencies), errors, round(seconds, 3), round(len(latencies) / seconds, 1),
                 round(float(np.percentile(ms, 50)), 2), round(float(np.percentile(ms, 90)), 2),
                 round(float(np.percentile(ms, 99)), 2), round(float(ms.max()), 2), concurrency, statuses)


def write_results(out: Path, meta: dict[str, Any], phases: list[Phase]) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    data = {**meta, "phases": [asdict(p) for p in phases]}
    out.with_suffix(".json").write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    lines = [
        f"# Load test: `POST /v1/collections/{{name}}/search` ({meta['records']:,} records, memory store)", "",
        f"Measured {meta['date']} on {meta['machine']}; server: `vectorseam serve`, 1 worker, on 127.0.0.1; "
        f"client: asyncio + httpx in a second process. {meta['caveat']} "
        f"Load average when the run ended: {meta.get('load_average_after')}.", "",
        "| phase | requests | concurrency | errors | throughput (req/s) | p50 (ms) | p90 (ms) | p99 (ms) | max (ms) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    lines += [f"| {p.name} | {p.requests} | {p.concurrency} | {p.errors} | {p.throughput_rps} | {p.p50_ms} | "
              f"{p.p90_ms} | {p.p99_ms} | {p.max_ms} |" for p in phases]
    lines += ["", f"k = {meta['k']}; vectors: {meta['base_texts']} real embeddings + Gaussian noise (sigma 0.05), "
              "re-normalised; filter phase: `{\"Score\": {\"$gte\": 4}}` (40% of records).",
              "Reproduce: `.venv/bin/python -m benchmarks.load_search`.", ""]
    out.with_suffix(".md").write_text("\n".join(lines), encoding="utf-8")


def run(args: argparse.Namespace, embedder: Any | None = None) -> dict[str, Any]:
    if embedder is None:
        from vectorseam.embedders.local import LocalEmbedder

        embedder = LocalEmbedder()
    work = Path(tempfile.mkdtemp(prefix="vectorseam-load-"))
    built = build_store(embedder, work, args.records, base_texts(args.base_texts))
    pool: npt.NDArray[np.float32] = built.pop("query_pool")
    rng = np.random.default_rng(11)
    vectors = [synthesize(pool, 1, 0.08, int(s))[0].tolist() for s in rng.integers(0, 2**31, size=64)]
    port = free_port()
    proc = start_server(work, port, work / "server.log")
    url = f"http://127.0.0.1:{port}"
    phases: list[Phase] = []
    try:
        by_vector = [{"vector": vectors[i % len(vectors)], "k": args.k} for i in range(args.requests)]
        filtered = [{**b, "filter": {"Score": {"$gte": 4}}} for b in by_vector[: max(args.requests // 4, 1)]]
        by_text = [{"query": QUERIES[i % len(QUERIES)] + f" {i}", "k": args.k} for i in range(args.text_requests)]
        asyncio.run(run_phase(url, "warm-up", by_vector[:20], 2, 60))
        phases.append(asyncio.run(run_phase(url, "query by vector", by_vector, args.concurrency, args.time_limit)))
        phases.append(asyncio.run(run_phase(url, "query by vector + filter", filtered, args.concurrency,
                                            args.time_limit)))
        if by_text:
            phases.append(asyncio.run(run_phase(url, "query by text (embeds on the server)", by_text,
                                                args.concurrency, args.time_limit)))
        metrics = httpx.get(url + "/metrics", timeout=30).text
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    meta = {
        "records": args.records, "k": args.k, **built,
        "date": time.strftime("%Y-%m-%d"), "machine": f"{os.cpu_count()} CPU cores, {platform.machine()}, "
        f"Python {platform.python_version()}",
        "caveat": "The 2 CPU cores were shared with other work during the run, and client and server share "
                  "them too: treat these figures as a floor.",
        "load_average_after": [round(x, 1) for x in os.getloadavg()],
        "server_store_errors": sum(float(ln.rsplit(" ", 1)[1]) for ln in metrics.splitlines()
                                   if ln.startswith("vectorseam_store_errors_total{")),
    }
    write_results(Path(args.out), meta, phases)
    return {**meta, "phases": [asdict(p) for p in phases]}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    p.add_argument("--records", type=int, default=100_000)
    p.add_argument("--base-texts", type=int, default=300, help="real texts embedded to seed the vectors")
    p.add_argument("--requests", type=int, default=3000, help="query-by-vector requests")
    p.add_argument("--text-requests", type=int, default=200, help="query-by-text requests")
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--time-limit", type=float, default=120.0, help="seconds per phase at most")
    p.add_argument("--out", default=str(RESULTS / "load_search"), help="writes OUT.json and OUT.md")
    return p.parse_args(argv)


if __name__ == "__main__":
    result = run(parse_args())
    print(json.dumps({k: v for k, v in result.items() if k != "phases"}, indent=2))
    for phase in result["phases"]:
        print(phase)
