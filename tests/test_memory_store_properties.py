"""Property tests: the memory store equals a brute-force model under random operations and filters.

The model is a plain dict of records; the references are ``filters.matches`` and a float64 numpy
brute force (``vectorseam.testing``). Vectors are small integers in few dimensions so that equal
vectors, exact score ties, zero vectors and duplicate ids happen often.
"""

from __future__ import annotations

import shutil
import tempfile
from typing import Any

import hypothesis.strategies as st
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from vectorseam import filters as F
from vectorseam.errors import ValidationError
from vectorseam.filters import Filter, matches, parse_filter, to_dict
from vectorseam.stores import memory
from vectorseam.stores.memory import MemoryStore
from vectorseam.testing import assert_ranking, assert_same_record, reference_candidates
from vectorseam.types import METRICS, CollectionSpec, Metadata, Metric, Record

DIM = 4
KEYS = ("a", "b", "c")
COLLECTION = "props"

# --- strategies ------------------------------------------------------------------------------------

numbers = st.one_of(st.integers(-2, 3), st.sampled_from([-1.5, 0.0, 0.5, 2.0, 2.5]))
scalars = st.one_of(numbers, st.booleans(), st.sampled_from(["x", "y", "", "é"]))
metadata_values = st.one_of(st.none(), scalars, st.lists(scalars, max_size=3))
metadata: st.SearchStrategy[Metadata] = st.dictionaries(st.sampled_from(KEYS), metadata_values, max_size=3)
vectors = st.lists(st.integers(-3, 3), min_size=DIM, max_size=DIM).map(
    lambda v: np.array(v, dtype=np.float32)
)
ids = st.sampled_from([f"id{i}" for i in range(8)] + ["ünï 🙂", "a/b 'c'"])
records = st.builds(Record, id=ids, vector=vectors, text=st.sampled_from(["", "t", "ü"]), metadata=metadata)

keys = st.sampled_from(KEYS)
leaf_filters: st.SearchStrategy[Filter] = st.one_of(
    st.builds(F.eq, keys, scalars),
    st.builds(F.ne, keys, scalars),
    st.builds(F.gt, keys, numbers),
    st.builds(F.gte, keys, numbers),
    st.builds(F.lt, keys, numbers),
    st.builds(F.lte, keys, numbers),
    st.builds(F.in_, keys, st.lists(scalars, min_size=1, max_size=3)),
    st.builds(F.nin, keys, st.lists(scalars, min_size=1, max_size=3)),
    st.builds(F.exists, keys),
)


def _combine(children: st.SearchStrategy[Filter]) -> st.SearchStrategy[Filter]:
    many = st.lists(children, min_size=1, max_size=3)
    return st.one_of(
        many.map(lambda c: F.and_(*c)),
        many.map(lambda c: F.or_(*c)),
        children.map(F.not_),
    )


filter_trees: st.SearchStrategy[Filter] = st.recursive(leaf_filters, _combine, max_leaves=8)

# --- the filter language round trip ------------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(filter_trees, st.lists(metadata, min_size=1, max_size=5))
def test_parse_of_to_dict_is_identity(tree: Filter, samples: list[Metadata]) -> None:
    rendered = to_dict(tree)
    assert parse_filter(rendered) == tree
    for meta in samples:
        assert matches(parse_filter(rendered), meta) == matches(tree, meta)


@settings(max_examples=100, deadline=None)
@given(filter_trees, metadata)
def test_not_is_complement_and_de_morgan_holds(tree: Filter, meta: Metadata) -> None:
    """Semantics every translation relies on when it pushes negations down."""
    assert matches(F.not_(tree), meta) is not matches(tree, meta)
    other = F.exists("a")
    assert matches(F.not_(F.and_(tree, other)), meta) == matches(F.or_(F.not_(tree), F.not_(other)), meta)


# --- the store against the model -------------------------------------------------------------------


