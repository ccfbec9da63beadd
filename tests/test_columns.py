"""The vectorised filter mask must equal the reference evaluator ``filters.matches`` everywhere."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vectorseam import filters as F
from vectorseam.filters import Filter, matches
from vectorseam.stores.columns import ColumnIndex

KEYS = ["a", "b", "c"]
# Values chosen to hit every corner of the semantics: bool vs int, int vs float, -0.0, ints beyond
# float64 precision, strings, lists (mixed, empty), null.
numbers = st.one_of(
    st.integers(-5, 5),
    st.sampled_from([2**53, 2**53 + 1, -(2**53) - 1, 10**300, 0.5, -0.0, 1.0, 2.5, 1e300]),
    st.floats(-10, 10, allow_nan=False, allow_infinity=False),
)
# Times in several spellings of two instants, one microsecond apart, and near-misses that are not times.
times = st.sampled_from([
    "2024-01-01", "2024-01-01T01:00:00+01:00", "2023-12-31T23:59:59.999999Z", "2024-01-01T00:00:00.000001",
    "2024-02-30", "2024-01-01 00:00:00",
])
scalars = st.one_of(st.booleans(), numbers, st.sampled_from(["x", "y", "", "Ω", "1"]), times)
values = st.one_of(st.none(), scalars, st.lists(scalars, max_size=3))
metadata = st.dictionaries(st.sampled_from(KEYS), values, max_size=3)


def leaves() -> st.SearchStrategy[Filter]:
    key = st.sampled_from([*KEYS, "missing"])
    return st.one_of(
        st.builds(F.eq, key, scalars),
        st.builds(F.ne, key, scalars),
        st.builds(lambda op, k, v: getattr(F, op)(k, v), st.sampled_from(["gt", "gte", "lt", "lte"]), key,
                  st.one_of(numbers, times.filter(lambda t: F.parse_time(t) is not None))),
        st.builds(F.in_, key, st.lists(scalars, min_size=1, max_size=3)),
        st.builds(F.nin, key, st.lists(scalars, min_size=1, max_size=3)),
        st.builds(F.exists, key),
    )


trees = st.recursive(
    leaves(),
    lambda inner: st.one_of(
        st.builds(lambda cs: F.and_(*cs), st.lists(inner, min_size=1, max_size=3)),
        st.builds(lambda cs: F.or_(*cs), st.lists(inner, min_size=1, max_size=3)),
        st.builds(F.not_, inner),
    ),
    max_leaves=6,
)


def reference(f: Filter, metas: list[dict[str, Any]]) -> list[bool]:
    return [matches(f, m) for m in metas]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(metadata, max_size=25), trees)
def test_mask_equals_reference_evaluator(metas: list[dict[str, Any]], f: Filter) -> None:
    mask = ColumnIndex().mask(f, metas, generation=0)
    assert mask.dtype == np.bool_ and mask.shape == (len(metas),)
    assert mask.tolist() == reference(f, metas)


@settings(max_examples=100, deadline=None)
@given(st.lists(metadata, min_size=1, max_size=10), st.lists(metadata, min_size=1, max_size=10), trees)
def test_columns_are_rebuilt_when_the_generation_changes(
    before: list[dict[str, Any]], after: list[dict[str, Any]], f: Filter
) -> None:
    index = ColumnIndex()
    assert index.mask(f, before, generation=1).tolist() == reference(f, before)
    assert index.mask(f, after, generation=2).tolist() == reference(f, after)


def test_edits_in_place_need_a_new_generation() -> None:
    """Same length, new values: the generation counter, not the length, says the columns are stale."""
    metas: list[dict[str, Any]] = [{"a": 1}, {"a": 2}]
    index = ColumnIndex()
    assert index.mask(F.eq("a", 2), metas, generation=1).tolist() == [False, True]
    metas[0] = {"a": 2}
    assert index.mask(F.eq("a", 2), metas, generation=2).tolist() == [True, True]


def test_large_ints_compare_exactly() -> None:
    metas: list[dict[str, Any]] = [{"a": 2**53}, {"a": 2**53 + 1}, {"a": [1, 2**53 + 1]}, {"a": 10**400}]
    index = ColumnIndex()
    assert index.mask(F.eq("a", 2**53 + 1), metas, 0).tolist() == [False, True, True, False]
    assert index.mask(F.eq("a", float(2**53)), metas, 0).tolist() == [True, False, False, False]
    # (filters.eq refuses a bound this large; the column must still compare it exactly if given one)
    assert index.mask(F.Compare("eq", "a", 10**400), metas, 0).tolist() == [False, False, False, True]


def test_million_record_mask_is_fast_and_exact() -> None:
    """The point of the module: a filter over many records is numpy work, not a Python loop per record."""
    import time

    n = 200_000
    metas: list[dict[str, Any]] = [{"bucket": i % 10, "tag": ["x", "y"][i % 2]} for i in range(n)]
    f = F.and_(F.eq("bucket", 3), F.ne("tag", "x"))
    index = ColumnIndex()
    index.mask(f, metas, 0)  # builds the columns
    start = time.perf_counter()
    mask = index.mask(f, metas, 0)
    elapsed = time.perf_counter() - start
    assert int(mask.sum()) == n // 10
    assert mask[3] and mask[13] and not mask[4]
    assert elapsed < 0.5, f"cached-column mask took {elapsed:.3f}s for {n} records"


# --- columns maintained write by write (the memory store reports its writes instead of rebuilding) ---

writes = st.lists(
    st.one_of(
        st.tuples(st.just("upsert"), st.lists(st.tuples(st.integers(0, 11), metadata), min_size=1, max_size=4)),
        st.tuples(st.just("delete"), st.lists(st.integers(0, 11), min_size=1, max_size=4)),
    ),
    max_size=12,
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(metadata, max_size=8), writes, st.lists(trees, min_size=1, max_size=3))
def test_columns_follow_writes_exactly(
    initial: list[dict[str, Any]], steps: list[tuple[str, Any]], filters_: list[Filter]
) -> None:
    """Upserts (overwrites and appends) and swap-deletes keep every built column equal to a rebuild."""
    from vectorseam.stores.memory_collection import Collection
    from vectorseam.types import CollectionSpec, Record

    coll = Collection(CollectionSpec("c", 2, "dot"))
    vec = np.ones(2, dtype=np.float32)
    coll.upsert([Record(f"r{i}", vec, "", m) for i, m in enumerate(initial)])
    for f in filters_:  # build the columns these filters read before any write
        coll.mask(f)
    for kind, arg in steps:
        if kind == "upsert":
            coll.upsert(list({f"r{i}": Record(f"r{i}", vec, "", m) for i, m in arg}.values()))
        else:
            coll.delete_ids([f"r{i}" for i in arg])
        for f in filters_:
            mask = coll.mask(f)
            assert mask is not None
            assert mask.tolist() == reference(f, coll.metas), (kind, arg, f)
            # The sorted indexes (forced on whatever the share) answer exactly too.
            rows = coll.columns.rows(f, coll.metas, index_share=1.0)
            assert rows.tolist() == [i for i, hit in enumerate(reference(f, coll.metas)) if hit], (kind, arg, f)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(metadata, max_size=25), trees)
def test_sorted_index_rows_equal_the_reference(metas: list[dict[str, Any]], f: Filter) -> None:
    index = ColumnIndex()
    want = [i for i, hit in enumerate(reference(f, metas)) if hit]
    assert index.rows(f, metas, index_share=1.0).tolist() == want  # a scan, which asks for an index
    assert index.rows(f, metas, index_share=1.0).tolist() == want  # the index
    assert index.rows(f, metas, index_share=0.0).tolist() == want  # a scan again


def test_a_selective_leaf_skips_the_scan(monkeypatch: Any) -> None:
    n = 50_000
    metas: list[dict[str, Any]] = [{"cat": i % 1000, "s": f"v{i % 500}", "x": i / n} for i in range(n)]
    index = ColumnIndex()
    for f in (F.eq("cat", 7), F.eq("s", "v3"), F.in_("cat", [1, 2]), F.gte("x", 0.999), F.lt("x", 0.0005)):
        index.rows(f, metas)  # builds the column and its sorted index
        monkeypatch.setattr(ColumnIndex, "mask", lambda *a, **k: pytest.fail("scanned"))
        rows = index.rows(f, metas)
        monkeypatch.undo()
        assert rows.tolist() == [i for i, m in enumerate(metas) if matches(f, m)], f
    assert index.rows(F.gte("x", 0.5), metas).size == n // 2  # broad: a scan
