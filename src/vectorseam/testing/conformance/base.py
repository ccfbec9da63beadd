"""What every conformance mixin shares: the hooks, the fixtures and the write/filter helpers.

Each concern of the suite (collections, writes, filters, ...) is a mixin that subclasses
:class:`ConformanceBase`, so a backend's test class can combine exactly the concerns it supports and
still gets one set of fixtures and hooks. Gated tests call :meth:`ConformanceBase.require` so that a
class inheriting the whole suite skips, with the reason, what its store cannot do.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, TypeVar

import numpy as np
import pytest

from vectorseam.errors import FilterError, VectorseamError
from vectorseam.filters import matches, operators, parse_filter
from vectorseam.store import VectorStore
from vectorseam.testing.reference import unique_collection_name, vector_of
from vectorseam.types import CollectionInfo, CollectionSpec, Metric, Record

AbilityT = TypeVar("AbilityT")


class ConformanceBase:
    """Subclass (through the mixins) in a ``Test*`` class that provides a ``store`` fixture: a fresh,
    empty store, closed after the test."""

    dimension = 8
    large_batch_size = 10_000

    _live_store: VectorStore
    _created: list[str]

    # -- hooks -------------------------------------------------------------------------------------
    def reopen(self, store: VectorStore) -> VectorStore:
        """Close ``store`` and return a new connection to the same data (default: the same store).

        Persistent backends override this so that the suite checks state survives a reconnect at
        the points where it must; the override closes whatever it returns at teardown.
        """
        return store

    # -- fixtures and helpers ---------------------------------------------------------------------
    @pytest.fixture(autouse=True)
    def _drop_created_collections(self, store: VectorStore) -> Iterator[None]:
        """Remove what a test created, so shared remote servers don't fill up (best effort)."""
        self._live_store = store
        self._created = []
        yield
        for name in self._created:
            with contextlib.suppress(VectorseamError):
                self._live_store.drop_collection(name)

    @pytest.fixture
    def collection_name(self, request: pytest.FixtureRequest) -> str:
        return unique_collection_name(request.node.name)

    def _reopen(self, store: VectorStore) -> VectorStore:
        new = self.reopen(store)
        self._live_store = new
        return new

    def reopens(self) -> bool:
        """Whether this test class reconnects in :meth:`reopen` (rather than keeping the same store)."""
        return type(self).reopen is not ConformanceBase.reopen

    @staticmethod
    def require(store: VectorStore, ability: type[AbilityT], why: str) -> AbilityT:
        """``store`` as ``ability`` (a runtime-checkable protocol of :mod:`vectorseam.store`), or skip.

        The skip names the store and says why the test needs the ability, so a class that inherits
        the whole suite reports each part its store does not take part in.
        """
        if not isinstance(store, ability):
            pytest.skip(f"the {store.capabilities.name} store is not {ability.__name__}: {why}")
        return store

    def create(
        self,
        store: VectorStore,
        name: str,
        dimension: int | None = None,
        metric: Metric = "cosine",
        metadata: Mapping[str, str] | None = None,
    ) -> CollectionInfo:
        spec = CollectionSpec(name, dimension or self.dimension, metric, dict(metadata or {}))
        self._created.append(name)
        return store.ensure_collection(spec)

    def filled(
        self, store: VectorStore, name: str, records: Sequence[Record], metric: Metric = "cosine"
    ) -> list[Record]:
        dimension = int(np.asarray(records[0].vector).shape[0]) if records else self.dimension
        self.create(store, name, dimension, metric)
        assert store.upsert(name, records) == len(records)
        return list(records)

    def check_filter(
        self, store: VectorStore, name: str, records: Sequence[Record], spec: Mapping[str, Any]
    ) -> None:
        """Count, query and scan under ``spec`` must select exactly what ``filters.matches`` selects."""
        tree = parse_filter(spec)
        expected = sorted(r.id for r in records if matches(tree, r.metadata))
        unsupported = operators(tree) - store.capabilities.filter_operators if tree is not None else set()
        query_vector = vector_of(records[0])

        def count() -> list[str] | int:
            return store.count(name, filter=tree)

        def query() -> list[str] | int:
            return sorted(h.id for h in store.query(name, query_vector, k=len(records), filter=spec)[0])

        def scan() -> list[str] | int:
            return sorted(r.id for page in store.scan(name, batch_size=16, filter=tree) for r in page)

        for what, call, want in (
            ("count", count, len(expected)),
            ("query", query, expected),
            ("scan", scan, expected),
        ):
            if unsupported:
                try:
                    got = call()
                except FilterError:
                    continue
            else:
                got = call()
            assert got == want, (
                f"{what} with filter {spec!r} disagrees with filters.matches: got {got!r}, expected {want!r}"
                + (f" (operators {sorted(unsupported)} are not in the store's capabilities: "
                   "it must raise FilterError or answer exactly)" if unsupported else "")
            )

    def check_filters(
        self, store: VectorStore, name: str, records: Sequence[Record], specs: Sequence[Mapping[str, Any]]
    ) -> None:
        for spec in specs:
            self.check_filter(store, name, records, spec)

