"""The memory store against the conformance mixins of the search backend API (issue 23): count, scroll
by cursor, group_by, facets, export/import and snapshot/restore, in memory and persisted.

The memory store pages by id itself (``Scrollable``) and counts facets from its filter columns
(``NativeFacets``), see :mod:`vectorseam.stores.memory_search_api`; group_by runs through the emulation
of :mod:`vectorseam.retrieval.grouping`. The mixins check the emulations on this store as well. Below them,
facet counts and scroll pages after random writes (the columns and the sorted ids follow every write)
against the reference.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from vectorseam.filters import matches, parse_filter
from vectorseam.retrieval.facets import count_fields
from vectorseam.retrieval.scroll import scroll
from vectorseam.store import NativeFacets, Scrollable, VectorStore
from vectorseam.stores.memory import MemoryStore
from vectorseam.testing.conformance import SearchApiTests
from vectorseam.types import CollectionSpec, Metadata, Record
from vectorseam.values import value_key


class TestMemorySearchApi(SearchApiTests):
    @pytest.fixture
    def store(self) -> Iterator[VectorStore]:
        s = MemoryStore()
        yield s
        s.close()


class TestPersistentMemorySearchApi(SearchApiTests):
    @pytest.fixture
    def store(self, tmp_path: Path) -> Iterator[VectorStore]:
        s = MemoryStore(tmp_path / "store")
        yield s
        s.close()


def random_metadata(rng: np.random.Generator) -> Metadata:
    meta: Metadata = {}
    for key in ("a", "b", "c"):
        roll = int(rng.integers(0, 8))
        if roll == 0:
            continue
        if roll == 1:
            meta[key] = None
        elif roll == 2:
            meta[key] = [str(rng.choice(["x", "y", "z"])) for _ in range(int(rng.integers(0, 3)))]
        elif roll == 3:
            meta[key] = bool(rng.integers(0, 2))
        elif roll == 4:
            meta[key] = float(rng.integers(0, 3)) + (0.5 if rng.integers(0, 2) else 0.0)
        elif roll == 5:
            meta[key] = int(rng.integers(0, 3))
        else:
            meta[key] = str(rng.choice(["x", "y", "z", "Grün"]))
    return meta


@pytest.mark.parametrize("seed", range(6))
def test_native_facets_and_scroll_follow_random_writes(seed: int) -> None:
    rng = np.random.default_rng(seed)
    store = MemoryStore()
    assert isinstance(store, NativeFacets) and isinstance(store, Scrollable)
    store.ensure_collection(CollectionSpec("c", 4))
    live: dict[str, Record] = {}
    for step in range(12):
        batch = [Record(f"r{int(rng.integers(0, 300)):03d}", rng.normal(size=4).astype(np.float32), "",
                        random_metadata(rng)) for _ in range(int(rng.integers(1, 40)))]
        store.upsert("c", batch)
        live.update({r.id: r for r in batch})
        if step % 3 == 2:
            doomed = [rid for rid in live if rng.random() < 0.2]
            store.delete("c", ids=doomed)
            for rid in doomed:
                live.pop(rid)
        for spec in (None, {"a": "x"}, {"b": {"$gte": 1}}, {"$not": {"c": True}}):
            tree = parse_filter(spec)
            kept = [r for r in live.values() if matches(tree, r.metadata)]
            limit = int(rng.integers(1, 6))
            want = count_fields([r.metadata for r in kept], ("a", "b", "c", "d"), limit)
            got = store.facet_counts("c", ["a", "b", "c", "d"], tree, limit)
            assert {k: [(value_key(v), n) for v, n in vs] for k, vs in got.items()} == {
                k: [(value_key(v), n) for v, n in vs] for k, vs in want.items()}, (step, spec)
            pages, cursor = [], None
            while True:
                page = scroll(store, "c", 7, cursor, tree)
                pages += [r.id for r in page.records]
                if page.next_cursor is None:
                    break
                cursor = page.next_cursor
            assert pages == sorted(r.id for r in kept), (step, spec)
    store.close()
