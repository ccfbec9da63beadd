"""Load test of the HTTP service against the store in process, side by side in one run (issue 24's rows).

    python -m benchmarks.load_search                          # 100k and 1M records
    python -m benchmarks.load_search --records 100000         # one size
    python -m benchmarks.load_search --records 2000 --requests 200 --text-requests 10   # a smoke run

What it measures, for each record count (memory store, 384-d), and why:

* **In process, the reference**: ``MemoryStore.query`` one query at a time with the same query vectors,
  before the servers start and again after they stop (the cores are shared: the two show how much
  the machine's load moved); the reference rate is the higher of the two, so a slow spell of the
  machine during one of them cannot flatter the service. The facade (``VectorSeam.query`` with
  the same :class:`~vectorseam.query.Query` the service builds) is measured beside it.
* **One worker** (``vectorseam serve``): ``GET /healthz`` and one record by id (a request's fixed
  cost), search by vector one request at a time, with 8 in flight, and with a metadata filter; search
  by text one at a time and 8 in flight (the model's micro-batching), whose hits must be identical.
* **One at a time, side by side** (the 0.8x target): search by vector over HTTP and ``MemoryStore.query``
  in this process in blocks of 1.5 s taken in turn, so both rates are measured in the same minutes
  (:func:`alternating`): this machine's memory and CPU speed drift by a fifth to a third within minutes,
  more than the difference measured. The ratio against the before/after reference is shown beside it.
* **Two workers** (``serve --workers 2``): search by vector with 8 in flight (the target: 1.5x the
  in-process single-query rate, p99 within 3x p50) and search by text with 8 in flight.

Data: a few hundred real review texts (the Cookbook's fine-food reviews when ../shared/data has
them, else built-in sentences) embedded with the real model; the record vectors are those plus
Gaussian noise, re-normalised (embedding 1M texts would take hours here, and the store's cost depends
on the count and dimension, not on where the vectors came from).

Client: this process, asyncio with a small HTTP/1.1 keep-alive client of its own (requests encoded
once; the answer read by its Content-Length). A general client (httpx) spends about as much CPU per
request as the server's whole request path, on the same two cores, and would be measured instead of
the server. Each phase is bounded in request count and in wall time; every answer's status is
checked, and a search's hit count. Server CPU per request: the CPU seconds of the server's processes
during a phase over its requests; unlike latency it hardly moves when other work shares the cores.

Caveat: 2 CPU cores, shared by client and server, and by other work while this runs (the load
average is written beside the results): the numbers are a floor, not a capacity plan.
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
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import numpy.typing as npt
import orjson

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
SHARED = Path(os.environ.get("VECTORSEAM_SHARED_DATA", REPO.parent / "shared" / "data"))
COLLECTION = "load"
QUERIES = ["delicious beans", "whole wheat pasta", "bad delivery", "spoilt", "pet food", "great coffee",
           "too salty", "healthy snack for kids", "arrived broken", "tastes like cardboard"]
FALLBACK_TEXTS = [f"{adj} {food}, {verdict}" for adj in ("Crunchy", "Stale", "Fresh", "Spicy", "Sweet")
                  for food in ("coffee beans", "pasta", "dog treats", "green tea", "chips", "hot sauce")
                  for verdict in ("would buy again", "arrived late", "not worth the price")]
OLD_TEXT_RATE = 27.1  # req/s, text queries with 8 in flight, 1 worker, 100k: load_search.md of 2026-11-27
FILTER = {"Score": {"$gte": 4}}  # 40% of records
IN_PROCESS = "in process: MemoryStore.query"
FACADE = "in process: VectorSeam.query (facade)"
HEALTHZ = "GET /healthz"
RECORD = "GET one record by id"
BY_VECTOR = "search by vector"
FILTERED = "search by vector + filter"
BY_TEXT = "search by text (embeds on the server)"
ALTERNATING = "search by vector, in blocks alternating with in process"
ALTERNATING_IN_PROCESS = "in process: MemoryStore.query, in blocks alternating with HTTP"
BLOCK_S = 1.5  # seconds a block of the alternating phase lasts ...
SETTLE_S = 0.3  # ... of which the first are not counted


@dataclass
class Phase:
    name: str
    records: int
    requests: int
    errors: int
    seconds: float
    throughput_rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    concurrency: int
    statuses: dict[str, int] = field(default_factory=dict)
    workers: int = 0  # 0: in process, no server
    server_cpu_ms_per_request: float | None = None
    load_average: float = 0.0


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


def build_store(base: npt.NDArray[np.float32], spec: Any, data_dir: Path, records: int, texts: list[str],
                seed: int = 7) -> float:
    """Writes the collection into the memory store under ``data_dir`` (as the server will open it); seconds."""
    from vectorseam.stores.memory import MemoryStore
    from vectorseam.types import Record

    t0 = time.perf_counter()
    store = MemoryStore(data_dir / "memory")
    store.ensure_collection(spec)
    batch = 20_000
    for start in range(0, records, batch):
        vectors = synthesize(base, min(batch, records - start), 0.05, seed + start)
        store.upsert(COLLECTION, [
            Record(f"rec-{i}", vectors[i - start], f"{texts[i % len(texts)][:200]} (variant {i})",
                   {"Score": i % 5 + 1, "bucket": i % 10})
            for i in range(start, min(start + batch, records))])
    store.close()
    return round(time.perf_counter() - t0, 2)


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


@dataclass(frozen=True)
class Request:
    """One request, encoded once; ``hits``: how many hits a good answer holds (None: any 200 will do)."""

    raw: bytes
    hits: int | None = None

    @classmethod
    def of(cls, method: str, path: str, body: dict[str, Any] | None = None, hits: int | None = None) -> Request:
        data = b"" if body is None else json.dumps(body).encode()
        head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        if body is not None:
            head += f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n"
        return cls((head + "\r\n").encode() + data, hits)


class Connection:
    """A keep-alive HTTP/1.1 connection that sends ready-made requests and reads each answer by its
    Content-Length (every route measured here answers with one)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int) -> Connection:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer)

    async def send(self, raw: bytes) -> tuple[int, bytes]:
        self.writer.write(raw)
        head = await self.reader.readuntil(b"\r\n\r\n")
        length = None
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        if length is None:
            raise RuntimeError(f"an answer without Content-Length: {head[:200]!r}")
        return int(head[9:12]), await self.reader.readexactly(length)

    async def close(self) -> None:
        self.writer.close()
        await self.writer.wait_closed()


