"""The copy loop :mod:`~vectorseam.ingest.migrate` and :mod:`~vectorseam.ingest.reindex` share: one pass
over a collection's pages (``scan``: a stable order), each page made into the records to write and
written, from a position on.

Why a position and not ids: ``scan`` returns the records in the same order on every pass, so "the first
N records are copied" is one number to keep between runs, and a resumed copy skips them without
reading the target. Every store makes a write durable when its call returns, so a position saved after
a page's write never claims more than the target holds.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from vectorseam.types import Record

Convert = Callable[[list[Record]], list[Record]]
Write = Callable[[list[Record]], object]
AfterPage = Callable[[int, list[Record]], None]


def copy_pages(pages: Iterable[list[Record]], write: Write, *, start: int = 0, convert: Convert | None = None,
               after: AfterPage | None = None) -> int:
    """Write every page of ``pages`` from position ``start`` on (records before it are skipped), each made
    into the records to write by ``convert`` (none: written as read; an empty result writes nothing);
    ``after(position, page)`` runs after each page, every page included. Returns the records read."""
    position = 0
    for page in pages:
        end = position + len(page)
        if end > start:
            todo = page[max(start - position, 0):]
            records = convert(todo) if convert is not None else todo
            if records:
                write(records)
        position = end
        if after is not None:
            after(position, page)
    return position
