"""Store wrappers expose exactly their inner store's abilities; the facade's observer hook; collection_info."""

from __future__ import annotations

import importlib.util
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pytest

from vectorseam.client import VectorSeam
from vectorseam.config import Settings, StoreSettings
from vectorseam.errors import CollectionNotFoundError, ValidationError
from vectorseam.store import BulkLoading, NativeKeywordSearch, NativeRecommend, VectorStore
from vectorseam.stores.keyword_fallback import KeywordFallback
from vectorseam.stores.memory import MemoryStore
from vectorseam.stores.wrappers import ObservedStore, StoreCall, StoreWrapper
from vectorseam.types import CollectionSpec, Record

T = TypeVar("T")
DIM = 4


class Recording(StoreWrapper):
    """A wrapper that intercepts every call through the one hook, as wrappers are meant to."""

    def __init__(self, inner: VectorStore) -> None:
        super().__init__(inner)
        self.calls: list[str] = []

    def _call(self, operation: str, fn: Callable[[], T]) -> T:
        self.calls.append(operation)
        return fn()


def abilities(store: object) -> tuple[bool, bool, bool]:
    return isinstance(store, BulkLoading), isinstance(store, NativeRecommend), isinstance(store, NativeKeywordSearch)


def filled(store: VectorStore, name: str = "items") -> VectorStore:
    store.ensure_collection(CollectionSpec(name, DIM, "cosine"))
    vectors = np.eye(DIM, dtype=np.float32)
    store.upsert(name, [Record(f"r{i}", vectors[i], f"text {i}", {"i": i}) for i in range(DIM)])
    return store


def test_a_wrapper_has_the_memory_stores_keyword_search_and_nothing_else(tmp_path: Path) -> None:
    inner = MemoryStore(tmp_path / "memory")
    assert abilities(inner) == (False, False, True)
    for wrapper in (StoreWrapper(inner), Recording(inner), KeywordFallback(inner, tmp_path / "bm25"),
                    ObservedStore(inner), KeywordFallback(ObservedStore(inner), tmp_path / "bm25")):
        assert isinstance(wrapper, VectorStore) and isinstance(wrapper, StoreWrapper)
        assert abilities(wrapper) == (False, False, True), type(wrapper).__mro__
        assert not hasattr(wrapper, "recommend") and not hasattr(wrapper, "bulk_load")
    keyed = KeywordFallback(inner, tmp_path)
    assert type(keyed).__name__ == "KeywordFallback" and repr(keyed).startswith("KeywordFallback(")
    assert type(keyed) is type(KeywordFallback(MemoryStore(), tmp_path))  # one class per ability set


def test_ability_calls_go_through_the_wrappers_hook(tmp_path: Path) -> None:
    inner = filled(MemoryStore(tmp_path / "memory"))
    wrapper = Recording(inner)
    assert isinstance(wrapper, NativeKeywordSearch)
    hits = wrapper.keyword_search("items", "text", 2)
    wrapper.collection_info("items")
    wrapper.query("items", np.ones(DIM, dtype=np.float32), k=2)
    assert wrapper.calls == ["keyword_search", "collection_info", "query"]
    assert [h.id for h in hits] == ["r0", "r1"]  # the call reached the real store's index (ties by id)


@pytest.mark.skipif(importlib.util.find_spec("vectorseam_qdrant") is None,
                    reason="the Qdrant adapter (adapters/qdrant) is not installed")
def test_a_wrapper_over_qdrant_recommends_natively(tmp_path: Path) -> None:
    from vectorseam_qdrant.store import create_store

    inner = filled(create_store(location=":memory:"))
    try:
        assert abilities(inner) == (False, True, True)
        wrapper = Recording(KeywordFallback(inner, tmp_path / "bm25"))
        assert abilities(wrapper) == (False, True, True)
        assert isinstance(wrapper, NativeRecommend)
        hits = wrapper.recommend("items", ["r0"], k=2)
        assert [h.id for h in hits] == [h.id for h in inner.recommend("items", ["r0"], k=2)]
        assert "r0" not in {h.id for h in hits} and wrapper.calls == ["recommend"]
    finally:
        inner.close()


def test_a_wrapper_over_pgvector_bulk_loads(tmp_path: Path, pg_server: Any) -> None:
    from vectorseam_pgvector import create_store

    inner = create_store(dsn=pg_server.dsn(), schema=f"w_{uuid.uuid4().hex[:12]}", retries=1)
    try:
        assert abilities(inner) == (True, False, True)
        wrapper = Recording(KeywordFallback(inner, tmp_path / "bm25"))
        assert abilities(wrapper) == (True, False, True)
        inner.ensure_collection(CollectionSpec("items", DIM, "cosine"))
        with wrapper.bulk_load("items"):
            wrapper.upsert("items", [Record(f"r{i}", np.eye(DIM, dtype=np.float32)[i], "") for i in range(DIM)])
        assert wrapper.calls == ["bulk_load", "upsert"] and wrapper.count("items") == DIM
    finally:
        inner.close()


def test_observers_see_every_call_until_removed() -> None:
    store = ObservedStore(filled(MemoryStore()))
    seen: list[StoreCall] = []
    stop = store.add_observer(seen.append)
    store.count("items")
    with pytest.raises(CollectionNotFoundError):
        store.collection_info("nope")
    with pytest.raises(ValidationError):
        store.query("items", np.ones(DIM + 1, dtype=np.float32))
    assert [(c.store, c.operation, type(c.error).__name__) for c in seen] == [
        ("memory", "count", "NoneType"), ("memory", "collection_info", "CollectionNotFoundError"),
        ("memory", "query", "DimensionMismatchError")]
    assert all(c.seconds >= 0 for c in seen)
    stop()
    store.count("items")
    assert len(seen) == 3


def test_collection_info_of_the_memory_store() -> None:
    store = filled(filled(MemoryStore(), "beta"), "alpha")
    info = store.collection_info("alpha")
    assert (info.name, info.dimension, info.metric, info.count) == ("alpha", DIM, "cosine", DIM)
    assert info == next(i for i in store.collections() if i.name == "alpha")
    with pytest.raises(CollectionNotFoundError) as err:
        store.collection_info("nope")
    assert str(err.value) == ("collection 'nope' does not exist in the memory store (existing: alpha, beta); "
                              "create it with `vectorseam ingest FILE --collection nope`")


def test_the_facade_reports_its_store_calls_to_observers(tmp_path: Path) -> None:
    """The service's metrics hook: observers see the facade's calls, writes through it keep BM25 in step."""
    vs = VectorSeam(settings=Settings(data_dir=tmp_path / "data", store=StoreSettings(name="memory")))
    with vs:
        seen: list[str] = []
        stop = vs.observe_store(lambda call: seen.append(call.operation))
        vectors = np.eye(384, dtype=np.float32)[:3]
        result = vs.upsert([Record(f"r{i}", vectors[i], f"apple pie number {i}") for i in range(3)], "docs")
        assert (result.written, result.embedded) == (3, 0)
        assert vs.collection_info("docs").count == 3
        assert isinstance(vs.store, KeywordFallback) and vs.store.keyword_search("docs", "apple", 3)
        assert {"ensure_collection", "upsert", "collection_info", "keyword_search"} <= set(seen)
        stop()
        seen.clear()
        assert vs.delete(["r0"], collection="docs") == 1
        assert seen == []
        with pytest.raises(ValidationError, match=r"records\[0\] \(id 'x'\): no vector and no text"):
            vs.upsert([Record("x", None, "  ")], "docs")
