"""The framework integrations once more, over :mod:`vectorseam.remote` against a live ``vectorseam serve``.

The LangChain, LlamaIndex and Haystack stores take a :class:`~vectorseam.remote.RemoteVectorSeam` in place
of a local :class:`~vectorseam.client.VectorSeam` (both are :class:`vectorseam.api.VectorSeamAPI`). This
module runs the frameworks' own standard suites (langchain-tests' vector store and retriever suites,
Haystack's ``DocumentStoreBaseTests`` mixins) and this project's tests of each integration against one
real server process (tests/serve_process.py: its own data directory, the embedded store, loopback), by
collecting the same test functions with fixtures that build the stores over the remote client.

Left out, with the reason: the tests that build a local facade themselves (configuration files,
serialization, pipelines over a local model): they test the local side, which the other modules cover.
A Haystack component over a remote client is not serializable (a pipeline file names a local vectorseam
by its settings or config file); that is checked here instead.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("langchain_tests", reason="the dev extra installs langchain-core and langchain-tests")
pytest.importorskip("llama_index.core", reason="the dev extra installs llama-index-core")
pytest.importorskip("haystack", reason="the dev extra installs haystack-ai")

from langchain_core.embeddings import DeterministicFakeEmbedding
from langchain_tests.integration_tests import VectorStoreIntegrationTests

from tests import test_integration_haystack as hs_tests
from tests import test_integration_langchain as lc_tests
from tests import test_integration_llamaindex as li_tests
from tests.serve_process import ServeProcess, clean_env
from vectorseam.api import VectorSeamAPI
from vectorseam.errors import CollectionNotFoundError, EmbedderMismatchError, ValidationError
from vectorseam.integrations.haystack import VectorSeamDocumentStore
from vectorseam.integrations.langchain import VectorSeamVectorStore as LangChainStore
from vectorseam.integrations.llamaindex import VectorSeamVectorStore as LlamaIndexStore
from vectorseam.remote import RemoteVectorSeam


@pytest.fixture(scope="module")
def remote_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("remote-serve")
    server = ServeProcess.start(clean_env(root / "data", VECTORSEAM_SERVICE__MAX_BATCH="10000"), root / "serve.log")
    try:
        server.wait_ready(time.monotonic() + 180)
        yield server.url
    finally:
        server.stop()


def remote(url: str) -> VectorSeamAPI:
    return RemoteVectorSeam(url)


def unique(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:10]}"


# -- LangChain ------------------------------------------------------------------------------------------

class TestRemoteLangChainStandardSuite(VectorStoreIntegrationTests):
    """langchain-tests' VectorStoreIntegrationTests, unmodified, over the remote client."""

    @pytest.fixture()
    def vectorstore(self, remote_url: str) -> Iterator[LangChainStore]:
        store = LangChainStore(remote(remote_url), unique("lc"), self.get_embeddings())
        yield store
        store.delete()  # no ids and no filter: the collection goes
        store.close()


@pytest.fixture(scope="module")
def fake_store(remote_url: str) -> Iterator[LangChainStore]:
    store = LangChainStore(remote(remote_url), unique("lcretriever"), DeterministicFakeEmbedding(size=6))
    store.add_texts(lc_tests.TEXTS)
    yield store
    store.delete()
    store.close()


class TestRemoteHybridRetrieverStandardSuite(lc_tests.TestHybridRetrieverStandardSuite):
    """langchain-tests' RetrieversIntegrationTests on the hybrid retriever, over the remote client."""


@pytest.fixture()
def fake(remote_url: str) -> Iterator[LangChainStore]:
    store = LangChainStore(remote(remote_url), unique("lcfake"), DeterministicFakeEmbedding(size=6))
    yield store
    store.delete()
    store.close()


test_portable_filters_select_the_same_records_as_vectorseam = lc_tests.test_portable_filters_select_the_same_records_as_vectorseam
test_scores_by_text_and_by_vector_agree = lc_tests.test_scores_by_text_and_by_vector_agree
test_mmr_skips_a_duplicate_that_plain_search_returns = lc_tests.test_mmr_skips_a_duplicate_that_plain_search_returns
test_delete_by_filter_and_everything = lc_tests.test_delete_by_filter_and_everything
test_nested_metadata_is_refused_with_the_field_named = lc_tests.test_nested_metadata_is_refused_with_the_field_named


def test_langchain_default_embedder_is_the_servers(remote_url: str) -> None:
    """Without an ``embedding`` the server's model embeds (through POST /v1/embeddings and the service's
    own text search), and the collection is recorded as that model's."""
    vs = RemoteVectorSeam(remote_url)
    store = LangChainStore(vs, unique("lcdefault"))
    try:
        store.add_texts(["whole wheat pasta", "the parcel arrived late"], ids=["p", "d"])
        assert vs.describe(store.collection).fingerprint == vs.embedder.fingerprint
        assert store.similarity_search("pasta", k=1)[0].id == "p"
        assert store.as_hybrid_retriever(k=1).invoke("late delivery")[0].id == "d"
        assert [h.id for h in vs.search("late parcel", k=1, collection=store.collection)] == ["d"]
    finally:
        store.delete()
        store.close()


