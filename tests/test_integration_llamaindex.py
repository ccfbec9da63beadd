"""LlamaIndex: ``VectorSeamVectorStore`` through llama-index-core's own patterns.

The query and filter cases are those of llama-index-core's SimpleVectorStore tests
(llama-index-core/tests/vector_stores/test_simple.py: the same three nodes, queries and expected ids),
run on the memory store, PostgreSQL + pgvector and Qdrant local mode; one of them differs on purpose
(``text_match``, see its test). Then ``VectorStoreIndex`` over the store, with LlamaIndex's
``MockEmbedding`` and with vectorseam's own model (dense, hybrid and text-search retrieval).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("llama_index.core", reason="the dev extra installs llama-index-core")

from llama_index.core import Document, MockEmbedding, StorageContext, VectorStoreIndex
from llama_index.core.schema import NodeRelationship, RelatedNodeInfo, TextNode
from llama_index.core.vector_stores.types import (
    ExactMatchFilter,
    FilterCondition,
    FilterOperator,
    MetadataFilter,
    MetadataFilters,
    VectorStoreQuery,
    VectorStoreQueryMode,
)

from vectorseam.client import VectorSeam
from vectorseam.config import Settings, StoreSettings
from vectorseam.errors import FilterError, ValidationError
from vectorseam.integrations.llamaindex import (
    VectorSeamEmbedding,
    VectorSeamVectorStore,
    to_vectorseam_filter,
)

W1_A = "AF3BE6C4-5F43-4D74-B075-6B0E07900DE8"
W2_C = "7D9CD555-846C-445C-A9DD-F8924A01411D"
W3_C = "452D24AB-F185-414C-A352-590B4B9EE51B"


def nodes() -> list[TextNode]:
    """llama-index-core's ``_node_embeddings_for_test``."""
    return [
        TextNode(text="lorem ipsum", id_=W1_A, embedding=[1.0, 0.0],
                 relationships={NodeRelationship.SOURCE: RelatedNodeInfo(node_id="test-0")},
                 metadata={"weight": 1.0, "rank": "a", "quality": ["medium", "high"], "identifier": "6FTR78Yun"}),
        TextNode(text="lorem ipsum", id_=W2_C, embedding=[0.0, 1.0],
                 relationships={NodeRelationship.SOURCE: RelatedNodeInfo(node_id="test-1")},
                 metadata={"weight": 2.0, "rank": "c", "quality": ["medium"], "identifier": "6FTR78Ygl"}),
        TextNode(text="lorem ipsum", id_=W3_C, embedding=[1.0, 1.0],
                 relationships={NodeRelationship.SOURCE: RelatedNodeInfo(node_id="test-2")},
                 metadata={"weight": 3.0, "rank": "c", "quality": ["low", "medium", "high"],
                           "identifier": "6FTR78Ztl"}),
    ]


def facade(data_dir: Path, store: str = "memory", options: dict[str, Any] | None = None) -> VectorSeam:
    return VectorSeam(settings=Settings(data_dir=data_dir, store=StoreSettings(name=store, options=options or {})))


@pytest.fixture(params=["memory", "pgvector", "qdrant"])
def store(request: pytest.FixtureRequest, isolated_env: Path) -> Iterator[VectorSeamVectorStore]:
    data = isolated_env / "data"
    if request.param == "memory":
        vs = facade(data)
    elif request.param == "qdrant":
        pytest.importorskip("vectorseam_qdrant", reason="the Qdrant adapter (adapters/qdrant) is not installed")
        vs = facade(data, "qdrant", {"location": ":memory:"})
    else:
        pg = request.getfixturevalue("pg_server")
        vs = facade(data, "pgvector", {"dsn": pg.dsn(), "schema": f"li_{uuid.uuid4().hex[:10]}"})
    s = VectorSeamVectorStore(vs, "li")
    s.add(nodes())
    yield s
    s.clear()
    vs.close()


