"""Portable filter tree -> Pinecone's ``$``-operator metadata filter.

Pinecone's data plane speaks a MongoDB subset: ``$eq $ne $gt $gte $lt $lte $in $nin $exists $and
$or``. It has **no** ``$not``, so a tree using ``not`` raises :class:`FilterError` (the operator is
left out of the adapter's declared ``filter_operators``). ``{"k": {"$exists": false}}`` parses to
``not(exists)`` in the portable tree and is therefore refused too, rather than silently rewritten.

Why the rest maps one to one onto the portable semantics (:func:`vectorseam.filters.matches`):

* Pinecone stores lists of strings only, and a filter on a list field matches when *any* element
  matches, while ``$ne``/``$nin`` match when *no* element does -- the portable list semantics.
* Null values and empty lists are never written as filterable fields (see ``encoding``), so a
  missing key, a null and an empty list are all "absent" to Pinecone, as they are to ``matches``;
  ``$exists`` therefore agrees, and ``$ne``/``$nin`` match absent fields as the portable tree says.
* Booleans are a separate type in Pinecone (``true`` never equals ``1``) and ints and floats are
  both float64, which is the portable equality.
* A time range compares the hidden epoch-microsecond numbers ``encoding`` stores beside a field of
  times: ``$gt``/``$gte`` the latest instant, ``$lt``/``$lte`` the earliest. They are float64, so
  the bound must lie within 2**53 microseconds of 1970 (1684 to 2255), where every instant is an
  exact float64 and rounding a stored instant (which keeps order) cannot carry it across the bound;
  a bound outside raises :class:`FilterError`.
"""

from __future__ import annotations

from typing import Any

from vectorseam.errors import FilterError
from vectorseam.filters import (
    And,
    Compare,
    Exists,
    Filter,
    FilterLike,
    In,
    Not,
    Or,
    is_time_range,
    parse_filter,
    require_time_window,
)
from vectorseam_pinecone.encoding import RESERVED_PREFIX, TIME_MAX_PREFIX, TIME_MIN_PREFIX

SUPPORTED_OPERATORS: frozenset[str] = frozenset(
    {"eq", "ne", "gt", "gte", "lt", "lte", "in", "nin", "exists", "and", "or"}
)

# Pinecone caps the number of values of one $in / $nin.
MAX_IN_VALUES = 10_000
# Every integer up to 2**53 in magnitude is exact as a float64 (see the module docstring).
TIME_WINDOW = (-(2**53), 2**53)


def translate(spec: FilterLike) -> dict[str, Any] | None:
    """The Pinecone filter for a portable filter (dict form or tree); ``None`` for no filter."""
    tree = parse_filter(spec)
    if tree is None:
        return None
    return _node(tree)


def _node(f: Filter) -> dict[str, Any]:
    match f:
        case Compare(op, key, value) if is_time_range(f):
            bound = require_time_window(f, *TIME_WINDOW, "pinecone", "it compares float64 epoch microseconds")
            prefix = TIME_MAX_PREFIX if op in ("gt", "gte") else TIME_MIN_PREFIX
            return {prefix + _field(key): {f"${op}": float(bound)}}
        case Compare(op, key, value):
            return {_field(key): {f"${op}": value}}
        case In(key, values, negate):
            if len(values) > MAX_IN_VALUES:
                raise FilterError(
                    f"filter on {key!r}: Pinecone accepts at most {MAX_IN_VALUES} values in "
                    f"${'nin' if negate else 'in'}, got {len(values)}; split the query"
                )
            return {_field(key): {"$nin" if negate else "$in": list(values)}}
        case Exists(key):
            return {_field(key): {"$exists": True}}
        case And(children):
            return {"$and": [_node(c) for c in children]}
        case Or(children):
            return {"$or": [_node(c) for c in children]}
        case Not():
            raise FilterError(
                "the pinecone backend cannot express the filter operator(s) $not (Pinecone has no "
                "negation; {\"$exists\": false} is a negation too); rewrite the filter with $ne / $nin "
                "(for example $not over $eq as $ne) or use another backend"
            )
    raise FilterError(f"not a filter: {f!r}")


def _field(key: str) -> str:
    if key.startswith(RESERVED_PREFIX):
        raise FilterError(
            f"filter field {key!r} starts with {RESERVED_PREFIX!r}, which the pinecone adapter reserves "
            "for its own bookkeeping; such fields cannot exist in user metadata"
        )
    return key
