"""LangChain: ``VectorSeamVectorStore`` against langchain-tests' own standard suite, unmodified, on the
memory store, PostgreSQL + pgvector and Qdrant local mode; the hybrid retriever against the standard
retriever suite; and vectorseam's own behaviour through LangChain (filters, MMR, fingerprints, hybrid).

The standard suites' ``async def`` tests carry no asyncio mark (LangChain's repositories run pytest-asyncio
in auto mode); :func:`_run_async_tests_with_asyncio` adds that mark and nothing else, since this
project's pytest runs pytest-asyncio in its default strict mode.
"""

from __future__ import annotations

import inspect
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("langchain_tests", reason="the dev extra installs langchain-core and langchain-tests")

from langchain_core.documents import Document
from langchain_core.embeddings import DeterministicFakeEmbedding
from langchain_tests.integration_tests import RetrieversIntegrationTests, VectorStoreIntegrationTests

from vectorseam.client import VectorSeam
from vectorseam.config import Settings, StoreSettings
from vectorseam.errors import EmbedderMismatchError, FilterError, ValidationError
from vectorseam.integrations.langchain import (
    VectorSeamEmbeddings,
    VectorSeamHybridRetriever,
    VectorSeamVectorStore,
)
from vectorseam.types import Record


def _run_async_tests_with_asyncio(*suites: type) -> None:
    for suite in suites:
        for name, fn in inspect.getmembers(suite, inspect.iscoroutinefunction):
            if name.startswith("test_"):
                pytest.mark.asyncio(fn)


_run_async_tests_with_asyncio(VectorStoreIntegrationTests, RetrieversIntegrationTests)


def facade(data_dir: Path, store: str = "memory", options: dict[str, Any] | None = None) -> VectorSeam:
    return VectorSeam(settings=Settings(data_dir=data_dir, store=StoreSettings(name=store, options=options or {})))


class TestMemoryStandardSuite(VectorStoreIntegrationTests):
    """langchain-tests' VectorStoreIntegrationTests on the embedded memory store (persisted to a tmp dir)."""

    @pytest.fixture()
    def vectorstore(self, isolated_env: Path) -> Iterator[VectorSeamVectorStore]:
        store = VectorSeamVectorStore(facade(isolated_env / "data"), "lc", self.get_embeddings())
        yield store
        store.close()


class TestQdrantLocalStandardSuite(VectorStoreIntegrationTests):
    """The same suite on Qdrant (qdrant-client's local mode, in memory)."""

    @pytest.fixture()
    def vectorstore(self, isolated_env: Path) -> Iterator[VectorSeamVectorStore]:
        pytest.importorskip("vectorseam_qdrant", reason="the Qdrant adapter (adapters/qdrant) is not installed")
        store = VectorSeamVectorStore(facade(isolated_env / "data", "qdrant", {"location": ":memory:"}), "lc",
                                      self.get_embeddings())
        yield store
        store.close()


@pytest.fixture(scope="module")
def pg_facade(pg_server: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[VectorSeam]:
    schema = f"lc_{uuid.uuid4().hex[:10]}"
    vs = facade(tmp_path_factory.mktemp("lcpg"), "pgvector", {"dsn": pg_server.dsn(), "schema": schema})
    yield vs
    vs.close()


class TestPgvectorStandardSuite(VectorStoreIntegrationTests):
    """The same suite on a real PostgreSQL + pgvector server; each test gets its own collection."""

    @pytest.fixture()
    def vectorstore(self, pg_facade: VectorSeam) -> Iterator[VectorSeamVectorStore]:
        store = VectorSeamVectorStore(pg_facade, f"lc{uuid.uuid4().hex[:12]}", self.get_embeddings())
        yield store
        store.delete()  # no ids and no filter: drops the collection


TEXTS = ["whole wheat pasta with basil", "bad delivery, box arrived crushed", "spicy beans in tomato sauce",
         "gluten free pasta that tastes like cardboard", "order XK-2291 never arrived", "dog food my pets love"]


@pytest.fixture(scope="module")
def fake_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VectorSeamVectorStore]:
    store = VectorSeamVectorStore(facade(tmp_path_factory.mktemp("lcret")), "retr", DeterministicFakeEmbedding(size=6))
    store.add_texts(TEXTS, [{"n": i} for i in range(len(TEXTS))], ids=[f"t{i}" for i in range(len(TEXTS))])
    yield store
    store.close()


