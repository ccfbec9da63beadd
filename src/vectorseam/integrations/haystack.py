"""Haystack: a ``DocumentStore``, retriever and embedder components over vectorseam
(``pip install 'vectorseam[haystack]'``).

    from vectorseam.integrations.haystack import (VectorSeamDocumentEmbedder, VectorSeamDocumentStore,
                                                  VectorSeamHybridRetriever, VectorSeamTextEmbedder)
    embedder = VectorSeamDocumentEmbedder(config_file="vectorseam.toml")      # the configured model
    store = VectorSeamDocumentStore(config_file="vectorseam.toml", collection="docs",
                                    fingerprint=embedder.fingerprint)
    store.write_documents(embedder.run(documents)["documents"], policy=DuplicatePolicy.OVERWRITE)
    retriever = VectorSeamHybridRetriever(store, top_k=5)
    retriever.run(query="pasta", query_embedding=VectorSeamTextEmbedder(config_file="vectorseam.toml")
                  .run("pasta")["embedding"])

The two embedder components run vectorseam's configured embedder (the local all-MiniLM-L6-v2 by
default, or an OpenAI-compatible endpoint) inside a pipeline, so Haystack embeds with the same model as
``vectorseam ingest`` and ``vectorseam search`` without an embedder package of its own.

Documents arrive embedded by a Haystack embedder (or without an embedding); the collection is created by
the first write with the dimension of those vectors (``embedding_dim`` when the first documents have
none) and the fingerprint ``haystack:<dimension>``, or the ``fingerprint`` given to the store (that of
vectorseam's embedder, when the documents came through :class:`VectorSeamDocumentEmbedder`: then
vectorseam's own text search, CLI and HTTP included, reads the collection). A document becomes one
vectorseam record: its id, its embedding, its content (indexed by the BM25 sidecar, for the BM25 and
hybrid retrievers), and its meta as filterable metadata. What vectorseam's flat metadata cannot hold
(nested meta values, a blob, a sparse embedding, ``content=None``) travels as JSON under ``_haystack``,
so documents round-trip whole. A document without an embedding is stored under a placeholder unit vector,
marked ``_haystack_no_embedding`` so that embedding and hybrid retrieval skip it, and comes back with
``embedding=None``. Vectors are kept as float32, like every vectorseam backend keeps them.

Filters in Haystack's syntax (``{"operator": "AND", "conditions": [{"field": "meta.year", "operator": ">=",
"value": 2020}]}``) are translated to vectorseam's portable filters and evaluated with vectorseam's
semantics on every backend (:mod:`vectorseam.filters`). One difference is deliberate: vectorseam's range
operators take a number or an ISO-8601 date/time, never None, so ``{"operator": ">", "value": None}``
raises :class:`haystack.errors.FilterError` instead of matching nothing. ``== None`` and ``!= None`` mean a
missing (or null, or empty-list) field and a present one. Only ``meta.*`` fields can be filtered.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from vectorseam.extras import require

require("haystack")  # one line naming the pip install, not a ModuleNotFoundError from deep inside

import numpy as np
from haystack import component, default_from_dict, default_to_dict
from haystack.core.errors import SerializationError
from haystack.dataclasses import ByteStream, Document, SparseEmbedding
from haystack.document_stores.errors import DuplicateDocumentError
from haystack.document_stores.types import DuplicatePolicy
from haystack.document_stores.types.filter_policy import FilterPolicy, apply_filter_policy
from haystack.errors import FilterError
from pydantic import SecretStr

from vectorseam.api import VectorSeamAPI
from vectorseam.client import VectorSeam
from vectorseam.config import Settings
from vectorseam.embedding import FINGERPRINT_KEY
from vectorseam.errors import EmbedderMismatchError, ValidationError
from vectorseam.errors import FilterError as VectorseamFilterError
from vectorseam.filters import Filter, parse_filter, to_dict
from vectorseam.integrations._common import BoundCollection, open_vectorseam
from vectorseam.types import Hit, Metadata, Metric, Record, Vector, validate_metadata

__all__ = [
    "VectorSeamBM25Retriever",
    "VectorSeamDocumentEmbedder",
    "VectorSeamDocumentStore",
    "VectorSeamEmbeddingRetriever",
    "VectorSeamHybridRetriever",
    "VectorSeamTextEmbedder",
    "to_vectorseam_filter",
]

EXTRA_KEY = "_haystack"
NO_EMBEDDING_KEY = "_haystack_no_embedding"
RESERVED_KEYS = (EXTRA_KEY, NO_EMBEDDING_KEY)
_EMBEDDED = {NO_EMBEDDING_KEY: {"$ne": True}}  # documents that have a real embedding
_COMPARISONS = {"==": "$eq", "!=": "$ne", ">": "$gt", ">=": "$gte", "<": "$lt", "<=": "$lte",
                "in": "$in", "not in": "$nin"}


# -- filters ------------------------------------------------------------------------------------------

def _comparison(condition: dict[str, Any]) -> dict[str, Any]:
    for key in ("field", "operator", "value"):
        if key not in condition:
            raise FilterError(f"'{key}' key missing in {condition}")
    field, op, value = condition["field"], condition["operator"], condition["value"]
    if not isinstance(field, str) or not field.startswith("meta.") or len(field) == len("meta."):
        raise FilterError(f"vectorseam filters documents by their meta only: use 'meta.<name>', got {field!r}")
    name = field[len("meta."):]
    if op not in _COMPARISONS:
        raise FilterError(f"unknown comparison operator {op!r} in {condition}; expected one of "
                          f"{', '.join(_COMPARISONS)}")
    if value is None:
        if op == "==":
            return {name: {"$exists": False}}
        if op == "!=":
            return {name: {"$exists": True}}
        raise FilterError(f"{field} {op} None: vectorseam's {op} takes a number or an ISO-8601 date/time, never "
                          "None (on purpose: a comparison with nothing is a mistake, not an empty result); use "
                          "'== None' for a missing field")
    if op in ("in", "not in") and not isinstance(value, list):
        raise FilterError(f"{field} {op} takes a list of values, got {type(value).__name__} {value!r}")
    return {name: {_COMPARISONS[op]: value}}


def _logical(condition: dict[str, Any]) -> dict[str, Any]:
    if "field" in condition:
        return _comparison(condition)
    if "operator" not in condition:
        raise FilterError(f"'operator' key missing in {condition}")
    if "conditions" not in condition:
        raise FilterError(f"'conditions' key missing in {condition}")
    op, conditions = condition["operator"], condition["conditions"]
    if not isinstance(conditions, list) or not conditions:
        raise FilterError(f"'conditions' must be a non-empty list, got {conditions!r}")
    parts = [_logical(c) if isinstance(c, dict) else _not_a_condition(c) for c in conditions]
    if op == "AND":
        return {"$and": parts}
    if op == "OR":
        return {"$or": parts}
    if op == "NOT":  # Haystack: true when not all of the conditions hold
        return {"$not": {"$and": parts}}
    raise FilterError(f"unknown logical operator {op!r}; expected AND, OR or NOT")


def _not_a_condition(value: object) -> dict[str, Any]:
    raise FilterError(f"a condition must be a dict, got {value!r}")


def to_vectorseam_filter(filters: dict[str, Any] | None) -> Filter | None:
    """A Haystack filter as a vectorseam filter tree; malformed or unsupported ones raise Haystack's FilterError."""
    if not filters:
        return None
    if not isinstance(filters, dict):
        raise FilterError(f"filters must be a dict, got {type(filters).__name__}")
    with _haystack_filter_errors():
        return parse_filter(_logical(filters))


