"""Vectorised filter evaluation for the memory store: per-key typed columns, one numpy pass per leaf.

Why: evaluating :func:`vectorseam.filters.matches` record by record costs about a microsecond per
record and condition in Python, so a filtered query over a million records spent seconds building
its mask before any vector was scored. Here each metadata key that a filter reads becomes a typed
column once, and every filter node is a numpy expression over it.

A column is a table of *elements*: a scalar value is one element of its record, a list value is
one element per item, an absent or null value is none. Every leaf of the filter language is "some
element of the record satisfies P" (or its negation), so a leaf is one vectorised test over the
elements followed by a scatter to their records. The semantics are those of
:func:`~vectorseam.filters.matches`, and tests/test_columns.py checks the two agree on random
metadata, random filter trees and random sequences of writes.

Where numpy cannot reproduce Python's comparison exactly (ints beyond 2**53 lose precision as
float64; ints too large for a float at all), that leaf falls back to the reference evaluator, so
results are never approximate.
Time ranges compare int64 epoch microseconds, parsed once per distinct string of the column.

**Maintained write by write.** A column is built on the first filter that reads its key (one pass
over the metadata), then kept current by the collection's writes: an upsert rewrites the elements
of the rows it touches, a delete moves the rows the collection moved (it swaps the last row into
each hole). Rebuilding after every write cost 400 ms per key at a million records; an update costs
O(rows written). Two layouts:

* **dense** (every record has at most one element, the common case): element i *is* record i, kind 0
  where the record has no value, so a leaf needs no scatter and an update is an assignment;
* **sparse** (some record holds a list): elements carry their record number; an update marks the
  row's old elements dead (kind 0, which no test matches) and appends the new ones; the table is
  compacted when half of it is dead.

**Sorted indexes for selective leaves.** A scan costs O(records) however few match: at a million
records the mask and its conversion to row numbers took longer than scoring a 0.1% filter's rows.
For equality, ``$in`` and number ranges a column also keeps its elements sorted by value (built on
the first selective such filter), so :meth:`ColumnIndex.rows` finds the matching rows with two binary
searches when they are few. Elements written after the sort are *touched*: left out of the sorted answer and
tested against their current values instead; past a few thousand touched elements the sort is
redone on the next lookup.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from vectorseam.filters import And, Compare, Exists, Filter, In, Not, Or, matches, parse_time

BoolArray = npt.NDArray[np.bool_]
IntArray = npt.NDArray[np.int64]

_NONE, _BOOL, _NUMBER, _STRING, _OTHER = 0, 1, 2, 3, 4
_INEXACT, _UNSUPPORTED = 1, 2  # element flags: the column's numeric/any leaves must use the reference
_EXACT_LIMIT = 2**53  # every int up to this magnitude is exact as a float64
_RANGE: dict[str, Callable[[Any, Any], Any]] = {
    "gt": operator.gt,
    "gte": operator.ge,
    "lt": operator.lt,
    "lte": operator.le,
}
_NAN = float("nan")
INDEX_MAX_SHARE = 0.02  # a leaf matching more than this share of the records is answered by a scan


class _Sorted:
    """A column's elements sorted by one key (number, or string code) as of the sort; elements written
    since are ``touched`` (see the module docstring)."""

    def __init__(self, keys: npt.NDArray[Any]) -> None:
        self.order = np.argsort(keys, kind="stable").astype(np.int64)
        self.keys = keys[self.order]
        self.touched: set[int] = set()


class _Column:
    """Elements of one metadata key across all records (see the module docstring)."""

    def __init__(self, key: str, metas: Sequence[Mapping[str, Any]]) -> None:
        self.key = key
        self.n = 0  # records covered
        self.size = 0  # elements in use (dense: == n)
        self.dead = 0  # sparse: elements of overwritten or deleted rows, not yet compacted away
        self.dense = True
        self.codes: dict[str, int] = {}
        self.flagged = [0, 0, 0]  # live elements per flag value (index _INEXACT, _UNSUPPORTED)
        self._times: tuple[int, npt.NDArray[np.int64], BoolArray] | None = None  # see time_range
        self._sorted: dict[str, _Sorted] = {}  # "num" / "str": elements sorted by number / string code
        self.wants_index = False  # set once a selective leaf read the key (broad ones never pay a sort)
        self._alloc(max(len(metas), 16))
        self.set_rows(np.arange(len(metas), dtype=np.int64), metas)

    # -- storage --------------------------------------------------------------------------------------
    def _alloc(self, capacity: int) -> None:
        self.kind = np.zeros(capacity, dtype=np.int8)
        self.num = np.full(capacity, _NAN, dtype=np.float64)
        self.boolv = np.zeros(capacity, dtype=np.bool_)
        self.scode = np.full(capacity, -1, dtype=np.int64)
        self.flag = np.zeros(capacity, dtype=np.int8)
        self.rows = np.zeros(capacity if not self.dense else 0, dtype=np.int64)

    def _arrays(self) -> list[str]:
        return ["kind", "num", "boolv", "scode", "flag"] + ([] if self.dense else ["rows"])

    def _grow(self, needed: int) -> None:
        capacity = self.kind.shape[0]
        if needed <= capacity:
            return
        capacity = max(needed, int(capacity * 1.25) + 16)
        fill = {"kind": 0, "num": _NAN, "boolv": False, "scode": -1, "flag": 0, "rows": -1}
        for name in self._arrays():
            old = getattr(self, name)
            new = np.full(capacity, fill[name], dtype=old.dtype)
            new[: self.size] = old[: self.size]
            setattr(self, name, new)

    @property
    def exact(self) -> bool:
        return self.flagged[_INEXACT] == 0

    @property
    def supported(self) -> bool:
        return self.flagged[_UNSUPPORTED] == 0

    def _encode(self, item: object) -> tuple[int, float, bool, int, int]:
        """(kind, number, bool, string code, flag) of one element."""
        if isinstance(item, bool):
            return _BOOL, _NAN, item, -1, 0
        if isinstance(item, int | float):
            flag = _INEXACT if isinstance(item, int) and abs(item) > _EXACT_LIMIT else 0
            try:
                return _NUMBER, float(item), False, -1, flag
            except OverflowError:
                return _NUMBER, _NAN, False, -1, _INEXACT
        if isinstance(item, str):
            return _STRING, _NAN, False, self.codes.setdefault(item, len(self.codes)), 0
        return _OTHER, _NAN, False, -1, _UNSUPPORTED

    # -- writes ---------------------------------------------------------------------------------------
    def set_rows(self, positions: IntArray, metas: Sequence[Mapping[str, Any]]) -> None:
        """Records ``positions`` now hold ``metas[position]`` (positions past ``n`` are appended)."""
        if positions.size == 0:
            return
        values = [metas[int(p)].get(self.key) for p in positions]
        if self.dense and any(isinstance(v, list | tuple) for v in values):
            self._to_sparse()
        n = max(self.n, int(positions.max()) + 1)
        if self.dense:
            self._grow(n)
            self._unflag(positions[positions < self.size])
            encoded = [self._encode(v) if v is not None else (_NONE, _NAN, False, -1, 0) for v in values]
            self._assign(positions, encoded)
            self.n = self.size = n
            self._touch(positions)
            return
        self._kill(positions[positions < self.n])
        rows: list[int] = []
        encoded = []
        for p, v in zip(positions.tolist(), values, strict=True):
            if v is None:
                continue
            for item in v if isinstance(v, list | tuple) else (v,):
                rows.append(p)
                encoded.append(self._encode(item))
        start = self.size
        self._grow(start + len(rows))
        self.size = start + len(rows)
        appended = np.arange(start, self.size, dtype=np.int64)
        self._assign(appended, encoded)
        self.rows[start : self.size] = rows
        self.n = n
        self._touch(appended)
        if self.dead > self.size // 2:
            self._compact()

    def _assign(self, at: IntArray, encoded: list[tuple[int, float, bool, int, int]]) -> None:
        if not encoded:
            return
        kinds, nums, bools, codes, flags = zip(*encoded, strict=True)
        self.kind[at] = kinds
        self.num[at] = nums
        self.boolv[at] = bools
        self.scode[at] = codes
        self.flag[at] = flags
        if any(flags):
            self.flagged[_INEXACT] += flags.count(_INEXACT)
            self.flagged[_UNSUPPORTED] += flags.count(_UNSUPPORTED)

    def _unflag(self, elements: IntArray) -> None:
        if not (self.flagged[_INEXACT] or self.flagged[_UNSUPPORTED]):
            return  # nothing flagged: nothing to count down (the common case, checked per write)
        flags = self.flag[elements]
        self.flagged[_INEXACT] -= int((flags == _INEXACT).sum())
        self.flagged[_UNSUPPORTED] -= int((flags == _UNSUPPORTED).sum())

    def _kill(self, positions: IntArray) -> None:
        """Sparse: mark every element of these records dead."""
        if positions.size == 0:
            return
        dead = np.flatnonzero(np.isin(self.rows[: self.size], positions) & (self.kind[: self.size] != _NONE))
        self._unflag(dead)
        for name, fill in (("kind", 0), ("num", _NAN), ("boolv", False), ("scode", -1), ("flag", 0),
                           ("rows", -1)):
            getattr(self, name)[dead] = fill
        self.dead += int(dead.size)
        self._touch(dead)

    def _to_sparse(self) -> None:
        live = np.flatnonzero(self.kind[: self.size] != _NONE)
        arrays = {name: getattr(self, name)[: self.size][live] for name in ("kind", "num", "boolv", "scode", "flag")}
        self.dense = False
        self._alloc(max(live.size * 2, 16))
        for name, values in arrays.items():
            getattr(self, name)[: live.size] = values
        self.rows[: live.size] = live
        self.size = live.size
        self.dead = 0
        self._sorted.clear()  # element numbers changed

    def _compact(self) -> None:
        live = np.flatnonzero(self.kind[: self.size] != _NONE)
        for name in self._arrays():
            arr = getattr(self, name)
            arr[: live.size] = arr[: self.size][live]
        self.size = live.size
        self.dead = 0
        self._sorted.clear()  # element numbers changed

    def delete_rows(self, removed: IntArray, moved_from: IntArray, moved_to: IntArray, n: int) -> None:
        """The collection deleted the records at ``removed`` and moved ``moved_from`` to ``moved_to``
        (all positions as they were before the delete); ``n`` records remain."""
        if self.dense:
            self._unflag(removed[removed < self.size])
            for name in self._arrays():
                arr = getattr(self, name)
                arr[moved_to] = arr[moved_from]
            self.n = self.size = n
            self._touch(moved_to)  # holes refilled; rows past n are gone (lookups stop at size)
            return
        self._kill(removed)
        if moved_from.size:
            order = np.argsort(moved_from)
            src, dst = moved_from[order], moved_to[order]
            rows = self.rows[: self.size]
            at = np.searchsorted(src, rows).clip(0, src.size - 1)
            hit = src[at] == rows
            rows[hit] = dst[at[hit]]
        self.n = n
        if self.dead > self.size // 2:
            self._compact()

    def _touch(self, elements: IntArray) -> None:
        for key in list(self._sorted):
            index = self._sorted[key]
            index.touched.update(elements.tolist())
            if len(index.touched) > max(4096, self.size // 64):
                del self._sorted[key]  # sorted again on the next lookup

    # -- reads ----------------------------------------------------------------------------------------
    def lookup(self, f: Compare | In, limit: float) -> IntArray | None:
        """Sorted numbers of the records matching leaf ``f``, found in a sorted index; None when an
        index cannot answer exactly (booleans, times, numbers beyond float64) or when more than
        ``limit`` records may match (a scan is faster then)."""
        if not self.supported:
            return None
        match f:
            case Compare("eq", _, value):
                tests: list[tuple[str, object]] = [("eq", value)]
            case In(_, values, False):
                tests = [("eq", v) for v in values]
            case Compare(op, _, value) if op in _RANGE:
                tests = [(op, value)]
            case _:
                return None
        spans: list[tuple[_Sorted, int, int, Callable[[IntArray], BoolArray]]] = []
        for test_op, operand in tests:
            span = self._span(test_op, operand)
            if span is None:
                return None
            spans.append(span)
        touched = {id(span[0]): len(span[0].touched) for span in spans}
        if sum(hi - lo for _, lo, hi, _ in spans) + sum(touched.values()) > limit:
            return None
        parts = []
        for index, lo, hi, test in spans:
            found = index.order[lo:hi]
            if index.touched:
                changed = np.fromiter(index.touched, dtype=np.int64, count=len(index.touched))
                found = found[~np.isin(found, changed)]
                changed = changed[changed < self.size]
                found = np.concatenate([found, changed[test(changed)]])
            parts.append(found[found < self.size])
        elements = np.concatenate(parts) if len(parts) > 1 else parts[0]
        if self.dense and len(parts) == 1:
            return np.sort(elements)  # one span of a dense column: each record at most once
        return np.unique(elements if self.dense else self.rows[elements])

    def _span(self, op: str, value: object) -> tuple[_Sorted, int, int, Callable[[IntArray], BoolArray]] | None:
        """The sorted index, the range of it and the element test for one comparison."""
        if isinstance(value, bool):
            return None
        if isinstance(value, str):
            if op != "eq":
                return None  # a time range: parsed per string, not indexed
            index = self._index("str", self.scode)
            code = self.codes.get(value, -2)  # -2: no element holds it
            lo = int(np.searchsorted(index.keys, code, side="left"))
            hi = int(np.searchsorted(index.keys, code, side="right"))
            return index, lo, hi, lambda e: self.scode[e] == code
        if not isinstance(value, int | float) or not self.exact:
            return None
        if isinstance(value, int) and abs(value) > _EXACT_LIMIT:
            return None
        try:
            bound = float(value)
        except OverflowError:
            return None
        index = self._index("num", self.num)
        keys = index.keys
        end = int(np.searchsorted(keys, np.inf, side="right"))  # NaN (not a number) sorts last
        left = int(np.searchsorted(keys, bound, side="left"))
        right = int(np.searchsorted(keys, bound, side="right"))
        lo, hi = {"eq": (left, right), "lt": (0, left), "lte": (0, right), "gt": (right, end),
                  "gte": (left, end)}[op]
        compare = operator.eq if op == "eq" else _RANGE[op]
        return index, lo, hi, lambda e: compare(self.num[e], bound)

    def _index(self, key: str, values: npt.NDArray[Any]) -> _Sorted:
        index = self._sorted.get(key)
        if index is None:
            index = self._sorted[key] = _Sorted(values[: self.size])
        return index

    def to_rows(self, elements: BoolArray) -> BoolArray:
        """Records with at least one element where ``elements`` holds (no test holds on kind 0)."""
        if self.dense:
            return elements
        out = np.zeros(self.n, dtype=np.bool_)
        out[self.rows[: self.size][elements]] = True
        return out

    def equal(self, value: object) -> BoolArray | None:
        """Elements equal to ``value`` under ``scalar_equal``; None when only the reference is exact."""
        if isinstance(value, bool):
            same_bool: BoolArray = (self.kind[: self.size] == _BOOL) & (self.boolv[: self.size] == value)
            return same_bool
        if isinstance(value, int | float):
            if not self.exact or (isinstance(value, int) and abs(value) > _EXACT_LIMIT):
                return None
            same_number: BoolArray = self.num[: self.size] == float(value)  # NaN for every non-number
            return same_number
        if isinstance(value, str):
            code = self.codes.get(value)
            if code is None:
                return np.zeros(self.size, dtype=np.bool_)
            same_string: BoolArray = self.scode[: self.size] == code
            return same_string
        return None

    def in_range(self, op: str, value: object) -> BoolArray | None:
        if isinstance(value, str):
            return self.time_range(op, value)
        if isinstance(value, bool) or not isinstance(value, int | float) or not self.exact:
            return None
        try:
            bound = float(value)
        except OverflowError:
            return None
        with np.errstate(invalid="ignore"):
            result: BoolArray = _RANGE[op](self.num[: self.size], bound)  # NaN never compares true
        return result

    def time_range(self, op: str, value: str) -> BoolArray | None:
        """Elements that are time strings (:func:`~vectorseam.filters.parse_time`) in range of ``value``.

        Each distinct string is parsed once, on the first time filter over the column, into int64
        epoch microseconds (every instant of years 1-9999 fits exactly), so the comparison is exact.
        """
        bound = parse_time(value)
        if bound is None:
            return None
        if self._times is None or self._times[0] != len(self.codes):
            # One slot per string code plus a last "not a time" slot, which scode -1 (no string) indexes.
            parsed = [parse_time(text) for text in self.codes]  # dict order is code order
            ok = np.array([t is not None for t in parsed] + [False], dtype=np.bool_)
            instants = np.array([t or 0 for t in parsed] + [0], dtype=np.int64)
            self._times = (len(self.codes), instants, ok)
        _, instants, ok = self._times
        scode = self.scode[: self.size]
        result: BoolArray = ok[scode] & _RANGE[op](instants[scode], bound)
        return result

    def present(self) -> BoolArray:
        live: BoolArray = self.kind[: self.size] != _NONE
        return live


class ColumnIndex:
    """Typed columns for one collection's metadata.

    The memory store keeps them current with :meth:`set_rows` and :meth:`delete_rows`. A caller that
    does not report its writes passes ``generation`` to :meth:`mask` instead, and the columns are
    rebuilt whenever it changes.
    """

    def __init__(self) -> None:
        self._generation: int | None = None
        self._columns: dict[str, _Column] = {}

    def mask(self, f: Filter, metas: Sequence[Mapping[str, Any]], generation: int | None = None) -> BoolArray:
        """``mask[i] == matches(f, metas[i])`` for every record i, computed column-wise."""
        if generation is not None and generation != self._generation:
            self._columns.clear()
            self._generation = generation
        return np.ascontiguousarray(self._eval(f, metas), dtype=np.bool_)

    def rows(self, f: Filter, metas: Sequence[Mapping[str, Any]], index_share: float = INDEX_MAX_SHARE) -> IntArray:
        """The sorted numbers of the records matching ``f``: from a sorted index when ``f`` is one
        equality, ``$in`` or number range matching at most ``index_share`` of the records, otherwise
        from the mask."""
        limit = index_share * len(metas)
        col = self._column(f.key, metas) if isinstance(f, Compare | In) and metas else None
        if col is not None and col.wants_index:
            found = col.lookup(f, limit)  # type: ignore[arg-type]
            if found is not None:
                return found
        rows = np.flatnonzero(self.mask(f, metas))
        if col is not None and rows.size <= limit:
            col.wants_index = True  # selective leaves read this key: sort it on the next lookup
        return rows

    def set_rows(self, positions: IntArray, metas: Sequence[Mapping[str, Any]]) -> None:
        """Records ``positions`` were written (past the old end: appended); ``metas`` is every record's."""
        for col in self._columns.values():
            col.set_rows(positions, metas)

    def delete_rows(self, removed: IntArray, moved_from: IntArray, moved_to: IntArray, n: int) -> None:
        """Records were deleted (positions before the delete) and others moved into their places."""
        for col in self._columns.values():
            col.delete_rows(removed, moved_from, moved_to, n)

    def clear(self) -> None:
        self._columns.clear()

    def column(self, key: str, metas: Sequence[Mapping[str, Any]]) -> _Column:
        """The column of ``key`` (built on first use, then kept current): facet counts read it."""
        return self._column(key, metas)

    def _column(self, key: str, metas: Sequence[Mapping[str, Any]]) -> _Column:
        col = self._columns.get(key)
        if col is None or col.n != len(metas):
            col = self._columns[key] = _Column(key, metas)
        return col

    def _eval(self, f: Filter, metas: Sequence[Mapping[str, Any]]) -> BoolArray:
        match f:
            case And(children):
                out = self._eval(children[0], metas).copy()
                for child in children[1:]:
                    out &= self._eval(child, metas)
                return out
            case Or(children):
                out = self._eval(children[0], metas).copy()
                for child in children[1:]:
                    out |= self._eval(child, metas)
                return out
            case Not(child):
                return ~self._eval(child, metas)
            case Compare() | In() | Exists():
                result = self._leaf(f, self._column(f.key, metas))
                if result is None:
                    return _reference(f, metas)
                return result
        raise TypeError(f"not a filter: {f!r}")

    def _leaf(self, f: Compare | In | Exists, col: _Column) -> BoolArray | None:
        if not col.supported:
            return None
        match f:
            case Exists():
                return col.to_rows(col.present())
            case Compare(op, _, value) if op in ("eq", "ne"):
                elements = col.equal(value)
                if elements is None:
                    return None
                hit = col.to_rows(elements)
                return ~hit if op == "ne" else hit
            case Compare(op, _, value):
                elements = col.in_range(op, value)
                return None if elements is None else col.to_rows(elements)
            case In(_, values, negate):
                any_equal = np.zeros(col.size, dtype=np.bool_)
                for value in values:
                    elements = col.equal(value)
                    if elements is None:
                        return None
                    any_equal |= elements
                hit = col.to_rows(any_equal)
                return ~hit if negate else hit
        return None


def _reference(f: Filter, metas: Sequence[Mapping[str, Any]]) -> BoolArray:
    return np.fromiter((matches(f, m) for m in metas), dtype=np.bool_, count=len(metas))
