"""A snapshot is portable: a memory-store collection snapshotted to one file and restored into PostgreSQL +
pgvector and into Qdrant (under other names) answers the congruence queries (tests/test_congruence.py) with
the same top-10 ids and scores, and comes back from pgvector into the memory store the same again. The
tuned profile travels in the file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.test_congruence import FILTERS, QUERIES, corpus  # noqa: F401 (corpus is a fixture)
from vectorseam.client import VectorSeam
from vectorseam.config import Settings, StoreSettings
from vectorseam.retrieval.tune_profile import Fusion, RetrievalProfile, TrainedOn, corpus_fingerprint


def facade(data_dir: Path, store: StoreSettings, embedder: Any) -> VectorSeam:
    vs = VectorSeam(settings=Settings(data_dir=data_dir, store=store))
    vs.__dict__["embedder"] = embedder  # one loaded model shared by the runs
    return vs


def answers(vs: VectorSeam, collection: str) -> dict[tuple[str, int], list[tuple[str, float]]]:
    out = {}
    for fi, f in enumerate(FILTERS):
        for q, hits in zip(QUERIES, vs.search_many(QUERIES, k=10, filter=f, collection=collection), strict=True):
            out[(q, fi)] = [(h.id, h.score) for h in hits]
    return out


def assert_same(got: dict[tuple[str, int], list[tuple[str, float]]],
                want: dict[tuple[str, int], list[tuple[str, float]]], where: str) -> None:
    """The same ids with the same scores (to 1e-4), in the same order except among exact ties: the memory
    store's float32 noise may order two identical chunks (r58#1, r67#1 hold one text) either way."""
    assert got.keys() == want.keys()
    for key, hits in want.items():
        mine = dict(got[key])
        assert sorted(mine) == sorted(i for i, _ in hits), f"{where} differs on {key}: {got[key]} vs {hits}"
        for rid, score in hits:
            assert abs(mine[rid] - score) < 1e-4, f"{where}: {rid} scores {mine[rid]}, expected {score} on {key}"
        order = [rid for rid, _ in got[key]]
        for i, (rid, score) in enumerate(hits):
            assert order[i] == rid or abs(mine[order[i]] - score) < 1e-6, f"{where} order differs on {key}"


def test_memory_snapshot_restores_into_pgvector_and_qdrant_with_the_same_answers(
        corpus: Path, pg_server: Any, tmp_path: Path, local_embedder: Any) -> None:  # noqa: F811
    mem = facade(tmp_path / "mem", StoreSettings(name="memory", options={"path": str(tmp_path / "m")}), local_embedder)
    report = mem.ingest_file(corpus, collection="reviews", text_template="{Summary}. {Text}")
    assert report.written == 120
    ids = [r.id for page in mem.store.scan("reviews", include_vectors=False) for r in page]
    tuned = RetrievalProfile(local_embedder.fingerprint, corpus_fingerprint(ids), Fusion("minmax", 0.7, 60.0, 50),
                             mmr=0.8, trained_on=TrainedOn("cookbook", "train", ("q1", "q2")))
    mem.profiles.save("reviews", tuned)
    reference = answers(mem, "reviews")
    snapshot = mem.save_snapshot(tmp_path / "reviews.snapshot.parquet", "reviews")
    mem.close()

    targets = {
        "pgvector": StoreSettings(name="pgvector", options={"dsn": pg_server.dsn(), "index": "exact",
                                                             "schema": "snapshot_congruence"}),
        "qdrant": StoreSettings(name="qdrant", options={"path": str(tmp_path / "qdrant")}),
    }
    for name, store in targets.items():
        vs = facade(tmp_path / name, store, local_embedder)
        try:
            info = vs.restore(snapshot, f"reviews_{name}")
            assert (info.name, info.count, info.dimension) == (f"reviews_{name}", len(ids), 384)
            assert_same(answers(vs, f"reviews_{name}"), reference, name)
            restored = vs.profile(f"reviews_{name}")
            assert restored is not None and restored.fusion == tuned.fusion and restored.mmr == 0.8
            assert restored.corpus == tuned.corpus and restored.trained_on == tuned.trained_on
            if name == "pgvector":  # and back: pgvector's snapshot into a fresh memory store
                back = vs.save_snapshot(tmp_path / "back.parquet", f"reviews_{name}")
                again = facade(tmp_path / "again", StoreSettings(name="memory", options={"path": str(tmp_path / "a")}),
                               local_embedder)
                try:
                    assert again.restore(back).name == "reviews_pgvector"
                    assert_same(answers(again, "reviews_pgvector"), reference, "memory after pgvector")
                finally:
                    again.close()
        finally:
            vs.close()
