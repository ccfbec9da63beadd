"""LlamaIndex: a vector store for ``llama-index-core`` over vectorseam (``pip install 'vectorseam[llamaindex]'``).

    from llama_index.core import StorageContext, VectorStoreIndex
    from vectorseam.integrations.llamaindex import VectorSeamEmbedding, VectorSeamVectorStore
    store = VectorSeamVectorStore(collection="notes")             # the configured vectorseam store
    index = VectorStoreIndex.from_documents(docs, storage_context=StorageContext.from_defaults(vector_store=store),
                                            embed_model=VectorSeamEmbedding(store.client))
    index.as_retriever(vector_store_query_mode="hybrid", similarity_top_k=5).retrieve("pasta")

Nodes arrive embedded by LlamaIndex; the collection is created by the first ``add`` with the dimension of
those vectors and the fingerprint ``llamaindex:<dimension>``. Each node is stored as a vectorseam record:
its id, its embedding, its text (which the BM25 sidecar indexes, so hybrid and text-search queries
work), and its metadata plus the node itself as JSON under ``_node_content``, as other LlamaIndex stores
keep it, so nodes round-trip with their relationships. Records without ``_node_content`` (a collection
filled by ``vectorseam ingest``) come back as plain text nodes.

``MetadataFilters`` are translated to vectorseam's portable filters, nested groups included, and are then
evaluated with vectorseam's semantics on every backend (see :mod:`vectorseam.filters`: a list field
matches ``==`` and ``in`` when any element does; ``!=`` and ``nin`` match records without the field;
ranges take numbers or ISO dates). An operator without an exact equivalent (``text_match``) raises.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from vectorseam.extras import require

require("llamaindex")  # one line naming the pip install, not a ModuleNotFoundError from deep inside

import numpy as np
from llama_index.core.base.embeddings.base import BaseEmbedding
from llama_index.core.bridge.pydantic import PrivateAttr
from llama_index.core.schema import BaseNode, MetadataMode, TextNode
from llama_index.core.vector_stores.types import (
    BasePydanticVectorStore,
    FilterCondition,
    FilterOperator,
    MetadataFilter,
    MetadataFilters,
    VectorStoreQuery,
    VectorStoreQueryMode,
    VectorStoreQueryResult,
)
from llama_index.core.vector_stores.utils import metadata_dict_to_node, node_to_metadata_dict

from vectorseam.api import VectorSeamAPI
from vectorseam.client import VectorSeam
from vectorseam.config import Settings
from vectorseam.errors import FilterError, ValidationError
from vectorseam.filters import Filter, matches, parse_filter
from vectorseam.integrations._common import BoundCollection, open_vectorseam
from vectorseam.similarity import similarity_matrix
from vectorseam.types import Hit, Metric, Record

__all__ = ["VectorSeamEmbedding", "VectorSeamVectorStore", "to_vectorseam_filter"]

NODE_CONTENT_KEY = "_node_content"
DOC_ID_KEY = "doc_id"  # written by node_to_metadata_dict: the node's ref_doc_id
DEFAULT_MMR_THRESHOLD = 0.5  # LlamaIndex's own default weighting of relevance against diversity

_RANGES = {FilterOperator.GT: "$gt", FilterOperator.GTE: "$gte", FilterOperator.LT: "$lt", FilterOperator.LTE: "$lte"}


def _condition(f: MetadataFilter) -> dict[str, Any]:
    """One LlamaIndex condition as a vectorseam filter object (values are checked by :func:`parse_filter`)."""
    key, op, value = f.key, f.operator, f.value
    where = f"filter on {key!r} ({op.value})"
    if op in (FilterOperator.EQ, FilterOperator.NE, FilterOperator.CONTAINS) or op in _RANGES:
        if value is None:
            raise FilterError(f"{where}: compares with None; use FilterOperator.IS_EMPTY for a missing field")
        if isinstance(value, list):
            raise FilterError(f"{where}: takes one value; use FilterOperator.IN for a list")
        if op == FilterOperator.NE:
            return {key: {"$ne": value}}
        if op in _RANGES:
            return {key: {_RANGES[op]: value}}
        return {key: {"$eq": value}}  # EQ, and CONTAINS: "a list field contains the value"
    if op in (FilterOperator.IN, FilterOperator.NIN, FilterOperator.ANY, FilterOperator.ALL):
        if not isinstance(value, list) or not value:
            raise FilterError(f"{where}: takes a non-empty list of values, got {value!r}")
        if op == FilterOperator.ALL:
            return {"$and": [{key: {"$eq": v}} for v in value]}
        return {key: {"$nin" if op == FilterOperator.NIN else "$in": list(value)}}
    if op == FilterOperator.IS_EMPTY:  # LlamaIndex: missing, None, "" or []
        return {"$or": [{key: {"$exists": False}}, {key: {"$eq": ""}}]}
    raise FilterError(f"{where}: vectorseam's portable filters have no substring or full-text match, so this "
                      "operator has no exact equivalent on every backend; use hybrid or text-search mode for "
                      "words in the text, or ==/in on metadata")


def _group(filters: MetadataFilters) -> dict[str, Any]:
    if not filters.filters:
        raise FilterError("a MetadataFilters group needs at least one filter")
    parts = [_group(f) if isinstance(f, MetadataFilters) else _condition(f) for f in filters.filters]
    condition = filters.condition or FilterCondition.AND
    if condition == FilterCondition.AND:
        return parts[0] if len(parts) == 1 else {"$and": parts}
    either = parts[0] if len(parts) == 1 else {"$or": parts}
    if condition == FilterCondition.OR:
        return either
    if condition == FilterCondition.NOT:  # LlamaIndex: "match when none of the filters match"
        return {"$not": either}
    raise FilterError(f"unknown filter condition {condition!r}")


def to_vectorseam_filter(filters: MetadataFilters | None, doc_ids: Sequence[str] | None = None) -> Filter | None:
    """LlamaIndex ``MetadataFilters`` (nested groups included) as a vectorseam filter tree, restricted to
    the nodes of ``doc_ids`` when given."""
    parts = [] if filters is None or not filters.filters else [_group(filters)]
    if doc_ids:
        parts.append({DOC_ID_KEY: {"$in": list(doc_ids)}})
    if not parts:
        return None
    return parse_filter(parts[0] if len(parts) == 1 else {"$and": parts})


def _node(record: Record | Hit) -> BaseNode:
    if NODE_CONTENT_KEY in record.metadata:
        return metadata_dict_to_node(dict(record.metadata), text=record.text)
    return TextNode(id_=record.id, text=record.text, metadata=dict(record.metadata))


class VectorSeamVectorStore(BasePydanticVectorStore):
    """A LlamaIndex vector store over one collection of vectorseam's configured store.

    Construct it with a :class:`~vectorseam.client.VectorSeam` (or ``settings`` / ``config_file`` to build
    one; neither means ``vectorseam.toml`` and ``VECTORSEAM_*``) and a collection name, which may be an
    alias. Query modes: default (dense), ``mmr`` (``mmr_threshold`` weighs relevance against diversity),
    ``hybrid`` (dense + BM25 by Reciprocal Rank Fusion; ``alpha`` weighs the dense ranking, 1 - alpha the
    BM25 one) and ``text_search`` / ``sparse`` (BM25 on the nodes' text).
    """

    stores_text: bool = True
    is_embedding_query: bool = True
    collection: str = "llamaindex"
    metric: str = "cosine"

    _bound: BoundCollection = PrivateAttr()

    def __init__(self, vectorseam: VectorSeamAPI | None = None, collection: str = "llamaindex", *,
                 settings: Settings | None = None, config_file: str | os.PathLike[str] | None = None,
                 metric: Metric = "cosine", **kwargs: Any) -> None:
        super().__init__(collection=collection, metric=metric, **kwargs)  # type: ignore[call-arg]  # pydantic fields
        self._bound = BoundCollection(open_vectorseam(vectorseam, config_file, settings), collection,
                                      source="llamaindex", metric=metric)

    @classmethod
    def class_name(cls) -> str:
        return "VectorSeamVectorStore"

    @property
    def client(self) -> VectorSeamAPI:
        return self._bound.vs

    # -- writing --------------------------------------------------------------------------------------
    def add(self, nodes: Sequence[BaseNode], **kwargs: Any) -> list[str]:
        """Upsert embedded nodes by id; the first write creates the collection with their dimension."""
        records = []
        for node in nodes:
            if node.embedding is None:
                raise ValidationError(f"node {node.node_id!r} has no embedding; LlamaIndex embeds nodes before "
                                      "adding them (give the index an embed_model)")
            metadata = node_to_metadata_dict(node, remove_text=True, flat_metadata=False)
            records.append(Record(node.node_id, np.asarray(node.embedding, dtype=np.float32),
                                  node.get_content(metadata_mode=MetadataMode.NONE), metadata))
        if not records:
            return []
        assert records[0].vector is not None
        self._bound.ensure(len(records[0].vector))
        self._bound.upsert(records)
        return [r.id for r in records]

    def delete(self, ref_doc_id: str, **delete_kwargs: Any) -> None:
        """Delete every node of the source document ``ref_doc_id``."""
        self._bound.delete(filter={DOC_ID_KEY: ref_doc_id})

    def delete_nodes(self, node_ids: list[str] | None = None, filters: MetadataFilters | None = None,
                     **delete_kwargs: Any) -> None:
        """Delete nodes by id, by filter, or the nodes among ``node_ids`` that match ``filters``."""
        f = to_vectorseam_filter(filters)
        if node_ids is None and f is None:
            return
        if node_ids is None:
            self._bound.delete(filter=f)
        elif f is None:
            self._bound.delete(ids=node_ids)
        else:
            self._bound.delete(ids=[r.id for r in self._bound.fetch(node_ids) if matches(f, r.metadata)])

    def clear(self) -> None:
        """Drop the collection (the next ``add`` creates it again)."""
        self._bound.drop()

    # -- reading --------------------------------------------------------------------------------------
    def get_nodes(self, node_ids: list[str] | None = None,
                  filters: MetadataFilters | None = None) -> list[BaseNode]:
        """Nodes by id (in the order asked, missing ones left out), by filter, or every node."""
        f = to_vectorseam_filter(filters)
        if node_ids is not None:
            return [_node(r) for r in self._bound.fetch(node_ids) if matches(f, r.metadata)]
        return [_node(r) for r in self._bound.scan(f)]

    def query(self, query: VectorStoreQuery, **kwargs: Any) -> VectorStoreQueryResult:
        f = to_vectorseam_filter(query.filters, query.doc_ids)
        k = query.similarity_top_k
        mode = query.mode
        vector = query.query_embedding
        if query.node_ids:  # VectorIndexRetriever sends [] for "no restriction"
            if mode != VectorStoreQueryMode.DEFAULT:
                raise ValidationError(f"node_ids restrict dense queries only, not {mode.value!r} ones")
            hits = self._among(query.node_ids, _need(vector, mode), k, f)
        elif mode == VectorStoreQueryMode.DEFAULT:
            hits = self._bound.search_vector(_need(vector, mode), k, f)
        elif mode == VectorStoreQueryMode.MMR:
            lam = query.mmr_threshold if query.mmr_threshold is not None else DEFAULT_MMR_THRESHOLD
            fetch_k = int(kwargs.get("mmr_prefetch_k") or max(20, 4 * k))
            hits = self._bound.mmr_vector(_need(vector, mode), k, fetch_k, lam, f)
        elif mode == VectorStoreQueryMode.HYBRID:
            alpha = 0.5 if query.alpha is None else float(query.alpha)  # equal weights by default
            top = query.hybrid_top_k or k
            hits = self._bound.search_given(_text(query), _need(vector, mode), top, f, "hybrid",
                                            weights=(alpha, 1.0 - alpha))
        elif mode in (VectorStoreQueryMode.TEXT_SEARCH, VectorStoreQueryMode.SPARSE):
            hits = self._bound.search_given(_text(query), None, query.sparse_top_k or k, f, "bm25")
        else:
            raise ValidationError(f"query mode {mode.value!r} is not supported; use default, mmr, hybrid, "
                                  "text_search or sparse")
        return VectorStoreQueryResult(nodes=[_node(h) for h in hits], similarities=[h.score for h in hits],
                                      ids=[h.id for h in hits])

    def _among(self, node_ids: list[str], vector: list[float], k: int, f: Filter | None) -> list[Hit]:
        """Dense search restricted to ``node_ids``: the candidates are fetched and scored here, with the
        collection's metric in the store's score convention (:mod:`vectorseam.similarity`)."""
        info = self._bound.info()
        records = [r for r in self._bound.fetch(node_ids, include_vectors=True) if matches(f, r.metadata)]
        if info is None or not records:
            return []
        scores = similarity_matrix(np.asarray(vector, dtype=np.float64)[None, :],
                                   np.stack([np.asarray(r.vector) for r in records]), info.metric)[0]
        order = sorted(range(len(records)), key=lambda i: (-scores[i], records[i].id))[:k]
        return [Hit(records[i].id, float(scores[i]), records[i].text, records[i].metadata) for i in order]


def _need(vector: list[float] | None, mode: VectorStoreQueryMode) -> list[float]:
    if vector is None:
        raise ValidationError(f"a {mode.value!r} query needs query_embedding")
    return vector


def _text(query: VectorStoreQuery) -> str:
    if not query.query_str:
        raise ValidationError(f"a {query.mode.value!r} query needs query_str")
    return query.query_str


class VectorSeamEmbedding(BaseEmbedding):
    """vectorseam's configured embedder as a LlamaIndex embedding model, so an index embeds nodes and
    queries with the same model ``vectorseam ingest`` and ``vectorseam search`` use."""

    _vs: VectorSeamAPI = PrivateAttr()

    def __init__(self, vectorseam: VectorSeamAPI, **kwargs: Any) -> None:
        name = (vectorseam.settings.embedder.model or vectorseam.settings.embedder.name
                if isinstance(vectorseam, VectorSeam) else vectorseam.model_name)  # a remote client: the server's
        super().__init__(model_name=name, **kwargs)
        self._vs = vectorseam

    @classmethod
    def class_name(cls) -> str:
        return "VectorSeamEmbedding"

    def _get_query_embedding(self, query: str) -> list[float]:
        return [float(x) for x in self._vs.embedder.embed_query(query)]

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return self._get_query_embedding(query)

    def _get_text_embedding(self, text: str) -> list[float]:
        return self._get_text_embeddings([text])[0]

    def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        return [[float(x) for x in row] for row in self._vs.embedder.embed_documents(texts)]
