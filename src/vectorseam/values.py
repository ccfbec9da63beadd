"""How metadata values are told apart when records are grouped and values counted, in every store.

The rule follows the filter semantics (:func:`vectorseam.filters.matches`): numbers compare
numerically (``1`` and ``1.0`` are one value: JSON-backed stores may give an int back as a float),
booleans never equal numbers, strings compare exactly. A missing field and ``null`` are no value.

:func:`value_key` is the identity of a value for grouping and counting, and its order (booleans, false
first; then numbers ascending; then strings by code point) breaks ties between equally frequent facet
values the same way in every store; :func:`facet_top` is the one place counts become a ranked list.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeAlias

from vectorseam.types import Scalar

ValueKey: TypeAlias = tuple[int, Any]


def value_key(value: Scalar) -> ValueKey:
    """The identity of a scalar for grouping and counting (see the module docstring)."""
    if isinstance(value, bool):
        return (0, value)
    if isinstance(value, int | float):
        return (1, float(value))
    return (2, str(value))


def plain(value: Scalar) -> Scalar:
    """A number as the int it equals when whole (how counts and groups report it), else unchanged."""
    if isinstance(value, float) and not isinstance(value, bool) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    return value


def distinct_values(value: Any) -> list[Scalar]:
    """The values a field holding ``value`` counts for: none for null, each distinct element of a list."""
    if value is None:
        return []
    items = value if isinstance(value, list) else [value]
    seen: dict[ValueKey, Scalar] = {}
    for item in items:
        if item is not None:
            seen.setdefault(value_key(item), item)
    return list(seen.values())


def facet_top(counts: Mapping[ValueKey, tuple[Scalar, int]], limit: int) -> list[tuple[Scalar, int]]:
    """The ``limit`` most frequent values, ties in :func:`value_key` order; values reported by :func:`plain`."""
    ranked = sorted(counts.items(), key=lambda item: (-item[1][1], item[0]))
    return [(plain(value), count) for _, (value, count) in ranked[:limit]]