@contextmanager
def _haystack_filter_errors() -> Iterator[None]:
    """vectorseam's FilterError (a bad value, or an operator the backend cannot express) as Haystack's."""
    try:
        yield
    except VectorseamFilterError as exc:
        raise FilterError(str(exc)) from exc


def _and(*filters: Filter | dict[str, Any] | None) -> Filter | None:
    parts = [to_dict(f) if not isinstance(f, dict) else f for f in filters if f is not None]
    if not parts:
        return None
    return parse_filter(parts[0] if len(parts) == 1 else {"$and": parts})


# -- documents <-> records ----------------------------------------------------------------------------

def _record(doc: Document, placeholder: Vector) -> Record:
    metadata: Metadata = {}
    extra: dict[str, Any] = {}
    nested: dict[str, Any] = {}
    for key, value in doc.meta.items():
        if key in RESERVED_KEYS:
            raise ValueError(f"document {doc.id!r}: meta key {key!r} is reserved by the vectorseam document store")
        try:
            metadata[key] = validate_metadata({key: value}, f"document {doc.id!r}")[key]
        except ValidationError:
            nested[key] = value  # not flat: kept whole, not filterable
    if nested:
        extra["meta"] = nested
    if doc.content is None:
        extra["content_none"] = True
    if doc.blob is not None:
        extra["blob"] = {"data": base64.b64encode(doc.blob.data).decode("ascii"), "mime_type": doc.blob.mime_type,
                         "meta": doc.blob.meta}
    if doc.sparse_embedding is not None:
        extra["sparse_embedding"] = doc.sparse_embedding.to_dict()
    if extra:
        try:
            metadata[EXTRA_KEY] = json.dumps(extra, ensure_ascii=False)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"document {doc.id!r}: meta must be JSON-serializable ({exc})") from None
    vector = placeholder
    if doc.embedding is None:
        metadata[NO_EMBEDDING_KEY] = True
    else:
        vector = np.asarray(doc.embedding, dtype=np.float32)
    return Record(doc.id, vector, doc.content or "", metadata)


