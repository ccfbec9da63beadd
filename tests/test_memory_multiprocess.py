"""Many processes, one data directory: a server, two CLI ingests and a Python writer write at once.

The processes are real: ``vectorseam serve --workers 2`` (HTTP on 127.0.0.1; two worker processes,
each request on a new connection that either may accept), ``vectorseam ingest`` runs back to
back on growing JSONL files (texts embedded by the real model beforehand, through the embedding
cache, so each run spends its time writing), and a Python script that upserts and deletes through
:class:`MemoryStore`, killed with SIGKILL once half-way and started again. The test itself writes
through the server's API and, after every write the script acknowledges, asks the server for it.

Then record by record: every acknowledged write is in a fresh store opened on the directory and in
the server's answers (nothing lost, nothing deleted comes back), no process reported damage, and
every process's writes went through at least 20 rounds. (Before the shared log, the server saved
its stale copy over the others' writes, and two savers deleted each other's files.)
"""

from __future__ import annotations

import json
import queue
import signal
import subprocess
import sys
import threading
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from tests.serve_process import ServeProcess, clean_env
from tests.test_ingest_helpers import fill_cache, write_jsonl
from vectorseam.embedding import ensure_collection_for
from vectorseam.stores.memory import MemoryStore

WINDOW_S = 30.0  # how long the writers run together (the whole test stays near a minute and a half)
MIN_ROUNDS = 20
SERVER_WORKERS = 2  # `serve --workers 2`: the server is itself two processes sharing the directory
DIM = 384
COLLECTIONS = ("shared", "docs")
INGEST_ROWS_PER_RUN = 6
INGEST_RUNS_MAX = 14

WRITER = r"""
import json, sys, time, zlib
import numpy as np
from vectorseam.stores.memory import MemoryStore
from vectorseam.types import Record

def vector(rid):
    v = np.random.default_rng(zlib.crc32(rid.encode())).standard_normal(384).astype(np.float32)
    return v / np.linalg.norm(v)

path, prefix, seconds, start = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4])
store = MemoryStore(path)
print("ready", flush=True)
deadline = time.monotonic() + seconds
r = start
while time.monotonic() < deadline:
    coll = ("shared", "docs")[r % 2]
    ids = [f"{prefix}-{r}-{j}" for j in range(4)]
    print(json.dumps({"op": "upsert", "c": coll, "ids": ids}), flush=True)  # about to write
    store.upsert(coll, [Record(i, vector(i), f"writer {i}", {"round": r, "by": prefix}) for i in ids])
    print(json.dumps({"ack": "upsert", "c": coll, "ids": ids}), flush=True)
    if r - start >= 2:
        gone = [f"{prefix}-{r - 2}-0"]
        old = ("shared", "docs")[(r - 2) % 2]
        print(json.dumps({"op": "delete", "c": old, "ids": gone}), flush=True)
        store.delete(old, ids=gone)
        print(json.dumps({"ack": "delete", "c": old, "ids": gone}), flush=True)
    r += 1
    time.sleep(0.05)
print("done", flush=True)
"""


def vector(rid: str) -> np.ndarray[Any, Any]:
    """The writers' vector for an id (the writer script computes the same)."""
    v = np.random.default_rng(zlib.crc32(rid.encode())).standard_normal(DIM).astype(np.float32)
    return v / np.linalg.norm(v)


@dataclass
class Expected:
    """What each collection must hold, from acknowledged writes only; ``maybe``: writes in flight when
    their process was killed (either outcome is right)."""

    present: dict[str, dict[str, tuple[str, dict[str, Any], np.ndarray[Any, Any] | None]]] = field(
        default_factory=lambda: {c: {} for c in COLLECTIONS})
    deleted: dict[str, set[str]] = field(default_factory=lambda: {c: set() for c in COLLECTIONS})
    maybe: dict[str, set[str]] = field(default_factory=lambda: {c: set() for c in COLLECTIONS})
    lock: threading.Lock = field(default_factory=threading.Lock)

    def put(self, coll: str, rid: str, text: str, meta: dict[str, Any], vec: np.ndarray[Any, Any] | None) -> None:
        with self.lock:
            self.present[coll][rid] = (text, meta, vec)
            self.deleted[coll].discard(rid)

    def remove(self, coll: str, rid: str) -> None:
        with self.lock:
            self.present[coll].pop(rid, None)
            self.deleted[coll].add(rid)


