"""A key over its rate limit gets 429s while another key's latency stays near an idle server's (issue 22).

A real ``vectorseam serve`` process (real model, memory store) with two keys: ``noisy`` may make 2
requests per second, one at a time, and sends long text searches from four threads at about 80 a
second;
``quiet`` is unlimited and sends one text search at a time. Without the limits the noisy key's
searches alone need more CPU than the machine has and the quiet key's latency grows several times.

Built not to flake on a loaded two-core machine: idle and loaded phases alternate over several
rounds, so that whatever else the machine does in between weighs on both alike; medians of a hundred
samples each are compared; and the noisy load is a key far over its limit, not a flood of connections
(no rate limit inside a Python process protects against that: a proxy's connection limits do).
"""

from __future__ import annotations

import json
import statistics
import threading
import time
from collections import Counter
from pathlib import Path

import httpx

from tests.serve_process import ServeProcess, clean_env
from vectorseam.service.auth import hash_key

QUIET, NOISY = "vs_load-quiet-key-0123456789", "vs_load-noisy-key-0123456789"
ROUNDS, SAMPLES = 5, 20
NOISY_THREADS, NOISY_PAUSE_S = 4, 0.05
QUERIES = ["a warm drink on a cold morning", "the parcel arrived late", "my dog loves these treats",
           "spicy sauce for dinner", "fresh bread and butter"]


LONG_QUERY = " ".join(QUERIES * 12)  # about 250 tokens: one search costs several short ones


def search(http: httpx.Client, i: int, long: bool = False) -> httpx.Response:
    query = f"{LONG_QUERY} {i}" if long else f"{QUERIES[i % len(QUERIES)]} {i}"
    return http.post("/v1/collections/docs/search", json={"query": query, "k": 5})


def test_a_noisy_key_is_refused_and_a_quiet_key_keeps_its_latency(tmp_path: Path) -> None:
    keys = [{"name": "quiet", "hash": hash_key(QUIET), "scope": "admin"},
            {"name": "noisy", "hash": hash_key(NOISY), "scope": "read", "rate_limit": 2, "burst": 2,
             "max_in_flight": 1}]
    env = clean_env(tmp_path / "data", VECTORSEAM_SERVICE__API_KEYS=json.dumps(keys))
    server = ServeProcess.start(env, tmp_path / "serve.log")
    try:
        server.wait_ready(time.monotonic() + 180)
        quiet = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {QUIET}"}, timeout=60)
        docs = [{"id": f"d{i}", "text": f"{q}, review number {i}"} for i, q in enumerate(QUERIES * 8)]
        assert quiet.post("/v1/collections/docs/records", json={"records": docs}).status_code == 200
        for i in range(10):  # warm the model's code paths up
            assert search(quiet, i).status_code == 200

        statuses: Counter[int] = Counter()
        stop = threading.Event()

        def noisy_client(n: int) -> None:
            with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {NOISY}"},
                              timeout=60) as noisy:
                i = n * 1000
                while not stop.is_set():
                    statuses[search(noisy, i, long=True).status_code] += 1
                    i += 1
                    stop.wait(NOISY_PAUSE_S)

        idle: list[float] = []
        loaded: list[float] = []
        loaded_seconds = 0.0
        for r in range(ROUNDS):
            for i in range(SAMPLES):
                start = time.perf_counter()
                assert search(quiet, r * 100 + i).status_code == 200
                idle.append(time.perf_counter() - start)
            stop.clear()
            threads = [threading.Thread(target=noisy_client, args=(n,)) for n in range(NOISY_THREADS)]
            began = time.monotonic()
            for t in threads:
                t.start()
            time.sleep(0.2)
            for i in range(SAMPLES):
                start = time.perf_counter()
                assert search(quiet, r * 100 + 50 + i).status_code == 200
                loaded.append(time.perf_counter() - start)
            stop.set()
            for t in threads:
                t.join()
            loaded_seconds += time.monotonic() - began
        metrics = quiet.get("/metrics").text
        quiet.close()
    finally:
        server.stop()

    assert set(statuses) <= {200, 429} and statuses[429] > 10 * statuses[200], statuses
    # the bucket: 2 a second, 2 at once (refilled between rounds)
    assert 0 < statuses[200] <= 2 * loaded_seconds + 2 * ROUNDS + 2, (statuses, loaded_seconds)
    assert 'vectorseam_rate_limited_requests_total{key="noisy",limit="rate"}' in metrics
    idle_ms, loaded_ms = statistics.median(idle) * 1000, statistics.median(loaded) * 1000
    assert loaded_ms <= 1.5 * idle_ms, f"quiet key's median latency {loaded_ms:.1f} ms under load, {idle_ms:.1f} ms idle"
