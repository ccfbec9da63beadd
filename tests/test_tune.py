"""Tuned retrieval profiles on a small generated BEIR set, with the real model and a memory store.

The set is built so the untuned search is visibly wrong: every query carries the boilerplate of the
help portal it came through, and ten portal pages repeat that boilerplate, so BM25 ranks them first
and equal-weight RRF lets them into the top of the hybrid list. The relevant document shares the
query's meaning (the model finds it) but few of its words. Tuning must learn from held-out folds
to trust the dense list, and search, eval and the refusals must follow the saved profile.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from vectorseam.errors import ConfigError, ValidationError
from vectorseam.retrieval.evaluation import run_beir
from vectorseam.retrieval.hybrid import RetrievalSearcher
from vectorseam.retrieval.query_adapter import AdapterOptions, mine_pairs, train_adapter
from vectorseam.retrieval.tune import TuneOptions, tune_beir
from vectorseam.retrieval.tune_profile import (
    Fusion,
    ProfileBook,
    ProfileMismatchError,
    RetrievalProfile,
    corpus_fingerprint,
)
from vectorseam.retrieval.tune_search import paired_interval
from vectorseam.stores.memory import MemoryStore
from vectorseam.types import Record

JOBS = ["baker", "pilot", "nurse", "plumber", "violinist", "beekeeper"]
CITIES = ["Lisbon", "Oslo", "Nairobi", "Lima", "Hanoi", "Quebec"]
NAMES = ["Ana", "Bo", "Cyril", "Dana", "Emil", "Fatou", "Goran", "Hana", "Ines", "Jun", "Kofi", "Lena"]
PREFIX = "Question sent through the Northwind Bank customer help portal"


def make_set(root: Path) -> Path:
    """36 people (job x city), 10 portal pages; judged queries split 24 train / 12 dev."""
    docs, queries, qrels = [], [], []
    for j, job in enumerate(JOBS):
        for c, city in enumerate(CITIES):
            name = NAMES[(j * 6 + c) % len(NAMES)]
            docs.append((f"d{j}{c}", f"{name} the {job}", f"{name} works as a {job} in {city} and has for years."))
            queries.append((f"q{j}{c}", f"{PREFIX}: which {job} lives in {city}?"))
            qrels.append((f"q{j}{c}", f"d{j}{c}"))
    docs += [(f"x{i}", "Northwind Bank help portal",
              f"The Northwind Bank customer help portal answers question number {i} sent by customers.")
             for i in range(10)]
    (root / "qrels").mkdir(parents=True)
    (root / "corpus.jsonl").write_text("".join(json.dumps({"_id": i, "title": t, "text": x}) + "\n"
                                               for i, t, x in docs))
    (root / "queries.jsonl").write_text("".join(json.dumps({"_id": i, "text": x}) + "\n" for i, x in queries))
    head = "query-id\tcorpus-id\tscore\n"
    (root / "qrels" / "train.tsv").write_text(head + "".join(f"{q}\t{d}\t1\n" for q, d in qrels[:24]))
    (root / "qrels" / "dev.tsv").write_text(head + "".join(f"{q}\t{d}\t1\n" for q, d in qrels[24:]))
    return root


def test_fusion_by_hand() -> None:
    dense = [("a", 0.9), ("b", 0.5)]
    sparse = [("b", 12.0), ("c", 2.0)]
    rrf = dict(Fusion("rrf", 0.5, 60.0, 10).fuse(dense, sparse))
    assert rrf["b"] == pytest.approx(0.5 / 62 + 0.5 / 61)
    assert rrf["a"] == pytest.approx(0.5 / 61) and rrf["c"] == pytest.approx(0.5 / 62)
    minmax = Fusion("minmax", 0.7, 60.0, 10).fuse(dense, sparse)
    # dense scaled to a=1, b=0; bm25 to b=1, c=0; a missing document gets its list's lowest value (0)
    assert dict(minmax) == pytest.approx({"a": 0.7, "b": 0.3, "c": 0.0})
    assert [d for d, _ in minmax] == ["a", "b", "c"]
    z = dict(Fusion("zscore", 0.5, 60.0, 10).fuse(dense, sparse))
    assert z["b"] == pytest.approx(0.5 * -1 + 0.5 * 1) and z["a"] == pytest.approx(0.5 * 1 + 0.5 * -1)
    # depth 1: the tuned ranking is a and b (tied, so by id); c, beyond it, follows with a score below theirs
    assert Fusion("rrf", 0.5, 60.0, 1).fuse(dense, sparse) == [("a", 0.5 / 61), ("b", 0.5 / 61), ("c", 0.5 / 62)]
    shifted = Fusion("minmax", 0.5, 60.0, 1).fuse(dense, sparse)
    assert [d for d, _ in shifted] == ["a", "b", "c"] and shifted[2][1] < shifted[1][1]
    mean, low, high = paired_interval(np.array([1.0, 0.5, 1.0, 1.0]), np.array([0.5, 0.5, 0.5, 0.5]))
    assert mean == pytest.approx(0.375) and low < mean < high


def test_profile_file_round_trip_and_refusals(tmp_path: Path) -> None:
    adapter = np.eye(3, dtype=np.float32) * 2
    profile = RetrievalProfile("local:m:3:normalized", corpus_fingerprint(["b", "a"]), Fusion("zscore", 0.7, 60.0, 50),
                               adapter, 0.9)
    book = ProfileBook(tmp_path / "profiles", _Fingerprinted("local:m:3:normalized"))
    book.save("docs", profile)
    loaded = book.find("docs")
    assert loaded is not None and loaded.fusion == profile.fusion and loaded.mmr == 0.9
    assert loaded.adapter is not None and np.array_equal(loaded.adapter, adapter)
    assert loaded.corpus == corpus_fingerprint(["a", "b"])  # order-independent
    np.testing.assert_allclose(loaded.adapt(np.array([3.0, 4.0, 0.0])), [0.6, 0.8, 0.0], rtol=1e-6)
    with pytest.raises(ProfileMismatchError, match="tuned for embedder 'local:m:3:normalized'.*--no-profile"):
        loaded.check("openai:text-embedding-3-small:1536")
    loaded.check("local:m:3:normalized", count=3)  # documents added since tuning: still applied
    book.path("damaged").write_bytes(b"not a profile")
    with pytest.raises(ConfigError, match="is not a retrieval profile"):
        book.find("damaged")
    assert book.remove("docs") and book.find("docs") is None and not book.remove("docs")


def test_query_adapter_learns_a_consistent_query_shift() -> None:
    """Queries are their document seen through a fixed linear distortion: the identity start ranks badly,
    the adapter learns to undo the distortion on training queries, and held-out queries (about other
    documents) improve too; the held-out score chooses the epoch."""
    rng = np.random.default_rng(0)
    docs = rng.normal(size=(300, 16)).astype(np.float32)
    docs /= np.linalg.norm(docs, axis=1, keepdims=True)
    distortion = np.eye(16, dtype=np.float32) + 0.9 * rng.normal(size=(16, 16)).astype(np.float32)
    target = rng.permutation(300)[:240]
    queries = docs[target] @ distortion + 0.05 * rng.normal(size=(240, 16)).astype(np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    train, held = np.arange(160), np.arange(160, 240)

    def top1(matrix: np.ndarray, rows: np.ndarray = held) -> float:
        adapted = queries[rows] @ matrix
        return float(np.mean(np.argmax(adapted @ docs.T, axis=1) == target[rows]))

    retrieved = [list(np.argsort(-(queries[i] @ docs.T))[:20]) for i in train]
    fit = train_adapter(queries[train], docs, [[int(t)] for t in target[train]], retrieved, top1,
                        AdapterOptions(epochs=60, learning_rate=0.01, hard_negatives=10, identity_penalty=0.0))
    assert fit.held_out[0] == pytest.approx(top1(np.eye(16, dtype=np.float32)))
    assert fit.best_epoch > 0 and top1(fit.matrix) == max(fit.held_out) > fit.held_out[0] + 0.2
    q_rows, pos, negs = mine_pairs([[1, 2], []], [[2, 5, 1, 7], [3]], 3)
    assert q_rows.tolist() == [0, 0] and pos.tolist() == [1, 2] and negs.tolist() == [[5, 7, 7], [5, 7, 7]]


class _Fingerprinted:
    """Stands in for an embedder where only the fingerprint is read (the profile book's check)."""

    def __init__(self, fingerprint: str) -> None:
        self.fingerprint = fingerprint


def test_tune_beats_untuned_and_is_applied_and_guarded(tmp_path: Path, local_embedder: Any) -> None:
    root = make_set(tmp_path / "portal")
    store = MemoryStore()
    searcher = RetrievalSearcher(store, local_embedder)
    name, profile, report = tune_beir(searcher, root, "train",
                                      options=TuneOptions(folds=4, mmr=False, check_new_documents=False))
    assert name == "beir-portal" and report.queries == 24 and report.documents == 46
    untuned, fusion = report.stages[0], report.stages[1]
    # held-out folds: the untuned hybrid lets portal pages in; the tuned fusion trusts the dense list
    assert untuned.ndcg < 0.8 and fusion.kept and fusion.ndcg > untuned.ndcg + 0.15 and fusion.ci95[0] > 0
    assert profile.fusion != Fusion() and profile.fusion.dense_weight > 0.5
    assert profile.trained_on.split == "train" and len(profile.trained_on.queries) == 24
    assert "+ tuned fusion" in report.to_markdown()

    query = f"{PREFIX}: which nurse lives in Oslo?"
    plain = searcher.search(name, query, k=3, mode="hybrid")
    assert plain[0].id.startswith("x")  # no profile yet: a portal page comes first
    book = ProfileBook(tmp_path / "profiles", local_embedder)
    book.save(name, profile)
    searcher.profiles = book
    assert searcher.search(name, query, k=3, mode="hybrid")[0].id == "d21"
    assert searcher.search(name, query, k=3, mode="hybrid", profile=False)[0].id.startswith("x")

    # eval: refused on the queries it was tuned on; on the unseen dev split it reports the profile's figures
    with pytest.raises(ValidationError, match="tuned on split 'train'.*--no-profile"):
        run_beir(searcher, root, "train")
    dev = run_beir(searcher, root, "dev", modes=["hybrid"])
    dev_untuned = run_beir(searcher, root, "dev", modes=["hybrid"], use_profile=False)
    assert "score fusion" in dev.profile or "RRF" in dev.profile
    assert dev.metrics["hybrid"]["ndcg@10"] > dev_untuned.metrics["hybrid"]["ndcg@10"] + 0.15

    # another embedder's profile is not applied, and the search says why; documents added since tuning
    # are what a profile is for: it keeps applying
    book.recheck_seconds = 0.0
    book.save(name, replace(profile, embedder="local:some-other-model:384:normalized"))
    assert searcher.search(name, query, k=1, mode="hybrid")[0].id.startswith("x")
    note = searcher.profile_note(name)
    assert note is not None and "tuned for embedder 'local:some-other-model" in note
    book.save(name, profile)
    vector = local_embedder.embed_documents(["Zoe the baker also works in Oslo."])[0]
    store.upsert(name, [Record("d99", vector, "Zoe the baker also works in Oslo.", {})])
    tuned = [h.id for h in searcher.search(name, query, k=3, mode="hybrid")]
    assert "d21" in tuned and not tuned[0].startswith("x") and searcher.profile_note(name) is None
    assert searcher.search(name, query, k=1, mode="dense", profile=False)


def test_cli_tune_then_eval_and_profile(isolated_env: Path) -> None:
    root = make_set(isolated_env / "portal")
    env = dict(os.environ, COLUMNS="200")
    cli = [sys.executable, "-m", "vectorseam.cli.__main__"]
    tuned = subprocess.run([*cli, "tune", str(root), "--folds", "3", "--no-adapter", "--no-mmr"], env=env,
                           capture_output=True, text=True, timeout=600)
    assert tuned.returncode == 0, tuned.stderr
    assert "+ tuned fusion" in tuned.stdout and "keep each relevant document to one fold" in tuned.stdout
    saved = json.loads(Path("portal-train-tune.json").read_text())
    assert saved["folds_by"] == "queries" and [s["name"] for s in saved["new_documents"]][1] == "+ tuned fusion"
    refused = subprocess.run([*cli, "eval", "beir", str(root), "--split", "train"], env=env, capture_output=True,
                             text=True, timeout=600)
    assert refused.returncode == 1 and "tuned on split 'train'" in refused.stderr
    ok = subprocess.run([*cli, "eval", "beir", str(root), "--split", "dev", "--mode", "hybrid"], env=env,
                        capture_output=True, text=True, timeout=600)
    assert ok.returncode == 0, ok.stderr
    assert "tuned retrieval profile" in ok.stdout
    shown = subprocess.run([*cli, "profile", "show", "--collection", "beir-portal"], env=env, capture_output=True,
                           text=True, timeout=600)
    assert "+ tuned fusion" in shown.stdout, shown.stderr
    removed = subprocess.run([*cli, "profile", "remove", "--collection", "beir-portal"], env=env,
                             capture_output=True, text=True, timeout=600)
    assert "removed the profile" in removed.stdout