def summarize(name: str, records: int, latencies: list[float], seconds: float, errors: int, concurrency: int,
              statuses: dict[str, int], workers: int, cpu: float | None) -> Phase:
    ms = np.asarray(latencies) * 1000 if latencies else np.zeros(1)
    return Phase(name, records, len(latencies), errors, round(seconds, 3), round(len(latencies) / seconds, 1),
                 round(float(np.percentile(ms, 50)), 3), round(float(np.percentile(ms, 90)), 3),
                 round(float(np.percentile(ms, 99)), 3), round(float(ms.max()), 3), concurrency, statuses, workers,
                 None if cpu is None else round(cpu * 1000 / max(len(latencies), 1), 3),
                 round(os.getloadavg()[0], 2))


async def run_phase(port: int, name: str, records: int, requests: list[Request], concurrency: int,
                    time_limit: float, server_pid: int, workers: int,
                    answers: dict[int, list[str]] | None = None) -> Phase:
    """Sends ``requests`` with ``concurrency`` in flight (one connection each); stops early at ``time_limit``
    seconds. ``answers`` (when given) collects the hit ids of each request by its index."""
    latencies: list[float] = []
    statuses: dict[str, int] = {}
    errors = 0
    next_index = 0
    connections = [await Connection.open(port) for _ in range(concurrency)]
    deadline = time.perf_counter() + time_limit

    async def worker(conn: Connection) -> None:
        nonlocal next_index, errors
        while next_index < len(requests) and time.perf_counter() < deadline:
            index = next_index
            next_index += 1
            request = requests[index]
            t0 = time.perf_counter()
            try:
                status, body = await conn.send(request.raw)
            except (OSError, asyncio.IncompleteReadError, RuntimeError) as exc:
                latencies.append(time.perf_counter() - t0)
                statuses[type(exc).__name__] = statuses.get(type(exc).__name__, 0) + 1
                errors += 1
                return  # this connection is done for
            latencies.append(time.perf_counter() - t0)
            ok = status == 200
            if ok and request.hits is not None:
                found = orjson.loads(body)["hits"]
                ok = len(found) == request.hits
                if answers is not None:
                    answers[index] = [h["id"] for h in found]
            statuses[str(status)] = statuses.get(str(status), 0) + 1
            errors += 0 if ok else 1

    cpu0 = server_cpu_seconds(server_pid)
    start = time.perf_counter()
    await asyncio.gather(*(worker(c) for c in connections))
    seconds = time.perf_counter() - start
    cpu = server_cpu_seconds(server_pid) - cpu0
    for conn in connections:
        await conn.close()
    return summarize(name, records, latencies, seconds, errors, concurrency, statuses, workers, cpu)


