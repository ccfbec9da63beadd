"""A small run of the load benchmark (benchmarks/load_search.py): same code path, tiny and bounded.

The full run (100k and 1M records) is not part of the test suite; this checks that the harness, the
server process it starts, its HTTP client and the results it writes work, and that a burst of
concurrent requests gets no error.
"""

from __future__ import annotations

import json

from benchmarks.load_search import (
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
                           (FILTERED, 4), (BY_TEXT, 1), (BY_TEXT, 4), (IN_PROCESS + " (again, after the servers)", 1)}
    assert phases[(BY_VECTOR, 4)]["requests"] == 120 and phases[(HEALTHZ, 1)]["requests"] == 50
    served = [p for p in phases.values() if p["workers"] == 1]
    assert all(p["errors"] == 0 and p["statuses"] == {"200": p["requests"]} for p in served)
    assert all(0 < p["p50_ms"] <= p["p99_ms"] <= p["max_ms"] for p in phases.values())
    assert all(p["server_cpu_ms_per_request"] > 0 for p in served)
    assert result["server_store_errors"] == 0
    assert result["text_results_identical"] is True
    saved = json.loads(out.with_suffix(".json").read_text())
    assert saved["sizes"][0]["records"] == 1500 and len(saved["phases"]) == 10
    assert {t["target"].split(":")[0] for t in saved["targets"]} >= {HEALTHZ, RECORD}
    report = out.with_suffix(".md").read_text()
    assert "| 1,500 | search by vector | 1 | 4 |" in report and "## Targets (issue 24)" in report
