"""SciFact: the learned ranker's tuning run and its search latency against untuned hybrid, in one run.

    nice -n 10 python -m benchmarks.ranking [--data-dir DIR] [--queries 200]

1. ``vs.tune_beir(scifact, "train")`` (what ``vectorseam tune`` runs): the report (held-out nDCG@10 by
   query folds, split by judged / unjudged documents, and by document folds) and its run time. The
   corpus is embedded into DIR's memory store the first time (the embedding cache makes a re-run cheap).
2. Search latency through the facade (``vs.retrieve(q, mode="hybrid")``), the same train queries with
   the tuned profile and without it (``profile=False``), interleaved so both see the same machine load.

Results: ``benchmarks/results/scifact_rank.json`` and ``.md``. Only the train judgements are read.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any

from benchmarks.common import DATA, RESULTS, log, machine, md_table, require_data, versions

SCIFACT = DATA / "scifact"


def latency(vs: Any, collection: str, queries: list[str]) -> dict[str, Any]:
    for q in queries[:5]:  # warm: the model, the keyword index, the profile
        vs.retrieve(q, k=10, mode="hybrid", collection=collection)
        vs.retrieve(q, k=10, mode="hybrid", collection=collection, profile=False)
    times: dict[str, list[float]] = {"untuned hybrid": [], "tuned (profile with the ranker)": []}
    for q in queries:
        for label, use in (("untuned hybrid", False), ("tuned (profile with the ranker)", True)):
            t = time.perf_counter()
            vs.retrieve(q, k=10, mode="hybrid", collection=collection, profile=use)
            times[label].append(time.perf_counter() - t)
    out = {}
    for label, samples in times.items():
        ordered = sorted(samples)
        out[label] = {"p50_ms": 1000 * statistics.median(ordered),
                      "p99_ms": 1000 * ordered[int(0.99 * (len(ordered) - 1))],
                      "mean_ms": 1000 * statistics.fmean(ordered), "calls": len(ordered)}
    out["ratio_p50"] = out["tuned (profile with the ranker)"]["p50_ms"] / out["untuned hybrid"]["p50_ms"]
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data-dir", default=str(Path.home() / ".cache" / "vectorseam-bench" / "ranking-data"))
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--no-tune", action="store_true", help="measure latency with the profile already saved")
    args = parser.parse_args()
    from vectorseam import VectorSeam
    from vectorseam.retrieval.evaluation import load_beir

    root = require_data(SCIFACT)
    data: dict[str, Any] = {"command": "nice -n 10 python -m benchmarks.ranking", "machine": machine(),
                            "versions": versions("numpy", "torch", "sentence-transformers", "lightgbm")}
    with VectorSeam(data_dir=args.data_dir) as vs:
        collection = "beir-scifact"
        if not args.no_tune:
            log("tuning on SciFact train (cross-validated; the corpus is embedded first if needed)")
            t = time.perf_counter()
            _, report = vs.tune_beir(root, "train", collection, say=log)
            data["tune_seconds"] = time.perf_counter() - t
            data["tune_report"] = report.to_dict()
            data["estimates"] = report.estimates()
            (RESULTS / "scifact_rank_report.md").write_text(report.to_markdown() + "\n", encoding="utf-8")
        profile = vs.profile(collection)
        data["profile"] = profile.describe() if profile is not None else None
        queries = list(load_beir(root, "train").queries.values())[: args.queries]
        log(f"latency: {len(queries)} queries, untuned and tuned interleaved")
        data["latency"] = latency(vs, collection, queries)
    (RESULTS / "scifact_rank.json").write_text(json.dumps(data, indent=2, default=str) + "\n", encoding="utf-8")
    lat = data["latency"]
    rows = [[label, f"{v['p50_ms']:.1f}", f"{v['p99_ms']:.1f}", f"{v['mean_ms']:.1f}", v["calls"]]
            for label, v in lat.items() if isinstance(v, dict)]
    lines = ["# SciFact: learned ranker, tuning time and search latency", "",
             f"Command: `{data['command']}` (memory store, all-MiniLM-L6-v2; train judgements only).", "",
             f"profile: {data['profile']}", ""]
    if "tune_seconds" in data:
        est = data["estimates"]
        lines += [f"tuning time: {data['tune_seconds']:.0f} s (" + ", ".join(
            f"{k} {v:.0f} s" for k, v in data["tune_report"]["seconds"].items()) + ")", "",
            f"held-out nDCG@10: untuned {est['untuned']:.4f}, tuned {est['tuned']:.4f}; new documents "
            f"(folds by document) {est.get('new_documents_untuned', 0):.4f} -> {est.get('new_documents', 0):.4f}",
            "", "The full report: [scifact_rank_report.md](scifact_rank_report.md).", ""]
    lines += ["Search latency through the facade, k = 10, hybrid, interleaved:", "",
              md_table(["search", "p50 ms", "p99 ms", "mean ms", "calls"], rows), "",
              f"p50 tuned / untuned: **{lat['ratio_p50']:.2f}x**"]
    (RESULTS / "scifact_rank.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    log("written benchmarks/results/scifact_rank.json and .md")


if __name__ == "__main__":
    main()
