"""Haystack: ``VectorSeamDocumentStore`` against haystack.testing.document_store's mixins
(``DocumentStoreBaseTests``: count, write, delete and filter tests; plus ``DeleteAllTest`` and
``DeleteByFilterTest``) on the memory store, PostgreSQL + pgvector and Qdrant local mode; then the
retriever components, serialization and document round trips.

Overridden from the mixins, each with its reason in the test:

* ``assert_documents_are_equal``: vectorseam keeps vectors as float32 (as every backend does), so a
  Python-float embedding comes back as its float32 rounding; embeddings are compared bit for bit at
  float32, everything else exactly. Results are compared sorted by id (the mixins expect insertion
  order, which the DocumentStore protocol does not promise and stores such as pgvector do not keep).
* ``test_write_documents``: the mixin leaves the default policy to the store (it raises
  NotImplementedError on purpose); here NONE means FAIL.
* the four ``test_comparison_*_with_none`` range tests: on purpose vectorseam's range operators take a
  number or a date/time, never None, so these raise FilterError rather than return nothing.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

os.environ.setdefault("HAYSTACK_TELEMETRY_ENABLED", "False")  # no usage reports from the test suite
pytest.importorskip("haystack", reason="the dev extra installs haystack-ai")

from haystack import Pipeline
from haystack.dataclasses import ByteStream, Document, SparseEmbedding
from haystack.document_stores.errors import DuplicateDocumentError
from haystack.document_stores.types import DuplicatePolicy
from haystack.errors import FilterError
from haystack.testing.document_store import (
    DeleteAllTest,
    DeleteByFilterTest,
    DocumentStoreBaseTests,
)

from vectorseam.client import VectorSeam
from vectorseam.config import Settings, StoreSettings
from vectorseam.integrations.haystack import (
    VectorSeamBM25Retriever,
    VectorSeamDocumentStore,
    VectorSeamEmbeddingRetriever,
    VectorSeamHybridRetriever,
    to_vectorseam_filter,
)


def facade(data_dir: Path, store: str = "memory", options: dict[str, Any] | None = None) -> VectorSeam:
    return VectorSeam(settings=Settings(data_dir=data_dir, store=StoreSettings(name=store, options=options or {})))


class MixinSuite(DocumentStoreBaseTests, DeleteAllTest, DeleteByFilterTest):
    """The mixins, with the overrides the module docstring lists."""

    @staticmethod
    def assert_documents_are_equal(received: list[Document], expected: list[Document]) -> None:
        """Sorted by id (no order is promised), embeddings equal at float32, all else exactly."""
        def key(doc: Document) -> str:
            return doc.id

        got, want = sorted(received, key=key), sorted(expected, key=key)
        assert [d.id for d in got] == [d.id for d in want]
        for g, w in zip(got, want, strict=True):
            if w.embedding is None:
                assert g.embedding is None
            else:
                assert g.embedding is not None
                assert np.array_equal(np.asarray(g.embedding, dtype=np.float32),
                                      np.asarray(w.embedding, dtype=np.float32))
            g_rest, w_rest = g.to_dict(flatten=False), w.to_dict(flatten=False)
            g_rest.pop("embedding")
            w_rest.pop("embedding")
            assert g_rest == w_rest

    def test_write_documents(self, document_store: VectorSeamDocumentStore) -> None:  # type: ignore[override]
        """The default policy (NONE) is FAIL, checked before anything is written."""
        doc = Document(content="test doc")
        assert document_store.write_documents([doc]) == 1
        with pytest.raises(DuplicateDocumentError):
            document_store.write_documents([Document(content="new"), doc])
        self.assert_documents_are_equal(document_store.filter_documents(), [doc])

    def _raises_for_none(self, document_store: VectorSeamDocumentStore, filterable_docs: list[Document],
                         op: str) -> None:
        document_store.write_documents(filterable_docs)
        with pytest.raises(FilterError, match="never None"):
            document_store.filter_documents(filters={"field": "meta.number", "operator": op, "value": None})

    def test_comparison_greater_than_with_none(self, document_store: Any, filterable_docs: Any) -> None:
        """Haystack expects no documents; vectorseam's ranges refuse None on purpose (module docstring)."""
        self._raises_for_none(document_store, filterable_docs, ">")

    def test_comparison_greater_than_equal_with_none(self, document_store: Any, filterable_docs: Any) -> None:
        """Haystack expects no documents; vectorseam's ranges refuse None on purpose (module docstring)."""
        self._raises_for_none(document_store, filterable_docs, ">=")

    def test_comparison_less_than_with_none(self, document_store: Any, filterable_docs: Any) -> None:
        """Haystack expects no documents; vectorseam's ranges refuse None on purpose (module docstring)."""
        self._raises_for_none(document_store, filterable_docs, "<")

    def test_comparison_less_than_equal_with_none(self, document_store: Any, filterable_docs: Any) -> None:
        """Haystack expects no documents; vectorseam's ranges refuse None on purpose (module docstring)."""
        self._raises_for_none(document_store, filterable_docs, "<=")