def _document(record: Record | Hit, score: float | None = None, with_embedding: bool = True) -> Document:
    meta = dict(record.metadata)
    extra = json.loads(str(meta.pop(EXTRA_KEY))) if EXTRA_KEY in meta else {}
    embedded = not meta.pop(NO_EMBEDDING_KEY, False)
    meta.update(extra.get("meta", {}))
    blob = None
    if "blob" in extra:
        b = extra["blob"]
        blob = ByteStream(data=base64.b64decode(b["data"]), mime_type=b["mime_type"], meta=b["meta"])
    sparse = SparseEmbedding.from_dict(extra["sparse_embedding"]) if "sparse_embedding" in extra else None
    embedding = None
    if with_embedding and embedded and record.vector is not None:
        embedding = [float(x) for x in record.vector]
    return Document(id=record.id, content=None if extra.get("content_none") else record.text, blob=blob,
                    meta=meta, score=score, embedding=embedding, sparse_embedding=sparse)


def _settings_dict(settings: Settings) -> dict[str, Any]:
    """Settings for ``to_dict``; refused when they hold secrets, which must not land in a pipeline file."""
    def secrets(value: Any, path: str) -> Iterator[str]:
        if isinstance(value, SecretStr):
            yield path
        elif isinstance(value, dict):
            for k, v in value.items():
                yield from secrets(v, f"{path}.{k}" if path else str(k))
        elif isinstance(value, list):
            for i, v in enumerate(value):
                yield from secrets(v, f"{path}[{i}]")

    found = list(secrets(settings.model_dump(mode="python"), ""))
    if found:
        raise SerializationError(
            f"the vectorseam settings hold secrets ({', '.join(found)}), which would be written into the pipeline "
            "file; build the document store from config_file= (or VECTORSEAM_* environment variables) instead")
    return settings.model_dump(mode="json")


def _facade_parameters(given: bool, settings: Settings | None, config_file: str | None,
                       vs: VectorSeamAPI) -> dict[str, Any]:
    """How a component's ``to_dict`` names its vectorseam: the config file, or the settings (a facade handed
    in is written as its settings), refused when they hold secrets. A remote client has no settings to write."""
    if given and not isinstance(vs, VectorSeam):
        raise ValidationError(f"a component over {vs!r} cannot be serialized: a pipeline file names a local "
                              "vectorseam by its settings or config file; build the remote client in code")
    chosen = vs.settings if isinstance(vs, VectorSeam) and given else settings
    return {"settings": None if chosen is None else _settings_dict(chosen), "config_file": config_file}


# -- the document store -------------------------------------------------------------------------------