def in_process(data_dir: Path, records: int, vectors: list[list[float]], k: int, calls: int, time_limit: float,
               facade: bool = False) -> Phase:
    """One query at a time in this process with the same vectors: ``MemoryStore.query``, or the facade
    (``VectorSeam.query``, the call each search request makes) over the same data directory."""
    if facade:
        from vectorseam.client import VectorSeam
        from vectorseam.config import Settings
        from vectorseam.service.models import SearchRequest

        client = VectorSeam(Settings(data_dir=data_dir))
        queries: list[Any] = [SearchRequest(vector=v, k=k).to_query() for v in vectors]

        def one(q: Any) -> object:
            return client.query(q, COLLECTION)

        close = client.close
    else:
        from vectorseam.stores.memory import MemoryStore

        store = MemoryStore(data_dir / "memory")
        queries = [np.asarray(v, dtype=np.float32) for v in vectors]

        def one(q: Any) -> object:
            return store.query(COLLECTION, q, k=k)

        close = store.close
    one(queries[0])  # warm-up: loads the collection
    latencies: list[float] = []
    deadline = time.perf_counter() + time_limit
    start = time.perf_counter()
    for i in range(calls):
        if time.perf_counter() > deadline:
            break
        t0 = time.perf_counter()
        one(queries[i % len(queries)])
        latencies.append(time.perf_counter() - t0)
    seconds = time.perf_counter() - start
    close()
    return summarize(FACADE if facade else IN_PROCESS, records, latencies, seconds, 0, 1, {}, 0, None)


