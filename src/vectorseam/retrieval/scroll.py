"""Scroll: every record a filter admits, a page at a time, by a cursor that stays valid under writes.

A page ends at a *key* (:mod:`vectorseam.cursors`): the next one starts after it. A store that pages by
a key of its own (:class:`~vectorseam.store.Scrollable`: pgvector by id, Qdrant by point id) is asked
directly, one indexed lookup a page. For the others the key is the record id and each page is one
pass over the filtered collection (:meth:`~vectorseam.store.VectorStore.scan`, ids only), keeping the
``limit`` smallest ids after the cursor: the same contract, at the cost of reading the ids once a page.

Either way, a record that exists from the first page to the last is returned exactly once, whatever is
written meanwhile; a record written during the scroll is returned if its key lies ahead of the cursor.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator

from vectorseam import cursors
from vectorseam.errors import ValidationError
from vectorseam.filters import Filter, FilterLike, parse_filter, to_dict
from vectorseam.query import MAX_SCROLL_LIMIT, ScrollPage
from vectorseam.store import Scrollable, VectorStore
from vectorseam.types import Record


def check_limit(limit: int) -> int:
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_SCROLL_LIMIT:
        raise ValidationError(f"limit must be an integer from 1 to {MAX_SCROLL_LIMIT}, got {limit!r}")
    return limit


def scroll_request(store: VectorStore, collection: str, f: Filter | None) -> str:
    """The digest a scroll cursor is bound to: the store kind, the collection and the filter."""
    return cursors.digest("scroll", store.capabilities.name, collection, None if f is None else to_dict(f))


def scroll(store: VectorStore, collection: str, limit: int = 1000, cursor: str | None = None,
           filter: FilterLike = None, include_vectors: bool = False, native: bool = True) -> ScrollPage:
    """One page of the records ``filter`` admits, after ``cursor`` (None: the first page). ``native=False``
    uses the emulation even on a :class:`~vectorseam.store.Scrollable` store (the conformance suite checks both)."""
    check_limit(limit)
    f = parse_filter(filter)
    request = scroll_request(store, collection, f)
    after: str | None = None
    if cursor is not None:
        position = cursors.decode(cursor, "scroll", request).get("p")
        if not isinstance(position, str):
            raise ValidationError("cursor: it holds no position; start the scroll again without one")
        after = position
    if native and isinstance(store, Scrollable):
        records, following = store.scroll(collection, limit, after, f, include_vectors)
    else:
        records, following = emulated_scroll(store, collection, limit, after, f, include_vectors)
    return ScrollPage(records, None if following is None else cursors.encode("scroll", request, p=following))


def emulated_scroll(store: VectorStore, collection: str, limit: int, after: str | None, f: Filter | None,
                    include_vectors: bool) -> tuple[list[Record], str | None]:
    """:meth:`Scrollable.scroll` over any store, keyed by record id (code point order)."""

    def candidates() -> Iterator[Record]:
        for page in store.scan(collection, batch_size=2000, filter=f, include_vectors=False):
            for record in page:
                if after is None or record.id > after:
                    yield record

    chosen = heapq.nsmallest(limit + 1, candidates(), key=lambda r: r.id)
    following = chosen[limit - 1].id if len(chosen) > limit else None
    chosen = chosen[:limit]
    if include_vectors and chosen:
        # vectors of the chosen few only; one deleted since the pass is simply not returned
        chosen = store.fetch(collection, [r.id for r in chosen], include_vectors=True)
    return chosen, following


def scroll_all(store: VectorStore, collection: str, filter: FilterLike = None, include_vectors: bool = False,
               limit: int = 1000) -> Iterator[list[Record]]:
    """Every page, first to last (a convenience over :func:`scroll`)."""
    cursor: str | None = None
    while True:
        page = scroll(store, collection, limit, cursor, filter, include_vectors)
        if page.records:
            yield page.records
        if page.next_cursor is None:
            return
        cursor = page.next_cursor