class VectorSeamDocumentStore:
    """A Haystack document store over one collection of vectorseam's configured store.

    Construct it with a :class:`~vectorseam.client.VectorSeam`, or ``settings`` / ``config_file`` to
    build one (neither means ``vectorseam.toml`` and ``VECTORSEAM_*``), and a collection name (an alias
    works too). ``embedding_dim`` is the dimension of the collection when the first documents written
    have no embedding; ``metric`` applies when the first write creates the collection.

    ``fingerprint`` names the vector space of the documents' embeddings: pass
    :attr:`VectorSeamDocumentEmbedder.fingerprint` when that component embedded them, and the collection
    is recorded as vectorseam's own (searchable by text through the CLI, the HTTP API and
    :meth:`~vectorseam.client.VectorSeam.search`); a write into an existing collection of another space
    is refused. Unset, the vectors come from a model vectorseam does not know (``haystack:<dimension>``)
    and are searched by vector only.
    """

    def __init__(
        self,
        vectorseam: VectorSeamAPI | None = None,
        collection: str = "haystack",
        *,
        embedding_dim: int | None = None,
        settings: Settings | dict[str, Any] | None = None,
        config_file: str | os.PathLike[str] | None = None,
        metric: Metric = "cosine",
        fingerprint: str | None = None,
    ) -> None:
        if isinstance(settings, dict):
            settings = Settings(**settings)
        self._given_vectorseam = vectorseam is not None
        self.settings = settings
        self.config_file = None if config_file is None else os.fspath(config_file)
        self.embedding_dim = embedding_dim
        self.metric: Metric = metric
        self.fingerprint = fingerprint
        self.bound = BoundCollection(open_vectorseam(vectorseam, config_file, settings), collection,
                                     source="haystack", metric=metric, fingerprint=fingerprint)

    @property
    def collection(self) -> str:
        return self.bound.collection

    @property
    def vectorseam(self) -> VectorSeamAPI:
        return self.bound.vs

    def to_dict(self) -> dict[str, Any]:
        return default_to_dict(self, collection=self.collection, embedding_dim=self.embedding_dim,
                               **_facade_parameters(self._given_vectorseam, self.settings, self.config_file,
                                                    self.vectorseam),
                               metric=self.metric, fingerprint=self.fingerprint)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> VectorSeamDocumentStore:
        return default_from_dict(cls, data)

    def count_documents(self) -> int:
        return self.bound.count()

    def filter_documents(self, filters: dict[str, Any] | None = None) -> list[Document]:
        """The documents matching ``filters`` (all of them for None), in the store's scan order."""
        f = to_vectorseam_filter(filters)
        with _haystack_filter_errors():
            return [_document(r) for r in self.bound.scan(f, include_vectors=True)]

    def write_documents(self, documents: list[Document], policy: DuplicatePolicy = DuplicatePolicy.NONE) -> int:
        """Write documents; ``DuplicatePolicy.NONE`` means FAIL, which checks the whole batch (against the
        store and within itself) before writing anything."""
        if not isinstance(documents, list) or any(not isinstance(d, Document) for d in documents):
            raise ValueError("Please provide a list of Documents.")
        if policy == DuplicatePolicy.NONE:
            policy = DuplicatePolicy.FAIL
        batch: dict[str, Document] = {}
        for doc in documents:
            if doc.id in batch:
                if policy == DuplicatePolicy.FAIL:
                    raise DuplicateDocumentError(f"ID '{doc.id}' appears twice in the documents written")
                if policy == DuplicatePolicy.SKIP:
                    continue
            batch[doc.id] = doc
        if policy != DuplicatePolicy.OVERWRITE:
            existing = [r.id for r in self.bound.fetch(list(batch))]
            if existing and policy == DuplicatePolicy.FAIL:
                raise DuplicateDocumentError(f"ID '{existing[0]}' already exists.")
            for rid in existing:
                del batch[rid]
        if not batch:
            return 0
        info = self.bound.ensure(self._dimension(list(batch.values())))
        recorded = info.metadata.get(FINGERPRINT_KEY)
        if self.fingerprint is not None and recorded != self.fingerprint:
            raise EmbedderMismatchError(
                f"collection {info.name!r} holds vectors of {recorded!r}, these documents were embedded by "
                f"{self.fingerprint!r}: write them to a new collection, or embed with the collection's model")
        placeholder = np.zeros(info.dimension, dtype=np.float32)
        placeholder[0] = 1.0  # any finite non-zero vector: cosine needs a direction; never searched
        self.bound.upsert([_record(d, placeholder) for d in batch.values()])
        return len(batch)

    def _dimension(self, documents: list[Document]) -> int | None:
        info = self.bound.info()
        if info is not None:
            return info.dimension
        for doc in documents:
            if doc.embedding is not None:
                return len(doc.embedding)
        if self.embedding_dim is None:
            raise ValueError(f"collection {self.collection!r} does not exist yet and none of these documents has "
                             "an embedding to give its dimension; pass embedding_dim= to the document store")
        return self.embedding_dim

    def delete_documents(self, document_ids: list[str]) -> None:
        self.bound.delete(ids=list(document_ids))

    def delete_by_filter(self, filters: dict[str, Any]) -> int:
        """Delete the documents matching ``filters``; returns how many there were."""
        f = to_vectorseam_filter(filters)
        if f is None:
            raise FilterError("delete_by_filter needs a filter; use delete_all_documents to remove everything")
        with _haystack_filter_errors():
            return self.bound.delete(filter=f)

    def delete_all_documents(self, recreate_index: bool = False) -> None:
        """Remove every document. ``recreate_index=True`` drops the collection itself (the next write
        creates it again, with that write's dimension); otherwise it stays, empty."""
        if recreate_index:
            self.bound.drop()
            return
        ids = [r.id for r in self.bound.scan()]
        for start in range(0, len(ids), 1000):
            self.bound.delete(ids=ids[start:start + 1000])

    # -- retrieval, used by the components below ------------------------------------------------------
    def _embedding_retrieval(self, query_embedding: list[float], filters: dict[str, Any] | None, top_k: int,
                             return_embedding: bool) -> list[Document]:
        f = _and(to_vectorseam_filter(filters), _EMBEDDED)
        with _haystack_filter_errors():
            hits = self.bound.search_vector(query_embedding, top_k, f, include_vectors=return_embedding)
        return [_document(h, h.score, return_embedding) for h in hits]

    def _text_retrieval(self, query: str, query_embedding: list[float] | None, filters: dict[str, Any] | None,
                        top_k: int, mode: str) -> list[Document]:
        f = to_vectorseam_filter(filters)
        if mode == "hybrid":
            f = _and(f, _EMBEDDED)
        with _haystack_filter_errors():
            hits = self.bound.search_given(query, query_embedding, top_k, f, mode)
        return [_document(h, h.score, with_embedding=False) for h in hits]

    def close(self) -> None:
        self.bound.close()


