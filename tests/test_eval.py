"""BEIR evaluation: metric definitions by hand, a tiny generated BEIR data set end to end, bad input."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from vectorseam.errors import ValidationError
from vectorseam.retrieval.evaluation import format_table, load_beir, mrr_at, ndcg_at, recall_at, run_beir, score_run
from vectorseam.retrieval.hybrid import RetrievalSearcher
from vectorseam.stores.memory import MemoryStore

CORPUS = [
    ("d1", "Vitamin D", "Vitamin D deficiency is linked to weaker bones and a higher risk of fractures."),
    ("d2", "Smoking", "Tobacco smoking causes lung cancer and heart disease."),
    ("d3", "Exercise", "Regular aerobic exercise lowers blood pressure in adults."),
    ("d4", "Sleep", "Adults who sleep less than six hours have poorer memory consolidation."),
    ("d5", "Coffee", "Moderate coffee drinking is not associated with higher mortality."),
    ("d6", "Antibiotics", "Overuse of antibiotics drives the spread of resistant bacteria."),
    ("d7", "Sugar", "High sugar intake raises the risk of type 2 diabetes."),
    ("d8", "BRCA1", "Mutations in the BRCA1 gene increase breast cancer risk."),
]
QUERIES = [
    ("q1", "Low vitamin D makes bones break more easily."),
    ("q2", "Cigarettes cause cancer of the lungs."),
    ("q3", "BRCA1 mutations raise the chance of breast cancer."),
    ("q4", "Too many antibiotics lead to resistant germs."),
    ("q5", "An unjudged query."),
]
QRELS = [("q1", "d1", 1), ("q2", "d2", 1), ("q3", "d8", 1), ("q4", "d6", 1), ("q4", "d7", 0)]


def make_beir(root: Path) -> Path:
    (root / "qrels").mkdir(parents=True)
    (root / "corpus.jsonl").write_text("".join(json.dumps({"_id": i, "title": t, "text": x}) + "\n" for i, t, x in CORPUS))
    (root / "queries.jsonl").write_text("".join(json.dumps({"_id": i, "text": x}) + "\n" for i, x in QUERIES))
    (root / "qrels" / "train.tsv").write_text(
        "query-id\tcorpus-id\tscore\n" + "".join(f"{q}\t{d}\t{s}\n" for q, d, s in QRELS))
    return root


def test_metrics_by_hand() -> None:
    rels = {"a": 1, "b": 2, "z": 0}
    ranked = ["x", "b", "a"]
    dcg = 2 / math.log2(3) + 1 / math.log2(4)
    idcg = 2 / math.log2(2) + 1 / math.log2(3)
    assert ndcg_at(ranked, rels) == pytest.approx(dcg / idcg)
    assert ndcg_at(["b", "a"], rels) == pytest.approx(1.0)
    assert recall_at(ranked, rels, 2) == pytest.approx(0.5)
    assert mrr_at(ranked, rels) == pytest.approx(0.5)
    assert mrr_at(["x"] * 10 + ["a"], rels) == 0.0  # beyond the cut-off
    scores = score_run({"q": ranked}, {"q": rels, "none": {"z": 0}})
    assert scores["queries"] == 1.0  # queries with no relevant document are not scored


def test_loader_reports_bad_files(tmp_path: Path) -> None:
    root = make_beir(tmp_path / "set")
    data = load_beir(root, "train")
    assert data.corpus["d1"].startswith("Vitamin D Vitamin D deficiency")  # title + text
    assert set(data.qrels) == {"q1", "q2", "q3", "q4"}
    with pytest.raises(ValidationError, match=r"no judgements for split 'test' \(available: train\)"):
        load_beir(root, "test")
    with open(root / "corpus.jsonl", "a") as fh:
        fh.write("{not json\n")
    with pytest.raises(ValidationError, match=r"corpus.jsonl:9: not valid JSON"):
        load_beir(root, "train")


def test_run_beir_all_modes(tmp_path: Path, local_embedder: Any) -> None:
    root = make_beir(tmp_path / "tiny")
    store = MemoryStore()
    searcher = RetrievalSearcher(store, local_embedder, rrf_k=60)
    report = run_beir(searcher, root, "train")
    assert set(report.metrics) == {"dense", "bm25", "hybrid"}
    assert report.metrics["dense"]["ndcg@10"] > 0.9  # paraphrased claims: the model finds each one first
    assert report.metrics["bm25"]["ndcg@10"] > 0.5  # shared keywords (BRCA1, antibiotics, vitamin D)
    for m in report.metrics.values():
        assert 0.0 <= m["ndcg@10"] <= 1.0 and 0.0 <= m["recall@100"] <= 1.0 and m["queries"] == 4
    assert "corpus_embedding" in report.seconds and report.seconds["total"] > 0
    again = run_beir(searcher, root, "train", modes=["bm25"])
    assert "corpus_reused" in again.seconds and set(again.metrics) == {"bm25"}
    assert again.metrics["bm25"] == report.metrics["bm25"]
    table = format_table(report)
    assert "| dense |" in table and "nDCG@10" in table


def test_cli_eval_beir(isolated_env: Path) -> None:
    root = make_beir(isolated_env / "tiny")
    env = dict(os.environ, COLUMNS="200")
    cmd = [sys.executable, "-m", "vectorseam.cli.__main__", "eval", "beir", str(root), "--split"]
    bad = subprocess.run([*cmd, "dev"], env=env, capture_output=True, text=True, timeout=300)
    assert bad.returncode == 1 and "no judgements for split 'dev'" in bad.stderr
    out = isolated_env / "res.json"
    ok = subprocess.run([*cmd, "train", "--mode", "bm25", "--mode", "hybrid", "--output", str(out)], env=env,
                        capture_output=True, text=True, timeout=300)
    assert ok.returncode == 0, ok.stderr
    result = json.loads(out.read_text())
    assert set(result["metrics"]) == {"bm25", "hybrid"}
    assert "| hybrid |" in ok.stdout
