"""Scroll by cursor: every record once, and the cursor stays valid while records are written.

The contract (:mod:`vectorseam.retrieval.scroll`): a record that exists from the first page to the last
is returned exactly once, whatever is written in between; nothing is returned twice; a deleted record
is not returned after its deletion. Checked for the store's own keyset paging
(:class:`~vectorseam.store.Scrollable`) and for the emulation over its scan.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from vectorseam.errors import ValidationError
from vectorseam.filters import Filter, matches, parse_filter
from vectorseam.query import ScrollPage
from vectorseam.retrieval import scroll as scrolling
from vectorseam.store import Scrollable, VectorStore
from vectorseam.testing.conformance.base import ConformanceBase
from vectorseam.testing.reference import assert_same_record, catalog_records, make_records, random_vectors
from vectorseam.types import Record

Scroll = Callable[[VectorStore, str, int, str | None, Filter | None, bool], ScrollPage]


def _native(store: VectorStore, collection: str, limit: int, cursor: str | None, f: Filter | None,
            vectors: bool) -> ScrollPage:
    return scrolling.scroll(store, collection, limit, cursor, f, vectors)


def _emulated(store: VectorStore, collection: str, limit: int, cursor: str | None, f: Filter | None,
              vectors: bool) -> ScrollPage:
    return scrolling.scroll(store, collection, limit, cursor, f, vectors, native=False)


WAYS = {"store": _native, "emulated": _emulated}


class ScrollTests(ConformanceBase):
    """``scroll`` with a cursor (every store: keyset paging where the store has it, else emulated)."""

    def pages(self, way: Scroll, store: VectorStore, name: str, limit: int, f: Filter | None = None,
              vectors: bool = False) -> list[list[Record]]:
        out, cursor = [], None
        for _ in range(10_000):
            page = way(store, name, limit, cursor, f, vectors)
            assert len(page.records) <= limit
            out.append(page.records)
            if page.next_cursor is None:
                return out
            cursor = page.next_cursor
        raise AssertionError("the scroll never ended")

    @pytest.mark.parametrize("way", sorted(WAYS))
    def test_every_record_once(self, store: VectorStore, collection_name: str, way: str) -> None:
        records = self.filled(store, collection_name, make_records(random_vectors(53, 8, seed=61)))
        pages = self.pages(WAYS[way], store, collection_name, 7, vectors=True)
        seen = [r for p in pages for r in p]
        assert sorted(r.id for r in seen) == sorted(r.id for r in records)
        assert len({r.id for r in seen}) == len(seen)
        by_id = {r.id: r for r in records}
        for r in seen:
            assert_same_record(r, by_id[r.id])
        again = [r.id for p in self.pages(WAYS[way], store, collection_name, 7) for r in p]
        assert again == [r.id for r in seen], "the order of a scroll must be stable"

    @pytest.mark.parametrize("way", sorted(WAYS))
    def test_with_a_filter(self, store: VectorStore, collection_name: str, way: str) -> None:
        records = self.filled(store, collection_name, catalog_records())
        for spec in ({"tags": "a"}, {"$or": [{"color": "red"}, {"price": {"$lt": 3}}]}, {"color": "nope"}):
            f = parse_filter(spec)
            seen = [r for p in self.pages(WAYS[way], store, collection_name, 4, f) for r in p]
            assert sorted(r.id for r in seen) == sorted(r.id for r in records if matches(f, r.metadata))
            assert len({r.id for r in seen}) == len(seen) and all(r.vector is None for r in seen)

    @pytest.mark.parametrize("way", sorted(WAYS))
    def test_cursor_survives_writes(self, store: VectorStore, collection_name: str, way: str) -> None:
        scroll = WAYS[way]
        vectors = random_vectors(120, 8, seed=62)
        records = make_records(vectors[:80], prefix="k")
        self.filled(store, collection_name, records)
        seen: list[str] = []
        page = scroll(store, collection_name, 13, None, None, False)
        seen += [r.id for r in page.records]
        newcomers = make_records(vectors[80:], prefix="k0")  # ids that sort among the old ones ("k00..")
        unseen = [r.id for r in records if r.id not in set(seen)]
        deleted = set(unseen[::9])
        rounds = 0
        while page.next_cursor is not None:
            rounds += 1
            if rounds == 1:  # writes between pages: inserts everywhere, deletes ahead, rewrites behind and ahead
                store.upsert(collection_name, newcomers[:20])
                store.delete(collection_name, ids=sorted(deleted))
                store.upsert(collection_name, [records[0], records[-1]])
            if rounds == 3:
                store.upsert(collection_name, newcomers[20:])
            page = scroll(store, collection_name, 13, page.next_cursor, None, False)
            seen += [r.id for r in page.records]
        assert len(seen) == len(set(seen)), "a record came back twice"
        survivors = {r.id for r in records} - deleted
        assert survivors <= set(seen), f"records present throughout were skipped: {sorted(survivors - set(seen))}"
        assert not deleted & set(seen), "a record deleted before its page was returned"
        assert set(seen) <= {r.id for r in records} | {r.id for r in newcomers}

    def test_a_cursor_belongs_to_its_request(self, store: VectorStore, collection_name: str) -> None:
        self.filled(store, collection_name, catalog_records())
        page = scrolling.scroll(store, collection_name, 5)
        assert page.next_cursor is not None
        with pytest.raises(ValidationError, match="another scroll"):
            scrolling.scroll(store, collection_name, 5, page.next_cursor, {"color": "red"})
        with pytest.raises(ValidationError, match="not a cursor"):
            scrolling.scroll(store, collection_name, 5, "garbage!")
        with pytest.raises(ValidationError, match="limit"):
            scrolling.scroll(store, collection_name, 0)

    def test_empty_collection(self, store: VectorStore, collection_name: str) -> None:
        self.create(store, collection_name)
        page = scrolling.scroll(store, collection_name, 5)
        assert page.records == [] and page.next_cursor is None

    def test_keyset_scroll_is_declared_by_the_protocol(self, store: VectorStore) -> None:
        if not isinstance(store, Scrollable):
            pytest.skip(f"the {store.capabilities.name} store scrolls through the emulation")
        assert callable(store.scroll)