def ids(s: VectorSeamVectorStore, filters: MetadataFilters | None = None, k: int = 3, **kw: Any) -> list[str]:
    result = s.query(VectorStoreQuery(query_embedding=[1.0, 1.0], similarity_top_k=k, filters=filters, **kw))
    assert result.ids is not None and result.nodes is not None and result.similarities is not None
    assert [n.node_id for n in result.nodes] == result.ids
    return result.ids


def one(key: str, op: FilterOperator, value: Any) -> MetadataFilters:
    return MetadataFilters(filters=[MetadataFilter(key=key, operator=op, value=value)])


# -- llama-index-core's SimpleVectorStore cases ----------------------------------------------------------

def test_query_without_filters_returns_all_rows_sorted_by_similarity(store: VectorSeamVectorStore) -> None:
    result = ids(store)
    assert sorted(result) == sorted([W1_A, W2_C, W3_C]) and result[0] == W3_C


def test_query_with_filters_returns_multiple_matches(store: VectorSeamVectorStore) -> None:
    assert ids(store, MetadataFilters(filters=[ExactMatchFilter(key="rank", value="c")])) == [W3_C, W2_C]


def test_query_with_filter_applies_top_k(store: VectorSeamVectorStore) -> None:
    assert ids(store, MetadataFilters(filters=[ExactMatchFilter(key="rank", value="c")]), k=1) == [W3_C]


def test_query_with_filter_applies_node_id_filter(store: VectorSeamVectorStore) -> None:
    filters = MetadataFilters(filters=[ExactMatchFilter(key="rank", value="c")])
    assert ids(store, filters, node_ids=[W3_C]) == [W3_C]
    assert ids(store, None, node_ids=[W1_A, W2_C]) == sorted([W1_A, W2_C])  # a tie: ordered by id


def test_query_with_exact_filters_returns_single_match(store: VectorSeamVectorStore) -> None:
    filters = MetadataFilters(filters=[ExactMatchFilter(key="rank", value="c"), ExactMatchFilter(key="weight", value=2.0)])
    assert ids(store, filters, k=1) == [W2_C]


def test_query_with_contradictive_filter_returns_no_matches(store: VectorSeamVectorStore) -> None:
    filters = MetadataFilters(filters=[ExactMatchFilter(key="weight", value=2), ExactMatchFilter(key="weight", value=3)])
    assert ids(store, filters, k=1) == []


def test_query_with_filter_on_unknown_field_returns_no_matches(store: VectorSeamVectorStore) -> None:
    assert ids(store, MetadataFilters(filters=[ExactMatchFilter(key="unknown_field", value="c")]), k=1) == []


def test_delete_removes_document_from_query_results(store: VectorSeamVectorStore) -> None:
    store.delete("test-1")
    assert ids(store, k=2) == [W3_C, W1_A]


def test_query_with_filters_with_filter_condition(store: VectorSeamVectorStore) -> None:
    pair = [ExactMatchFilter(key="rank", value="c"), ExactMatchFilter(key="weight", value=1.0)]
    assert len(ids(store, MetadataFilters(filters=pair, condition=FilterCondition.OR))) == 3
    assert ids(store, MetadataFilters(filters=pair, condition=FilterCondition.AND)) == []


def test_query_with_not_filter_returns_matches(store: VectorSeamVectorStore) -> None:
    filters = MetadataFilters(filters=[MetadataFilter(key="rank", operator=FilterOperator.EQ, value="a")],
                              condition=FilterCondition.NOT)
    assert sorted(ids(store, filters)) == sorted([W2_C, W3_C])


