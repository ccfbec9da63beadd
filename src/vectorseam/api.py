"""The search API both :class:`vectorseam.client.VectorSeam` (in process) and
:class:`vectorseam.remote.RemoteVectorSeam` (over HTTP) offer: the same method names, arguments and
types, so code written against one runs against the other by changing the line that builds it.

The framework integrations (:mod:`vectorseam.integrations`) are written against this protocol, so a
LangChain, LlamaIndex or Haystack store runs over a local store or over a remote ``vectorseam serve``
alike. mypy checks that both classes satisfy it (tests assign each to a variable of this type).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from typing import IO, Protocol

import numpy as np
import numpy.typing as npt

from vectorseam.embedding import Embedder
from vectorseam.filters import FilterLike
from vectorseam.query import (
    CollectionDescription,
    Query,
    ScrollPage,
    SearchResult,
    Upserted,
    recommendation,
    text_query,
    vector_query,
)
from vectorseam.types import CollectionInfo, Hit, Metric, Record


class VectorSeamAPI(Protocol):
    @property
    def embedder(self) -> Embedder:
        """The embedder that embeds query and record texts (the service's, for a remote client)."""
        ...

    @property
    def model_name(self) -> str: ...

    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]: ...

    # -- collections and aliases
    def resolve(self, collection: str | None) -> str: ...
    def collections(self) -> list[CollectionInfo]: ...
    def collection_info(self, collection: str | None = None) -> CollectionInfo: ...
    def describe(self, collection: str | None = None) -> CollectionDescription: ...
    def create_collection(self, name: str, dimension: int | None = None, metric: Metric = "cosine",
                          metadata: Mapping[str, str] | None = None) -> CollectionInfo: ...
    def drop_collection(self, collection: str) -> bool: ...
    def set_alias(self, alias: str, collection: str) -> None: ...
    def remove_alias(self, alias: str) -> bool: ...
    def list_aliases(self) -> dict[str, str]: ...

    # -- search
    def search(self, query: str, k: int = 10, filter: FilterLike = None, collection: str | None = None,
               mode: str = "dense", mmr: float | None = None, profile: bool = True) -> list[Hit]: ...
    def search_many(self, queries: Sequence[str], k: int = 10, filter: FilterLike = None,
                    collection: str | None = None, mode: str = "dense", mmr: float | None = None,
                    profile: bool = True) -> list[list[Hit]]: ...
    def retrieve(self, query: str, k: int = 10, filter: FilterLike = None, collection: str | None = None,
                 mode: str = "dense", mmr: float | None = None, profile: bool = True) -> list[Hit]: ...
    def search_vector(self, vector: npt.ArrayLike, k: int = 10, filter: FilterLike = None,
                      collection: str | None = None, mmr: float | None = None) -> list[Hit]: ...
    def recommend(self, positive: Sequence[str] | str, negative: Sequence[str] | str = (), k: int = 10,
                  filter: FilterLike = None, strategy: str = "average_vector",
                  collection: str | None = None) -> list[Hit]: ...
    def query(self, query: Query, collection: str | None = None) -> SearchResult: ...
    def multi_search(self, searches: Sequence[tuple[str | None, Query]]) -> list[SearchResult]: ...

    # -- records
    def upsert(self, records: Sequence[Record], collection: str | None = None) -> Upserted: ...
    def fetch(self, ids: Sequence[str], collection: str | None = None,
              include_vectors: bool = False) -> list[Record]: ...
    def delete(self, ids: Sequence[str] | None = None, filter: FilterLike = None,
               collection: str | None = None) -> int: ...
    def count(self, filter: FilterLike = None, collection: str | None = None) -> int: ...
    def scroll(self, collection: str | None = None, filter: FilterLike = None, limit: int = 1000,
               cursor: str | None = None, include_vectors: bool = False) -> ScrollPage: ...

    # -- export, import, snapshots
    def export(self, collection: str | None = None, filter: FilterLike = None,
               format: str = "ndjson") -> Iterator[bytes]: ...
    def import_records(self, source: IO[bytes], collection: str | None = None, format: str = "ndjson") -> int: ...
    def snapshot(self, collection: str | None = None) -> Iterator[bytes]: ...
    def restore(self, source: str | os.PathLike[str] | IO[bytes], collection: str | None = None,
                replace: bool = False) -> CollectionInfo: ...

    def close(self) -> None: ...


class QueryShortcuts:
    """The one-line searches, written once over :meth:`query` for the facade and the remote client, so
    a shortcut can never mean something different in process and over HTTP."""

    def query(self, query: Query, collection: str | None = None) -> SearchResult:
        raise NotImplementedError  # the facade runs it in process, the remote client sends it

    def search(self, query: str, k: int = 10, filter: FilterLike = None, collection: str | None = None,
               mode: str = "dense", mmr: float | None = None, profile: bool = True) -> list[Hit]:
        """The ``k`` best records for ``query`` in ``mode`` dense, bm25 or hybrid; ``mmr`` (a lambda in
        [0, 1]) re-ranks for diversity. The collection's tuned profile applies unless ``profile`` is
        False. :meth:`query` takes pages, groups, facets and highlights too."""
        return self.query(text_query(query, k, filter, mode, mmr, profile), collection).hits

    retrieve = search  # the name search had when it alone applied the tuned profile

    def search_vector(self, vector: npt.ArrayLike, k: int = 10, filter: FilterLike = None,
                      collection: str | None = None, mmr: float | None = None) -> list[Hit]:
        """Search by a vector of the collection's dimension; ``mmr`` re-ranks for diversity."""
        return self.query(vector_query(vector, k, filter, mmr), collection).hits

    def recommend(self, positive: Sequence[str] | str, negative: Sequence[str] | str = (), k: int = 10,
                  filter: FilterLike = None, strategy: str = "average_vector",
                  collection: str | None = None) -> list[Hit]:
        """Records like ``positive`` and unlike ``negative``; the id of a chunked document stands for its chunks."""
        return self.query(recommendation(positive, negative, k, filter, strategy), collection).hits
