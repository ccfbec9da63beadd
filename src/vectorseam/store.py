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
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
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


def describe(store: VectorStore, collection: str) -> CollectionInfo:
    """One collection's info, or CollectionNotFoundError naming the ones that exist."""
    from vectorseam.errors import CollectionNotFoundError

    infos = store.collections()
    for info in infos:
        if info.name == collection:
            return info
    names = ", ".join(sorted(i.name for i in infos)) or "none"
    raise CollectionNotFoundError(
        f"collection {collection!r} does not exist in the {store.capabilities.name} store "
        f"(existing: {names}); create it with `vectorseam ingest FILE --collection {collection}`"
    )
