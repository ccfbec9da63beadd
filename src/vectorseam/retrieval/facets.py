"""Facet counts: how many records hold each value of a metadata field, among those a filter admits
(the numbers beside a search page's filters) or among the hits of one search.

Counting follows :mod:`vectorseam.values`: numbers numerically, booleans apart, each distinct element
of a list once per record, null and absent fields not at all; the ``limit`` most frequent values per
field, ties in value order. A store with :class:`~vectorseam.store.NativeFacets` counts itself (SQL
``GROUP BY``, Qdrant's facet API); otherwise one scan of the filtered records, without vectors, counts
every field at once.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from vectorseam.errors import ValidationError
from vectorseam.filters import Filter
from vectorseam.query import MAX_FACET_LIMIT, MAX_FACETS, FacetValue
from vectorseam.store import NativeFacets, VectorStore
from vectorseam.types import Metadata, Scalar
from vectorseam.values import ValueKey, distinct_values, facet_top, value_key


def check_facets(fields: Sequence[str], limit: int) -> list[str]:
    names = list(dict.fromkeys(fields))
    if len(names) > MAX_FACETS or not all(isinstance(n, str) and n for n in names):
        raise ValidationError(f"facets: give up to {MAX_FACETS} metadata field names, got {fields!r}")
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_FACET_LIMIT:
        raise ValidationError(f"facet_limit must be an integer from 1 to {MAX_FACET_LIMIT}, got {limit!r}")
    return names


def facet_counts(store: VectorStore, collection: str, fields: Sequence[str], f: Filter | None,
                 limit: int = 10) -> dict[str, list[FacetValue]]:
    """Value counts of ``fields`` among every record of ``collection`` that ``f`` admits."""
    names = check_facets(fields, limit)
    if not names:
        return {}
    if isinstance(store, NativeFacets):
        raw = store.facet_counts(collection, names, f, limit)
    else:
        raw = count_fields((r.metadata for page in store.scan(collection, batch_size=2000, filter=f,
                                                              include_vectors=False) for r in page),
                           names, limit)
    return {name: [FacetValue(value, count) for value, count in raw.get(name, [])] for name in names}


def count_fields(metadatas: Iterable[Metadata], fields: Sequence[str],
                 limit: int) -> dict[str, list[tuple[Scalar, int]]]:
    """Value counts of each of ``fields`` over ``metadatas``, in one pass (the emulation, and the reference)."""
    counts: dict[str, dict[ValueKey, tuple[Scalar, int]]] = {name: {} for name in fields}
    for meta in metadatas:
        for name, table in counts.items():
            value = meta.get(name)
            if value is None:
                continue
            for item in distinct_values(value):
                key = value_key(item)
                first, n = table.get(key, (item, 0))
                table[key] = (first, n + 1)
    return {name: facet_top(table, limit) for name, table in counts.items()}


def hit_facets(metadatas: Iterable[Metadata], fields: Sequence[str], limit: int) -> dict[str, list[FacetValue]]:
    """Value counts among the hits of one search (``facet_scope="hits"``)."""
    names = check_facets(fields, limit)
    raw = count_fields(metadatas, names, limit)
    return {name: [FacetValue(value, count) for value, count in raw[name]] for name in names}
