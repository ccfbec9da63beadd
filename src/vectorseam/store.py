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

Abilities some backends have beyond the protocol (flushing buffered writes, a bulk-load mode,
native recommendations) are small runtime-checkable protocols below. Layers test for them with
``isinstance`` so the type checker sees both branches; a wrapper forwards exactly the abilities its
inner store has (see :mod:`vectorseam.stores.wrappers`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Protocol, runtime_checkable

import numpy.typing as npt

from vectorseam.filters import FilterLike
from vectorseam.types import Capabilities, CollectionInfo, CollectionSpec, Hit, Record


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
        """Flush and release resources (connections, files)."""
        ...


@runtime_checkable
class Flushable(Protocol):
    """A store that buffers writes (the memory store) and can make them durable on demand."""

    def flush(self) -> None: ...


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

