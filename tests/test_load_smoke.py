"""A small run of the load benchmark (benchmarks/load_search.py): same code path, tiny and bounded.

The full run (100k records) is not part of the test suite; this checks that the harness, the server
process it starts and the results it writes work, and that a burst of concurrent requests gets no
error.
"""

from __future__ import annotations

import json

from benchmarks.load_search import parse_args, run


def test_load_harness_runs_without_errors(local_embedder, tmp_path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "load"
    args = parse_args(["--records", "1500", "--base-texts", "12", "--requests", "120", "--text-requests", "6",
                       "--concurrency", "4", "--time-limit", "20", "--out", str(out)])
    result = run(args, embedder=local_embedder)
    phases = {p["name"]: p for p in result["phases"]}
    assert set(phases) == {"query by vector", "query by vector + filter", "query by text (embeds on the server)"}
    assert phases["query by vector"]["requests"] == 120
    assert all(p["errors"] == 0 and p["statuses"] == {"200": p["requests"]} for p in phases.values())
    assert all(0 < p["p50_ms"] <= p["p99_ms"] <= p["max_ms"] for p in phases.values())
    assert result["server_store_errors"] == 0
    saved = json.loads(out.with_suffix(".json").read_text())
    assert saved["records"] == 1500 and len(saved["phases"]) == 3
    assert "| query by vector |" in out.with_suffix(".md").read_text()
