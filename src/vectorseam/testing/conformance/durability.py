"""Durability: what a store acknowledged survives a reopen (every write is durable when its call returns).

Other parts of the suite reopen the store after a single kind of write; these tests run a whole
history (creates, overwrites, deletes by id and by filter, a dropped collection, writes after all
those) and then compare the reopened store with the expected state record by record, by search and
by filter. They need a test class whose :meth:`~ConformanceBase.reopen` connects anew: with the
default hook, which keeps the same store, nothing would be checked.
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from vectorseam.errors import CollectionNotFoundError
from vectorseam.filters import matches, parse_filter
from vectorseam.store import VectorStore
from vectorseam.testing.conformance.base import ConformanceBase
from vectorseam.testing.reference import (
    assert_ranking,
    assert_same_record,
    catalog_records,
    make_records,
    random_vectors,
    reference_candidates,
    vector_of,
)
from vectorseam.types import Metric, Record

_DELETE_FILTER = {"color": "red"}


class DurabilityTests(ConformanceBase):
    """Acknowledged writes after a reopen (persistent stores)."""

    def write_history(self, store: VectorStore, name: str) -> dict[str, tuple[Metric, Sequence[Record]]]:
        """Writes of every kind into ``name`` and ``name + "b"`` (``name + "x"`` is created and dropped);
        returns what each collection must hold: metric, records."""
        records = catalog_records()
        self.filled(store, name, records)
        other = make_records(random_vectors(3, 4, seed=70), prefix="o")
        self.filled(store, name + "b", other, "dot")
        self.filled(store, name + "x", make_records(random_vectors(2, 4, seed=71)))
        assert store.drop_collection(name + "x") is True
        replaced = Record("c05", random_vectors(1, self.dimension, seed=72)[0], "replaced", {"color": "green"})
        store.upsert(name, [replaced])
        assert store.delete(name, ids=["c01", "c02"]) == 2
        doomed = parse_filter(_DELETE_FILTER)
        state = {r.id: r for r in [*records, replaced] if r.id not in {"c01", "c02"}}
        removed = [i for i, r in state.items() if matches(doomed, r.metadata)]
        assert store.delete(name, filter=_DELETE_FILTER) == len(removed)
        for i in removed:
            del state[i]
        # writes after a delete by filter (a store that rebuilds state on such a delete keeps what follows)
        late = Record("late", random_vectors(1, self.dimension, seed=73)[0], "late", {"tags": ["a"]})
        store.upsert(name, [late])
        state["late"] = late
        assert store.delete(name, ids=["c03"]) == 1
        del state["c03"]
        return {name: ("cosine", sorted(state.values(), key=lambda r: r.id)), name + "b": ("dot", other)}

    def assert_holds(
        self, store: VectorStore, expected: dict[str, tuple[Metric, Sequence[Record]]], gone: str
    ) -> None:
        listed = {c.name: c.count for c in store.collections()}
        assert gone not in listed, f"dropped collection {gone!r} is back after a reopen"
        with pytest.raises(CollectionNotFoundError):
            store.count(gone)
        for name, (metric, records) in expected.items():
            assert listed.get(name) == len(records), f"{name!r} lists {listed.get(name)} records, not {len(records)}"
            ids = [r.id for r in records]
            got = store.fetch(name, ids)
            assert [g.id for g in got] == ids
            for g, r in zip(got, records, strict=True):
                assert_same_record(g, r)
            scanned = sorted(r.id for page in store.scan(name, batch_size=16, include_vectors=False) for r in page)
            assert scanned == sorted(ids)
            query = random_vectors(1, len(vector_of(records[0])), seed=74)[0]
            assert_ranking(store.query(name, query, k=5)[0], reference_candidates(records, query, metric), 5)
        first, (_, records) = next(iter(expected.items()))
        self.check_filter(store, first, records, {"tags": "a"})
        assert store.count(first, filter=_DELETE_FILTER) == 0

    def test_acknowledged_writes_survive_reopen(self, store: VectorStore, collection_name: str) -> None:
        if not store.capabilities.persistent:
            pytest.skip(f"the {store.capabilities.name} store is not persistent: nothing outlives it")
        if not self.reopens():
            pytest.skip("this test class does not override reopen(), so a reopen would keep the same store")
        expected = self.write_history(store, collection_name)
        store = self._reopen(store)
        self.assert_holds(store, expected, collection_name + "x")
