"""The ``VectorStore`` protocol: the one seam between vectorseam's layers and any backend.

Deliberately small. Everything above it (search, recommend, RAG, clustering, dedup, migration) is
written against these methods only, so a backend is added by implementing them once and passing
:mod:`vectorseam.testing`'s conformance suite.

Contract highlights every implementation keeps:

* ``upsert`` validates the whole batch before writing anything and is idempotent by id.
* ``query`` takes one vector ``(d,)`` or many ``(n, d)`` and always returns one hit list per query,
  best first, scores higher-is-more-similar (see :mod:`vectorseam.types`), ties broken by id.
* filters are :mod:`vectorseam.filters` trees; an operator the backend cannot express raises
  :class:`~vectorseam.errors.FilterError`.
* ``fetch`` of missing ids and ``delete`` of missing ids are not errors (missing ids are omitted).
* an unknown collection raises :class:`~vectorseam.errors.CollectionNotFoundError`.

Abilities some backends have beyond the protocol (a bulk-load mode,
native recommendations, keyword search inside the store, blobs kept with a collection) are small
runtime-checkable protocols below. Layers test for them with ``isinstance`` so the type checker sees
both branches; a wrapper forwards exactly the abilities its inner store has (see :mod:`vectorseam.stores.wrappers`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Protocol, runtime_checkable

import numpy.typing as npt

from vectorseam.filters import FilterLike
from vectorseam.types import Capabilities, CollectionInfo, CollectionSpec, Hit, Record, Scalar


@runtime_checkable
class VectorStore(Protocol):
    @property
    def capabilities(self) -> Capabilities:
        """What this backend does natively and which filter operators it can express."""
        ...

    def ensure_collection(self, spec: CollectionSpec) -> CollectionInfo:
        """Create the collection, or return it if it already exists with the same dimension and metric.

        An existing collection with another dimension or metric raises DimensionMismatchError /
        ValidationError; its stored metadata is kept (callers compare fingerprints themselves).
        """
        ...

    def collections(self) -> list[CollectionInfo]:
        """Every collection with its dimension, metric, metadata and record count."""
        ...

    def collection_info(self, collection: str) -> CollectionInfo:
        """One collection's info, looked up by name alone (query paths call it; it must not list or
        count every collection); CollectionNotFoundError naming the existing ones if it is absent."""
        ...

    def upsert(self, collection: str, records: Iterable[Record]) -> int:
        """Insert or replace records by id; returns how many were written."""
        ...

    def query(
        self,
        collection: str,
        vectors: npt.ArrayLike,
        k: int = 10,
        filter: FilterLike = None,
        include_vectors: bool = False,
    ) -> list[list[Hit]]:
        """Top-k exact-or-approximate neighbours of each query vector, restricted by ``filter``."""
        ...

    def fetch(self, collection: str, ids: Sequence[str], include_vectors: bool = True) -> list[Record]:
        """The records with these ids, in the order asked; missing ids are omitted."""
        ...

    def delete(self, collection: str, ids: Sequence[str] | None = None, filter: FilterLike = None) -> int:
        """Delete by ids or by filter (exactly one of them); returns how many records were removed."""
        ...

    def count(self, collection: str, filter: FilterLike = None) -> int:
        """How many records the collection holds (matching ``filter`` if given)."""
        ...

    def scan(
        self,
        collection: str,
        batch_size: int = 1000,
        filter: FilterLike = None,
        include_vectors: bool = True,
    ) -> Iterator[list[Record]]:
        """Page through every record (in a stable order), for clustering, dedup and migration."""
        ...

    def drop_collection(self, collection: str) -> bool:
        """Remove a collection and its records; returns False if it did not exist."""
        ...

    def close(self) -> None:
        """Release resources (connections, files). Every write is durable when its call returns, so
        there is nothing to flush."""
        ...


@runtime_checkable
class BulkLoading(Protocol):
    """A store with a faster mode for filling a collection (pgvector defers its HNSW index)."""

    def bulk_load(self, collection: str) -> AbstractContextManager[None]: ...


@runtime_checkable
class NativeRecommend(Protocol):
    """A store that ranks by positive and negative example ids itself (Qdrant; Pinecone and Weaviate
    for the cases their APIs cover). A strategy it cannot compute raises UnsupportedOperationError,
    and :func:`vectorseam.retrieval.recommend.recommend` falls back to the generic path."""

    def recommend(
        self,
        collection: str,
        positive_ids: Sequence[str],
        negative_ids: Sequence[str] = (),
        k: int = 10,
        filter: FilterLike = None,
        strategy: str = "average_vector",
    ) -> list[Hit]: ...



@runtime_checkable
class NativeKeywordSearch(Protocol):
    """A store that keeps a BM25 keyword index itself (the memory store in its process, pgvector in SQL,
    Qdrant as sparse vectors), so every process over the same data answers keyword and hybrid queries
    alike on the very next request, with the filter pushed down.

    Scores follow the one BM25 definition of :mod:`vectorseam.keywords` (tokens, ``idf``,
    ``term_weight``); a store whose document weights are fixed at write time documents how close it
    gets. A collection the store cannot index natively (e.g. one created before it could) raises
    :class:`~vectorseam.errors.UnsupportedOperationError`, and
    :class:`~vectorseam.stores.keyword_fallback.KeywordFallback` answers from its BM25 sidecar.
    """

    def keyword_search(self, collection: str, query: str, k: int = 10, filter: FilterLike = None) -> list[Hit]:
        """The ``k`` records with the highest positive BM25 score for ``query`` among those ``filter``
        admits, best first, ties by id; records sharing no token with the query are not returned."""
        ...

    def hybrid_search(
        self,
        collection: str,
        query: str,
        vector: npt.ArrayLike,
        k: int = 10,
        filter: FilterLike = None,
        rrf_k: float = 60,
        weights: Sequence[float] = (1.0, 1.0),
        depth: int = 100,
    ) -> list[Hit]:
        """:func:`vectorseam.keywords.rrf_fuse` of the dense top ``depth`` for ``vector`` and the BM25 top
        ``depth`` for ``query`` (both under ``filter``; ``weights`` as (dense, BM25)), the best ``k``
        with their fused scores (:func:`vectorseam.keywords.fuse_hits`)."""
        ...


@runtime_checkable
class KeywordStore(VectorStore, NativeKeywordSearch, Protocol):
    """A store that answers keyword and hybrid queries for every collection: what the retrieval layer is
    written against. The facade's store is one whatever the backend
    (:class:`~vectorseam.stores.keyword_fallback.KeywordFallback` gives any store the ability, natively
    where it has it, from the BM25 sidecar where not), so no caller decides between two keyword paths."""


@runtime_checkable
class CollectionBlobs(Protocol):
    """A store that keeps small named byte strings *with* a collection (a tuned retrieval profile), so
    every process and replica over that store sees them on its next request, a drop removes them with
    the collection, and a copy of the store carries them. The memory store keeps them in the
    collection's database; a blob of an absent collection raises CollectionNotFoundError."""

    def get_blob(self, collection: str, name: str) -> bytes | None:
        """The blob ``name`` of ``collection``, or None when it has none."""
        ...

    def put_blob(self, collection: str, name: str, data: bytes) -> None:
        """Store (or replace) the blob ``name``; durable and visible to other processes when it returns."""
        ...

    def delete_blob(self, collection: str, name: str) -> bool:
        """Remove the blob ``name``; False when there was none."""
        ...


