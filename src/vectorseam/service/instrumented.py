"""A store wrapper that times every call and counts failures that are the store's, not the caller's.

Bad input (ValidationError, an unknown collection) is the caller's fault and becomes a 4xx; anything
else a store raises (an unreachable database, a driver bug) is what an operator must be paged for, so
only those are counted in ``vectorseam_store_errors_total``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, TypeVar

import numpy.typing as npt

from vectorseam.errors import (
    CollectionNotFoundError,
    EmbedderMismatchError,
    UnsupportedOperationError,
    ValidationError,
)
from vectorseam.filters import FilterLike
from vectorseam.service.metrics import Metrics
from vectorseam.store import VectorStore
from vectorseam.types import Capabilities, CollectionInfo, CollectionSpec, Hit, Record

T = TypeVar("T")
_CALLER_ERRORS = (ValidationError, CollectionNotFoundError, EmbedderMismatchError, UnsupportedOperationError)


class InstrumentedStore:
    """Implements the VectorStore protocol by delegation; unknown attributes (native extras) pass through."""

    def __init__(self, inner: VectorStore, metrics: Metrics) -> None:
        self.inner = inner
        self._metrics = metrics
        self._name = inner.capabilities.name

    def _call(self, operation: str, fn: Callable[[], T]) -> T:
        start = time.perf_counter()
        try:
            return fn()
        except _CALLER_ERRORS:
            raise
        except Exception as exc:
            self._metrics.store_errors.labels(self._name, operation, type(exc).__name__).inc()
            raise
        finally:
            self._metrics.store_latency.labels(self._name, operation).observe(time.perf_counter() - start)

    @property
    def capabilities(self) -> Capabilities:
        return self.inner.capabilities

    def ensure_collection(self, spec: CollectionSpec) -> CollectionInfo:
        return self._call("ensure_collection", lambda: self.inner.ensure_collection(spec))

    def collections(self) -> list[CollectionInfo]:
        return self._call("collections", self.inner.collections)

    def upsert(self, collection: str, records: Iterable[Record]) -> int:
        return self._call("upsert", lambda: self.inner.upsert(collection, records))

    def query(self, collection: str, vectors: npt.ArrayLike, k: int = 10, filter: FilterLike = None,
              include_vectors: bool = False) -> list[list[Hit]]:
        return self._call("query", lambda: self.inner.query(collection, vectors, k, filter, include_vectors))

    def fetch(self, collection: str, ids: Sequence[str], include_vectors: bool = True) -> list[Record]:
        return self._call("fetch", lambda: self.inner.fetch(collection, ids, include_vectors))

    def delete(self, collection: str, ids: Sequence[str] | None = None, filter: FilterLike = None) -> int:
        return self._call("delete", lambda: self.inner.delete(collection, ids, filter))

    def count(self, collection: str, filter: FilterLike = None) -> int:
        return self._call("count", lambda: self.inner.count(collection, filter))

    def scan(self, collection: str, batch_size: int = 1000, filter: FilterLike = None,
             include_vectors: bool = True) -> Iterator[list[Record]]:
        return self._call("scan", lambda: self.inner.scan(collection, batch_size, filter, include_vectors))

    def drop_collection(self, collection: str) -> bool:
        return self._call("drop_collection", lambda: self.inner.drop_collection(collection))

    def close(self) -> None:
        self.inner.close()

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.inner, name)
        if not callable(attr):
            return attr

        def wrapped(*args: Any, **kwargs: Any) -> Any:
            return self._call(name, lambda: attr(*args, **kwargs))

        return wrapped