def _ingest_texts(prefix: str) -> list[str]:
    return [f"{prefix} note {i}: a short line about item {i * 7 % 11}." for i in range(INGEST_ROWS_PER_RUN * INGEST_RUNS_MAX)]


def _ingest_row(prefix: str, i: int, text: str) -> dict[str, Any]:
    return {"id": f"{prefix}-{i:03d}", "text": text, "run": i // INGEST_ROWS_PER_RUN, "tags": [prefix, f"t{i % 3}"]}


class _Outputs:
    """Everything the processes printed, to look for damage reports at the end."""

    def __init__(self) -> None:
        self.texts: list[str] = []
        self._lock = threading.Lock()

    def add(self, text: str) -> None:
        with self._lock:
            self.texts.append(text)

    def damage(self) -> list[str]:
        words = ("damaged", "Traceback", "disagree with")
        return [t[-2000:] for t in self.texts if any(w in t for w in words)]


def _ingest_loop(prefix: str, coll: str, work: Path, env: dict[str, str], deadline: float,
                 expected: Expected, outputs: _Outputs, runs: list[int]) -> None:
    """``vectorseam ingest`` runs back to back, each on the file grown by a few rows."""
    texts = _ingest_texts(prefix)
    source = work / f"{prefix}.jsonl"
    rows: list[dict[str, Any]] = []
    for run in range(INGEST_RUNS_MAX):
        if time.monotonic() > deadline and run >= 3:
            break
        rows += [_ingest_row(prefix, i, texts[i]) for i in range(run * INGEST_ROWS_PER_RUN,
                                                               (run + 1) * INGEST_ROWS_PER_RUN)]
        write_jsonl(source, rows)
        proc = subprocess.run(
            [str(Path(sys.executable).parent / "vectorseam"), "ingest", str(source), "--collection", coll,
             "--no-progress", "--chunk-tokens", "0"],
            env=env, capture_output=True, text=True, timeout=120,
        )
        outputs.add(proc.stdout + proc.stderr)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert f"added {INGEST_ROWS_PER_RUN}," in proc.stdout + proc.stderr, proc.stdout + proc.stderr
        for row in rows[-INGEST_ROWS_PER_RUN:]:
            meta = {k: v for k, v in row.items() if k not in ("id", "text")}
            expected.put(coll, row["id"], row["text"], meta, None)
        runs.append(run)


def _writer(data_dir: Path, prefix: str, seconds: float, start: int, env: dict[str, str]) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(data_dir / "memory"), prefix, str(seconds),
                             str(start)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.strip() == "ready", line + (proc.stderr.read() if proc.stderr else "")
    return proc


def _follow(proc: subprocess.Popen[str], acks: queue.Queue[dict[str, Any] | None]) -> None:
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("{"):
            acks.put(json.loads(line))
    acks.put(None)


@pytest.fixture()
def server(tmp_path: Path) -> Iterator[ServeProcess]:
    served = ServeProcess.start(clean_env(tmp_path / "data"), tmp_path / "server.log", workers=SERVER_WORKERS)
    try:
        served.wait_ready(time.monotonic() + 90)
        yield served
    finally:
        served.stop()


def test_server_ingests_and_writer_share_one_directory(
    tmp_path: Path, local_embedder: Any, server: ServeProcess
) -> None:
    url, server_proc, server_log = server.url, server.proc, server.log_path
    data_dir = tmp_path / "data"
    env = clean_env(data_dir)
    # The collections exist with the model's fingerprint (as ingest and the API create them), and the
    # ingest texts are embedded by the real model into the cache the CLI runs read.
    with MemoryStore(data_dir / "memory") as setup:
        for coll in COLLECTIONS:
            ensure_collection_for(setup, coll, local_embedder)
    fill_cache(data_dir / "ingest" / "embeddings.sqlite", _ingest_texts("a") + _ingest_texts("b"), local_embedder)

    expected = Expected()
    outputs = _Outputs()
    deadline = time.monotonic() + WINDOW_S
    runs: dict[str, list[int]] = {"a": [], "b": []}
    failures: list[BaseException] = []

    def guarded(fn: Any, *args: Any) -> None:
        try:
            fn(*args)
        except BaseException as exc:  # reported by the main thread
            failures.append(exc)

    ingests = [threading.Thread(target=guarded, args=(_ingest_loop, p, c, tmp_path, env, deadline, expected,
                                                      outputs, runs[p]))
               for p, c in (("a", "shared"), ("b", "docs"))]
    for t in ingests:
        t.start()

    # no keep-alive: each request is a new connection, which either worker process may accept
    http = httpx.Client(base_url=url, timeout=60, limits=httpx.Limits(max_keepalive_connections=0))
    acks: queue.Queue[dict[str, Any] | None] = queue.Queue()
    # The Python writer: killed half-way (SIGKILL, maybe mid-write), then started again.
    first = _writer(data_dir, "w", WINDOW_S, 0, env)
    threading.Thread(target=_follow, args=(first, acks), daemon=True).start()
    killed_at = time.monotonic() + WINDOW_S / 2
    second: subprocess.Popen[str] | None = None
    in_flight: dict[str, Any] | None = None  # the writer's last write begun and not yet acknowledged
    counts = {"writer_rounds": 0, "seen_by_server": 0}
    api_rounds = 0
    api_statuses: list[int] = []

    def handle(msg: dict[str, Any], check: bool) -> None:
        """Book one line of the writer's; ``check``: also ask the server for what it acknowledged."""
        nonlocal in_flight
        if "op" in msg:
            in_flight = msg
            return
        in_flight = None
        coll, ids = msg["c"], msg["ids"]
        if msg["ack"] == "upsert":
            counts["writer_rounds"] += 1
            for i in ids:
                expected.put(coll, i, f"writer {i}", {"round": int(i.split("-")[1]), "by": i.split("-")[0]},
                             vector(i))
        else:
            for i in ids:
                expected.remove(coll, i)
        if not check:
            return
        # Ids ending in -0 may already be deleted again by the writer, which runs ahead of this loop;
        # the others are never touched again, and a deleted id never comes back.
        stable = [i for i in ids if not i.endswith("-0")] if msg["ack"] == "upsert" else ids
        resp = http.post(f"/v1/collections/{coll}/records/fetch", json={"ids": stable})
        assert resp.status_code == 200, resp.text
        got = {r["id"] for r in resp.json()["records"]}
        assert got == (set(stable) if msg["ack"] == "upsert" else set()), (msg, got)
        counts["seen_by_server"] += 1

    finished = False
    while not finished or api_rounds < MIN_ROUNDS:
        # 1. One round of API writes (upsert 3, delete one of two rounds ago), each acknowledged by a 200.
        if time.monotonic() < deadline or api_rounds < MIN_ROUNDS:
            coll = COLLECTIONS[api_rounds % 2]
            ids = [f"h-{api_rounds}-{j}" for j in range(3)]
            body = {"records": [{"id": i, "text": f"api {i}", "vector": vector(i).tolist(),
                                 "metadata": {"round": api_rounds, "by": "api"}} for i in ids]}
            resp = http.post(f"/v1/collections/{coll}/records", json=body)
            api_statuses.append(resp.status_code)
            assert resp.status_code == 200, resp.text
            for i in ids:
                expected.put(coll, i, f"api {i}", {"round": api_rounds, "by": "api"}, vector(i))
            if api_rounds >= 2:
                old, gone = COLLECTIONS[(api_rounds - 2) % 2], f"h-{api_rounds - 2}-1"
                resp = http.post(f"/v1/collections/{old}/records/delete", json={"ids": [gone]})
                api_statuses.append(resp.status_code)
                assert resp.status_code == 200 and resp.json()["deleted"] == 1, resp.text
                expected.remove(old, gone)
            api_rounds += 1
        # 2. What the writer acknowledged since: the server must answer with it on the next request.
        for _ in range(0 if finished else 40):  # a bounded share per round, so the kill comes on time
            try:
                msg = acks.get(timeout=0.01)
            except queue.Empty:
                break
            if msg is None:
                assert second is not None, "the writer stopped before its kill: " + (
                    first.stderr.read() if first.stderr else "")
                finished = True
                break
            handle(msg, check=True)
        # 3. The kill, once, half-way; a new writer continues (its first write waits for nobody:
        #    the kernel released the dead writer's lock).
        if second is None and time.monotonic() >= killed_at:
            first.send_signal(signal.SIGKILL)
            first.wait()
            while (msg := acks.get()) is not None:  # what it printed before dying
                handle(msg, check=False)
            if in_flight is not None:  # killed mid-write: that write may or may not have landed
                for i in in_flight["ids"]:
                    expected.maybe[in_flight["c"]].add(i)
                    expected.present[in_flight["c"]].pop(i, None)
                    expected.deleted[in_flight["c"]].discard(i)
            second = _writer(data_dir, "v", max(deadline - time.monotonic(), 5.0), 1000, env)
            threading.Thread(target=_follow, args=(second, acks), daemon=True).start()
    for t in ingests:
        t.join(timeout=180)
    assert not failures, failures
    assert second is not None and second.wait(timeout=30) == 0, second.stderr.read() if second.stderr else ""
    for proc in (first, second):
        if proc.stderr is not None:
            outputs.add(proc.stderr.read())

    # --- record by record ---------------------------------------------------------------------------
    assert counts["writer_rounds"] >= MIN_ROUNDS and api_rounds >= MIN_ROUNDS, (counts, api_rounds)
    assert min(len(r) for r in runs.values()) >= 3, runs
    assert counts["seen_by_server"] >= MIN_ROUNDS
    on_disk = MemoryStore(data_dir / "memory")
    listed = {c["name"]: c["count"] for c in http.get("/v1/collections").json()["collections"]}
    for coll in COLLECTIONS:
        want = expected.present[coll]
        stored = {r.id: r for page in on_disk.scan(coll) for r in page}
        extra = set(stored) - set(want) - expected.maybe[coll]
        lost = set(want) - set(stored)
        assert not lost, f"{len(lost)} acknowledged writes lost in {coll!r}: {sorted(lost)[:5]}"
        assert not extra, f"{len(extra)} records in {coll!r} that were deleted or never written: {sorted(extra)[:5]}"
        assert listed[coll] == len(stored), (coll, listed[coll], len(stored))
        for rid, (text, meta, vec) in want.items():
            r = stored[rid]
            assert (r.text, r.metadata) == (text, meta), rid
            if vec is not None:
                assert r.vector is not None and np.array_equal(r.vector, vec), rid  # bit for bit
        ids = sorted(want)
        for start in range(0, len(ids), 200):  # the server answers with the same records
            resp = http.post(f"/v1/collections/{coll}/records/fetch",
                             json={"ids": ids[start : start + 200] + sorted(expected.deleted[coll])[:50],
                                   "include_vectors": True})
            assert resp.status_code == 200, resp.text
            for r in resp.json()["records"]:
                text, meta, vec = want[r["id"]]  # a KeyError here: the server returned a deleted record
                assert (r["text"], r["metadata"]) == (text, meta), r["id"]
                if vec is not None:
                    assert np.array_equal(np.asarray(r["vector"], dtype=np.float32), vec), r["id"]
            assert len(resp.json()["records"]) == len(ids[start : start + 200])
    outputs.add(server_log.read_text())
    assert outputs.damage() == [], outputs.damage()
    served_by = server.serving_pids()
    assert len(served_by) == SERVER_WORKERS, f"requests were served by {len(served_by)} worker processes"
    assert set(api_statuses) == {200}
    assert server_proc.poll() is None, "the server died"