# -- LlamaIndex -----------------------------------------------------------------------------------------

@pytest.fixture()
def store(request: pytest.FixtureRequest, remote_url: str) -> Iterator[Any]:
    """The LlamaIndex store of tests/test_integration_llamaindex.py, or the Haystack one of
    tests/test_integration_haystack.py (by the module a test comes from), over the remote client."""
    if request.function.__module__ == hs_tests.__name__:  # the tests name the collection "docs"
        hs = VectorSeamDocumentStore(remote(remote_url), "docs", embedding_dim=3)
        yield hs
        with contextlib.suppress(CollectionNotFoundError):
            hs.vectorseam.drop_collection("docs")
        hs.close()
        return
    li = LlamaIndexStore(remote(remote_url), unique("li"))
    li.add(li_tests.nodes())
    yield li
    li.clear()
    li.client.close()


LLAMAINDEX_TESTS = [
    "test_query_without_filters_returns_all_rows_sorted_by_similarity", "test_query_with_filters_returns_multiple_matches",
    "test_query_with_filter_applies_top_k", "test_query_with_filter_applies_node_id_filter",
    "test_query_with_exact_filters_returns_single_match", "test_query_with_contradictive_filter_returns_no_matches",
    "test_query_with_filter_on_unknown_field_returns_no_matches", "test_delete_removes_document_from_query_results",
    "test_query_with_filters_with_filter_condition", "test_query_with_not_filter_returns_matches",
    "test_query_with_operator_returns_matches", "test_textmatch_has_no_exact_equivalent_and_raises", "test_clear",
    "test_delete_nodes", "test_nested_condition_groups", "test_nodes_round_trip_with_relationships_and_metadata",
    "test_mmr_mode_prefers_a_diverse_second_node", "test_query_needs_what_its_mode_uses",
]
for _name in LLAMAINDEX_TESTS:
    globals()[f"{_name}_llamaindex"] = getattr(li_tests, _name)


# -- Haystack -------------------------------------------------------------------------------------------

class TestRemoteDocumentStore(hs_tests.MixinSuite):
    """Haystack's DocumentStoreBaseTests mixins (with the overrides tests/test_integration_haystack.py
    explains) over the remote client."""

    @pytest.fixture
    def document_store(self, remote_url: str) -> Iterator[VectorSeamDocumentStore]:
        store = VectorSeamDocumentStore(remote(remote_url), unique("hs"), embedding_dim=768)
        yield store
        store.delete_all_documents()
        store.close()


HAYSTACK_TESTS = [
    "test_documents_round_trip_whole", "test_write_policies",
    "test_embedding_retriever_ranks_skips_unembedded_and_applies_filter_policy", "test_hybrid_and_bm25_retrievers",
]  # test_store_with_a_fingerprint_refuses_a_collection_of_another_space ends by serializing the store: see below


def test_a_fingerprint_refuses_a_collection_of_another_space_and_a_remote_store_is_not_serialized(
        remote_url: str) -> None:
    """tests/test_integration_haystack.py's fingerprint test, but for its last step: a pipeline file names a
    local vectorseam (settings or a config file), so a store over a remote client refuses ``to_dict``."""
    name = unique("hsfp")
    store = VectorSeamDocumentStore(remote(remote_url), name, embedding_dim=3)
    try:
        store.write_documents(hs_tests.DOCS[:1])
        other = VectorSeamDocumentStore(store.vectorseam, name, fingerprint="local:some-model:3:normalized")
        with pytest.raises(EmbedderMismatchError, match="'haystack:3'"):
            other.write_documents([hs_tests.DOCS[1]])
        assert store.count_documents() == 1
        with pytest.raises(ValidationError, match="cannot be serialized"):
            other.to_dict()
    finally:
        store.vectorseam.drop_collection(name)
        store.close()
for _name in HAYSTACK_TESTS:
    globals()[f"{_name}_haystack"] = getattr(hs_tests, _name)


def test_the_remote_collections_live_on_the_server(remote_url: str, tmp_path: Path) -> None:
    """What the integrations wrote is on the server, readable by any client (and dropped when asked)."""
    vs = RemoteVectorSeam(remote_url)
    store = LangChainStore(vs, unique("lcseen"), DeterministicFakeEmbedding(size=6))
    try:
        store.add_texts(["a", "b", "c"], ids=["1", "2", "3"])
        other = RemoteVectorSeam(remote_url)
        assert other.count(collection=store.collection) == 3
        assert sorted(r.id for r in other.scroll(store.collection).records) == ["1", "2", "3"]
        other.close()
    finally:
        store.delete()
        store.close()
    with pytest.raises(Exception, match="does not exist"):
        RemoteVectorSeam(remote_url).collection_info(store.collection)
