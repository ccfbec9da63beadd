"""Load test of the HTTP service against the store in process: p50/p99 latency, throughput, errors.

    python -m benchmarks.load_search                    # 100k records, one server with 1 worker, then 2
    python -m benchmarks.load_search --records 1000000 --workers 1 2
    python -m benchmarks.load_search --records 2000 --requests 200 --text-requests 10   # a smoke run

What it does, and why:

* **Data**: a few hundred real review texts (the Cookbook's fine-food reviews when ../shared/data
  has them, else built-in sentences) are embedded with the real model; the record vectors are those
  embeddings plus Gaussian noise, re-normalised. Embedding 100k texts here would take over an hour
  at ~20-60 texts/s, and the store's cost depends on the count and dimension, not on where the
  vectors came from. The records go into the memory store on disk, which the server then loads.
* **In process, side by side**: the same query vectors through ``MemoryStore.query`` in this process
  (the rate the HTTP path is held against), before the servers start.
* **Server**: ``vectorseam serve`` in its own process on 127.0.0.1, configured only through
  environment variables, like a deployment; once per ``--workers`` count, the phases repeated.
* **Client**: this process, asyncio + httpx with a fixed number of requests in flight, bounded in
  request count *and* wall time. Phases: ``GET /healthz`` and one record by id (the fixed cost of a
  request), query by vector with 1 and with ``--concurrency`` in flight (store-bound: one exact top-k),
  the same with a metadata filter, and query by text with 1 and with ``--concurrency`` in flight
  (model-bound: one embedding per request on the server), whose hits must be identical.
* **Server CPU per request**: the CPU seconds the server's processes used during a phase, divided by
  its requests: unlike latency, it hardly moves when other work shares the cores.

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
    workers: int = 1
    server_cpu_ms_per_request: float | None = None


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
    from vectorseam.embedding import collection_spec
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


def start_server(data_dir: Path, port: int, log_path: Path, ready_timeout: float = 300,
                 workers: int = 1) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VECTORSEAM_")}
    env.update({"VECTORSEAM_DATA_DIR": str(data_dir), "VECTORSEAM_SERVICE__LOG_LEVEL": "warning",
                "VECTORSEAM_SERVICE__MAX_BATCH": "1000", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"})
    log = open(log_path, "wb")  # noqa: SIM115 - closed with the process
    proc = subprocess.Popen([sys.executable, "-c", "from vectorseam.cli import main; main()", "serve",
                             "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)],
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


# A request: (method, path, JSON body or None, what a good answer holds: k hits, or None for any 200)
Request = tuple[str, str, dict[str, Any] | None, int | None]


def server_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of ``pid`` and its descendants (uvicorn's worker processes), from /proc."""
    ticks = os.sysconf("SC_CLK_TCK")
    children: dict[int, list[int]] = {}
    stats: dict[int, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(entry.name))
        stats[int(entry.name)] = (int(fields[11]) + int(fields[12])) / ticks
    total, todo = 0.0, [pid]
    while todo:
        p = todo.pop()
        total += stats.get(p, 0.0)
        todo += children.get(p, [])
    return total


async def run_phase(url: str, name: str, requests: list[Request], concurrency: int, time_limit: float,
                    server_pid: int | None = None, workers: int = 1,
                    answers: dict[int, list[str]] | None = None) -> Phase:
    """Sends ``requests`` with ``concurrency`` in flight; stops early at ``time_limit`` seconds.
    ``answers`` (when given) collects the hit ids of each request by its index."""
    latencies: list[float] = []
    statuses: dict[str, int] = {}
    errors = 0
    next_index = 0
    deadline = time.perf_counter() + time_limit
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    cpu0 = server_cpu_seconds(server_pid) if server_pid else None
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:
        async def worker() -> None:
            nonlocal next_index, errors
            while next_index < len(requests) and time.perf_counter() < deadline:
                index = next_index
                method, path, body, hits = requests[index]
                next_index += 1
                t0 = time.perf_counter()
                try:
                    resp = await client.request(method, path, json=body)
                    key = str(resp.status_code)
                    ok = resp.status_code == 200
                    if ok and hits is not None:
                        found = resp.json()["hits"]
                        ok = len(found) == hits
                        if answers is not None:
                            answers[index] = [h["id"] for h in found]
                except httpx.HTTPError as exc:
                    key, ok = type(exc).__name__, False
                latencies.append(time.perf_counter() - t0)
                statuses[key] = statuses.get(key, 0) + 1
                errors += 0 if ok else 1

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        seconds = time.perf_counter() - start
    cpu = (server_cpu_seconds(server_pid) - cpu0) if server_pid and cpu0 is not None else None
    ms = np.asarray(latencies) * 1000 if latencies else np.zeros(1)
    return Phase(name, len(latencies), errors, round(seconds, 3), round(len(latencies) / seconds, 1),
                 round(float(np.percentile(ms, 50)), 3), round(float(np.percentile(ms, 90)), 3),
                 round(float(np.percentile(ms, 99)), 3), round(float(ms.max()), 3), concurrency, statuses, workers,
                 round(cpu * 1000 / max(len(latencies), 1), 3) if cpu is not None else None)


