"""Store wrappers: one delegating base for every wrapper, and the observing wrapper the facade uses.

A wrapper (the keyword-search :class:`~vectorseam.stores.keyword_fallback.KeywordFallback`, the timing
:class:`ObservedStore`) must look to the layers above exactly like the store it wraps, including
the optional abilities (:class:`~vectorseam.store.BulkLoading`, :class:`~vectorseam.store.NativeRecommend`,
:class:`~vectorseam.store.NativeKeywordSearch`, ...) those layers test for with ``isinstance``. A
``__getattr__`` passthrough would make every wrapper *claim* every ability (``hasattr`` is true for any
name) and hides them from the type checker. So :class:`StoreWrapper` instead picks, when it is
constructed, a subclass that adds exactly the inner store's abilities; each ability method, like every
protocol method, goes through :meth:`StoreWrapper._call`, the one place a wrapper intercepts. A wrapper
that gives an ability of its own (KeywordFallback's keyword search) defines its methods, which come
first in the subclass's MRO.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar, cast

import numpy.typing as npt

from vectorseam.filters import FilterLike
from vectorseam.store import (
    BulkLoading,
    CollectionBlobs,
    NativeFacets,
    NativeGrouping,
    NativeKeywordSearch,
    NativeRecommend,
    Scrollable,
    VectorStore,
)
from vectorseam.types import Capabilities, CollectionInfo, CollectionSpec, Hit, Record, Scalar

T = TypeVar("T")
W = TypeVar("W", bound="StoreWrapper")


class StoreWrapper:
    """Implements :class:`~vectorseam.store.VectorStore` by passing every call to ``inner``.

    Subclasses override a method to change what it does, or :meth:`_call` to see every call by its
    operation name. ``StoreWrapper(inner, ...)`` and any subclass's constructor return an instance
    that also has ``bulk_load``, ``recommend``, ``keyword_search``/``hybrid_search``, the blob, scroll,
    grouping and facet methods exactly when ``inner`` has them.
    """

    def __new__(cls: type[W], inner: VectorStore, *args: Any, **kwargs: Any) -> W:
        return object.__new__(with_abilities_of(cls, inner))

    def __init__(self, inner: VectorStore) -> None:
        self.inner = inner

    def _call(self, operation: str, fn: Callable[[], T]) -> T:
        """Every delegated call runs through here (``operation`` is the method's name)."""
        return fn()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.inner!r})"

    @property
    def capabilities(self) -> Capabilities:
        return self.inner.capabilities

    def ensure_collection(self, spec: CollectionSpec) -> CollectionInfo:
        return self._call("ensure_collection", lambda: self.inner.ensure_collection(spec))

    def collections(self) -> list[CollectionInfo]:
        return self._call("collections", self.inner.collections)

    def collection_info(self, collection: str) -> CollectionInfo:
        return self._call("collection_info", lambda: self.inner.collection_info(collection))

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


# -- the optional abilities, each a mixin added only when the inner store has it ------------------------

class _Ability:
    """Base of the ability mixins; they come after the wrapper class in the MRO, so a wrapper's own
    method of the same name wins."""

    if TYPE_CHECKING:  # provided by StoreWrapper, which every class these are mixed into derives from
        inner: VectorStore

        def _call(self, operation: str, fn: Callable[[], T]) -> T: ...


class _BulkLoadingWrapper(_Ability):
    def bulk_load(self, collection: str) -> AbstractContextManager[None]:
        return self._call("bulk_load", lambda: cast(BulkLoading, self.inner).bulk_load(collection))


class _NativeRecommendWrapper(_Ability):
    def recommend(self, collection: str, positive_ids: Sequence[str], negative_ids: Sequence[str] = (),
                  k: int = 10, filter: FilterLike = None, strategy: str = "average_vector") -> list[Hit]:
        inner = cast(NativeRecommend, self.inner)
        return self._call("recommend",
                          lambda: inner.recommend(collection, positive_ids, negative_ids, k, filter, strategy))


class _NativeKeywordSearchWrapper(_Ability):
    def keyword_search(self, collection: str, query: str, k: int = 10, filter: FilterLike = None) -> list[Hit]:
        inner = cast(NativeKeywordSearch, self.inner)
        return self._call("keyword_search", lambda: inner.keyword_search(collection, query, k, filter))

    def hybrid_search(self, collection: str, query: str, vector: npt.ArrayLike, k: int = 10,
                      filter: FilterLike = None, rrf_k: float = 60, weights: Sequence[float] = (1.0, 1.0),
                      depth: int = 100) -> list[Hit]:
        inner = cast(NativeKeywordSearch, self.inner)
        return self._call("hybrid_search", lambda: inner.hybrid_search(collection, query, vector, k, filter, rrf_k,
                                                                       weights, depth))


