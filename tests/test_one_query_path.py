"""One retrieval path (issue 26): every search of the facade is one typed query with one default (the tuned
profile applies unless turned off), every store has keyword search through one wrapper, typed options say
what was wrong where they are written, store facts are data, and checkpoints are spaced by their own cost."""

from __future__ import annotations

import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from vectorseam.client import VectorSeam
from vectorseam.config import Settings, StoreSettings
from vectorseam.datadir import DataDir
from vectorseam.embedding import WordTokens
from vectorseam.errors import ConfigError, ValidationError
from vectorseam.ingest.job import IngestJob, JobState
from vectorseam.ingest.ray_engine import check_store_for_ray
from vectorseam.ingest.record_manager import Mark
from vectorseam.ingest_options import IngestOptions
from vectorseam.query import Query, query_of, vector_query
from vectorseam.retrieval.tune_profile import RetrievalProfile, corpus_fingerprint
from vectorseam.store import NativeKeywordSearch
from vectorseam.stores.keyword_fallback import KeywordFallback
from vectorseam.stores.memory import MemoryStore
from vectorseam.types import CollectionSpec, Record

TEXTS = {
    "pasta": "Whole wheat pasta cooked al dente with olive oil.",
    "beans": "Delicious baked beans in a rich tomato sauce.",
    "coffee": "A strong cup of dark roast coffee in the morning.",
    "parcel": "The parcel arrived late and the box was crushed.",
    "dog": "My dog loves the crunchy kibble and wags his tail.",
}


@pytest.fixture()
def vs(tmp_path: Path, local_embedder: Any) -> Any:
    client = VectorSeam(settings=Settings(data_dir=tmp_path / "data", store=StoreSettings(name="memory")))
    client.__dict__["embedder"] = local_embedder  # the model the session already loaded
    client.upsert([Record(i, None, t) for i, t in TEXTS.items()], "food")
    yield client
    client.close()


def test_search_and_retrieve_are_one_method_and_apply_the_tuned_profile(vs: Any, local_embedder: Any) -> None:
    query = "something to eat for dinner"
    untuned = [h.id for h in vs.search(query, k=5, collection="food", profile=False)]
    # a profile whose query adapter turns the query around: the least similar record comes first
    flip = RetrievalProfile(local_embedder.fingerprint, corpus_fingerprint(TEXTS), adapter=-np.eye(384, dtype=np.float32))
    vs.profiles.save("food", flip)
    tuned = [h.id for h in vs.search(query, k=5, collection="food")]
    assert tuned == untuned[::-1]  # applied by default, as retrieve always did
    assert [h.id for h in vs.retrieve(query, k=5, collection="food")] == tuned
    assert [h.id for h in vs.query(Query(text=query, k=5), "food").hits] == tuned
    assert [[h.id for h in hits] for hits in vs.search_many([query, query], k=5, collection="food")] == [tuned, tuned]
    assert [h.id for h in vs.search(query, k=5, collection="food", profile=False)] == untuned
    # plain dense queries without a profile are still embedded as one batch, with the same answers
    assert vs.search_many([query], k=5, collection="food", profile=False) == [
        vs.search(query, k=5, collection="food", profile=False)]


def test_vector_search_with_mmr_goes_through_the_query(vs: Any, local_embedder: Any) -> None:
    vector = local_embedder.embed_query("pasta and beans")
    plain = vs.search_vector(vector, k=3, collection="food")
    assert [h.id for h in plain][:2] == ["pasta", "beans"] or {h.id for h in plain[:2]} == {"pasta", "beans"}
    diverse = vs.query(vector_query(vector, 3, mmr=1.0, candidates=5), "food").hits
    assert [h.id for h in diverse] == [h.id for h in plain]  # lambda 1 is relevance order
    assert all(h.vector is None for h in diverse)


def test_a_query_says_which_field_it_refuses() -> None:
    with pytest.raises(ValidationError, match=r"invalid query: mode: Input should be 'dense', 'bm25' or 'hybrid'"):
        query_of(text="beans", mode="sparse")
    with pytest.raises(ValidationError, match=r"invalid query: k: .*greater than or equal to 1"):
        query_of(text="beans", k=0)
    assert vector_query(np.ones(4, dtype=np.float32), 2).vector == (1.0, 1.0, 1.0, 1.0)