@pytest.mark.parametrize(("key", "op", "value", "expected"), [
    ("weight", FilterOperator.EQ, 1.0, [W1_A]),
    ("weight", FilterOperator.NE, 1.0, [W3_C, W2_C]),
    ("weight", FilterOperator.GT, 1.5, [W3_C, W2_C]),
    ("weight", FilterOperator.GTE, 1.0, [W3_C, W2_C, W1_A]),
    ("weight", FilterOperator.LT, 1.1, [W1_A]),
    ("weight", FilterOperator.LTE, 1.0, [W1_A]),
    ("rank", FilterOperator.IN, ["a", "c"], [W3_C, W2_C, W1_A]),
    ("rank", FilterOperator.NIN, ["c"], [W1_A]),
    ("quality", FilterOperator.CONTAINS, "high", [W3_C, W1_A]),
    ("quality", FilterOperator.ANY, ["high", "low"], [W3_C, W1_A]),
    ("quality", FilterOperator.ALL, ["medium", "high"], [W3_C, W1_A]),
    ("not_existed_key", FilterOperator.IS_EMPTY, None, [W3_C, W2_C, W1_A]),
])
def test_query_with_operator_returns_matches(store: VectorSeamVectorStore, key: str, op: FilterOperator,
                                             value: Any, expected: list[str]) -> None:
    """The operator cases of test_simple.py; besides the counts they assert, the ids in score order."""
    assert ids(store, one(key, op, value)) == expected


def test_textmatch_has_no_exact_equivalent_and_raises(store: VectorSeamVectorStore) -> None:
    """Differs from test_simple.py on purpose: SimpleVectorStore matches TEXT_MATCH as a Python substring
    test, which vectorseam's portable filters cannot express identically on every backend, so the
    translation refuses it instead of approximating."""
    with pytest.raises(FilterError, match="no exact equivalent"):
        ids(store, one("identifier", FilterOperator.TEXT_MATCH, "6FTR78Y"))


def test_clear(store: VectorSeamVectorStore) -> None:
    store.clear()
    assert ids(store) == []


def test_delete_nodes(store: VectorSeamVectorStore) -> None:
    store.delete_nodes([W1_A, W2_C])
    assert ids(store) == [W3_C]


# -- beyond test_simple.py: nested groups, node round trips, modes --------------------------------------

def test_nested_condition_groups(store: VectorSeamVectorStore) -> None:
    inner = MetadataFilters(filters=[MetadataFilter(key="rank", operator=FilterOperator.EQ, value="c"),
                                     MetadataFilter(key="weight", operator=FilterOperator.GT, value=2.5)])
    either = MetadataFilters(filters=[inner, MetadataFilter(key="weight", operator=FilterOperator.EQ, value=1.0)],
                             condition=FilterCondition.OR)
    assert ids(store, either) == [W3_C, W1_A]
    neither = MetadataFilters(filters=[either], condition=FilterCondition.NOT)
    assert ids(store, neither) == [W2_C]
    assert to_vectorseam_filter(neither) is not None


def test_filters_that_cannot_be_exact_are_refused_clearly() -> None:
    with pytest.raises(FilterError, match="IS_EMPTY"):
        to_vectorseam_filter(one("rank", FilterOperator.EQ, None))
    with pytest.raises(FilterError, match="non-empty list"):
        to_vectorseam_filter(one("rank", FilterOperator.IN, "a"))
    with pytest.raises(FilterError, match="takes a number"):
        to_vectorseam_filter(one("rank", FilterOperator.GT, "a"))
    with pytest.raises(FilterError, match="no exact equivalent"):
        to_vectorseam_filter(one("rank", FilterOperator.TEXT_MATCH_INSENSITIVE, "A"))


def test_nodes_round_trip_with_relationships_and_metadata(store: VectorSeamVectorStore) -> None:
    originals = {n.node_id: n for n in nodes()}
    got = store.get_nodes([W2_C, "missing", W1_A])
    assert [n.node_id for n in got] == [W2_C, W1_A]
    for node in got:
        original = originals[node.node_id]
        assert isinstance(node, TextNode) and node.text == original.text
        assert node.metadata == original.metadata
        assert node.ref_doc_id == original.ref_doc_id
        assert node.relationships == original.relationships
    by_filter = store.get_nodes(filters=one("rank", FilterOperator.EQ, "c"))
    assert sorted(n.node_id for n in by_filter) == sorted([W2_C, W3_C])
    assert len(store.get_nodes()) == 3
    store.delete_nodes(filters=one("weight", FilterOperator.GTE, 2.0))
    assert [n.node_id for n in store.get_nodes()] == [W1_A]


