"""Vectorised filter evaluation for the memory store: per-key typed columns, one numpy pass per leaf.

Why: evaluating :func:`vectorseam.filters.matches` record by record costs about a microsecond per
record and condition in Python, so a filtered query over a million records spent seconds building
its mask before any vector was scored. Here each metadata key that a filter reads becomes a typed
column once, and every filter node is a numpy expression over it.

A column is a flat table of *elements*: a scalar value is one element of its record, a list value
is one element per item, an absent or null value is none. Every leaf of the filter language is
"some element of the record satisfies P" (or its negation), so a leaf is one vectorised test over
the elements followed by a scatter to their records. The semantics are those of
:func:`~vectorseam.filters.matches`, and tests/test_columns.py checks the two agree on random
metadata and random filter trees.

Where numpy cannot reproduce Python's comparison exactly (ints beyond 2**53 lose precision as
float64; ints too large for a float at all), that leaf falls back to the reference evaluator, so
results are never approximate.

Columns are built lazily, on the first filter that reads a key, and dropped when the collection's
generation counter changes (every write bumps it): the first filtered query after a write pays one
pass over the metadata per key it reads; later ones are pure numpy.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from vectorseam.filters import And, Compare, Exists, Filter, In, Not, Or, matches

BoolArray = npt.NDArray[np.bool_]

_BOOL, _NUMBER, _STRING = 1, 2, 3
_EXACT_LIMIT = 2**53  # every int up to this magnitude is exact as a float64
_RANGE: dict[str, Callable[[Any, Any], Any]] = {
    "gt": operator.gt,
    "gte": operator.ge,
    "lt": operator.lt,
    "lte": operator.le,
}


class _Column:
    """Elements of one metadata key across all records (see the module docstring)."""

    def __init__(self, key: str, metas: Sequence[Mapping[str, Any]]) -> None:
        self.n = len(metas)
        rows: list[int] = []
        kinds: list[int] = []
        nums: list[float] = []
        bools: list[bool] = []
        strs: list[int] = []
        codes: dict[str, int] = {}
        self.exact = True  # False: some number is not exact as float64; numeric leaves use the reference
        self.supported = True  # False: a value of an unexpected type; every leaf uses the reference
        nan = float("nan")
        for row, meta in enumerate(metas):
            value = meta.get(key)
            if value is None:
                continue
            items = value if isinstance(value, list | tuple) else (value,)
            for item in items:
                rows.append(row)
                if isinstance(item, bool):
                    kinds.append(_BOOL)
                    nums.append(nan)
                    bools.append(item)
                    strs.append(-1)
                elif isinstance(item, int | float):
                    kinds.append(_NUMBER)
                    if isinstance(item, int) and abs(item) > _EXACT_LIMIT:
                        self.exact = False
                    try:
                        nums.append(float(item))
                    except OverflowError:
                        self.exact = False
                        nums.append(nan)
                    bools.append(False)
                    strs.append(-1)
                elif isinstance(item, str):
                    kinds.append(_STRING)
                    nums.append(nan)
                    bools.append(False)
                    strs.append(codes.setdefault(item, len(codes)))
                else:
                    self.supported = False
                    kinds.append(0)
                    nums.append(nan)
                    bools.append(False)
                    strs.append(-1)
        self.rows = np.asarray(rows, dtype=np.int64)
        self.kind = np.asarray(kinds, dtype=np.int8)
        self.num = np.asarray(nums, dtype=np.float64)
        self.boolv = np.asarray(bools, dtype=np.bool_)
        self.scode = np.asarray(strs, dtype=np.int64)
        self.codes = codes
        # The common case, one scalar per record: element i is record i, and no scatter is needed.
        self.one_per_row = len(rows) == self.n and bool(np.array_equal(self.rows, np.arange(self.n)))

    def to_rows(self, elements: BoolArray) -> BoolArray:
        """Records with at least one element where ``elements`` holds."""
        if self.one_per_row:
            return elements
        out = np.zeros(self.n, dtype=np.bool_)
        out[self.rows[elements]] = True
        return out

    def equal(self, value: object) -> BoolArray | None:
        """Elements equal to ``value`` under ``scalar_equal``; None when only the reference is exact."""
        if isinstance(value, bool):
            same_bool: BoolArray = (self.kind == _BOOL) & (self.boolv == value)
            return same_bool
        if isinstance(value, int | float):
            if not self.exact or (isinstance(value, int) and abs(value) > _EXACT_LIMIT):
                return None
            same_number: BoolArray = (self.kind == _NUMBER) & (self.num == float(value))
            return same_number
        if isinstance(value, str):
            code = self.codes.get(value)
            if code is None:
                return np.zeros(self.kind.shape[0], dtype=np.bool_)
            same_string: BoolArray = self.scode == code
            return same_string
        return None

    def in_range(self, op: str, value: object) -> BoolArray | None:
        if isinstance(value, bool) or not isinstance(value, int | float) or not self.exact:
            return None
        try:
            bound = float(value)
        except OverflowError:
            return None
        with np.errstate(invalid="ignore"):
            result: BoolArray = (self.kind == _NUMBER) & _RANGE[op](self.num, bound)
        return result


class ColumnIndex:
    """Typed columns for one collection's metadata, valid for one generation of its records."""

    def __init__(self) -> None:
        self._generation: int | None = None
        self._columns: dict[str, _Column] = {}

    def mask(self, f: Filter, metas: Sequence[Mapping[str, Any]], generation: int) -> BoolArray:
        """``mask[i] == matches(f, metas[i])`` for every record i, computed column-wise."""
        if generation != self._generation:
            self._columns.clear()
            self._generation = generation
        return np.ascontiguousarray(self._eval(f, metas), dtype=np.bool_)

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
                return col.to_rows(np.ones(col.kind.shape[0], dtype=np.bool_))
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
                any_equal = np.zeros(col.kind.shape[0], dtype=np.bool_)
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