async def alternating(port: int, pid: int, data_dir: Path, records: int, requests: list[Request],
                      vectors: list[list[float]], k: int, time_limit: float) -> tuple[Phase, Phase]:
    """Search by vector one at a time over HTTP and ``MemoryStore.query`` in this process, in blocks of
    :data:`BLOCK_S` seconds taken in turn (ABBA) until each side has answered ``len(requests)`` or used
    ``time_limit`` seconds: the two rates are measured in the same minutes. Why: this machine's memory speed
    drifts by a third within minutes (the in-process 100k scan took 4.3-6.3 ms in one hour), so a reference
    measured before or after the servers says little about the rate while the server ran. The first
    :data:`SETTLE_S` of each block are not counted: the other side's BLAS threads spin on a core for about
    0.1 s after its last scan. Every answer is checked as in :func:`run_phase`."""
    from vectorseam.stores.memory import MemoryStore

    store = MemoryStore(data_dir / "memory")
    arrays = [np.asarray(v, dtype=np.float32) for v in vectors]
    store.query(COLLECTION, arrays[0], k=k)  # loads the collection
    took: dict[bool, list[float]] = {True: [], False: []}  # over HTTP?
    seconds = {True: 0.0, False: 0.0}
    statuses: dict[str, int] = {}
    errors, cpu, block, i = 0, 0.0, 0, 0
    while min(len(t) for t in took.values()) < len(requests) and max(seconds.values()) < time_limit:
        for http in ((True, False) if block % 2 == 0 else (False, True)):
            # a connection per block: the server closes one left idle for its keep-alive timeout (5 s), as
            # long as an in-process block can take
            conn = await Connection.open(port) if http else None
            began = time.perf_counter()
            counted_from = cpu0 = None
            while (now := time.perf_counter()) < began + BLOCK_S:
                if counted_from is None and now >= began + SETTLE_S:
                    counted_from, cpu0 = now, server_cpu_seconds(pid) if http else 0.0
                i += 1
                t0 = time.perf_counter()
                if conn is None:
                    store.query(COLLECTION, arrays[i % len(arrays)], k=k)
                else:
                    status, body = await conn.send(requests[i % len(requests)].raw)
                    ok = status == 200 and len(orjson.loads(body)["hits"]) == k
                    statuses[str(status)] = statuses.get(str(status), 0) + 1
                    errors += 0 if ok else 1
                if counted_from is not None:
                    took[http].append(time.perf_counter() - t0)
            if counted_from is not None:
                seconds[http] += time.perf_counter() - counted_from
            if conn is not None:
                if cpu0 is not None:
                    cpu += server_cpu_seconds(pid) - cpu0
                await conn.close()
        block += 1
    store.close()
    return (summarize(ALTERNATING, records, took[True], seconds[True], errors, 1, statuses, 1, cpu),
            summarize(ALTERNATING_IN_PROCESS, records, took[False], seconds[False], 0, 1, {}, 0, None))


