"""Keyset scroll and facet counts of the memory store (:class:`~vectorseam.store.Scrollable`,
:class:`~vectorseam.store.NativeFacets`), over a :class:`~vectorseam.stores.memory_collection.Collection`.

* **scroll**: the collection's ids sorted once (numpy, code point order as Python compares them) and
  kept until the next write that adds or removes a record; a page is one binary search for the
  position after the cursor's id and a walk forward through the filter's mask. The position handed
  out is the last id returned, so a page after writes starts exactly after it (a re-sort costs one
  ``argsort`` of the ids: about a second at a million records, once per write between pages).
* **facets**: counted from the filter columns (:mod:`vectorseam.stores.columns`), which hold every
  value of a key as typed numpy arrays kept current by the writes: booleans and numbers by
  ``np.unique``, strings by ``np.bincount`` of their codes, each distinct element of a list once per
  record. A column holding a value numpy cannot count exactly (an int beyond 2**53, a type it does not
  know) is counted from the metadata itself, as the reference does.
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from vectorseam.stores.columns import _BOOL, _INEXACT, _NONE, _NUMBER, _STRING, _UNSUPPORTED
from vectorseam.stores.memory_collection import Collection
from vectorseam.types import Record, Scalar
from vectorseam.values import ValueKey, distinct_values, facet_top, value_key

BoolArray = npt.NDArray[np.bool_]
_ORDERS: weakref.WeakKeyDictionary[Collection, tuple[int, npt.NDArray[np.str_], npt.NDArray[np.int64]]] = (
    weakref.WeakKeyDictionary())
_WALK = 4096  # rows examined at a time when a filter admits few of them


def key_order(coll: Collection) -> tuple[npt.NDArray[np.str_], npt.NDArray[np.int64]]:
    """The collection's ids sorted, and the row of each (cached until a write adds or removes a record)."""
    cached = _ORDERS.get(coll)
    if cached is not None and cached[0] == coll.writes:
        return cached[1], cached[2]
    ids = np.asarray(coll.ids[: coll.n], dtype=np.str_) if coll.n else np.zeros(0, dtype="<U1")
    order = np.argsort(ids, kind="stable").astype(np.int64)
    _ORDERS[coll] = (coll.writes, ids[order], order)
    return ids[order], order


def scroll(coll: Collection, limit: int, after: str | None, mask: BoolArray | None,
           include_vectors: bool) -> tuple[list[Record], str | None]:
    """Up to ``limit`` records ``mask`` admits with ids after ``after``, in id order, and the last id
    returned when more may follow (see :meth:`vectorseam.store.Scrollable.scroll`)."""
    keys, order = key_order(coll)
    start = 0 if after is None else int(np.searchsorted(keys, after, side="right"))
    chosen: list[int] = []
    while start < order.size and len(chosen) <= limit:
        rows = order[start : start + max(_WALK, 2 * limit)]
        start += rows.size
        if mask is not None:
            rows = rows[mask[rows]]
        chosen.extend(rows[: limit + 1 - len(chosen)].tolist())
    records = [coll.record(pos, include_vectors) for pos in chosen[:limit]]
    return records, (records[-1].id if len(chosen) > limit else None)


def facet_counts(coll: Collection, fields: Sequence[str], mask: BoolArray | None,
                 limit: int) -> dict[str, list[tuple[Scalar, int]]]:
    return {name: _field_counts(coll, name, mask, limit) for name in fields}


def _field_counts(coll: Collection, name: str, mask: BoolArray | None, limit: int) -> list[tuple[Scalar, int]]:
    if coll.n == 0:
        return []
    col = coll.columns.column(name, coll.metas)
    if col.flagged[_INEXACT] or col.flagged[_UNSUPPORTED]:
        return _reference_counts(coll, name, mask, limit)
    size = col.size
    kind = col.kind[:size]
    live = kind != _NONE
    rows: npt.NDArray[np.int64] | None = None
    if not col.dense:
        rows = col.rows[:size]
    if mask is not None:
        live &= mask[:size] if rows is None else mask[np.clip(rows, 0, None)] & (rows >= 0)
    counts: dict[ValueKey, tuple[Scalar, int]] = {}

    def per_record(values: npt.NDArray[Any], which: BoolArray) -> npt.NDArray[Any]:
        """``values`` of the elements in ``which``, each distinct value once per record."""
        if rows is None:
            return values[which]
        pairs = np.unique(np.rec.fromarrays([rows[which], values[which]]))
        return np.asarray(pairs["f1"])

    bools = per_record(col.boolv[:size], live & (kind == _BOOL))
    for flag in (False, True):
        n = int((bools == flag).sum())
        if n:
            counts[value_key(flag)] = (flag, n)
    numbers, how_many = np.unique(per_record(col.num[:size], live & (kind == _NUMBER)), return_counts=True)
    top = _threshold(how_many, limit)
    for value, n in zip(numbers[how_many >= top].tolist(), how_many[how_many >= top].tolist(), strict=True):
        counts[value_key(value)] = (value, n)
    codes = per_record(col.scode[:size], live & (kind == _STRING))
    if codes.size:
        per_code = np.bincount(codes, minlength=len(col.codes))
        top = _threshold(per_code[per_code > 0], limit)
        wanted = set(np.flatnonzero(per_code >= max(top, 1)).tolist())
        for text, code in col.codes.items():
            if code in wanted:
                counts[value_key(text)] = (text, int(per_code[code]))
    return facet_top(counts, limit)


def _threshold(counts: npt.NDArray[np.int64], limit: int) -> int:
    """The count the ``limit``-th most frequent value has (every value with as many may make the list)."""
    if counts.size <= limit:
        return 0
    return int(np.partition(counts, counts.size - limit)[counts.size - limit])


def _reference_counts(coll: Collection, name: str, mask: BoolArray | None, limit: int) -> list[tuple[Scalar, int]]:
    counts: dict[ValueKey, tuple[Scalar, int]] = {}
    positions = range(coll.n) if mask is None else np.flatnonzero(mask[: coll.n]).tolist()
    for pos in positions:
        for value in distinct_values(coll.metas[pos].get(name)):
            key = value_key(value)
            first, n = counts.get(key, (value, 0))
            counts[key] = (first, n + 1)
    return facet_top(counts, limit)