class TestHybridRetrieverStandardSuite(RetrieversIntegrationTests):
    """langchain-tests' RetrieversIntegrationTests on the hybrid retriever (k in the constructor and per call)."""

    @pytest.fixture(autouse=True)
    def _store(self, fake_store: VectorSeamVectorStore) -> None:
        type(self).store = fake_store

    store: VectorSeamVectorStore

    @property
    def retriever_constructor(self) -> type[VectorSeamHybridRetriever]:
        return VectorSeamHybridRetriever

    @property
    def retriever_constructor_params(self) -> dict[str, Any]:
        return {"vectorstore": self.store}

    @property
    def retriever_query_example(self) -> str:
        return "pasta"


# -- vectorseam's behaviour through LangChain ---------------------------------------------------------

@pytest.fixture()
def fake(isolated_env: Path) -> Iterator[VectorSeamVectorStore]:
    store = VectorSeamVectorStore(facade(isolated_env / "data"), "fake", DeterministicFakeEmbedding(size=6))
    yield store
    store.close()


def test_portable_filters_select_the_same_records_as_vectorseam(fake: VectorSeamVectorStore) -> None:
    fake.add_texts(TEXTS, [{"n": i, "tags": ["even"] if i % 2 == 0 else ["odd"]} for i in range(len(TEXTS))],
                   ids=[f"t{i}" for i in range(len(TEXTS))])
    hits = fake.similarity_search("pasta", k=10, filter={"n": {"$gte": 2}, "tags": "even"})
    assert sorted(d.id for d in hits if d.id) == ["t2", "t4"]
    assert fake.similarity_search("pasta", k=10, filter={"$not": {"n": {"$lt": 5}}})[0].id == "t5"
    with pytest.raises(FilterError, match=r"\$near"):
        fake.similarity_search("pasta", filter={"n": {"$near": 3}})


def test_scores_by_text_and_by_vector_agree(fake: VectorSeamVectorStore) -> None:
    fake.add_texts(TEXTS, ids=[f"t{i}" for i in range(len(TEXTS))])
    emb = DeterministicFakeEmbedding(size=6)
    by_text = fake.similarity_search_with_score(TEXTS[2], k=3)
    by_vector = fake.similarity_search_with_score_by_vector(emb.embed_query(TEXTS[2]), k=3)
    assert [(d.id, round(s, 6)) for d, s in by_text] == [(d.id, round(s, 6)) for d, s in by_vector]
    assert by_text[0][0].id == "t2" and by_text[0][1] == pytest.approx(1.0, abs=1e-6)
    relevance = fake.similarity_search_with_relevance_scores(TEXTS[2], k=6)
    assert relevance[0][1] == pytest.approx(1.0, abs=1e-6)
    assert all(0.0 <= r <= 1.0 for _, r in relevance)


def test_mmr_skips_a_duplicate_that_plain_search_returns(fake: VectorSeamVectorStore) -> None:
    fake.add_texts(["pasta", "pasta", "beans"], ids=["a", "b", "c"])
    assert [d.id for d in fake.similarity_search("pasta", k=2)] == ["a", "b"]
    # lambda 0.25: the second "pasta" scores 0.25 - 0.75 against the first; "beans" scores higher.
    assert [d.id for d in fake.max_marginal_relevance_search("pasta", k=2, fetch_k=3, lambda_mult=0.25)] == ["a", "c"]
    vector = DeterministicFakeEmbedding(size=6).embed_query("pasta")
    assert [d.id for d in fake.max_marginal_relevance_search_by_vector(vector, k=2, fetch_k=3,
                                                                      lambda_mult=0.25)] == ["a", "c"]
    assert fake.as_retriever(search_type="mmr", search_kwargs={"k": 2, "fetch_k": 3, "lambda_mult": 0.25}
                             ).invoke("pasta")[1].id == "c"


