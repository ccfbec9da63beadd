"""LangChain: a ``VectorStore`` and a hybrid-search retriever over vectorseam (``pip install 'vectorseam[langchain]'``).

    from vectorseam.integrations.langchain import VectorSeamVectorStore
    store = VectorSeamVectorStore(collection="notes")            # the configured store and embedder
    store.add_texts(["whole wheat pasta", "bad delivery"], metadatas=[{"stars": 5}, {"stars": 1}])
    store.similarity_search("pasta", k=1, filter={"stars": {"$gte": 4}})
    store.as_hybrid_retriever(k=5).invoke("pasta")                # dense + BM25, fused by RRF

The store runs over the :class:`~vectorseam.client.VectorSeam` facade, so the backend is whichever the
vectorseam configuration selects. Without an ``embedding`` the facade's embedder embeds texts and the
collection is the one ``vectorseam ingest`` fills; with a LangChain ``Embeddings`` object that model
embeds, and the collection records its fingerprint (``langchain:<class>[:<model>]:<dimension>``) so it
is never searched with another. Filters use vectorseam's portable syntax (``{"stars": {"$gte": 4}}``),
which every backend evaluates identically. Metadata must be flat (str, int, float, bool, null or lists of
those), as everywhere in vectorseam; anything else is refused with the field named.

Relevance scores (``similarity_search_with_relevance_scores``, ``score_threshold``) are ``(1 + cosine) / 2``,
in [0, 1] as LangChain expects: a threshold of 0.6 means cosine 0.2 (see :class:`VectorSeamVectorStore`).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from vectorseam.extras import require

require("langchain")  # one line naming the pip install, not a ModuleNotFoundError from deep inside

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from langchain_core.retrievers import BaseRetriever
from langchain_core.vectorstores import VectorStore
from pydantic import ConfigDict

from vectorseam.api import VectorSeamAPI
from vectorseam.config import Settings
from vectorseam.errors import ValidationError
from vectorseam.filters import FilterLike
from vectorseam.integrations._common import BoundCollection, FunctionEmbedder, describe_embeddings, open_vectorseam
from vectorseam.types import Hit, Metric, Record, validate_metadata

__all__ = ["VectorSeamEmbeddings", "VectorSeamHybridRetriever", "VectorSeamVectorStore"]


class VectorSeamEmbeddings(Embeddings):
    """vectorseam's configured embedder as LangChain ``Embeddings`` (for chains that embed themselves)."""

    def __init__(self, vectorseam: VectorSeamAPI) -> None:
        self.vectorseam = vectorseam

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [[float(x) for x in row] for row in self.vectorseam.embedder.embed_documents(texts)]

    def embed_query(self, text: str) -> list[float]:
        return [float(x) for x in self.vectorseam.embedder.embed_query(text)]


def _document(hit: Hit | Record) -> Document:
    return Document(page_content=hit.text, metadata=dict(hit.metadata), id=hit.id)


