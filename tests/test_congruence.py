"""Swap by configuration alone: the same data and queries give the same answers on every backend
that runs here (memory, Qdrant local mode, PostgreSQL + pgvector in exact mode).

Only the ``store`` section of the settings changes between runs; ingest and search go through the
same public API. Top-10 ids and scores must agree to 1e-4.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import shared_data
from vectorseam.client import VectorSeam
from vectorseam.config import Settings, StoreSettings

QUERIES = ["delicious beans", "whole wheat pasta", "bad delivery", "spoilt", "pet food", "strong coffee"]
FILTERS: list[dict[str, Any] | None] = [
    None,
    {"Score": {"$gte": 4}},
    {"$or": [{"Score": 1}, {"Score": {"$in": [2, 3]}}]},
    {"$not": {"Score": {"$lt": 5}}},
    {"ProductId": {"$ne": "B000LKTTTW"}},
]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """120 real reviews with their metadata."""
    src = shared_data("cookbook/fine_food_reviews_1k.csv")
    out = tmp_path_factory.mktemp("congruence") / "reviews.csv"
    with open(src, newline="") as fh, open(out, "w", newline="") as dst:
        reader = csv.DictReader(fh)
        writer = csv.DictWriter(dst, fieldnames=["id", "Summary", "Text", "Score", "ProductId"])
        writer.writeheader()
        for i, row in enumerate(reader):
            if i >= 120:
                break
            writer.writerow({"id": f"r{i}", "Summary": row["Summary"], "Text": row["Text"],
                             "Score": row["Score"], "ProductId": row["ProductId"]})
    return out


@pytest.fixture(scope="module")
def pg_dsn(pg_server: Any) -> str:
    return str(pg_server.dsn())


def run_everything(settings: Settings, corpus: Path, embedder: Any) -> dict[tuple[str, int], list[tuple[str, float]]]:
    vs = VectorSeam(settings=settings)
    vs.__dict__["embedder"] = embedder  # one loaded model shared by the runs: same vectors, less time
    try:
        report = vs.ingest_file(corpus, collection="reviews", text_template="{Summary}. {Text}")
        assert report.rejected == 0 and report.written == 120
        results = {}
        for fi, f in enumerate(FILTERS):
            for q, hits in zip(QUERIES, vs.search_many(QUERIES, k=10, filter=f, collection="reviews"), strict=True):
                results[(q, fi)] = [(h.id, h.score) for h in hits]
        return results
    finally:
        vs.close()


def test_same_answers_on_every_backend(corpus: Path, pg_dsn: str, tmp_path: Path, local_embedder: Any) -> None:
    configs = {
        "memory": StoreSettings(name="memory", options={"path": str(tmp_path / "mem")}),
        "qdrant-local": StoreSettings(name="qdrant", options={"path": str(tmp_path / "qdrant")}),
        "pgvector-exact": StoreSettings(name="pgvector", options={"dsn": pg_dsn, "index": "exact",
                                                                  "schema": "congruence"}),
    }
    answers = {
        name: run_everything(Settings(data_dir=tmp_path / name, store=store), corpus, local_embedder)
        for name, store in configs.items()
    }
    reference = answers["memory"]
    assert all(len(v) > 0 for v in reference.values())
    for name, result in answers.items():
        for key, hits in reference.items():
            other = result[key]
            assert [i for i, _ in other] == [i for i, _ in hits], f"{name} differs on {key}"
            for (_, a), (_, b) in zip(other, hits, strict=True):
                assert abs(a - b) < 1e-4, f"{name} score differs on {key}: {a} vs {b}"