# -- retriever components -----------------------------------------------------------------------------

class _Retriever:
    def __init__(self, document_store: VectorSeamDocumentStore, filters: dict[str, Any] | None = None,
                 top_k: int = 10, filter_policy: FilterPolicy | str = FilterPolicy.REPLACE) -> None:
        if not isinstance(document_store, VectorSeamDocumentStore):
            raise TypeError("document_store must be a VectorSeamDocumentStore")
        if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k <= 0:
            raise ValueError(f"top_k must be a positive integer, got {top_k!r}")
        self.document_store = document_store
        self.filters = filters
        self.top_k = top_k
        self.filter_policy = (filter_policy if isinstance(filter_policy, FilterPolicy)
                              else FilterPolicy.from_str(filter_policy))

    def _init_parameters(self) -> dict[str, Any]:
        return {"document_store": self.document_store, "filters": self.filters, "top_k": self.top_k,
                "filter_policy": self.filter_policy.value}

    def to_dict(self) -> dict[str, Any]:
        return default_to_dict(self, **self._init_parameters())

    @classmethod
    def _from_dict(cls, data: dict[str, Any]) -> Any:
        params = data.get("init_parameters", {})
        params["document_store"] = VectorSeamDocumentStore.from_dict(params["document_store"])
        return default_from_dict(cls, data)

    def _filters(self, filters: dict[str, Any] | None) -> dict[str, Any] | None:
        return apply_filter_policy(self.filter_policy, self.filters, filters)