def in_process(data_dir: Path, vectors: list[list[float]], k: int, calls: int, time_limit: float) -> Phase:
    """``MemoryStore.query`` in this process with the same vectors, one at a time: the reference rate."""
    from vectorseam.stores.memory import MemoryStore

    store = MemoryStore(data_dir / "memory")
    queries = [np.asarray(v, dtype=np.float32) for v in vectors]
    store.query(COLLECTION, queries[0], k=k)  # warm-up: loads the collection
    latencies: list[float] = []
    deadline = time.perf_counter() + time_limit
    start = time.perf_counter()
    for i in range(calls):
        if time.perf_counter() > deadline:
            break
        t0 = time.perf_counter()
        store.query(COLLECTION, queries[i % len(queries)], k=k)
        latencies.append(time.perf_counter() - t0)
    seconds = time.perf_counter() - start
    store.close()
    ms = np.asarray(latencies) * 1000
    return Phase("in process: MemoryStore.query", len(latencies), 0, round(seconds, 3),
                 round(len(latencies) / seconds, 1), round(float(np.percentile(ms, 50)), 3),
                 round(float(np.percentile(ms, 90)), 3), round(float(np.percentile(ms, 99)), 3),
                 round(float(ms.max()), 3), 1, {}, 0)


def write_results(out: Path, meta: dict[str, Any], phases: list[Phase]) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    data = {**meta, "phases": [asdict(p) for p in phases]}
    out.with_suffix(".json").write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    reference = next((p.throughput_rps for p in phases if p.workers == 0), None)
    lines = [
        f"# Load test: `vectorseam serve` against the store in process ({meta['records']:,} records, memory store)", "",
        f"Measured {meta['date']} on {meta['machine']}; server: `vectorseam serve --workers N` on 127.0.0.1; "
        f"client: asyncio + httpx in a second process. {meta['caveat']} "
        f"Load average when the run ended: {meta.get('load_average_after')}.", "",
        "| phase | workers | in flight | requests | errors | throughput (req/s) | vs in process | p50 (ms) | "
        "p99 (ms) | p99/p50 | max (ms) | server CPU ms/request |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for p in phases:
        ratio = f"{p.throughput_rps / reference:.2f}x" if reference and "search" in p.name else ""
        lines.append(f"| {p.name} | {p.workers or '-'} | {p.concurrency} | {p.requests} | {p.errors} | "
                     f"{p.throughput_rps} | {ratio} | {p.p50_ms} | {p.p99_ms} | "
                     f"{p.p99_ms / p.p50_ms if p.p50_ms else 0:.1f} | {p.max_ms} | "
                     f"{'' if p.server_cpu_ms_per_request is None else p.server_cpu_ms_per_request} |")
    same = meta.get("text_results_identical")
    lines += ["", f"k = {meta['k']}; vectors: {meta['base_texts']} real embeddings + Gaussian noise (sigma 0.05), "
              "re-normalised; filter phases: `{\"Score\": {\"$gte\": 4}}` (40% of records). "
              "\"vs in process\" divides a search phase's throughput by the in-process single-query rate. "
              + ("" if same is None else f"Text-query hits with {meta['concurrency']} in flight identical to one "
                 f"at a time: **{'yes' if same else 'NO'}**."),
              "Reproduce: `.venv/bin/python -m benchmarks.load_search`.", ""]
    out.with_suffix(".md").write_text("\n".join(lines), encoding="utf-8")


def server_phases(url: str, pid: int, workers: int, args: argparse.Namespace, vectors: list[list[float]],
                  texts: list[str], ids: list[str]) -> tuple[list[Phase], bool | None]:
    """Every HTTP phase against one running server; also whether text hits were the same in flight."""
    search = f"/v1/collections/{COLLECTION}/search"
    by_vector: list[Request] = [("POST", search, {"vector": vectors[i % len(vectors)], "k": args.k}, args.k)
                                for i in range(args.requests)]
    filtered: list[Request] = [(m, p, {**(b or {}), "filter": {"Score": {"$gte": 4}}}, h)
                               for m, p, b, h in by_vector[: max(args.requests // 4, 1)]]
    fixed = max(args.requests // 2, 20)
    health: list[Request] = [("GET", "/healthz", None, None)] * fixed
    record: list[Request] = [("GET", f"/v1/collections/{COLLECTION}/records/{ids[i % len(ids)]}", None, None)
                             for i in range(fixed)]
    by_text: list[Request] = [("POST", search, {"query": t, "k": args.k}, args.k) for t in texts]

    def phase(name: str, reqs: list[Request], concurrency: int,
              answers: dict[int, list[str]] | None = None) -> Phase:
        result = asyncio.run(run_phase(url, name, reqs, concurrency, args.time_limit, pid, workers, answers))
        print(f"[load] workers={workers} {name}: {result.throughput_rps} req/s, p50 {result.p50_ms} ms, "
              f"p99 {result.p99_ms} ms, cpu/request {result.server_cpu_ms_per_request} ms", file=sys.stderr)
        return result

    # every worker process loads its model on its first text query: warm them all up first
    asyncio.run(run_phase(url, "warm-up", by_vector[:20] + by_text[: 8 * workers] * 2, 4 * workers, 120))
    out = [phase("GET /healthz", health, 1), phase("GET one record by id", record, 1),
           phase("search by vector", by_vector, 1), phase("search by vector", by_vector, args.concurrency),
           phase("search by vector + filter", filtered, args.concurrency)]
    same = None
    if by_text:
        one: dict[int, list[str]] = {}
        many: dict[int, list[str]] = {}
        out.append(phase("search by text (embeds on the server)", by_text, 1, one))
        out.append(phase("search by text (embeds on the server)", by_text, args.concurrency, many))
        same = all(one[i] == many[i] for i in one.keys() & many.keys())
    return out, same


def run(args: argparse.Namespace, embedder: Any | None = None) -> dict[str, Any]:
    if embedder is None:
        from vectorseam.embedders.local import LocalEmbedder

        embedder = LocalEmbedder()
    work = Path(tempfile.mkdtemp(prefix="vectorseam-load-"))
    built = build_store(embedder, work, args.records, base_texts(args.base_texts))
    pool: npt.NDArray[np.float32] = built.pop("query_pool")
    rng = np.random.default_rng(11)
    vectors = [synthesize(pool, 1, 0.08, int(s))[0].tolist() for s in rng.integers(0, 2**31, size=64)]
    ids = [f"rec-{int(i)}" for i in rng.integers(0, args.records, size=64)]
    texts = [QUERIES[i % len(QUERIES)] + f" {i}" for i in range(args.text_requests)]
    phases = [in_process(work, vectors, args.k, args.requests, args.time_limit)]
    print(f"[load] in process: {phases[0].throughput_rps} queries/s, p50 {phases[0].p50_ms} ms", file=sys.stderr)
    same: bool | None = None
    store_errors = 0.0
    for workers in args.workers:
        port = free_port()
        proc = start_server(work, port, work / f"server-{workers}.log", workers=workers)
        url = f"http://127.0.0.1:{port}"
        try:
            got, same_here = server_phases(url, proc.pid, workers, args, vectors, texts, ids)
            phases += got
            same = same_here if same is None else (same and bool(same_here))
            metrics = httpx.get(url + "/metrics", timeout=30).text
            store_errors += sum(float(ln.rsplit(" ", 1)[1]) for ln in metrics.splitlines()
                                if ln.startswith("vectorseam_store_errors_total{"))
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    meta = {
        "records": args.records, "k": args.k, "concurrency": args.concurrency, **built,
        "date": time.strftime("%Y-%m-%d"), "machine": f"{os.cpu_count()} CPU cores, {platform.machine()}, "
        f"Python {platform.python_version()}",
        "caveat": "The 2 CPU cores were shared with other work during the run, and client and server share "
                  "them too: treat these figures as a floor.",
        "load_average_after": [round(x, 1) for x in os.getloadavg()],
        "server_store_errors": store_errors,
        "text_results_identical": same,
    }
    write_results(Path(args.out), meta, phases)
    return {**meta, "phases": [asdict(p) for p in phases]}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    p.add_argument("--records", type=int, default=100_000)
    p.add_argument("--base-texts", type=int, default=300, help="real texts embedded to seed the vectors")
    p.add_argument("--requests", type=int, default=3000, help="query-by-vector requests per phase")
    p.add_argument("--text-requests", type=int, default=200, help="query-by-text requests per phase")
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="server worker counts, one server each")
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--time-limit", type=float, default=120.0, help="seconds per phase at most")
    p.add_argument("--out", default=str(RESULTS / "load_search"), help="writes OUT.json and OUT.md")
    return p.parse_args(argv)


if __name__ == "__main__":
    result = run(parse_args())
    print(json.dumps({k: v for k, v in result.items() if k != "phases"}, indent=2))
    for phase in result["phases"]:
        print(phase)
