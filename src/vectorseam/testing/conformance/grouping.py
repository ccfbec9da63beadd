"""Grouping nearest neighbours by a metadata field (``group_by``): the store's own
:class:`~vectorseam.store.NativeGrouping` where it has one, the emulation of
:mod:`vectorseam.retrieval.grouping` everywhere, both against a float64 brute force."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest

from vectorseam.errors import ValidationError
from vectorseam.filters import matches, parse_filter
from vectorseam.query import DOCUMENT_FIELD, Group
from vectorseam.retrieval.grouping import group_hits, vector_groups
from vectorseam.store import NativeGrouping, VectorStore
from vectorseam.testing.conformance.base import ConformanceBase
from vectorseam.testing.reference import SCORE_TOL, random_vectors, reference_candidates
from vectorseam.types import Hit, Metadata, Record


def grouped_records(dimension: int = 8) -> list[Record]:
    """40 chunks of 12 documents (``source_id``, 1-6 chunks each), 6 unchunked records, and two more
    fields to group by: ``shelf`` (int, absent on every fifth record) and ``lang`` (str)."""
    vectors = random_vectors(46, dimension, seed=71)
    records = []
    for i in range(40):
        doc = f"doc{(i * 7) % 12:02d}"
        meta: Metadata = {DOCUMENT_FIELD: doc, "chunk": i, "lang": ("en", "de", "fr")[i % 3]}
        if i % 5:
            meta["shelf"] = i % 4
        records.append(Record(f"{doc}#{i}", vectors[i], f"chunk {i} of {doc}", meta))
    for j in range(6):
        records.append(Record(f"solo{j}", vectors[40 + j], f"solo {j}", {"lang": "en", "shelf": j % 4}))
    return records


def reference_groups(records: Sequence[Record], query: Any, field: str, k: int, size: int,
                     filter: Any = None) -> list[Group]:
    """The definition: every admitted record ranked by float64 score (ties by id), then grouped."""
    candidates = reference_candidates(records, query, "cosine", filter)
    by_id = {r.id: r for r in records}
    ranked = [Hit(rid, score, by_id[rid].text, by_id[rid].metadata)
              for rid, score in sorted(candidates.items(), key=lambda kv: (-kv[1], kv[0]))]
    return group_hits(ranked, field, size)[:k]


def assert_groups(got: Sequence[Group], want: Sequence[Group]) -> None:
    assert [g.value for g in got] == [g.value for g in want], (
        f"groups differ: got {[g.value for g in got]}, expected {[g.value for g in want]}")
    for g, w in zip(got, want, strict=True):
        assert [h.id for h in g.hits] == [h.id for h in w.hits], f"group {g.value!r}: members differ"
        np.testing.assert_allclose([h.score for h in g.hits], [h.score for h in w.hits], atol=SCORE_TOL)


class GroupingTests(ConformanceBase):
    """``group_by`` over dense queries (every store: native where it groups itself, else emulated)."""

    CASES: tuple[tuple[str, int, int, Any], ...] = (
        (DOCUMENT_FIELD, 4, 3, None),
        (DOCUMENT_FIELD, 12, 1, {"lang": {"$ne": "fr"}}),
        ("shelf", 3, 2, None),
        ("lang", 5, 4, {"chunk": {"$lt": 30}}),
        (DOCUMENT_FIELD, 30, 6, None),  # more groups than exist: every one, each whole
    )

    @pytest.mark.parametrize("case", range(len(CASES)))
    def test_groups_match_brute_force(self, store: VectorStore, collection_name: str, case: int) -> None:
        field, k, size, spec = self.CASES[case]
        records = self.filled(store, collection_name, grouped_records())
        for seed in (3, 4):
            query = random_vectors(1, self.dimension, seed=seed)[0]
            want = reference_groups(records, query, field, k, size, spec)
            assert_groups(vector_groups(store, collection_name, query, k, field, size, parse_filter(spec)), want)

    def test_emulated_groups_match_on_this_store(self, store: VectorStore, collection_name: str) -> None:
        """The emulation, forced, over this store's plain queries (what a store without the ability gets)."""
        records = self.filled(store, collection_name, grouped_records())
        query = random_vectors(1, self.dimension, seed=9)[0]
        want = reference_groups(records, query, DOCUMENT_FIELD, 5, 2)
        assert_groups(vector_groups(store, collection_name, query, 5, DOCUMENT_FIELD, 2, None, native=False), want)

    def test_a_record_without_the_field_is_its_own_group(self, store: VectorStore, collection_name: str) -> None:
        records = self.filled(store, collection_name, grouped_records())
        solo = next(r for r in records if r.id == "solo2")
        groups = vector_groups(store, collection_name, np.asarray(solo.vector), 1, DOCUMENT_FIELD, 3, None)
        assert groups[0].value == "solo2" and [h.id for h in groups[0].hits] == ["solo2"]
        lang = vector_groups(store, collection_name, np.asarray(solo.vector), 46, "chunk", 2, None)
        solos = [g for g in lang if g.hits[0].id.startswith("solo")]
        assert len(solos) == 6 and all(g.value is None and len(g.hits) == 1 for g in solos)

    def test_a_list_value_is_refused(self, store: VectorStore, collection_name: str) -> None:
        records = grouped_records()
        records[0].metadata["lang"] = ["en", "de"]
        self.filled(store, collection_name, records)
        if not matches(parse_filter({"lang": "en"}), records[0].metadata):
            pytest.fail("fixture: the list should hold 'en'")
        with pytest.raises(ValidationError, match="list"):
            vector_groups(store, collection_name, np.asarray(records[0].vector), 40, "lang", 2, None)

    def test_native_grouping_is_declared_by_the_protocol(self, store: VectorStore) -> None:
        if not isinstance(store, NativeGrouping):
            pytest.skip(f"the {store.capabilities.name} store groups through the emulation")
        assert callable(store.query_groups)