class _CollectionBlobsWrapper(_Ability):
    def get_blob(self, collection: str, name: str) -> bytes | None:
        return self._call("get_blob", lambda: cast(CollectionBlobs, self.inner).get_blob(collection, name))

    def put_blob(self, collection: str, name: str, data: bytes) -> None:
        self._call("put_blob", lambda: cast(CollectionBlobs, self.inner).put_blob(collection, name, data))

    def delete_blob(self, collection: str, name: str) -> bool:
        return self._call("delete_blob", lambda: cast(CollectionBlobs, self.inner).delete_blob(collection, name))


class _ScrollableWrapper(_Ability):
    def scroll(self, collection: str, limit: int, after: str | None = None, filter: FilterLike = None,
               include_vectors: bool = True) -> tuple[list[Record], str | None]:
        inner = cast(Scrollable, self.inner)
        return self._call("scroll", lambda: inner.scroll(collection, limit, after, filter, include_vectors))


class _NativeGroupingWrapper(_Ability):
    def query_groups(self, collection: str, vector: npt.ArrayLike, k: int, group_by: str, group_size: int,
                     filter: FilterLike = None) -> list[list[Hit]]:
        inner = cast(NativeGrouping, self.inner)
        return self._call("query_groups",
                          lambda: inner.query_groups(collection, vector, k, group_by, group_size, filter))


class _NativeFacetsWrapper(_Ability):
    def facet_counts(self, collection: str, fields: Sequence[str], filter: FilterLike = None,
                     limit: int = 10) -> dict[str, list[tuple[Scalar, int]]]:
        inner = cast(NativeFacets, self.inner)
        return self._call("facet_counts", lambda: inner.facet_counts(collection, fields, filter, limit))


_ABILITIES: tuple[tuple[type, type[_Ability]], ...] = (
    (BulkLoading, _BulkLoadingWrapper),
    (NativeRecommend, _NativeRecommendWrapper),
    (NativeKeywordSearch, _NativeKeywordSearchWrapper),
    (CollectionBlobs, _CollectionBlobsWrapper),
    (Scrollable, _ScrollableWrapper),
    (NativeGrouping, _NativeGroupingWrapper),
    (NativeFacets, _NativeFacetsWrapper),
)


_SUBCLASSES: dict[tuple[type, tuple[type, ...]], type] = {}
_SUBCLASSES_LOCK = threading.Lock()


def with_abilities_of(cls: type[W], inner: VectorStore) -> type[W]:
    """``cls``, or a subclass of it that also has the optional abilities ``inner`` has (made once per
    combination, so instances of one wrapper over like stores share a class)."""
    mixins = tuple(mixin for protocol, mixin in _ABILITIES if isinstance(inner, protocol))
    if not mixins:
        return cls
    with _SUBCLASSES_LOCK:
        sub = _SUBCLASSES.get((cls, mixins))
        if sub is None:
            # Same name and module as ``cls``, so reprs, logs and error messages read as before.
            sub = type(cls.__name__, (cls, *mixins), {"__module__": cls.__module__, "__qualname__": cls.__qualname__})
            _SUBCLASSES[(cls, mixins)] = sub
    return cast(type[W], sub)


# -- observing store calls (the facade's hook for timing and error metrics) --------------------------

@dataclass(frozen=True, slots=True)
class StoreCall:
    """One finished call to the store: which store, which method, how long, and what it raised."""

    store: str
    operation: str
    seconds: float
    error: BaseException | None


StoreObserver = Callable[[StoreCall], None]


class ObservedStore(StoreWrapper):
    """Reports every call to the observers added with :meth:`add_observer` (none: no overhead but a
    check). Observers run on the calling thread and must not raise."""

    def __init__(self, inner: VectorStore) -> None:
        super().__init__(inner)
        self._name = inner.capabilities.name
        self._observers: tuple[StoreObserver, ...] = ()

    def add_observer(self, observer: StoreObserver) -> Callable[[], None]:
        """Start reporting to ``observer``; returns the function that stops it."""
        self._observers = (*self._observers, observer)

        def remove() -> None:
            self._observers = tuple(o for o in self._observers if o is not observer)

        return remove

    def _call(self, operation: str, fn: Callable[[], T]) -> T:
        observers = self._observers  # one snapshot: adding or removing one meanwhile is safe
        if not observers:
            return fn()
        start = time.perf_counter()
        error: BaseException | None = None
        try:
            return fn()
        except BaseException as exc:
            error = exc
            raise
        finally:
            call = StoreCall(self._name, operation, time.perf_counter() - start, error)
            for observer in observers:
                observer(call)
