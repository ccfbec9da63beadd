"""A small run of the load benchmark (benchmarks/load_search.py): same code path, tiny and bounded.

The full run (100k and 1M records) is not part of the test suite; this checks that the harness, the
server process it starts, its HTTP client and the results it writes work, and that a burst of
concurrent requests gets no error.
"""

from __future__ import annotations

import json

from benchmarks.load_search import (
    ALTERNATING,
    ALTERNATING_IN_PROCESS,
    BY_TEXT,
    BY_VECTOR,
    FACADE,
    FILTERED,
    HEALTHZ,
    IN_PROCESS,
    RECORD,
    parse_args,
    run,
)


def test_load_harness_runs_without_errors(local_embedder, tmp_path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "load"
    args = parse_args(["--records", "1500", "--base-texts", "12", "--requests", "120", "--fixed-requests", "50",
                       "--text-requests", "6", "--concurrency", "4", "--time-limit", "20", "--workers", "1",
                       "--out", str(out)])
    result = run(args, embedder=local_embedder)
    phases = {(p["name"], p["concurrency"]): p for p in result["phases"]}
    assert set(phases) == {(IN_PROCESS, 1), (FACADE, 1), (HEALTHZ, 1), (RECORD, 1), (BY_VECTOR, 1), (BY_VECTOR, 4),
                           (ALTERNATING, 1), (ALTERNATING_IN_PROCESS, 1), (FILTERED, 4), (BY_TEXT, 1), (BY_TEXT, 4),
                           (IN_PROCESS + " (again, after the servers)", 1)}
    assert phases[(BY_VECTOR, 4)]["requests"] == 120 and phases[(HEALTHZ, 1)]["requests"] == 50
    # the alternating phase: blocks of 1.5 s taken in turn until both sides have answered 120 (counted from
    # 0.3 s into each block)
    assert phases[(ALTERNATING, 1)]["requests"] >= 120 and phases[(ALTERNATING_IN_PROCESS, 1)]["requests"] >= 120
    # both sides took the same blocks, each counted for its last 1.2 s: equal counted time, a multiple of 1.2 s
    http_s, local_s = phases[(ALTERNATING, 1)]["seconds"], phases[(ALTERNATING_IN_PROCESS, 1)]["seconds"]
    blocks = round(http_s / 1.2)
    assert blocks >= 1 and abs(http_s - 1.2 * blocks) < 0.05 * blocks and abs(local_s - 1.2 * blocks) < 0.05 * blocks
    served = [p for p in phases.values() if p["workers"] == 1]
    assert all(p["errors"] == 0 and p["statuses"] == {"200": p["requests"]} for p in served if p["name"] != ALTERNATING)
    alternated = phases[(ALTERNATING, 1)]  # its statuses count the uncounted start of each block too
    assert alternated["errors"] == 0 and list(alternated["statuses"]) == ["200"]
    assert 0.7 < alternated["requests"] / alternated["statuses"]["200"] < 0.95  # the first 0.3 s of 1.5 s not counted
    assert all(0 < p["p50_ms"] <= p["p99_ms"] <= p["max_ms"] for p in phases.values())
    assert all(p["server_cpu_ms_per_request"] > 0 for p in served)
    assert result["server_store_errors"] == 0
    assert result["text_results_identical"] is True
    saved = json.loads(out.with_suffix(".json").read_text())
    assert saved["sizes"][0]["records"] == 1500 and len(saved["phases"]) == 12
    assert {t["target"].split(":")[0] for t in saved["targets"]} >= {HEALTHZ, RECORD}
    paired = next(t for t in saved["targets"] if "blocks taken in turn" in t["target"])
    http, local = phases[(ALTERNATING, 1)]["throughput_rps"], phases[(ALTERNATING_IN_PROCESS, 1)]["throughput_rps"]
    assert abs(paired["measured"] - http / local) < 0.01 and paired["met"] == (http / local >= 0.8)
    report = out.with_suffix(".md").read_text()
    assert "| 1,500 | search by vector | 1 | 4 |" in report and "## Targets (issue 24)" in report