def test_mmr_mode_prefers_a_diverse_second_node(store: VectorSeamVectorStore) -> None:
    store.add([TextNode(text="copy", id_="copy", embedding=[1.0, 1.0])])  # W3's twin
    assert ids(store, k=2) == [W3_C, "copy"] or ids(store, k=2) == ["copy", W3_C]
    mmr = ids(store, k=2, mode=VectorStoreQueryMode.MMR, mmr_threshold=0.3)
    assert mmr[1] in (W1_A, W2_C)


def test_query_needs_what_its_mode_uses(store: VectorSeamVectorStore) -> None:
    with pytest.raises(ValidationError, match="query_str"):
        store.query(VectorStoreQuery(query_embedding=[1.0, 1.0], mode=VectorStoreQueryMode.HYBRID))
    with pytest.raises(ValidationError, match="not supported"):
        store.query(VectorStoreQuery(query_embedding=[1.0, 1.0], mode=VectorStoreQueryMode.SVM))
    with pytest.raises(ValidationError, match="no embedding"):
        store.add([TextNode(text="x", id_="x")])


# -- VectorStoreIndex over the store ---------------------------------------------------------------------

def test_vector_store_index_with_mock_embedding(isolated_env: Path) -> None:
    vs = facade(isolated_env / "data")
    store = VectorSeamVectorStore(vs, "mock")
    docs = [Document(text="the first document", id_="d1", metadata={"n": 1}),
            Document(text="the second document", id_="d2", metadata={"n": 2})]
    index = VectorStoreIndex.from_documents(docs, storage_context=StorageContext.from_defaults(vector_store=store),
                                            embed_model=MockEmbedding(embed_dim=8))
    assert vs.collection_info("mock").dimension == 8
    assert vs.collection_info("mock").metadata["embedder"] == "llamaindex:8"
    got = index.as_retriever(similarity_top_k=5).retrieve("anything")
    assert sorted(n.node.get_content() for n in got) == ["the first document", "the second document"]
    assert {n.node.ref_doc_id for n in got} == {"d1", "d2"}
    filtered = index.as_retriever(filters=one("n", FilterOperator.GT, 1)).retrieve("anything")
    assert [n.node.ref_doc_id for n in filtered] == ["d2"]
    index.delete_ref_doc("d1")
    assert [n.node.ref_doc_id for n in index.as_retriever(similarity_top_k=5).retrieve("x")] == ["d2"]
    vs.close()

    reopened = VectorSeamVectorStore(facade(isolated_env / "data"), "mock")  # the memory store persisted it
    assert [n.ref_doc_id for n in reopened.get_nodes()] == ["d2"]
    reopened.client.close()


def test_vector_store_index_with_vectorseams_model_dense_hybrid_and_text(isolated_env: Path,
                                                                         local_embedder: Any) -> None:
    vs = facade(isolated_env / "data")
    vs.embedder = local_embedder
    store = VectorSeamVectorStore(vs, "reviews")
    texts = ["whole wheat pasta with basil", "bad delivery, box arrived crushed", "spicy beans in tomato sauce",
             "order XK-2291 never arrived", "dog food my pets love"]
    index = VectorStoreIndex.from_documents([Document(text=t, id_=f"r{i}") for i, t in enumerate(texts)],
                                            storage_context=StorageContext.from_defaults(vector_store=store),
                                            embed_model=VectorSeamEmbedding(vs))
    dense = index.as_retriever(similarity_top_k=1).retrieve("noodles made from wheat")
    assert dense[0].node.ref_doc_id == "r0"
    hybrid = index.as_retriever(vector_store_query_mode="hybrid", similarity_top_k=2).retrieve("XK-2291")
    assert hybrid[0].node.ref_doc_id == "r3"
    text = index.as_retriever(vector_store_query_mode="text_search", similarity_top_k=3).retrieve("arrived")
    assert sorted(n.node.ref_doc_id for n in text) == ["r1", "r3"]  # only those two contain the word
    vs.close()
