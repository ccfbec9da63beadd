"""Semantic search: query text -> embedding -> store query -> hits, guarded by the embedder fingerprint."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from vectorseam.embedding import Embedder, check_embedder
from vectorseam.errors import ValidationError
from vectorseam.filters import FilterLike, parse_filter
from vectorseam.store import VectorStore
from vectorseam.types import Hit

MAX_QUERY_CHARS = 10_000


class Searcher:
    """Dense search over one store with one embedder; checks each collection's fingerprint once."""

    def __init__(self, store: VectorStore, embedder: Embedder) -> None:
        self.store = store
        self.embedder = embedder
        self._checked: set[str] = set()

    def check(self, collection: str) -> None:
        if collection not in self._checked:
            check_embedder(self.store.collection_info(collection), self.embedder)
            self._checked.add(collection)

    def search(
        self, collection: str, query: str, k: int = 10, filter: FilterLike = None
    ) -> list[Hit]:
        return self.search_many(collection, [query], k, filter)[0]

    def search_many(
        self, collection: str, queries: Sequence[str], k: int = 10, filter: FilterLike = None
    ) -> list[list[Hit]]:
        for i, q in enumerate(queries):
            if not isinstance(q, str) or not q.strip():
                raise ValidationError(f"query {i}: the query text is empty; type something to search for")
            if len(q) > MAX_QUERY_CHARS:
                raise ValidationError(f"query {i}: {len(q)} characters; queries are limited to {MAX_QUERY_CHARS}")
        f = parse_filter(filter)  # a malformed filter fails before any embedding work
        self.check(collection)
        # embed_query, not embed_documents: asymmetric models embed queries differently.
        vectors = np.stack([self.embedder.embed_query(q) for q in queries])
        return self.store.query(collection, vectors, k=k, filter=f)
