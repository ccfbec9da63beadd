"""Native recommendations: a store's own ``recommend`` must give what the definitions give.

:mod:`vectorseam.retrieval.recommend` defines both strategies (as Qdrant does) and answers them on any
store through its generic path. A store that implements :class:`~vectorseam.store.NativeRecommend` is
asked directly instead, so its answers must agree with that definition: the same records, scored the
same within tolerance, with filters and negatives, and the same errors for unknown ids. A strategy
the native method cannot do must raise :class:`~vectorseam.errors.UnsupportedOperationError` (the
type the generic path falls back on), never give other numbers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
import pytest

from vectorseam.errors import CollectionNotFoundError, UnsupportedOperationError, ValidationError
from vectorseam.filters import matches, parse_filter
from vectorseam.retrieval.recommend import best_scores, recommend
from vectorseam.similarity import average_vector
from vectorseam.store import NativeRecommend, VectorStore
from vectorseam.testing.conformance.base import ConformanceBase
from vectorseam.testing.reference import (
    SCORE_TOL,
    assert_ranking,
    catalog_records,
    reference_scores,
    reference_top_k,
)
from vectorseam.types import METRICS, Metric, Record

# (positives, negatives): one positive alone (Pinecone and Weaviate answer it by id on the server),
# several positives, and positives with negatives (the target moves away from the negatives).
_CASES: tuple[tuple[list[str], list[str]], ...] = (
    (["c01"], []),
    (["c01", "c07", "c20"], []),
    (["c01", "c07"], ["c03"]),
    (["c10"], ["c11", "c12"]),
)
# No filter, a selective one, and one the examples themselves do not pass (examples are looked up by
# id whatever the filter says; the filter only restricts what is recommended).
_FILTERS: tuple[Mapping[str, Any] | None, ...] = (None, {"tags": "a"}, {"$or": [{"color": "red"}, {"size": 4}]})


def reference_recommend(
    records: Sequence[Record],
    positive: Sequence[str],
    negative: Sequence[str],
    metric: Metric,
    strategy: str,
    filter: Mapping[str, Any] | None = None,
) -> dict[str, float]:
    """Every candidate (the examples excluded, ``filter`` applied) with its score by definition, in float64."""
    by_id = {r.id: np.asarray(r.vector, dtype=np.float64) for r in records}
    tree = parse_filter(filter)
    examples = set(positive) | set(negative)
    kept = [r.id for r in records if r.id not in examples and matches(tree, r.metadata)]
    if not kept:
        return {}
    matrix = np.stack([by_id[i] for i in kept])
    dimension = matrix.shape[1]
    pvec = np.stack([by_id[i] for i in positive])
    nvec = np.stack([by_id[i] for i in negative]) if negative else np.zeros((0, dimension))
    if strategy == "average_vector":
        scores = reference_scores(matrix, average_vector(pvec, nvec, metric), metric)
    else:
        def sims(examples: np.ndarray[Any, np.dtype[np.float64]]) -> np.ndarray[Any, np.dtype[np.float64]]:
            columns = [reference_scores(matrix, e, metric) for e in examples]
            return np.stack(columns, axis=1) if columns else np.zeros((len(kept), 0))

        scores = best_scores(sims(pvec), sims(nvec))
    return {i: float(s) for i, s in zip(kept, scores, strict=True)}


class RecommendTests(ConformanceBase):
    """Native recommend against the definitions and the generic path (stores that are NativeRecommend)."""

    #: ``(strategy, metric)`` -> why this store's native scores differ from the definition there while
    #: its ranking agrees. The ranking is still checked; the case then ends as an expected failure with
    #: that reason, and fails outright once the scores agree (so the entry is removed with the cause).
    recommend_score_deviations: ClassVar[Mapping[tuple[str, str], str]] = {}

    def native_recommend(self, store: VectorStore) -> NativeRecommend:
        return self.require(
            store,
            NativeRecommend,  # type: ignore[type-abstract]
            "it has no recommend of its own; vectorseam.retrieval.recommend's generic path serves it "
            "through query and fetch, which the other parts of the suite check",
        )

    @pytest.mark.parametrize("metric", METRICS)
    def test_native_average_vector_matches_reference_and_generic_path(
        self, store: VectorStore, collection_name: str, metric: Metric
    ) -> None:
        native = self.native_recommend(store)
        records = self.filled(store, collection_name, catalog_records(), metric)
        for positive, negative in _CASES:
            for spec in _FILTERS:
                want = reference_recommend(records, positive, negative, metric, "average_vector", spec)
                hits = native.recommend(collection_name, positive, negative, k=6, filter=spec)
                assert not {h.id for h in hits} & (set(positive) | set(negative)), (
                    f"examples recommended back for {positive} / {negative}: {[h.id for h in hits]}"
                )
                assert_ranking(hits, want, 6)
                generic = recommend(store, collection_name, positive, negative, k=6, filter=spec,
                                    exclude_identical_text=False, native=False)
                assert_ranking(generic, want, 6)
        # k beyond the candidates: every record that passes the filter, the examples still left out
        spec = {"tags": "b"}
        hits = native.recommend(collection_name, ["c02"], ["c05"], k=100, filter=spec)
        assert_ranking(hits, reference_recommend(records, ["c02"], ["c05"], metric, "average_vector", spec), 100)

    @pytest.mark.parametrize("metric", METRICS)
    def test_native_best_score_matches_reference_or_is_unsupported(
        self, store: VectorStore, collection_name: str, metric: Metric
    ) -> None:
        """``best_score`` natively, or UnsupportedOperationError so that the generic path answers it."""
        native = self.native_recommend(store)
        deviation = self.recommend_score_deviations.get(("best_score", metric))
        records = self.filled(store, collection_name, catalog_records(), metric)
        scores_agree: list[bool] = []
        for positive, negative in _CASES:
            for spec in _FILTERS:
                want = reference_recommend(records, positive, negative, metric, "best_score", spec)
                try:
                    hits = native.recommend(collection_name, positive, negative, k=6, filter=spec,
                                            strategy="best_score")
                except UnsupportedOperationError:
                    # The facade's recommend must then fall back to the generic path and still be right.
                    hits = recommend(store, collection_name, positive, negative, k=6, filter=spec,
                                     strategy="best_score", exclude_identical_text=False)
                    deviation = None  # the generic path is the definition
                assert not {h.id for h in hits} & (set(positive) | set(negative))
                if deviation is None:
                    assert_ranking(hits, want, 6)
                    continue
                assert [h.id for h in hits] == [i for i, _ in reference_top_k(want, 6)], (
                    f"best_score ranking differs from the definition for {positive} / {negative}, {spec}"
                )
                scores_agree.append(np.allclose([h.score for h in hits], [want[h.id] for h in hits],
                                                rtol=SCORE_TOL, atol=SCORE_TOL))
        if deviation is not None:
            assert not all(scores_agree), (
                f"the declared score deviation for best_score/{metric} is gone: remove it ({deviation})"
            )
            pytest.xfail(deviation)

    def test_native_recommend_errors_like_the_generic_path(self, store: VectorStore, collection_name: str) -> None:
        native = self.native_recommend(store)
        self.filled(store, collection_name, catalog_records())
        bad_ids: list[tuple[list[str], list[str]]] = [(["c01", "nope"], []), (["c01"], ["nope"]), (["nope"], [])]
        for positive, negative in bad_ids:
            with pytest.raises(ValidationError):
                recommend(store, collection_name, positive, negative, native=False)
            with pytest.raises(ValidationError):
                native.recommend(collection_name, positive, negative)
        with pytest.raises(ValidationError):
            native.recommend(collection_name, [], ["c01"], strategy="average_vector")
        with pytest.raises(ValidationError):
            native.recommend(collection_name, ["c01"], k=0)
        with pytest.raises((ValidationError, UnsupportedOperationError)):
            native.recommend(collection_name, ["c01"], strategy="sum_scores")
        with pytest.raises(CollectionNotFoundError):
            native.recommend(collection_name + "missing", ["c01"])
        assert store.count(collection_name) == 48