class VectorSeamVectorStore(VectorStore):
    """A LangChain vector store over one collection of vectorseam's configured store.

    Construct it with a :class:`~vectorseam.client.VectorSeam` (or ``settings`` / ``config_file`` to
    build one; neither means ``vectorseam.toml`` and ``VECTORSEAM_*``) and a collection name, which may
    be an alias. ``metric`` applies when the collection is created by the first write.

    **Relevance scores are not cosine similarities.** ``similarity_search_with_relevance_scores`` and the
    ``similarity_score_threshold`` retriever map scores to [0, 1] as LangChain expects: a cosine similarity
    (or an inner product of unit vectors) ``s`` becomes ``(1 + s) / 2``, so a ``score_threshold`` of 0.6
    keeps hits with cosine >= 0.2, and a cosine of 0.5 is a relevance of 0.75; for a threshold on cosine
    ``c`` pass ``(1 + c) / 2``. A negated Euclidean distance ``-d`` becomes LangChain's ``1 - d / sqrt(2)``.
    ``similarity_search_with_score`` returns the raw score (cosine for a cosine collection).
    """

    def __init__(
        self,
        vectorseam: VectorSeamAPI | None = None,
        collection: str = "langchain",
        embedding: Embeddings | None = None,
        *,
        settings: Settings | None = None,
        config_file: str | os.PathLike[str] | None = None,
        metric: Metric = "cosine",
    ) -> None:
        self.vectorseam = open_vectorseam(vectorseam, config_file, settings)
        self._embedding = embedding
        embedder = None
        if embedding is not None:
            embedder = FunctionEmbedder(describe_embeddings(embedding, "langchain"), embedding.embed_documents,
                                        embedding.embed_query)
        self.bound = BoundCollection(self.vectorseam, collection, embedder, metric=metric)

    @property
    def collection(self) -> str:
        return self.bound.collection

    @property
    def embeddings(self) -> Embeddings:
        return self._embedding if self._embedding is not None else VectorSeamEmbeddings(self.vectorseam)

    # -- writing --------------------------------------------------------------------------------------
    def add_texts(
        self,
        texts: Iterable[str],
        metadatas: list[dict[str, Any]] | None = None,
        *,
        ids: list[str] | None = None,
        **kwargs: Any,
    ) -> list[str]:
        """Embed and upsert texts; ids default to fresh UUIDs (a ``None`` among ``ids`` gets one too)."""
        batch = list(texts)
        if metadatas is not None and len(metadatas) != len(batch):
            raise ValueError(f"{len(metadatas)} metadatas for {len(batch)} texts")
        if ids is not None and len(ids) != len(batch):
            raise ValueError(f"{len(ids)} ids for {len(batch)} texts")
        if not batch:
            return []
        given = ids if ids is not None else [None] * len(batch)
        keys = [str(i) if i is not None else str(uuid.uuid4()) for i in given]
        metas = [validate_metadata(m, f"text {n} (id {keys[n]!r})")
                 for n, m in enumerate(metadatas if metadatas is not None else [{}] * len(batch))]
        vectors = self.bound.embed(batch)
        self.bound.ensure()
        self.bound.upsert([Record(key, vec, text, meta)
                           for key, vec, text, meta in zip(keys, vectors, batch, metas, strict=True)])
        return keys

    def delete(self, ids: list[str] | None = None, **kwargs: Any) -> bool | None:
        """Delete by ids, or by ``filter=`` (portable syntax); neither deletes the whole collection."""
        filter_: FilterLike = kwargs.pop("filter", None)
        if kwargs:
            raise TypeError(f"unexpected arguments: {', '.join(kwargs)}")
        if ids is not None and filter_ is not None:
            raise ValueError("delete by ids or by filter, not both")
        if ids is None and filter_ is None:
            self.bound.drop()
        elif ids is not None:
            self.bound.delete(ids=[str(i) for i in ids])
        else:
            self.bound.delete(filter=filter_)
        return True

    def get_by_ids(self, ids: Sequence[str], /) -> list[Document]:
        """Documents with these ids, in the order asked; missing ids are left out."""
        return [_document(r) for r in self.bound.fetch(list(ids))]

    # -- similarity search ----------------------------------------------------------------------------
    def similarity_search(self, query: str, k: int = 4, filter: FilterLike = None,
                          **kwargs: Any) -> list[Document]:
        return [doc for doc, _ in self.similarity_search_with_score(query, k, filter, **kwargs)]

    def similarity_search_with_score(self, query: str, k: int = 4, filter: FilterLike = None,
                                     **kwargs: Any) -> list[tuple[Document, float]]:
        """Documents with vectorseam's score: higher is more similar for every metric (cosine similarity,
        inner product, or negated Euclidean distance)."""
        _no_extra(kwargs)
        if self.bound.info() is None:
            return []  # nothing written yet: no need to embed the query (or load a model)
        return [(_document(h), h.score) for h in self.bound.search_text(query, k, filter)]

    def similarity_search_by_vector(self, embedding: list[float], k: int = 4, filter: FilterLike = None,
                                    **kwargs: Any) -> list[Document]:
        return [doc for doc, _ in self.similarity_search_with_score_by_vector(embedding, k, filter, **kwargs)]

    def similarity_search_with_score_by_vector(self, embedding: list[float], k: int = 4,
                                               filter: FilterLike = None,
                                               **kwargs: Any) -> list[tuple[Document, float]]:
        _no_extra(kwargs)
        return [(_document(h), h.score) for h in self.bound.search_vector(embedding, k, filter)]

    def max_marginal_relevance_search(self, query: str, k: int = 4, fetch_k: int = 20, lambda_mult: float = 0.5,
                                      filter: FilterLike = None, **kwargs: Any) -> list[Document]:
        _no_extra(kwargs)
        if self.bound.info() is None:
            return []
        vector = self.bound.embedder.embed_query(query)
        return [_document(h) for h in self.bound.mmr_vector(vector, k, fetch_k, lambda_mult, filter)]

    def max_marginal_relevance_search_by_vector(self, embedding: list[float], k: int = 4, fetch_k: int = 20,
                                                lambda_mult: float = 0.5, filter: FilterLike = None,
                                                **kwargs: Any) -> list[Document]:
        _no_extra(kwargs)
        return [_document(h) for h in self.bound.mmr_vector(embedding, k, fetch_k, lambda_mult, filter)]

    def _select_relevance_score_fn(self) -> Callable[[float], float]:
        """Scores to [0, 1]: cosine similarity s as (1 + s) / 2; a negated Euclidean distance -d as
        LangChain's 1 - d / sqrt(2) (meant for unit vectors); an inner product as cosine (unit vectors)."""
        info = self.bound.info()
        metric = info.metric if info is not None else self.bound.metric
        if metric == "euclidean":
            return lambda score: self._euclidean_relevance_score_fn(-score)
        return lambda score: (1.0 + score) / 2.0

    # -- construction and retrievers ------------------------------------------------------------------
    @classmethod
    def from_texts(
        cls,
        texts: list[str],
        embedding: Embeddings,
        metadatas: list[dict[str, Any]] | None = None,
        *,
        ids: list[str] | None = None,
        **kwargs: Any,
    ) -> VectorSeamVectorStore:
        """A store over ``collection=`` (default "langchain") filled with ``texts``; the other keyword
        arguments are the constructor's (``vectorseam``, ``settings``, ``config_file``, ``metric``)."""
        store = cls(embedding=embedding, **kwargs)
        store.add_texts(texts, metadatas, ids=ids)
        return store

    def as_hybrid_retriever(self, k: int = 4, filter: FilterLike = None, mode: str = "hybrid",
                            mmr: float | None = None) -> VectorSeamHybridRetriever:
        return VectorSeamHybridRetriever(vectorstore=self, k=k, filter=filter, mode=mode, mmr=mmr)

    def close(self) -> None:
        self.vectorseam.close()