class TestMemoryDocumentStore(MixinSuite):
    @pytest.fixture
    def document_store(self, isolated_env: Path) -> Iterator[VectorSeamDocumentStore]:
        store = VectorSeamDocumentStore(facade(isolated_env / "data"), "hs", embedding_dim=768)
        yield store
        store.close()


class TestQdrantLocalDocumentStore(MixinSuite):
    @pytest.fixture
    def document_store(self, isolated_env: Path) -> Iterator[VectorSeamDocumentStore]:
        pytest.importorskip("vectorseam_qdrant", reason="the Qdrant adapter (adapters/qdrant) is not installed")
        store = VectorSeamDocumentStore(facade(isolated_env / "data", "qdrant", {"location": ":memory:"}), "hs",
                                        embedding_dim=768)
        yield store
        store.close()


@pytest.fixture(scope="module")
def pg_facade(pg_server: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[VectorSeam]:
    vs = facade(tmp_path_factory.mktemp("hspg"), "pgvector",
                {"dsn": pg_server.dsn(), "schema": f"hs_{uuid.uuid4().hex[:10]}"})
    yield vs
    vs.close()


class TestPgvectorDocumentStore(MixinSuite):
    @pytest.fixture
    def document_store(self, pg_facade: VectorSeam) -> Iterator[VectorSeamDocumentStore]:
        store = VectorSeamDocumentStore(pg_facade, f"hs{uuid.uuid4().hex[:12]}", embedding_dim=768)
        yield store
        store.delete_all_documents()


# -- beyond the mixins --------------------------------------------------------------------------------

@pytest.fixture()
def store(isolated_env: Path) -> Iterator[VectorSeamDocumentStore]:
    s = VectorSeamDocumentStore(facade(isolated_env / "data"), "docs", embedding_dim=3)
    yield s
    s.close()


DOCS = [
    Document(id="a", content="whole wheat pasta with basil", meta={"year": 2021, "kind": "review"},
             embedding=[1.0, 0.0, 0.0]),
    Document(id="b", content="order XK-2291 never arrived", meta={"year": 2023, "kind": "complaint"},
             embedding=[0.0, 1.0, 0.0]),
    Document(id="c", content="spicy beans in tomato sauce", meta={"year": 2024, "kind": "review"},
             embedding=[0.6, 0.8, 0.0]),
    Document(id="d", content="pasta with no vector yet", meta={"year": 2024, "kind": "review"}),
]


def test_documents_round_trip_whole(store: VectorSeamDocumentStore) -> None:
    doc = Document(id="x", content=None, blob=ByteStream(b"\x00\xffpdf", mime_type="application/pdf", meta={"p": 1}),
                   meta={"nested": {"a": [1, {"b": 2}]}, "when": "2024-05-01", "tags": ["x", "y"], "none": None},
                   embedding=[0.1, 0.2, 0.3], sparse_embedding=SparseEmbedding(indices=[3, 7], values=[0.5, 0.25]))
    store.write_documents([doc])
    [back] = store.filter_documents()
    assert back.content is None and back.blob == doc.blob and back.sparse_embedding == doc.sparse_embedding
    assert back.meta == doc.meta
    assert back.embedding == [float(np.float32(x)) for x in [0.1, 0.2, 0.3]]
    assert store.filter_documents({"field": "meta.when", "operator": ">=", "value": "2024-01-01"})[0].id == "x"
    with pytest.raises(ValueError, match="reserved"):
        store.write_documents([Document(content="y", meta={"_haystack": "mine"})])


def test_write_policies(store: VectorSeamDocumentStore) -> None:
    assert store.write_documents(DOCS[:2]) == 2
    assert store.write_documents(DOCS, policy=DuplicatePolicy.SKIP) == 2
    changed = Document(id="a", content="changed", embedding=[1.0, 0.0, 0.0])
    assert store.write_documents([changed], policy=DuplicatePolicy.OVERWRITE) == 1
    assert [d.content for d in store.filter_documents({"field": "meta.year", "operator": "<", "value": 2022})] == []
    assert {d.id: d.content for d in store.filter_documents()}["a"] == "changed"
    with pytest.raises(DuplicateDocumentError):
        store.write_documents([Document(content="new one"), DOCS[2]], policy=DuplicatePolicy.FAIL)
    assert store.count_documents() == 4  # the batch that failed wrote nothing


def test_first_write_without_embeddings_needs_a_dimension(isolated_env: Path) -> None:
    s = VectorSeamDocumentStore(facade(isolated_env / "data"), "nodim")
    with pytest.raises(ValueError, match="embedding_dim"):
        s.write_documents([Document(content="no vector")])
    s.write_documents([DOCS[0], DOCS[3]])  # the embedded document gives the dimension
    assert s.vectorseam.collection_info("nodim").metadata["embedder"] == "haystack:3"
    assert s.count_documents() == 2
    s.close()


def test_filters_translate_with_clear_errors() -> None:
    assert to_vectorseam_filter(None) is None and to_vectorseam_filter({}) is None
    with pytest.raises(FilterError, match="meta.<name>"):
        to_vectorseam_filter({"field": "content", "operator": "==", "value": "x"})
    with pytest.raises(FilterError, match="unknown comparison"):
        to_vectorseam_filter({"field": "meta.x", "operator": "~=", "value": "x"})
    with pytest.raises(FilterError, match="unknown logical"):
        to_vectorseam_filter({"operator": "XOR", "conditions": [{"field": "meta.x", "operator": "==", "value": 1}]})
    with pytest.raises(FilterError, match="date/time"):
        to_vectorseam_filter({"field": "meta.x", "operator": ">", "value": "yesterday"})


def test_embedding_retriever_ranks_skips_unembedded_and_applies_filter_policy(store: VectorSeamDocumentStore) -> None:
    store.write_documents(DOCS)
    retriever = VectorSeamEmbeddingRetriever(store, top_k=10)
    docs = retriever.run(query_embedding=[1.0, 0.1, 0.0])["documents"]
    assert [d.id for d in docs] == ["a", "c", "b"]  # "d" has no embedding
    assert docs[0].score is not None and docs[0].score > docs[1].score and docs[0].embedding is None
    assert retriever.run(query_embedding=[1.0, 0.1, 0.0], top_k=1, return_embedding=True)["documents"][0].embedding
    year = {"field": "meta.year", "operator": ">=", "value": 2023}
    assert [d.id for d in retriever.run(query_embedding=[1.0, 0.1, 0.0], filters=year)["documents"]] == ["c", "b"]
    merged = VectorSeamEmbeddingRetriever(store, filters={"field": "meta.kind", "operator": "==", "value": "review"},
                                          filter_policy="merge")
    assert [d.id for d in merged.run(query_embedding=[1.0, 0.1, 0.0], filters=year)["documents"]] == ["c"]


def test_hybrid_and_bm25_retrievers(store: VectorSeamDocumentStore) -> None:
    store.write_documents(DOCS)
    bm25 = VectorSeamBM25Retriever(store).run(query="pasta")["documents"]
    assert sorted(d.id for d in bm25) == ["a", "d"]  # BM25 sees documents without an embedding too
    hybrid = VectorSeamHybridRetriever(store, top_k=2)
    docs = hybrid.run(query="XK-2291", query_embedding=[0.0, 1.0, 0.0])["documents"]
    assert docs[0].id == "b"  # first in both rankings
    docs = hybrid.run(query="pasta", query_embedding=[0.0, 1.0, 0.0], top_k=3)["documents"]
    assert "d" not in {d.id for d in docs}  # hybrid fuses the dense ranking: embedded documents only
    assert docs[0].id == "a"  # last densely, first (alone) by BM25: 1/63 + 1/61 beats 1/61
    reviews = {"field": "meta.kind", "operator": "==", "value": "complaint"}
    assert [d.id for d in hybrid.run(query="pasta", query_embedding=[1.0, 0.0, 0.0], filters=reviews)["documents"]
            ] == ["b"]


def test_serialization_round_trips_without_secrets(isolated_env: Path) -> None:
    config = isolated_env / "vs.toml"
    config.write_text(f'data_dir = "{isolated_env / "cfgdata"}"\n[store]\nname = "memory"\n')
    s = VectorSeamDocumentStore(config_file=config, collection="ser", embedding_dim=3)
    s.write_documents(DOCS[:2])
    retriever = VectorSeamEmbeddingRetriever(s, top_k=1, filters={"field": "meta.year", "operator": ">", "value": 2000})
    pipeline = Pipeline()
    pipeline.add_component("retriever", retriever)
    # Haystack loads classes only from trusted modules: the user names this one.
    loaded = Pipeline.loads(pipeline.dumps(), allowed_modules=["vectorseam.integrations.haystack"])
    out = loaded.run({"retriever": {"query_embedding": [0.0, 1.0, 0.0]}})
    assert [d.id for d in out["retriever"]["documents"]] == ["b"]
    again = VectorSeamDocumentStore.from_dict(s.to_dict())
    assert again.count_documents() == 2 and again.collection == "ser"
    for cls in (VectorSeamHybridRetriever, VectorSeamBM25Retriever):
        restored = cls.from_dict(cls(s, top_k=4).to_dict())
        assert restored.top_k == 4 and restored.document_store.collection == "ser"

    plain = VectorSeamDocumentStore(facade(isolated_env / "data"), "x")
    assert VectorSeamDocumentStore.from_dict(plain.to_dict()).vectorseam.settings.data_dir == isolated_env / "data"
    secret = VectorSeam(settings=Settings(data_dir=isolated_env / "d2",
                                          store=StoreSettings(name="qdrant", options={"url": "http://u:p@h:6333"})))
    with pytest.raises(Exception, match="secrets"):
        VectorSeamDocumentStore(secret, "x").to_dict()
    for closable in (s, again, plain):
        closable.close()
