"""The learned ranker, pseudo-relevance feedback and the profile kept with its collection: trained and
applied on small collections (the help-portal set of test_tune), with the real model and real stores.

* the ranker's features and its two model families learn what the data rewards;
* a profile with feedback and a ranker ranks the same top 10 through the facade, the CLI, the HTTP API
  and the LangChain, LlamaIndex and Haystack integrations (and differs from the untuned ranking);
* it is kept with the collection: migrated from the memory store to pgvector and to Qdrant it gives
  the same tuned results there, and a second ``serve`` process over the pgvector database applies it on
  its first request; a profile for another embedder is reported, not applied.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from tests.serve_process import ServeProcess, clean_env
from tests.test_tune import PREFIX, make_set
from vectorseam.client import VectorSeam, migrate
from vectorseam.config import Settings
from vectorseam.keywords import tokenize_all
from vectorseam.retrieval.evaluation import load_beir, prepare_collection
from vectorseam.retrieval.prf import Feedback
from vectorseam.retrieval.ranker import (
    ABSENT,
    BASE_FEATURES,
    LeadIndex,
    RankerOptions,
    RankInputs,
    feature_matrix,
    feature_names,
    fit_lambdamart,
    fit_linear,
)
from vectorseam.retrieval.tune_profile import Fusion, RetrievalProfile, corpus_fingerprint

QUERIES = [f"{PREFIX}: which {job} lives in {city}?" for job, city in
           [("nurse", "Oslo"), ("pilot", "Lima"), ("baker", "Hanoi"), ("plumber", "Quebec"), ("violinist", "Oslo")]]


def _inputs(rng: np.random.Generator, queries: int, width: int) -> tuple[RankInputs, np.ndarray]:
    """Candidates whose relevant one has the best lead match but only an average dense score."""
    shape = (queries, width)
    gains = np.zeros(shape)
    gains[np.arange(queries), rng.integers(0, width, queries)] = 1.0
    dense = rng.normal(0.5, 0.1, shape)
    lead = rng.uniform(0, 2, shape) + 3.0 * gains
    ranks = np.argsort(np.argsort(-dense, axis=1), axis=1).astype(np.int32)
    x = RankInputs(np.ones(shape, bool), dense, dense, ranks, rng.uniform(0, 5, shape),
                   np.full(shape, ABSENT, np.int32), lead, lead / 5, np.ones(shape), dense, np.zeros((*shape, 0)))
    return x, gains


@pytest.mark.parametrize("kind", ["linear", "lambdamart"])
def test_ranker_learns_what_the_judgements_reward(kind: str) -> None:
    rng = np.random.default_rng(0)
    x, gains = _inputs(rng, 240, 30)
    features = feature_matrix(x)
    assert features.shape == (240, 30, len(BASE_FEATURES))
    lead = LeadIndex.build(tokenize_all(["a title", "another title"]))
    names, opts = feature_names(()), RankerOptions(depth=30)
    train, held = slice(0, 160), slice(160, 240)
    if kind == "linear":
        model = fit_linear(features[train], gains[train], x.valid[train], names, 30, lead, opts)
        assert model.weights[names.index("lead_bm25")] > abs(model.weights[names.index("dense")])
    else:
        pytest.importorskip("lightgbm", reason="LambdaMART needs the 'rank' extra (lightgbm)")
        model = fit_lambdamart(features[train], gains[train], x.valid[train],
                               (features[held], gains[held], x.valid[held]), names, 30, lead, opts)
    scores = model.score(features[held])
    hit_rate = float((np.argmax(scores, axis=1) == np.argmax(gains[held], axis=1)).mean())
    dense_rate = float((np.argmax(x.dense[held], axis=1) == np.argmax(gains[held], axis=1)).mean())
    assert hit_rate > 0.9 and dense_rate < 0.3
    # the saved form scores identically
    again = type(model).from_dict(json.loads(model.to_json()))
    np.testing.assert_allclose(again.score(features[held]), scores, rtol=1e-9, atol=1e-12)


def test_feedback_moves_the_query_towards_its_top_documents() -> None:
    q = np.array([1.0, 0.0, 0.0], np.float32)
    docs = np.array([[0.0, 1.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]], np.float32)
    moved = Feedback(documents=2, weight=1.0).expand(q, docs)
    np.testing.assert_allclose(moved, np.array([1, 1, 0]) / np.sqrt(2), rtol=1e-6)
    batch = Feedback(documents=2, weight=1.0).expand_many(q[None, :], [[0, 1, 2]], docs)
    np.testing.assert_allclose(batch[0], moved, rtol=1e-6)


def _hand_profile(vs: VectorSeam, collection: str) -> RetrievalProfile:
    """A profile with feedback and a linear ranker (trusting the dense scores, the lead's BM25 a little), made
    by hand so the test does not depend on what a tiny training set would choose."""
    ids = [r.id for page in vs.store.scan(collection, include_vectors=False) for r in page]
    texts = [r.text for page in vs.store.scan(collection, include_vectors=False) for r in page]
    lead = LeadIndex.build(tokenize_all([" ".join(t.split()[:20]) for t in texts]))
    names = feature_names(())
    weights = [0.0] * len(names)
    weights[names.index("dense")], weights[names.index("lead_bm25")], weights[names.index("prf")] = 4.0, 0.01, 1.0
    from vectorseam.retrieval.ranker import Ranker

    ranker = Ranker("linear", names, 20, lead, (0.0,) * len(names), (1.0,) * len(names), tuple(weights))
    return RetrievalProfile(vs.embedder.fingerprint, corpus_fingerprint(ids), Fusion("zscore", 0.8, 60.0, 20),
                            feedback=Feedback(3, 0.5), ranker=ranker)


def _portal(tmp_path: Path, vs: VectorSeam) -> str:
    root = make_set(tmp_path / "portal")
    prepare_collection(vs.store, vs.embedder, "portal", load_beir(root, "train"))
    return "portal"


def _top(hits: Any) -> list[str]:
    return [getattr(h, "id", None) or h["id"] for h in hits][:10]


def test_a_tuned_profile_ranks_alike_through_every_path(tmp_path: Path, local_embedder: Any) -> None:
    data = tmp_path / "data"
    vs = VectorSeam(settings=Settings(data_dir=data))
    vs.__dict__["embedder"] = local_embedder
    name = _portal(tmp_path, vs)
    untuned = [_top(vs.retrieve(q, k=10, mode="hybrid", collection=name)) for q in QUERIES]
    vs.profiles.save(name, _hand_profile(vs, name))
    expected = [_top(vs.retrieve(q, k=10, mode="hybrid", collection=name)) for q in QUERIES]
    assert expected != untuned and all(len(t) == 10 for t in expected)
    assert [t[0] for t in expected] == ["d21", "d13", "d04", "d35", "d41"]  # the job in the city, every time

    # LangChain (text: vectorseam embeds), LlamaIndex and Haystack (the framework hands over the vector)
    from llama_index.core.vector_stores.types import VectorStoreQuery, VectorStoreQueryMode

    from vectorseam.integrations.haystack import VectorSeamDocumentStore, VectorSeamHybridRetriever
    from vectorseam.integrations.langchain import VectorSeamVectorStore as LangChainStore
    from vectorseam.integrations.llamaindex import VectorSeamVectorStore as LlamaStore

    langchain = LangChainStore(vs, name).as_hybrid_retriever(k=10)
    llama = LlamaStore(vs, name)
    haystack = VectorSeamHybridRetriever(VectorSeamDocumentStore(vs, name), top_k=10)
    for q, want in zip(QUERIES, expected, strict=True):
        vector = [float(x) for x in local_embedder.embed_query(q)]
        assert [d.id for d in langchain.invoke(q)] == want
        result = llama.query(VectorStoreQuery(query_str=q, query_embedding=vector, similarity_top_k=10,
                                              mode=VectorStoreQueryMode.HYBRID))
        assert list(result.ids or []) == want
        assert [d.id for d in haystack.run(query=q, query_embedding=vector)["documents"]] == want
    vs.close()

    env = clean_env(data)
    cli = subprocess.run([str(Path(sys.executable).parent / "vectorseam"), "search", *QUERIES, "--collection", name,
                          "--mode", "hybrid", "-k", "10", "--json"], env=env, capture_output=True, text=True,
                         timeout=300)
    assert cli.returncode == 0, cli.stderr
    assert [_top(r["hits"]) for r in json.loads(cli.stdout)] == expected

    server = ServeProcess.start(env, tmp_path / "serve.log")
    try:
        server.wait_ready(time.monotonic() + 120)
        for q, want in zip(QUERIES, expected, strict=True):
            r = httpx.post(f"{server.url}/v1/collections/{name}/search", json={"query": q, "k": 10, "mode": "hybrid"},
                           timeout=60)
            assert r.status_code == 200, r.text
            assert _top(r.json()["hits"]) == want and r.json()["profile_note"] is None
        # another process saves a profile for another embedder: the server's next searches say so
        other = VectorSeam(settings=Settings(data_dir=data))
        other.__dict__["embedder"] = local_embedder
        other.profiles.save(name, replace(_hand_profile(other, name), embedder="local:another-model:384:normalized"))
        other.close()
        time.sleep(1.2)  # a process looks for a newer profile at most once a second
        r = httpx.post(f"{server.url}/v1/collections/{name}/search", json={"query": QUERIES[0], "k": 10,
                                                                         "mode": "hybrid"}, timeout=60)
        assert r.status_code == 200 and _top(r.json()["hits"]) == untuned[0]
        assert "not applied" in r.json()["profile_note"] and "another-model" in r.json()["profile_note"]
    finally:
        server.stop()


def test_a_profile_for_another_embedder_is_reported_not_applied(tmp_path: Path, local_embedder: Any) -> None:
    vs = VectorSeam(settings=Settings(data_dir=tmp_path / "data"))
    vs.__dict__["embedder"] = local_embedder
    name = _portal(tmp_path, vs)
    untuned = _top(vs.retrieve(QUERIES[0], k=10, mode="hybrid", collection=name))
    vs.profiles.save(name, replace(_hand_profile(vs, name), embedder="local:another-model:384:normalized"))
    vs.profiles.recheck_seconds = 0.0
    assert _top(vs.retrieve(QUERIES[0], k=10, mode="hybrid", collection=name)) == untuned
    note = vs.profile_note(name)
    assert note is not None and "another-model" in note and "not applied" in note
    vs.profiles.save(name, _hand_profile(vs, name))
    assert _top(vs.retrieve(QUERIES[0], k=10, mode="hybrid", collection=name)) != untuned
    assert vs.profile_note(name) is None
    vs.close()


def _config(path: Path, data: Path, store: str, options: dict[str, Any]) -> Path:
    lines = [f'data_dir = "{data}"', "[store]", f'name = "{store}"', "[store.options]"]
    lines += [f"{k} = {json.dumps(v)}" for k, v in options.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_the_profile_travels_with_the_collection(tmp_path: Path, local_embedder: Any, pg_server: Any) -> None:
    """memory -> pgvector and memory -> Qdrant (local folder) with ``vectorseam migrate``: the same tuned
    top 10 there; a ``serve`` process over the pgvector database applies it on its first request."""
    data = tmp_path / "data"
    memory = _config(tmp_path / "memory.toml", data, "memory", {})
    schema = f"rank_{int(time.time() * 1000) % 10**9}"
    pg_options = {"dsn": pg_server.dsn(), "schema": schema, "index": "exact"}
    pg = _config(tmp_path / "pg.toml", tmp_path / "pg-data", "pgvector", pg_options)
    qdrant = _config(tmp_path / "qdrant.toml", tmp_path / "qdrant-data", "qdrant", {"path": str(tmp_path / "qd")})
    vs = VectorSeam(config_file=memory)
    vs.__dict__["embedder"] = local_embedder
    name = _portal(tmp_path, vs)
    untuned = [_top(vs.retrieve(q, k=10, mode="hybrid", collection=name)) for q in QUERIES]
    vs.profiles.save(name, _hand_profile(vs, name))
    expected = [_top(vs.retrieve(q, k=10, mode="hybrid", collection=name)) for q in QUERIES]
    assert expected != untuned
    vs.close()

    for target in (pg, qdrant):
        report = migrate(name, memory, target)
        assert report.verified and "copied" in report.profile
        there = VectorSeam(config_file=target)
        there.__dict__["embedder"] = local_embedder
        assert there.profiles.blobs is not None  # kept in the store, not in a data directory
        assert [_top(there.retrieve(q, k=10, mode="hybrid", collection=name)) for q in QUERIES] == expected
        there.close()

    # a second process over the same database, with a data directory of its own: the profile is there
    env = clean_env(tmp_path / "replica-data", VECTORSEAM_STORE__NAME="pgvector",
                    VECTORSEAM_STORE__OPTIONS=json.dumps(pg_options))
    server = ServeProcess.start(env, tmp_path / "replica.log")
    try:
        server.wait_ready(time.monotonic() + 120)
        got = [_top(httpx.post(f"{server.url}/v1/collections/{name}/search",
                               json={"query": q, "k": 10, "mode": "hybrid"}, timeout=60).json()["hits"])
               for q in QUERIES]
        assert got == expected
    finally:
        server.stop()


def test_a_profile_saved_in_the_data_directory_moves_into_the_store(tmp_path: Path) -> None:
    """Profiles written by earlier releases (files under DATA_DIR/profiles) move into a store that keeps
    collection blobs on first use; a store without blobs keeps using the files."""
    from vectorseam.retrieval.tune_profile import ProfileBook
    from vectorseam.stores.memory import MemoryStore
    from vectorseam.types import CollectionSpec

    class _Fp:
        fingerprint = "local:m:3:normalized"

    profile = RetrievalProfile("local:m:3:normalized", corpus_fingerprint(["a"]), Fusion("zscore", 0.7, 60.0, 50))
    files = ProfileBook(tmp_path / "profiles", _Fp())  # type: ignore[arg-type]
    files.save("docs", profile)
    assert files.where.startswith("in the data directory") and files.get(None, "docs") is not None
    store = MemoryStore()
    store.ensure_collection(CollectionSpec("docs", 3, "cosine"))
    kept = ProfileBook(tmp_path / "profiles", _Fp(), store)  # type: ignore[arg-type]
    assert kept.blobs is not None and kept.where.startswith("with the collection")
    found = kept.get(None, "docs")
    assert found is not None and found.fusion == profile.fusion
    assert store.get_blob("docs", "retrieval-profile") is not None  # imported
    assert kept.remove("docs") and kept.find("docs") is None and not files.path("docs").exists()
