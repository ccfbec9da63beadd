"""Native keyword and hybrid search: a store's own BM25 must give what the one definition gives.

:mod:`vectorseam.keywords` defines the tokens and the scores; the reference here is
:class:`vectorseam.stores.bm25_sidecar.BM25Model` (the sidecar's scorer, checked against bm25s) over the
very records the test wrote, filtered with :func:`vectorseam.filters.matches`. A store that
implements :class:`~vectorseam.store.NativeKeywordSearch` must agree with it:

* **rankings and scores** of the top 10, position by position, within ``keyword_rtol`` (relative;
  float32 weights and sums give about 1e-6), so two records whose reference scores are closer than
  the tolerance may come in either order, any other swap fails;
* **with filters**, pushed down: a selective filter still yields its k best (never fewer while
  records match and share a query token);
* **after overwrites and deletes** (the statistics N, df and avgdl change): within
  ``keyword_drift_rtol``, which equals ``keyword_rtol`` for a store that computes BM25 from current
  statistics and is larger, stated with the reason, for a store whose document weights are fixed
  when a record is written (Qdrant's sparse vectors keep the avgdl of the collection's first write);
* **hybrid**: the RRF (:func:`vectorseam.keywords.rrf_fuse`) of the reference dense top ``depth`` and
  the reference BM25 top ``depth``, with and without a filter, with weights and another constant.

An empty text counts as a record (``N`` includes it), as in the reference.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
import pytest

from vectorseam.errors import CollectionNotFoundError, ValidationError
from vectorseam.filters import matches, parse_filter
from vectorseam.keywords import rrf_fuse, tokenize_all
from vectorseam.store import NativeKeywordSearch, VectorStore
from vectorseam.stores.bm25_sidecar import BM25Model
from vectorseam.testing.conformance.base import ConformanceBase
from vectorseam.testing.reference import random_vectors, reference_candidates, reference_top_k
from vectorseam.types import Hit, Record

_WORDS = (
    "apple", "banana", "cherry", "river", "mountain", "forest", "ocean", "desert", "engine", "battery", "cable",
    "filter", "garden", "kitchen", "window", "market", "doctor", "patient", "protein", "cell", "gene", "virus",
    "signal", "network", "energy", "solar", "wind", "storm",
)
_QUERIES = (
    "apple river",
    "protein cell gene",
    "solar wind energy storm",
    "kitchen filter cable battery engine",
    "the doctors and their patients",  # stop words and stemming: "doctors" -> "doctor"
    "banana banana apple",  # a repeated query token counts twice
)
_FILTERS: tuple[Mapping[str, Any], ...] = (
    {"group": 1},
    {"tags": "x"},
    {"$or": [{"group": 0}, {"size": {"$gte": 30}}]},
    {"size": {"$lt": 6}},  # few records: the filter must be pushed down, not applied to a top k
)


def keyword_records(n: int = 60, dimension: int = 8, seed: int = 5) -> list[Record]:
    """``n`` records with texts drawn from a small vocabulary (so tokens repeat across records), varied
    lengths (1-40 words), metadata to filter on, and one empty text."""
    rng = np.random.default_rng(seed)
    vectors = random_vectors(n, dimension, seed=seed + 1)
    records = []
    for i in range(n):
        length = int(rng.integers(1, 41))
        # a Zipf-like choice: the first words are far more common, so idf and tf both matter
        words = [_WORDS[min(int(rng.zipf(1.3)) - 1, len(_WORDS) - 1)] for _ in range(length)]
        text = "" if i == 7 else " ".join(words) + "."
        meta: dict[str, Any] = {"group": i % 3, "size": i}
        if i % 4 == 1:
            meta["tags"] = ["x", "y"] if i % 8 == 1 else ["x"]
        records.append(Record(id=f"k{i:03d}", vector=vectors[i], text=text, metadata=meta))
    return records


def reference_bm25(records: Sequence[Record], query: str, filter: Mapping[str, Any] | None = None) -> dict[str, float]:
    """Every record's positive BM25 score for ``query`` (statistics over *all* records), kept if ``filter``
    admits it."""
    model = BM25Model([r.id for r in records], tokenize_all([r.text for r in records]))
    tree = parse_filter(filter)
    admitted = {r.id for r in records if matches(tree, r.metadata)}
    return {rid: score for rid, score in model.top(query) if rid in admitted}


def assert_keyword_ranking(hits: Sequence[Hit], reference: Mapping[str, float], k: int, rtol: float,
                           where: str) -> None:
    """The hits are the reference top ``k``: same length, the score at each rank within ``rtol`` of the
    reference's score at that rank, and each hit's own reference score too (so only near-ties may swap)."""
    expected = reference_top_k(reference, k)
    got = [(h.id, h.score) for h in hits]
    assert len(got) == len(expected), f"{where}: {len(got)} hits, expected {len(expected)}: {got} vs {expected}"
    assert len({rid for rid, _ in got}) == len(got), f"{where}: duplicate ids in {got}"
    for rank, ((rid, score), (want_id, want)) in enumerate(zip(got, expected, strict=True), 1):
        assert rid in reference, f"{where}: rank {rank} is {rid!r}, which should not match at all"
        tol = rtol * abs(want) + 1e-9
        assert abs(score - want) <= tol, f"{where}: rank {rank} scored {score}, the reference's {want_id!r} {want}"
        assert abs(reference[rid] - want) <= tol, (
            f"{where}: rank {rank} is {rid!r} (reference score {reference[rid]}), expected {want_id!r} ({want})"
        )


class KeywordTests(ConformanceBase):
    """The native BM25 and hybrid search of a :class:`~vectorseam.store.NativeKeywordSearch` store."""

    keyword_rtol: ClassVar[float] = 1e-5
    keyword_drift_rtol: ClassVar[float] = 1e-5
    hybrid_depth: ClassVar[int] = 20

    def _keyword_store(self, store: VectorStore) -> NativeKeywordSearch:
        return self.require(store, NativeKeywordSearch,  # type: ignore[type-abstract]
                            "it keeps no keyword index of its own (the BM25 sidecar of "
                            "vectorseam.stores.keyword_fallback answers for it)")

    def test_capabilities_say_whether_keyword_search_is_native(self, store: VectorStore) -> None:
        """``Capabilities.native_keywords`` is the protocol's answer as data (shown to people, read by the core)."""
        assert store.capabilities.native_keywords == isinstance(store, NativeKeywordSearch)

    def _filled_keywords(self, store: VectorStore, name: str) -> tuple[NativeKeywordSearch, list[Record]]:
        native = self._keyword_store(store)
        records = keyword_records(dimension=self.dimension)
        self.filled(store, name, records)
        return native, records

    def test_keyword_search_agrees_with_reference_bm25(self, store: VectorStore, collection_name: str) -> None:
        native, records = self._filled_keywords(store, collection_name)
        for query in _QUERIES:
            for k in (1, 10):
                hits = native.keyword_search(collection_name, query, k)
                assert_keyword_ranking(hits, reference_bm25(records, query), k, self.keyword_rtol, f"{query!r} k={k}")
        by_id = {r.id: r for r in records}
        for hit in native.keyword_search(collection_name, _QUERIES[0], 10):
            assert hit.text == by_id[hit.id].text and hit.metadata == by_id[hit.id].metadata
            assert hit.vector is None

    def test_keyword_search_pushes_filters_down(self, store: VectorStore, collection_name: str) -> None:
        native, records = self._filled_keywords(store, collection_name)
        for spec in _FILTERS:
            for query in _QUERIES[:4]:
                hits = native.keyword_search(collection_name, query, 5, filter=spec)
                assert_keyword_ranking(hits, reference_bm25(records, query, spec), 5, self.keyword_rtol,
                                       f"{query!r} filter {spec}")

    def test_keyword_search_edge_cases(self, store: VectorStore, collection_name: str) -> None:
        native, _ = self._filled_keywords(store, collection_name)
        assert native.keyword_search(collection_name, "zebra quux", 5) == []  # no known token
        assert native.keyword_search(collection_name, "the and of", 5) == []  # stop words only
        assert native.keyword_search(collection_name, "apple", 5, filter={"group": 99}) == []
        with pytest.raises(CollectionNotFoundError):
            native.keyword_search(collection_name + "missing", "apple", 5)
        with pytest.raises(ValidationError):
            native.keyword_search(collection_name, "apple", 0)
        self.create(store, collection_name + "e")
        assert native.keyword_search(collection_name + "e", "apple", 5) == []  # an empty collection

    def test_keyword_search_follows_writes(self, store: VectorStore, collection_name: str) -> None:
        """Overwritten texts, deleted and added records change N, df and avgdl; the next search sees them."""
        native, records = self._filled_keywords(store, collection_name)
        vectors = random_vectors(6, self.dimension, seed=99)
        changed = [Record(records[i].id, records[i].vector, "zebra zebra gazelle savanna", records[i].metadata)
                   for i in (0, 1)]
        added = [Record(f"new{i}", vectors[i], f"zebra apple river number {i} {'cherry ' * i}", {"group": 1, "size": i})
                 for i in range(3)]
        store.upsert(collection_name, changed)
        store.upsert(collection_name, added)
        store.delete(collection_name, [records[2].id, records[3].id])
        current = {r.id: r for r in records} | {r.id: r for r in changed + added}
        for rid in (records[2].id, records[3].id):
            current.pop(rid)
        now = sorted(current.values(), key=lambda r: r.id)
        for query in ("zebra", "apple river cherry", *_QUERIES[1:3]):
            assert_keyword_ranking(native.keyword_search(collection_name, query, 10), reference_bm25(now, query), 10,
                                   self.keyword_drift_rtol, f"after writes, {query!r}")
        assert {h.id for h in native.keyword_search(collection_name, "zebra gazelle", 10)} >= {records[0].id,
                                                                                                 records[1].id}
        reopened = self._keyword_store(self._reopen(store))
        assert_keyword_ranking(reopened.keyword_search(collection_name, "zebra", 10), reference_bm25(now, "zebra"), 10,
                               self.keyword_drift_rtol, "after reopening")

    def test_hybrid_search_is_rrf_of_the_references(self, store: VectorStore, collection_name: str) -> None:
        native, records = self._filled_keywords(store, collection_name)
        depth = self.hybrid_depth
        query_vector = random_vectors(1, self.dimension, seed=123)[0]
        for query, spec, rrf_k, weights in (
            (_QUERIES[0], None, 60.0, (1.0, 1.0)),
            (_QUERIES[2], {"group": 1}, 60.0, (1.0, 1.0)),
            (_QUERIES[3], None, 10.0, (0.3, 1.0)),
            (_QUERIES[1], {"size": {"$lt": 6}}, 60.0, (1.0, 2.0)),
        ):
            dense = [rid for rid, _ in reference_top_k(reference_candidates(records, query_vector, "cosine", spec),
                                                         depth)]
            sparse = [rid for rid, _ in reference_top_k(reference_bm25(records, query, spec), depth)]
            expected = rrf_fuse([dense, sparse], rrf_k, weights)[:10]
            hits = native.hybrid_search(collection_name, query, query_vector, 10, spec, rrf_k, weights, depth)
            where = f"hybrid {query!r} filter {spec} rrf_k {rrf_k} weights {weights}"
            assert [h.id for h in hits] == [rid for rid, _ in expected], where
            np.testing.assert_allclose([h.score for h in hits], [s for _, s in expected], rtol=1e-9, err_msg=where)
            by_id = {r.id: r for r in records}
            assert all(h.text == by_id[h.id].text for h in hits), where