@runtime_checkable
class Scrollable(Protocol):
    """A store that pages through records by a key of its own, so a position is one indexed lookup
    (pgvector: ``WHERE id > $after ORDER BY id``; Qdrant: ``scroll`` from a point id) and stays valid
    while records are written. Without it :mod:`vectorseam.retrieval.scroll` emulates the same
    contract over :meth:`VectorStore.scan`, at the cost of one pass over the collection per page."""

    def scroll(self, collection: str, limit: int, after: str | None = None, filter: FilterLike = None,
               include_vectors: bool = True) -> tuple[list[Record], str | None]:
        """Up to ``limit`` records ``filter`` admits whose key comes after the position ``after`` (None:
        from the first), in the store's fixed key order, and the position to continue from (None when
        no record can follow). A position is an opaque string of this store; every record that exists
        for the whole scroll is returned exactly once, whatever is written meanwhile."""
        ...


@runtime_checkable
class NativeGrouping(Protocol):
    """A store that groups nearest neighbours by a metadata field itself (Qdrant's point groups,
    pgvector's window functions). Without it :mod:`vectorseam.retrieval.grouping` deepens an ordinary
    query until the groups are known, then fills them with one filtered query each."""

    def query_groups(self, collection: str, vector: npt.ArrayLike, k: int, group_by: str, group_size: int,
                     filter: FilterLike = None) -> list[list[Hit]]:
        """The ``k`` best groups of the records ``filter`` admits, by their value of the metadata field
        ``group_by`` (numbers compare numerically, booleans apart, see :mod:`vectorseam.values`): each
        group its best ``group_size`` hits, best first, ties by id; groups ordered by their best hit. A
        record without the field (or with null) is a group of its own; a list value raises
        ValidationError naming the record."""
        ...


@runtime_checkable
class NativeFacets(Protocol):
    """A store that counts metadata values itself (SQL ``GROUP BY``, Qdrant's facet API). Without it
    :mod:`vectorseam.retrieval.facets` counts over a scan of the filtered records."""

    def facet_counts(self, collection: str, fields: Sequence[str], filter: FilterLike = None,
                     limit: int = 10) -> dict[str, list[tuple[Scalar, int]]]:
        """For each field, the ``limit`` values held by the most records ``filter`` admits and how many
        hold each, most first, ties in :func:`vectorseam.values.value_key` order. A list counts each of its
        distinct values once per record; null and absent fields count nothing."""
        ...