@component
class VectorSeamEmbeddingRetriever(_Retriever):
    """The documents nearest to a query embedding (documents stored without an embedding are skipped)."""

    def __init__(self, document_store: VectorSeamDocumentStore, filters: dict[str, Any] | None = None,
                 top_k: int = 10, filter_policy: FilterPolicy | str = FilterPolicy.REPLACE,
                 return_embedding: bool = False) -> None:
        _Retriever.__init__(self, document_store, filters, top_k, filter_policy)  # @component rebuilds the class
        self.return_embedding = return_embedding

    def to_dict(self) -> dict[str, Any]:
        return default_to_dict(self, **self._init_parameters(), return_embedding=self.return_embedding)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> VectorSeamEmbeddingRetriever:
        retriever: VectorSeamEmbeddingRetriever = cls._from_dict(data)
        return retriever

    @component.output_types(documents=list[Document])
    def run(self, query_embedding: list[float], filters: dict[str, Any] | None = None,
            top_k: int | None = None, return_embedding: bool | None = None) -> dict[str, list[Document]]:
        embed = self.return_embedding if return_embedding is None else return_embedding
        docs = self.document_store._embedding_retrieval(query_embedding, self._filters(filters), top_k or self.top_k,
                                                        embed)
        return {"documents": docs}


@component
class VectorSeamHybridRetriever(_Retriever):
    """Dense search by the query embedding and BM25 on the query text, fused by Reciprocal Rank Fusion
    (vectorseam's hybrid mode); ``score`` is the fused RRF score."""

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> VectorSeamHybridRetriever:
        retriever: VectorSeamHybridRetriever = cls._from_dict(data)
        return retriever

    @component.output_types(documents=list[Document])
    def run(self, query: str, query_embedding: list[float], filters: dict[str, Any] | None = None,
            top_k: int | None = None) -> dict[str, list[Document]]:
        docs = self.document_store._text_retrieval(query, query_embedding, self._filters(filters),
                                                   top_k or self.top_k, "hybrid")
        return {"documents": docs}


@component
class VectorSeamBM25Retriever(_Retriever):
    """BM25 keyword search on the documents' content (vectorseam's BM25 sidecar index)."""

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> VectorSeamBM25Retriever:
        retriever: VectorSeamBM25Retriever = cls._from_dict(data)
        return retriever

    @component.output_types(documents=list[Document])
    def run(self, query: str, filters: dict[str, Any] | None = None,
            top_k: int | None = None) -> dict[str, list[Document]]:
        docs = self.document_store._text_retrieval(query, None, self._filters(filters), top_k or self.top_k, "bm25")
        return {"documents": docs}


# -- embedder components ------------------------------------------------------------------------------

class _Embedder:
    """What both embedder components share: the facade whose configured embedder they run, its
    serialization, and the texts' prefix and suffix (some models want "query: " / "passage: ")."""

    def __init__(self, vectorseam: VectorSeamAPI | None, settings: Settings | dict[str, Any] | None,
                 config_file: str | os.PathLike[str] | None, prefix: str, suffix: str) -> None:
        if isinstance(settings, dict):
            settings = Settings(**settings)
        self._given_vectorseam = vectorseam is not None
        self.settings = settings
        self.config_file = None if config_file is None else os.fspath(config_file)
        self.prefix = prefix
        self.suffix = suffix
        self.vectorseam = open_vectorseam(vectorseam, config_file, settings)

    @property
    def fingerprint(self) -> str:
        """The vector space of the embeddings (``local:<model>:<dimension>:normalized``, ...); give it to
        :class:`VectorSeamDocumentStore` so the collection is recorded as this embedder's."""
        return self.vectorseam.embedder.fingerprint

    def warm_up(self) -> None:
        """Build the configured embedder, so a wrong configuration fails when the pipeline starts (the
        local model itself loads on the first texts, as it does everywhere in vectorseam)."""
        _ = self.vectorseam.embedder

    def _init_parameters(self) -> dict[str, Any]:
        return {**_facade_parameters(self._given_vectorseam, self.settings, self.config_file, self.vectorseam),
                "prefix": self.prefix, "suffix": self.suffix}

    def _meta(self) -> dict[str, Any]:
        return {"fingerprint": self.fingerprint}

    def close(self) -> None:
        if not self._given_vectorseam:
            self.vectorseam.close()


