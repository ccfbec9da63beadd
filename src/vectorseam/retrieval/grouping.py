"""Grouping hits by a metadata field: the best hits of each distinct value, groups by their best hit.

The point is chunked documents: ingest splits a long text into records ``doc#0``, ``doc#1``, ... that
carry ``source_id = doc``, and a search page wants each document once, with its best chunks, rather
than three chunks of one document filling the top three places. ``group_by="source_id"`` does that;
any other field works the same way (one result per product, per author, ...).

Values are told apart as :mod:`vectorseam.values` says (numbers numerically, booleans apart). A record
without the field is a group of its own (for ``source_id``, an unchunked record is its own document, and
its group's value is its id). A list value has no single group and raises, naming the record.

A store with :class:`~vectorseam.store.NativeGrouping` groups a dense query itself. Otherwise
:func:`group_ranking` emulates it over any ranking: it deepens the ranking until it holds enough
distinct groups (or holds everything), then fills each group that may be missing members with one
query restricted to that group's value. The result is exact for dense and BM25 rankings, whose scores
do not depend on which other records are ranked; for fused (hybrid) and MMR rankings, whose do, the
groups are those of the deepened ranking.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy.typing as npt

from vectorseam.errors import ValidationError
from vectorseam.filters import And, Filter, In
from vectorseam.query import DOCUMENT_FIELD, Group
from vectorseam.store import NativeGrouping, VectorStore
from vectorseam.types import Hit, Scalar
from vectorseam.values import ValueKey, value_key

MAX_DEPTH = 10_000  # the deepest an emulated grouping ranks (stores cap k; Pinecone at 10,000)

Ranking = Callable[[int], list[Hit]]  # the best n hits (fewer: there are no more)
Fill = Callable[[Filter, int], list[Hit]]  # the best n hits under one more condition


def group_of(hit: Hit, field: str) -> tuple[tuple[str, ValueKey | str], Scalar | None]:
    """(identity, reported value) of the group ``hit`` belongs to when grouping by ``field``."""
    value = hit.metadata.get(field)
    if value is None:
        return ("own", hit.id), (hit.id if field == DOCUMENT_FIELD else None)
    if isinstance(value, list):
        raise ValidationError(f"group_by {field!r}: record {hit.id!r} holds a list ({len(value)} values), so it "
                              "belongs to no single group; group by a field with one value per record")
    return ("value", value_key(value)), value


def group_hits(hits: Sequence[Hit], field: str, size: int) -> list[Group]:
    """Groups in the order of their best hit in ``hits`` (which is best first), each its first ``size`` hits."""
    groups: dict[tuple[str, ValueKey | str], Group] = {}
    for hit in hits:
        key, value = group_of(hit, field)
        group = groups.get(key)
        if group is None:
            groups[key] = Group(value, [hit])
        elif len(group.hits) < size:
            group.hits.append(hit)
    return list(groups.values())


@dataclass(frozen=True, slots=True)
class Grouped:
    groups: list[Group]
    final: bool  # a deeper ranking holds nothing more (exhausted, or at MAX_DEPTH)


def group_ranking(ranking: Ranking, field: str, size: int, wanted: int, fill: Fill | None,
                  base: Filter | None, start_depth: int | None = None) -> Grouped:
    """The best ``wanted`` groups of ``ranking`` (emulated grouping, see the module docstring).

    ``fill`` ranks under an extra condition (the filter ``base`` and the group's value); None where
    a ranking's scores depend on what else is ranked (hybrid, MMR), whose groups keep the members
    the deepened ranking holds."""
    depth = min(MAX_DEPTH, start_depth or max(2 * wanted * size, 32))
    while True:
        hits = ranking(depth)
        exhausted = len(hits) < depth
        groups = group_hits(hits, field, size)
        if len(groups) >= wanted or exhausted or depth >= MAX_DEPTH:
            break
        depth = min(MAX_DEPTH, depth * 4)
    groups = groups[:wanted]
    if not exhausted and fill is not None:
        _fill_groups(groups, field, size, fill, base)
    return Grouped(groups, exhausted or depth >= MAX_DEPTH)


def _fill_groups(groups: list[Group], field: str, size: int, fill: Fill, base: Filter | None) -> None:
    """Complete the groups that may miss members, with one query over all of them at a time.

    The best ``size * m`` hits among the ``m`` short groups hold each group's best members in order; a group
    with ``size`` of them, or any group when fewer came back than asked, is then exact. Of ``m`` groups at
    least one fills up whenever the answer is full, so the rounds end; usually one does it."""
    short = [g for g in groups if len(g.hits) < size and g.value is not None and not _own(g, field)]
    while short:
        values = tuple(dict.fromkeys(g.value for g in short if g.value is not None))
        condition: Filter = In(field, values)
        want = size * len(short)
        members = fill(condition if base is None else And((base, condition)), want)
        found: dict[tuple[str, ValueKey | str], list[Hit]] = {group_of(g.hits[0], field)[0]: [] for g in short}
        for hit in members:
            found.setdefault(group_of(hit, field)[0], []).append(hit)
        full = len(members) >= want
        still = []
        for g in short:
            got = found[group_of(g.hits[0], field)[0]]
            if len(got) >= size or not full:
                g.hits = got[:size] or g.hits
            else:
                still.append(g)
        short = still


def _own(group: Group, field: str) -> bool:
    """Whether ``group`` is a record without the field (for source_id, its value is then that record's id)."""
    return field == DOCUMENT_FIELD and group.hits[0].metadata.get(field) is None


def vector_groups(store: VectorStore, collection: str, vector: npt.ArrayLike, k: int, field: str, size: int,
                  f: Filter | None, native: bool = True) -> list[Group]:
    """The ``k`` best groups of a dense query: the store's own grouping where it has one (unless ``native``
    is False), else :func:`group_ranking` over its plain queries, filled exactly."""
    if native and isinstance(store, NativeGrouping):
        found = store.query_groups(collection, vector, k, field, size, f)
        return [Group(group_of(hits[0], field)[1], list(hits)) for hits in found if hits]

    def ranking(n: int) -> list[Hit]:
        return store.query(collection, vector, k=n, filter=f)[0]

    def fill(condition: Filter, n: int) -> list[Hit]:
        return store.query(collection, vector, k=n, filter=condition)[0]

    return group_ranking(ranking, field, size, k, fill, f).groups