def _no_extra(kwargs: dict[str, Any]) -> None:
    """Search options LangChain passes through ``**kwargs`` that vectorseam has none of are refused, not
    ignored (``score_threshold`` is handled by LangChain itself before it reaches here)."""
    if kwargs:
        raise TypeError(f"unexpected search arguments: {', '.join(sorted(kwargs))}")


class VectorSeamHybridRetriever(BaseRetriever):
    """Dense + BM25 search fused by Reciprocal Rank Fusion (vectorseam's hybrid mode), as a retriever.

    ``mode`` may also be ``dense`` or ``bm25``; ``mmr`` (a lambda in [0, 1]) re-ranks for diversity.
    ``k`` and ``filter`` can be overridden per call: ``retriever.invoke("pasta", k=10)``.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    vectorstore: VectorSeamVectorStore
    k: int = 4
    filter: Any = None
    mode: str = "hybrid"
    mmr: float | None = None

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun,
                                **kwargs: Any) -> list[Document]:
        k = kwargs.pop("k", self.k)
        filter_ = kwargs.pop("filter", self.filter)
        _no_extra(kwargs)
        if isinstance(k, bool) or not isinstance(k, int) or k <= 0:
            raise ValidationError(f"k must be a positive integer, got {k!r}")
        hits = self.vectorstore.bound.search_text(query, k, filter_, self.mode, self.mmr)
        return [_document(h) for h in hits]