@component
class VectorSeamTextEmbedder(_Embedder):
    """Embeds one text (a query) with vectorseam's configured embedder, for an embedding retriever.

    Construct it with a :class:`~vectorseam.client.VectorSeam` (sharing its loaded model), or ``settings`` /
    ``config_file`` (neither: ``vectorseam.toml`` and ``VECTORSEAM_*``). ``meta`` carries the embedder's
    fingerprint.
    """

    def __init__(self, vectorseam: VectorSeamAPI | None = None, *, settings: Settings | dict[str, Any] | None = None,
                 config_file: str | os.PathLike[str] | None = None, prefix: str = "", suffix: str = "") -> None:
        _Embedder.__init__(self, vectorseam, settings, config_file, prefix, suffix)  # @component rebuilds the class

    def to_dict(self) -> dict[str, Any]:
        return default_to_dict(self, **self._init_parameters())

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> VectorSeamTextEmbedder:
        embedder: VectorSeamTextEmbedder = default_from_dict(cls, data)
        return embedder

    @component.output_types(embedding=list[float], meta=dict[str, Any])
    def run(self, text: str) -> dict[str, Any]:
        if not isinstance(text, str):
            raise TypeError("VectorSeamTextEmbedder takes one string; to embed documents use "
                            "VectorSeamDocumentEmbedder")
        vector = self.vectorseam.embedder.embed_query(self.prefix + text + self.suffix)
        return {"embedding": [float(x) for x in vector], "meta": self._meta()}


@component
class VectorSeamDocumentEmbedder(_Embedder):
    """Embeds documents with vectorseam's configured embedder and returns them with ``embedding`` set.

    The text embedded is Haystack's usual one: ``prefix`` + the values of ``meta_fields_to_embed`` and the
    content, joined by ``embedding_separator``, + ``suffix`` (the same text
    ``SentenceTransformersDocumentEmbedder`` embeds). The input documents are left as they are: new ones
    come back. A document with nothing to embed (no content and none of those meta fields) is refused,
    naming it, rather than embedded as an empty string, whose vector would match queries at random.
    ``batch_size`` overrides ``embedder.batch_size`` of the configuration.
    """

    def __init__(self, vectorseam: VectorSeamAPI | None = None, *, settings: Settings | dict[str, Any] | None = None,
                 config_file: str | os.PathLike[str] | None = None, prefix: str = "", suffix: str = "",
                 meta_fields_to_embed: list[str] | None = None, embedding_separator: str = "\n",
                 batch_size: int | None = None) -> None:
        _Embedder.__init__(self, vectorseam, settings, config_file, prefix, suffix)  # @component rebuilds the class
        if batch_size is not None and (isinstance(batch_size, bool) or not isinstance(batch_size, int)
                                       or batch_size <= 0):
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        self.meta_fields_to_embed = list(meta_fields_to_embed or [])
        self.embedding_separator = embedding_separator
        self.batch_size = batch_size

    def to_dict(self) -> dict[str, Any]:
        return default_to_dict(self, **self._init_parameters(), meta_fields_to_embed=self.meta_fields_to_embed,
                               embedding_separator=self.embedding_separator, batch_size=self.batch_size)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> VectorSeamDocumentEmbedder:
        embedder: VectorSeamDocumentEmbedder = default_from_dict(cls, data)
        return embedder

    def _text(self, doc: Document) -> str:
        parts = [str(doc.meta[key]) for key in self.meta_fields_to_embed
                 if key in doc.meta and doc.meta[key] is not None]
        body = self.embedding_separator.join([*parts, doc.content or ""])
        if not body.strip():
            raise ValueError(f"document {doc.id!r} has nothing to embed: its content is empty and it has none of "
                             f"the meta fields {self.meta_fields_to_embed}; drop it before the embedder or give it "
                             "content")
        return self.prefix + body + self.suffix

    @component.output_types(documents=list[Document], meta=dict[str, Any])
    def run(self, documents: list[Document]) -> dict[str, Any]:
        if not isinstance(documents, list) or any(not isinstance(d, Document) for d in documents):
            raise TypeError("VectorSeamDocumentEmbedder takes a list of Documents; to embed one string use "
                            "VectorSeamTextEmbedder")
        if not documents:
            return {"documents": [], "meta": self._meta()}
        texts = [self._text(doc) for doc in documents]
        vectors = self.vectorseam.embedder.embed_documents(texts, batch_size=self.batch_size)
        embedded = [dataclasses.replace(doc, embedding=[float(x) for x in row])
                    for doc, row in zip(documents, vectors, strict=True)]
        return {"documents": embedded, "meta": self._meta()}