class _NoKeywords:
    """A store without keyword search of its own: every protocol method of a memory store, nothing else."""

    def __init__(self) -> None:
        self._inner = MemoryStore()

    def __getattr__(self, name: str) -> Any:
        if name in ("keyword_search", "hybrid_search", "recommend", "bulk_load"):
            raise AttributeError(name)
        return getattr(self._inner, name)


def _records(texts: dict[str, str]) -> list[Record]:
    rng = np.random.default_rng(0)
    return [Record(i, rng.normal(size=4).astype(np.float32), t) for i, t in texts.items()]


def test_every_store_gets_keyword_search_and_writes_elsewhere_are_caught(tmp_path: Path) -> None:
    inner = _NoKeywords()
    assert not isinstance(inner, NativeKeywordSearch)
    store = KeywordFallback(inner, tmp_path / "bm25")  # type: ignore[arg-type]
    assert isinstance(store, NativeKeywordSearch)
    store.ensure_collection(CollectionSpec("docs", 4))
    store.upsert("docs", _records({"a": "red apple", "b": "green pear"}))
    assert [h.id for h in store.keyword_search("docs", "apple", 5)] == ["a"]
    assert [h.id for h in store.hybrid_search("docs", "pear", np.ones(4, np.float32), 1)] in (["a"], ["b"])
    inner.upsert("docs", _records({"a": "ripe cherry"}))  # past the wrapper, same count: not noticed yet
    assert store.keyword_search("docs", "cherry", 5) == []
    store.written_elsewhere("docs")  # what the facade says after the Ray engine's workers wrote
    assert [h.id for h in store.keyword_search("docs", "cherry", 5)] == ["a"]


def test_ingest_options_are_checked_where_they_are_written(vs: Any, tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="ingest engine must be 'local' or 'ray', got 'spark'"):
        IngestOptions(engine="spark")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        IngestOptions(cleanp="full")  # type: ignore[call-arg]  # a typo fails at the call, not somewhere below
    source = tmp_path / "rows.jsonl"
    source.write_text('{"id": "r1", "text": "fresh bread"}\n', encoding="utf-8")
    with pytest.raises(ValidationError, match="ray_address and ray_workers are options of the Ray engine"):
        vs.prepare_ingest(source, "food", options=IngestOptions(engine="local", ray_address="auto"))
    report = vs.ingest_file(source, "food", options=IngestOptions(batch_size=1, use_cache=False))
    assert (report.added, report.embedded) == (1, 1)


def test_store_facts_are_capabilities_the_core_reads(tmp_path: Path) -> None:
    on_disk, in_memory = MemoryStore(tmp_path / "m"), MemoryStore()
    assert on_disk.capabilities.one_process is None and on_disk.capabilities.one_machine is not None
    assert in_memory.capabilities.one_process is not None and on_disk.capabilities.native_keywords
    check_store_for_ray(on_disk.capabilities)  # other processes of this machine reach it
    with pytest.raises(ConfigError, match=r"the memory store here keeps its records in this process's memory"):
        check_store_for_ray(in_memory.capabilities)


class _Embedder(WordTokens):
    dimension = 4
    fingerprint = "test:4"

    def embed_documents(self, texts: Any, batch_size: int | None = None) -> Any:
        return np.ones((len(texts), 4), np.float32)

    def embed_query(self, text: str) -> Any:
        return np.ones(4, np.float32)


class _SlowMarks:
    """A record manager whose done mark takes 20 ms."""

    def __init__(self) -> None:
        self.done = 0

    def mark_pending(self, marks: Iterable[Mark]) -> None:
        pass

    def mark_done(self, marks: Iterable[Mark]) -> None:
        self.done += 1
        time.sleep(0.02)


def test_checkpoints_are_spaced_by_the_record_managers_own_cost(tmp_path: Path) -> None:
    job = IngestJob(MemoryStore(), _Embedder(), "docs", JobState(DataDir.at(tmp_path), "test"))  # type: ignore[arg-type]
    rm = _SlowMarks()
    for i in range(10):  # batches written in quick succession
        job._pending_done.append(Mark(f"d{i}", "src", "h", [f"d{i}"]))
        job._checkpoint(rm)
    assert rm.done == 1  # the first mark took 20 ms: the next waits about 30 times that
    job._checkpoint(rm, force=True)  # the end of the job (or of a Ray batch) marks what is pending
    assert rm.done == 2 and job._pending_done == []
