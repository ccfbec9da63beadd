"""Portable filter tree -> Weaviate ``Filter`` (``by_property``, ``all_of``, ``any_of``, ``not_``).

Every portable operator is expressible, ``not`` included (``Filter.not_``, Weaviate >= 1.25's NOT
operator, is a set complement, so absent fields match a negation exactly as the portable ``ne``/``nin``
semantics require).

A comparison is compiled against the typed properties that exist in the collection's schema (see
``schema``): ``eq "x"`` looks at the text and text-array properties of the key, ``eq 3`` at the number
ones, ``gt`` at numbers only. A comparison that no property can satisfy is the constant *false*
(``ne`` of it *true*); constants are folded through and/or/not, so ``translate`` returns ``True`` (no
filter), ``False`` (nothing can match: the caller skips the request) or a ``Filter``.
``exists`` is ``is_none(False)``, which needs ``index_null_state`` (set when the adapter creates a
collection). A time range compares the key's ``date``/``date[]`` properties (see ``schema``); its
bound must lie inside ``schema.DATE_WINDOW`` (1678 to 2262), where Weaviate's int64-nanosecond dates
are exact, or :class:`FilterError` is raised.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, TypeAlias

from weaviate.classes.query import Filter
from weaviate.collections.classes.filters import _Filters

from vectorseam.filters import (
    And,
    Compare,
    Exists,
    FilterLike,
    In,
    Not,
    Or,
    is_time_range,
    parse_filter,
    require_time_window,
)
from vectorseam.filters import Filter as Tree
from vectorseam.types import Scalar
from vectorseam_weaviate.schema import DATE_WINDOW, TypeCode, date_text, property_name

SUPPORTED_OPERATORS: frozenset[str] = frozenset(
    {"eq", "ne", "gt", "gte", "lt", "lte", "in", "nin", "exists", "and", "or", "not"}
)
Compiled: TypeAlias = _Filters | bool


def translate(spec: FilterLike, properties: Mapping[str, TypeCode]) -> Compiled:
    """``properties`` maps the collection's typed property names to their type codes."""
    tree = parse_filter(spec)
    if tree is None:
        return True
    return _node(tree, properties)


def _family(value: Scalar) -> tuple[TypeCode, TypeCode]:
    if isinstance(value, bool):
        return "b", "ba"
    if isinstance(value, str):
        return "t", "ta"
    return "n", "na"


def _value(value: Scalar) -> Any:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else value


def _date(instant: int) -> datetime:
    """A bound inside the window as an aware UTC ``datetime``, which the client sends as RFC 3339."""
    return datetime.strptime(date_text(instant), "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def _any_of(parts: list[Compiled]) -> Compiled:
    if any(p is True for p in parts):
        return True
    real = [p for p in parts if not isinstance(p, bool)]
    if not real:
        return False
    return real[0] if len(real) == 1 else Filter.any_of(real)


def _all_of(parts: list[Compiled]) -> Compiled:
    if any(p is False for p in parts):
        return False
    real = [p for p in parts if not isinstance(p, bool)]
    if not real:
        return True
    return real[0] if len(real) == 1 else Filter.all_of(real)


def _not(part: Compiled) -> Compiled:
    if isinstance(part, bool):
        return not part
    return Filter.not_(part)


def _in(key: str, values: tuple[Scalar, ...], props: Mapping[str, TypeCode]) -> Compiled:
    parts: list[Compiled] = []
    for code in ("t", "ta", "n", "na", "b", "ba"):
        prop = property_name(key, code)
        if prop not in props:
            continue
        same = [_value(v) for v in values if code in _family(v)]
        if same:
            parts.append(Filter.by_property(prop).contains_any(same))
    return _any_of(parts)


def _node(f: Tree, props: Mapping[str, TypeCode]) -> Compiled:
    match f:
        case Compare(op, key, value):
            if op in ("eq", "ne"):
                eq = _in(key, (value,), props)
                return eq if op == "eq" else _not(eq)
            codes: tuple[TypeCode, ...] = ("n", "na")
            bound: Any = float(value) if not isinstance(value, str) else None
            if is_time_range(f):
                codes = ("d", "da")
                instant = require_time_window(f, *DATE_WINDOW, "weaviate", "it indexes dates as int64 nanoseconds")
                bound = _date(instant)
            parts: list[Compiled] = []
            for code in codes:
                prop = property_name(key, code)
                if prop in props:
                    p = Filter.by_property(prop)
                    parts.append({"gt": p.greater_than, "gte": p.greater_or_equal,
                                  "lt": p.less_than, "lte": p.less_or_equal}[op](bound))
            return _any_of(parts)
        case In(key, values, negate):
            hit = _in(key, values, props)
            return _not(hit) if negate else hit
        case Exists(key):
            return _any_of([
                Filter.by_property(property_name(key, code)).is_none(False)
                for code in ("t", "ta", "n", "na", "b", "ba")
                if property_name(key, code) in props
            ])
        case And(children):
            return _all_of([_node(c, props) for c in children])
        case Or(children):
            return _any_of([_node(c, props) for c in children])
        case Not(child):
            return _not(_node(child, props))
    raise TypeError(f"not a filter: {f!r}")
