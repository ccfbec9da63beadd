"""The memory store keeps the last selective filter's vectors between queries; writes must invalidate it."""

from __future__ import annotations

import numpy as np

from vectorseam.stores.memory import MemoryStore
from vectorseam.types import CollectionSpec, Record


def test_cached_filtered_rows_follow_every_write() -> None:
    rng = np.random.default_rng(0)
    store = MemoryStore()
    store.ensure_collection(CollectionSpec("c", 8))
    store.upsert("c", [Record(f"r{i}", rng.normal(size=8), "", {"t": i % 10}) for i in range(200)])
    q = rng.normal(size=8)
    f = {"t": 3}
    first = store.query("c", q, k=50, filter=f)[0]
    assert len(first) == 20 and all(h.metadata["t"] == 3 for h in first)
    assert store.query("c", q, k=50, filter=f)[0] == first  # served from the cached rows
    store.upsert("c", [Record("new", q, "", {"t": 3})])  # the best possible match, added after caching
    after_add = store.query("c", q, k=50, filter=f)[0]
    assert after_add[0].id == "new" and len(after_add) == 21
    store.upsert("c", [Record("new", -q, "", {"t": 3})])  # moved to the worst match
    assert store.query("c", q, k=50, filter=f)[0][-1].id == "new"
    store.delete("c", ["new", first[0].id])
    after_delete = store.query("c", q, k=50, filter=f)[0]
    assert {h.id for h in after_delete} == {h.id for h in first} - {first[0].id}
    store.upsert("c", [Record(first[1].id, first[1].vector if first[1].vector is not None else q, "", {"t": 4})])
    assert first[1].id not in {h.id for h in store.query("c", q, k=50, filter=f)[0]}