def server_phases(port: int, pid: int, workers: int, records: int, args: argparse.Namespace,
                  vectors: list[list[float]], texts: list[str], ids: list[str], text: bool, data_dir: Path
                  ) -> tuple[list[Phase], bool | None]:
    """The HTTP phases against one running server; also whether text hits were the same in flight."""
    search = f"/v1/collections/{COLLECTION}/search"
    by_vector = [Request.of("POST", search, {"vector": vectors[i % len(vectors)], "k": args.k}, args.k)
                 for i in range(args.requests)]
    filtered = [Request.of("POST", search, {"vector": vectors[i % len(vectors)], "k": args.k, "filter": FILTER},
                           args.k) for i in range(max(args.requests // 4, 1))]
    fixed = args.fixed_requests
    health = [Request.of("GET", "/healthz")] * fixed
    record = [Request.of("GET", f"/v1/collections/{COLLECTION}/records/{ids[i % len(ids)]}") for i in range(fixed)]
    by_text = [Request.of("POST", search, {"query": t, "k": args.k}, args.k) for t in texts] if text else []

    def phase(name: str, reqs: list[Request], concurrency: int,
              answers: dict[int, list[str]] | None = None) -> Phase:
        result = asyncio.run(run_phase(port, name, records, reqs, concurrency, args.time_limit, pid, workers,
                                       answers))
        print(f"[load] {records:,} records, workers={workers}, {concurrency} in flight, {name}: "
              f"{result.throughput_rps} req/s, p50 {result.p50_ms} ms, p99 {result.p99_ms} ms, "
              f"server cpu/request {result.server_cpu_ms_per_request} ms, load {result.load_average}",
              file=sys.stderr)
        return result

    # every worker process loads its collection on its first query, and its model on its first text
    warm = by_vector[:10 * workers] + by_text[:4 * workers] * 2 + record[:10] + health[:10]
    asyncio.run(run_phase(port, "warm-up", records, warm, 2 * workers, 300, pid, workers))
    out: list[Phase] = []
    if workers == 1:
        out += [phase(HEALTHZ, health, 1), phase(RECORD, record, 1), phase(BY_VECTOR, by_vector, 1)]
        paired = asyncio.run(alternating(port, pid, data_dir, records, by_vector, vectors, args.k,
                                         args.time_limit))
        print(f"[load] {records:,} records, alternating blocks: HTTP {paired[0].throughput_rps} req/s, in process "
              f"{paired[1].throughput_rps} queries/s", file=sys.stderr)
        out += paired
    out.append(phase(BY_VECTOR, by_vector, args.concurrency))
    if workers == 1:
        out.append(phase(FILTERED, filtered, args.concurrency))
    same = None
    if by_text:
        many: dict[int, list[str]] = {}
        if workers == 1:
            one: dict[int, list[str]] = {}
            out.append(phase(BY_TEXT, by_text, 1, one))
            args.text_reference = one
        out.append(phase(BY_TEXT, by_text, args.concurrency, many))
        reference = args.text_reference
        common = reference.keys() & many.keys()
        same = all(reference[i] == many[i] for i in common) if common else None
    return out, same


def run_size(records: int, args: argparse.Namespace, embedder: Any, work: Path, base: npt.NDArray[np.float32],
             texts: list[str], text: bool) -> tuple[list[Phase], dict[str, Any]]:
    """Every phase for one record count: in process before, the servers, in process after."""
    from vectorseam.embedding import collection_spec

    data_dir = work / f"records-{records}"
    build_seconds = build_store(base, collection_spec(COLLECTION, embedder), data_dir, records, texts)
    rng = np.random.default_rng(11)
    pool = base[:64]
    vectors = [synthesize(pool, 1, 0.08, int(s))[0].tolist() for s in rng.integers(0, 2**31, size=64)]
    ids = [f"rec-{int(i)}" for i in rng.integers(0, records, size=64)]
    queries = [QUERIES[i % len(QUERIES)] + f" {i}" for i in range(args.text_requests)]
    calls = args.requests
    before = in_process(data_dir, records, vectors, args.k, calls, args.time_limit)
    phases = [before, in_process(data_dir, records, vectors, args.k, calls, args.time_limit, facade=True)]
    print(f"[load] {records:,} records, in process: {before.throughput_rps} queries/s, facade "
          f"{phases[1].throughput_rps}", file=sys.stderr)
    same: bool | None = None
    store_errors = 0.0
    for workers in args.workers:
        port = free_port()
        proc = start_server(data_dir, port, data_dir / f"server-{workers}.log", workers=workers)
        try:
            got, same_here = server_phases(port, proc.pid, workers, records, args, vectors, queries, ids, text,
                                           data_dir)
            phases += got
            if same_here is not None:
                same = same_here if same is None else (same and same_here)
            metrics = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=30).text
            store_errors += sum(float(ln.rsplit(" ", 1)[1]) for ln in metrics.splitlines()
                                if ln.startswith("vectorseam_store_errors_total{"))
        finally:
            proc.terminate()
            proc.wait(timeout=60)
    after = in_process(data_dir, records, vectors, args.k, calls, args.time_limit)
    after.name = IN_PROCESS + " (again, after the servers)"
    phases.append(after)
    reference = max(before.throughput_rps, after.throughput_rps)
    return phases, {"records": records, "build_seconds": build_seconds, "reference_rps": round(reference, 1),
                    "text_results_identical": same, "server_store_errors": store_errors}


def find(phases: list[Phase], name: str, records: int, workers: int, concurrency: int) -> Phase | None:
    return next((p for p in phases if p.name == name and p.records == records and p.workers == workers
                 and p.concurrency == concurrency), None)


def targets(phases: list[Phase], sizes: list[dict[str, Any]], concurrency: int) -> list[dict[str, Any]]:
    """Issue 24's done-when rows: what was measured against each target, and whether it holds."""
    rows: list[dict[str, Any]] = []

    def row(what: str, records: int, value: float | None, goal: str, ok: bool | None) -> None:
        rows.append({"target": what, "records": records, "measured": value, "goal": goal, "met": ok})

    for size in sizes:
        n, ref = size["records"], size["reference_rps"]
        http, local = find(phases, ALTERNATING, n, 1, 1), find(phases, ALTERNATING_IN_PROCESS, n, 0, 1)
        if http is not None and local is not None:
            ratio = http.throughput_rps / local.throughput_rps  # compared unrounded: 0.798 is not 0.8
            row("search by vector, sequential, 1 worker: x in-process rate (blocks taken in turn)", n,
                round(ratio, 3), ">= 0.8", ratio >= 0.8)
        seq = find(phases, BY_VECTOR, n, 1, 1)
        if seq is not None:
            ratio = seq.throughput_rps / ref
            row("the same, its own phase against the higher in-process rate before/after the servers", n,
                round(ratio, 3), "(for comparison)", None)
        for name, goal in ((HEALTHZ, 0.5), (RECORD, 1.0)):
            p = find(phases, name, n, 1, 1)
            if p is not None:
                row(f"{name}: p50 ms", n, p.p50_ms, f"<= {goal}", p.p50_ms <= goal)
        two = find(phases, BY_VECTOR, n, 2, concurrency)
        if two is not None:
            ratio = two.throughput_rps / ref
            row(f"search by vector, {concurrency} in flight, 2 workers: x in-process single-query rate", n,
                round(ratio, 3), ">= 1.5", ratio >= 1.5)
            spread = round(two.p99_ms / two.p50_ms, 2) if two.p50_ms else None
            row(f"search by vector, {concurrency} in flight, 2 workers: p99 / p50", n, spread, "<= 3",
                spread is not None and spread <= 3)
        for workers in (1, 2):
            text = find(phases, BY_TEXT, n, workers, concurrency)
            if text is not None:
                gain = round(text.throughput_rps / OLD_TEXT_RATE, 2)
                row(f"search by text, {concurrency} in flight, {workers} worker(s): x the old {OLD_TEXT_RATE} req/s",
                    n, gain, ">= 2", gain >= 2)
        if size["text_results_identical"] is not None:
            row("search by text: hits in flight identical to one at a time", n, size["text_results_identical"],
                "yes", bool(size["text_results_identical"]))
    return rows


def write_results(out: Path, meta: dict[str, Any], phases: list[Phase], goals: list[dict[str, Any]]) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    data = {**meta, "targets": goals, "phases": [asdict(p) for p in phases]}
    out.with_suffix(".json").write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    reference = {s["records"]: s["reference_rps"] for s in meta["sizes"]}
    lines = [
        "# Load test: `vectorseam serve` against the store in process (memory store, 384-d)", "",
        f"Measured {meta['date']} on {meta['machine']}; server: `vectorseam serve --workers N` on 127.0.0.1; "
        f"client: asyncio with a minimal keep-alive HTTP/1.1 client, in another process. {meta['caveat']}", "",
        "## Targets (issue 24)", "",
        "| target | records | measured | goal | met |", "| --- | ---: | ---: | --- | --- |",
    ]
    for g in goals:
        met = "-" if g["met"] is None else "yes" if g["met"] else "**no**"
        lines.append(f"| {g['target']} | {g['records']:,} | {g['measured']} | {g['goal']} | {met} |")
    lines += ["", "## Phases", "",
              "| records | phase | workers | in flight | requests | errors | throughput (req/s) | vs in process | "
              "p50 (ms) | p99 (ms) | p99/p50 | max (ms) | server CPU ms/request | load avg |",
              "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for p in phases:
        ref = reference[p.records]
        ratio = f"{p.throughput_rps / ref:.2f}x" if ref and (p.name.startswith("search by vector")
                                                             or p.name.startswith("in process")) else ""
        cpu = "" if p.server_cpu_ms_per_request is None else p.server_cpu_ms_per_request
        lines.append(f"| {p.records:,} | {p.name} | {p.workers or '-'} | {p.concurrency} | {p.requests} | "
                     f"{p.errors} | {p.throughput_rps} | {ratio} | {p.p50_ms} | {p.p99_ms} | "
                     f"{p.p99_ms / p.p50_ms if p.p50_ms else 0:.1f} | {p.max_ms} | {cpu} | {p.load_average} |")
    lines += ["", f"k = {meta['k']}. Vectors: {meta['base_texts']} real embeddings + Gaussian noise (sigma 0.05), "
              "re-normalised. Filter phase: `{\"Score\": {\"$gte\": 4}}` (40% of records). \"vs in process\": a "
              "phase's throughput over the in-process reference rate of its record count (the higher of "
              "`MemoryStore.query` one at a time before and after the servers ran: "
              + ", ".join(f"{n:,}: {r} queries/s" for n, r in reference.items()) + "). "
              "The two phases \"in blocks alternating\" take HTTP and the store in process in turns of 1.5 s "
              "(the first 0.3 s of each not counted), so both rates come from the same minutes; the target's "
              "one-at-a-time row is their ratio. "
              f"Text queries: the old rate is {OLD_TEXT_RATE} req/s (8 in flight, 1 worker, 100k records, "
              "2026-11-27). Load average: the 1-minute figure when the phase ended (2 cores).",
              "Reproduce: `.venv/bin/python -m benchmarks.load_search`.", ""]
    out.with_suffix(".md").write_text("\n".join(lines), encoding="utf-8")


def run(args: argparse.Namespace, embedder: Any | None = None) -> dict[str, Any]:
    if embedder is None:
        from vectorseam.embedders.local import LocalEmbedder

        embedder = LocalEmbedder()
    texts = base_texts(args.base_texts)
    t0 = time.perf_counter()
    base = np.asarray(embedder.embed_documents(texts), dtype=np.float32)
    embed_seconds = round(time.perf_counter() - t0, 2)
    phases: list[Phase] = []
    sizes: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="vectorseam-load-") as work:
        for i, records in enumerate(args.records):
            got, size = run_size(records, args, embedder, Path(work), base, texts, text=i == 0)
            phases += got
            sizes.append(size)
    goals = targets(phases, sizes, args.concurrency)
    meta = {
        "k": args.k, "concurrency": args.concurrency, "base_texts": len(texts), "embed_seconds": embed_seconds,
        "sizes": sizes, "date": time.strftime("%Y-%m-%d %H:%M"),
        "machine": f"{os.cpu_count()} CPU cores, {platform.machine()}, Python {platform.python_version()}",
        "caveat": "The cores are shared by client and server, and with other work during the run (see the load "
                  "average of each phase): treat the figures as a floor.",
        "server_store_errors": sum(s["server_store_errors"] for s in sizes),
        "text_results_identical": next((s["text_results_identical"] for s in sizes
                                        if s["text_results_identical"] is not None), None),
    }
    write_results(Path(args.out), meta, phases, goals)
    return {**meta, "targets": goals, "phases": [asdict(p) for p in phases]}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    p.add_argument("--records", type=int, nargs="+", default=[100_000, 1_000_000],
                   help="record counts, one store each (text phases on the first)")
    p.add_argument("--base-texts", type=int, default=300, help="real texts embedded to seed the vectors")
    p.add_argument("--requests", type=int, default=2000, help="query-by-vector requests per phase")
    p.add_argument("--fixed-requests", type=int, default=2000, help="healthz and record-by-id requests")
    p.add_argument("--text-requests", type=int, default=300, help="query-by-text requests per phase")
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="server worker counts, one server each")
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--time-limit", type=float, default=40.0, help="seconds per phase at most")
    p.add_argument("--out", default=str(RESULTS / "load_search"), help="writes OUT.json and OUT.md")
    args = p.parse_args(argv)
    args.text_reference = {}
    return args


if __name__ == "__main__":
    result = run(parse_args())
    print(json.dumps(result["targets"], indent=2))