def test_delete_by_filter_and_everything(fake: VectorSeamVectorStore) -> None:
    fake.add_texts(TEXTS, [{"n": i} for i in range(len(TEXTS))], ids=[f"t{i}" for i in range(len(TEXTS))])
    fake.delete(filter={"n": {"$lt": 4}})
    assert sorted(d.id for d in fake.similarity_search("x", k=10) if d.id) == ["t4", "t5"]
    fake.delete()
    assert fake.similarity_search("x", k=10) == []
    assert fake.get_by_ids(["t4"]) == []


def test_nested_metadata_is_refused_with_the_field_named(fake: VectorSeamVectorStore) -> None:
    with pytest.raises(ValidationError, match="'where'"):
        fake.add_texts(["a"], [{"where": {"city": "Oslo"}}])
    assert fake.similarity_search("a") == []  # nothing was written


def test_from_texts_builds_and_fills_a_store(isolated_env: Path) -> None:
    store = VectorSeamVectorStore.from_texts(TEXTS[:2], DeterministicFakeEmbedding(size=6), [{"n": 0}, {"n": 1}],
                                             ids=["x", "y"], vectorseam=facade(isolated_env / "data"),
                                             collection="built")
    assert store.get_by_ids(["y", "x"]) == [Document(id="y", page_content=TEXTS[1], metadata={"n": 1}),
                                            Document(id="x", page_content=TEXTS[0], metadata={"n": 0})]
    store.close()


def test_a_collection_keeps_the_fingerprint_of_its_embeddings(isolated_env: Path) -> None:
    vs = facade(isolated_env / "data")
    VectorSeamVectorStore(vs, "fp", DeterministicFakeEmbedding(size=6)).add_texts(["a"])
    assert vs.collection_info("fp").metadata["embedder"] == (
        "langchain:langchain_core.embeddings.fake.DeterministicFakeEmbedding:6")
    other = VectorSeamVectorStore(vs, "fp", DeterministicFakeEmbedding(size=6))
    assert other.similarity_search("a", k=1)[0].page_content == "a"
    with pytest.raises(EmbedderMismatchError, match="was embedded with"):
        VectorSeamVectorStore(vs, "fp").similarity_search("a")  # the facade's own model: another space
    vs.close()


def test_default_embedder_reads_what_vectorseam_ingested_and_hybrid_matches_the_facade(
        isolated_env: Path, local_embedder: Any) -> None:
    """Without an Embeddings object the store is the facade's collection: same embedder, same results."""
    vs = facade(isolated_env / "data")
    vs.embedder = local_embedder
    vs.upsert([Record(f"r{i}", None, t, {"n": i}) for i, t in enumerate(TEXTS)], collection="reviews")
    store = VectorSeamVectorStore(vs, "reviews")
    assert store.similarity_search("noodles made from wheat", k=1)[0].id == "r0"
    assert isinstance(store.embeddings, VectorSeamEmbeddings)
    assert len(store.embeddings.embed_query("x")) == 384

    retriever = store.as_hybrid_retriever(k=3)
    docs = retriever.invoke("XK-2291")
    expected = vs.retrieve("XK-2291", k=3, mode="hybrid", collection="reviews")
    assert [d.id for d in docs] == [h.id for h in expected]
    assert docs[0].id == "r4"  # the order number only BM25 can match exactly
    assert [d.id for d in store.as_hybrid_retriever(mode="bm25").invoke("XK-2291", k=1)] == ["r4"]
    assert [d.id for d in retriever.invoke("pasta", filter={"n": {"$gt": 0}}, k=1)] == ["r3"]
    with pytest.raises(TypeError, match="unexpected"):
        retriever.invoke("pasta", fetch_k=3)
    vs.close()