class MemoryStoreMachine(RuleBasedStateMachine):
    """Writes go to ``self.store``, reads to ``self.reader`` (the same store here; another process's
    view of the same directory in :class:`SharedDirectoryMachine`)."""

    def __init__(self) -> None:
        super().__init__()
        self.store = MemoryStore()
        self.reader = self.store
        self.model: dict[str, Record] = {}
        self.metric: Metric = "cosine"

    @initialize(metric=st.sampled_from(METRICS))
    def create(self, metric: Metric) -> None:
        self.metric = metric
        info = self.store.ensure_collection(CollectionSpec(COLLECTION, DIM, metric))
        assert info.count == 0

    @rule(batch=st.lists(records, max_size=6))
    def upsert(self, batch: list[Record]) -> None:
        final = {r.id: r for r in batch}  # within a batch a later duplicate id wins
        if self.metric == "cosine" and any(not np.any(r.vector) for r in final.values()):
            # A zero vector has no direction: the whole batch is refused and nothing is written.
            with pytest.raises(ValidationError, match="zero vector"):
                self.store.upsert(COLLECTION, batch)
            return
        assert self.store.upsert(COLLECTION, batch) == len(final)
        self.model.update(final)

    @rule(doomed=st.lists(ids, max_size=4))
    def delete_ids(self, doomed: list[str]) -> None:
        present = set(doomed) & self.model.keys()
        assert self.store.delete(COLLECTION, ids=doomed) == len(present)
        for rid in present:
            del self.model[rid]

    @rule(tree=filter_trees, as_dict=st.booleans())
    def delete_by_filter(self, tree: Filter, as_dict: bool) -> None:
        doomed = [rid for rid, r in self.model.items() if matches(tree, r.metadata)]
        spec: Any = to_dict(tree) if as_dict else tree
        assert self.store.delete(COLLECTION, filter=spec) == len(doomed)
        for rid in doomed:
            del self.model[rid]

    @rule(
        queries=st.lists(vectors, min_size=1, max_size=3),
        k=st.integers(1, 12),
        tree=st.none() | filter_trees,
        as_dict=st.booleans(),
    )
    def query(self, queries: list[np.ndarray[Any, Any]], k: int, tree: Filter | None, as_dict: bool) -> None:
        spec: Any = to_dict(tree) if as_dict and tree is not None else tree
        results = self.reader.query(COLLECTION, np.stack(queries), k=k, filter=spec, include_vectors=True)
        assert len(results) == len(queries)
        # The same filter again is served from the cached rows (from the second repeat on): same answer.
        for _ in range(2):
            again = self.reader.query(COLLECTION, np.stack(queries), k=k, filter=spec, include_vectors=True)
            assert [[(h.id, h.score) for h in hs] for hs in again] == [[(h.id, h.score) for h in hs] for hs in results]
        for q, hits in zip(queries, results, strict=True):
            assert_ranking(hits, reference_candidates(list(self.model.values()), q, self.metric, tree), k)
            for h in hits:
                want = self.model[h.id]
                assert_same_record(Record(h.id, h.vector, h.text, h.metadata), want)

    @rule(tree=filter_trees)
    def count(self, tree: Filter) -> None:
        expected = sum(matches(tree, r.metadata) for r in self.model.values())
        assert self.reader.count(COLLECTION, filter=tree) == expected

    @rule(tree=st.none() | filter_trees, batch_size=st.integers(1, 4))
    def scan(self, tree: Filter | None, batch_size: int) -> None:
        pages = list(self.reader.scan(COLLECTION, batch_size=batch_size, filter=tree))
        assert all(1 <= len(p) <= batch_size for p in pages)
        seen = [r.id for p in pages for r in p]
        assert len(seen) == len(set(seen))
        assert set(seen) == {rid for rid, r in self.model.items() if matches(tree, r.metadata)}
        for page in pages:
            for r in page:
                assert_same_record(r, self.model[r.id])

    @rule(asked=st.lists(ids, max_size=5))
    def fetch(self, asked: list[str]) -> None:
        got = self.reader.fetch(COLLECTION, asked)
        assert [r.id for r in got] == [rid for rid in asked if rid in self.model]
        for r in got:
            assert_same_record(r, self.model[r.id])

    @invariant()
    def counts_agree(self) -> None:
        assert self.reader.count(COLLECTION) == len(self.model)
        (info,) = self.reader.collections()
        assert info.count == len(self.model)


MemoryStoreMachine.TestCase.settings = settings(max_examples=50, stateful_step_count=25, deadline=None)
TestMemoryStoreMachine = MemoryStoreMachine.TestCase


class SharedDirectoryMachine(MemoryStoreMachine):
    """Two stores on one directory, as two processes would hold it: one writes, the other reads (and
    they swap roles at random), with a snapshot (and tombstone pruning) after every few changes and on
    demand, so reads also start from snapshots and fall behind pruned tombstones, and a third store
    opened from the files now and then. Every read must equal the model."""

    def __init__(self) -> None:
        super().__init__()
        self._dir = tempfile.mkdtemp(prefix="vectorseam-shared-")
        self._saved = (memory.SNAPSHOT_MIN_CHANGES, memory.SNAPSHOT_MIN_SHARE)
        memory.SNAPSHOT_MIN_CHANGES, memory.SNAPSHOT_MIN_SHARE = 3, 0.0
        self.store = MemoryStore(self._dir)
        self.reader = MemoryStore(self._dir)

    @rule()
    def snapshot(self) -> None:
        if self.store.collections():
            self.store.compact(COLLECTION)

    @rule()
    def swap_roles(self) -> None:
        self.store, self.reader = self.reader, self.store

    @rule()
    def reopen_reader(self) -> None:
        self.reader.close()
        self.reader = MemoryStore(self._dir)

    def teardown(self) -> None:
        memory.SNAPSHOT_MIN_CHANGES, memory.SNAPSHOT_MIN_SHARE = self._saved
        self.store.close()
        self.reader.close()
        shutil.rmtree(self._dir, ignore_errors=True)


SharedDirectoryMachine.TestCase.settings = settings(max_examples=30, stateful_step_count=25, deadline=None)
TestSharedDirectoryMachine = SharedDirectoryMachine.TestCase


@settings(max_examples=60, deadline=None)
@given(
    st.sampled_from(METRICS),
    st.lists(records, min_size=1, max_size=25),
    st.lists(vectors, min_size=1, max_size=4),
    st.integers(1, 30),
    st.none() | filter_trees,
)
def test_query_equals_brute_force(
    metric: Metric, batch: list[Record], queries: list[np.ndarray[Any, Any]], k: int, tree: Filter | None
) -> None:
    """One shot version of the machine's query rule, over larger collections and k."""
    if metric == "cosine":  # zero vectors are refused under cosine (see the machine's upsert rule)
        batch = [r for r in batch if np.any(r.vector)]
    store = MemoryStore()
    store.ensure_collection(CollectionSpec(COLLECTION, DIM, metric))
    store.upsert(COLLECTION, batch)
    model = list({r.id: r for r in batch}.values())
    results = store.query(COLLECTION, np.stack(queries), k=k, filter=tree)
    for q, hits in zip(queries, results, strict=True):
        assert_ranking(hits, reference_candidates(model, q, metric, tree), k)
