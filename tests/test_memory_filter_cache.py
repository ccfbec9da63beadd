"""The memory store keeps the last selective filter's vectors between queries; writes must invalidate it."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from vectorseam.filters import matches, parse_filter
from vectorseam.stores import columns, memory_collection
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


def test_writes_update_columns_and_cached_rows_instead_of_rebuilding(monkeypatch: pytest.MonkeyPatch) -> None:
    """After a one-record write, a filtered query rebuilds neither a column nor the cached rows (each
    used to cost a pass over every record: 400 ms at a million), and its answers stay exact."""
    rng = np.random.default_rng(1)
    n = 1500
    store = MemoryStore()
    store.ensure_collection(CollectionSpec("c", 8))
    store.upsert("c", [Record(f"r{i}", rng.normal(size=8), "", {"t": i % 10, "tags": [f"g{i % 7}"]})
                       for i in range(n)])
    q = rng.normal(size=8)
    flt = {"t": 3}
    varied = [{"tags": "g2"}, {"t": {"$gte": 8}}]
    for f in (flt, flt, *varied):  # the second query caches flt's rows; the others build columns
        store.query("c", q, k=10, filter=f)
    built: list[str] = []
    monkeypatch.setattr(columns._Column, "__init__", _counting(columns._Column.__init__, built, "column"))
    monkeypatch.setattr(memory_collection._FilterCache, "__init__",
                        _counting(memory_collection._FilterCache.__init__, built, "cache"))
    model = {r.id: r for page in store.scan("c") for r in page}
    for step in range(40):
        rid = f"r{int(rng.integers(0, n + 30))}"
        if step % 3 == 2:
            store.delete("c", ids=[rid])
            model.pop(rid, None)
        else:
            rec = Record(rid, rng.normal(size=8), "", {"t": int(rng.integers(0, 10)), "tags": [f"g{step % 7}"]})
            store.upsert("c", [rec])
            model[rid] = rec
        for f in (flt, *varied):
            hits = store.query("c", q, k=10, filter=f)[0]
            want = sorted((r for r in model.values() if matches(parse_filter(f), r.metadata)),
                          key=lambda r: -float(np.dot(q, r.vector) / np.linalg.norm(r.vector)))[:10]
            assert [h.id for h in hits] == [r.id for r in want], (step, f)
    assert built == [], built


def _counting(real: Any, log: list[str], name: str) -> Any:
    def init(self: Any, *args: Any, **kwargs: Any) -> None:
        log.append(name)
        real(self, *args, **kwargs)

    return init
