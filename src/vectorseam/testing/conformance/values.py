"""Values that must compare or round-trip exactly: ISO-8601 time filters and float32 vectors.

The mixins need the same
``store`` fixture and share the helpers of :class:`~vectorseam.testing.conformance.base.ConformanceBase`:

* :class:`DateFilterTests`: range operators with ISO-8601 dates and datetimes select exactly what
  :func:`vectorseam.filters.matches` selects (count, query and scan), over values chosen to tell a
  correct translation from a near miss: the same instant spelled with different offsets, one
  microsecond either side of a bound, leap days, strings that *look* like times but are not by the
  portable rule (``2024-02-30``, ``2024-01-01 10:00:00``, seven fractional digits), numbers next to
  dates, lists mixing both. A backend that cannot compare a bound exactly (outside the range its
  epoch numbers are exact in) must raise :class:`FilterError`, which :meth:`DateFilterTests.
  test_time_bounds_far_from_today` accepts in place of an answer; inside that range it must answer.
* :class:`ExactVectorTests`: every metric returns the float32 values written, bit for bit
  (``np.array_equal``), from ``fetch``, ``scan`` and hits with vectors, for vectors far from unit
  length and values such as ``1e-8`` and ``3.4e38``, and again after a reconnect where the class has
  one (:meth:`ConformanceBase.reopen`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from vectorseam.errors import FilterError
from vectorseam.filters import matches, parse_filter
from vectorseam.store import VectorStore
from vectorseam.testing.conformance.base import ConformanceBase
from vectorseam.testing.reference import random_vectors
from vectorseam.types import METRICS, MetadataValue, Metric, Record

# Values of the ``published`` field: times in every spelling the rule allows, near-misses that are
# not times, and values of other types. Each record holds one (or a list, or nothing).
PUBLISHED: list[MetadataValue] = [
    "2024-01-01",                          # midnight UTC
    "2024-01-01T00:00:00Z",                # the same instant, spelled out
    "2024-01-01T05:30:00+05:30",           # the same instant again, with an offset
    "2023-12-31T19:00:00-05:00",           # ... and once more
    "2023-12-31T23:59:59.999999Z",         # one microsecond before it
    "2024-01-01T00:00:00.000001",          # one microsecond after it (naive: UTC)
    "2024-01-01T00:00:00.5",               # one fractional digit
    "2024-02-29",                          # leap day
    "2024-03-01T12:00:00+15:59",           # the largest offset PostgreSQL takes
    "2024-06-15T08:45:10.123456-07:00",
    "1999-12-31T23:59:59",
    "2000-02-29T12:00:00Z",                # leap day of a century divisible by 400
    ["2020-05-05", "2030-05-05"],          # a list: any element may match
    ["not a date", "2025-01-01T00:00:00Z", 7, True],  # a list mixing a time with other values
    ["2019-01-01", "2019-06-01"],
    # strings that are not times by the portable rule: they never match a time range
    "2023-02-29", "1900-02-29", "2024-02-30", "2024-13-01", "2024-00-10",
    "2024-01-01 10:00:00", "2024-01-01T10:00", "2024-01-01T10:00:00.1234567Z",
    "2024-01-01T10:00:00+16:00", "2024-01-01T24:00:00", "2024-01-01t10:00:00z", "20240101",
    "yesterday", "", "0000-01-01",
    # other types: numbers never match a time range, booleans never match anything
    20240101, 1704067200, 1704067200.5, False,
    None, [],
]
BOUNDS = [
    "2024-01-01", "2024-01-01T00:00:00Z", "2024-01-01T05:30:00+05:30", "2023-12-31T23:59:59.999999Z",
    "2024-01-01T00:00:00.000001", "2024-02-29T00:00:00-00:00", "2025-06-01", "2019-03-01T12:00:00+01:00",
    "1999-12-31T23:59:59.000001",
]


def dated_records(values: Sequence[MetadataValue], dimension: int, key: str = "published") -> list[Record]:
    """One record per value (plus one without the key), with a numeric ``n`` for mixed filters."""
    vectors = random_vectors(len(values) + 1, dimension, seed=160)
    records = [
        Record(f"d{i:03d}", vectors[i], f"dated {i}", {key: value, "n": i})
        for i, value in enumerate(values)
    ]
    records.append(Record("d-absent", vectors[-1], "no date", {"n": -1}))
    return records


class DateFilterTests(ConformanceBase):
    """Time ranges (ISO-8601 dates and datetimes) against the reference semantics (every store)."""

    def check_or_refuse(
        self, store: VectorStore, name: str, records: Sequence[Record], spec: Mapping[str, Any]
    ) -> bool:
        """Like ``check_filter``, but the store may refuse the filter with ``FilterError`` instead:
        every call (count, query, scan) must then refuse it. True when the store answered."""
        try:
            store.count(name, filter=spec)
        except FilterError:
            for call in (
                lambda: store.query(name, np.ones(self.dimension, dtype=np.float32), filter=spec),
                lambda: list(store.scan(name, filter=spec)),
            ):
                with pytest.raises(FilterError):
                    call()
            return False
        self.check_filter(store, name, records, spec)
        return True

    def test_time_ranges_every_spelling(self, store: VectorStore, collection_name: str) -> None:
        records = self.filled(store, collection_name, dated_records(PUBLISHED, self.dimension))
        specs: list[Mapping[str, Any]] = [
            {"published": {op: bound}} for bound in BOUNDS for op in ("$gt", "$gte", "$lt", "$lte")
        ]
        self.check_filters(store, collection_name, records, specs)

    def test_time_ranges_combined(self, store: VectorStore, collection_name: str) -> None:
        records = self.filled(store, collection_name, dated_records(PUBLISHED, self.dimension))
        self.check_filters(store, collection_name, records, [
            {"published": {"$gte": "2024-01-01", "$lt": "2024-03-01"}},
            {"published": {"$gt": "2019-06-01", "$lt": "2020-01-01"}},  # no single element is in between
            {"published": {"$gte": "2019-01-01T00:00:00+00:00", "$lte": "2019-01-01"}},  # one instant
            {"$or": [{"published": {"$lt": "2000-01-01"}}, {"n": {"$gt": 40}}]},
            {"$and": [{"published": {"$gte": "2024-01-01"}}, {"published": {"$ne": "2024-01-01"}}]},
            {"published": {"$gte": "2024-01-01"}, "n": {"$lt": 10}},
            {"$not": {"published": {"$gte": "2024-01-01"}}},  # absent and non-times match the negation
            {"published": {"$exists": True}, "$not": {"published": {"$lt": "2030-01-01"}}},
        ])

    def test_equality_stays_exact_on_time_strings(self, store: VectorStore, collection_name: str) -> None:
        records = self.filled(store, collection_name, dated_records(PUBLISHED, self.dimension))
        self.check_filters(store, collection_name, records, [
            {"published": "2024-01-01"}, {"published": "2024-01-01T00:00:00Z"},
            {"published": {"$in": ["2024-02-29", "2030-05-05"]}}, {"published": {"$ne": "2024-01-01"}},
            {"published": {"$nin": ["2024-01-01", "yesterday"]}},
        ])

    def test_numbers_and_times_never_cross(self, store: VectorStore, collection_name: str) -> None:
        # Without the list mixing strings, numbers and booleans: number ranges over such lists are a
        # documented gap of Pinecone and Weaviate (they store them unfiltered), not the subject here.
        single_typed = [v for v in PUBLISHED if not (isinstance(v, list) and len({type(x) for x in v}) > 1)]
        records = self.filled(store, collection_name, dated_records(single_typed, self.dimension))
        self.check_filters(store, collection_name, records, [
            {"published": {"$gt": 0}}, {"published": {"$gte": 20240101}}, {"published": {"$lt": 1e12}},
            {"n": {"$gt": "2024-01-01"}}, {"n": {"$lt": "2100-01-01"}},
        ])

    def test_datetime_objects_as_bounds(self, store: VectorStore, collection_name: str) -> None:
        records = self.filled(store, collection_name, dated_records(PUBLISHED, self.dimension))
        utc, plus_two = dt.UTC, dt.timezone(dt.timedelta(hours=2))
        bounds: list[dt.date] = [
            dt.date(2024, 1, 1), dt.datetime(2024, 1, 1), dt.datetime(2024, 1, 1, tzinfo=utc),
            dt.datetime(2024, 1, 1, 2, 0, 0, 1, tzinfo=plus_two), dt.datetime(2023, 12, 31, 23, 59, 59, 999999),
        ]
        for bound in bounds:
            as_text = parse_filter({"published": {"$gte": bound.isoformat()}})
            assert parse_filter({"published": {"$gte": bound}}) == as_text
            self.check_filter(store, collection_name, records, {"published": {"$gte": bound}})

    def test_time_bounds_far_from_today(self, store: VectorStore, collection_name: str) -> None:
        """Stored years 1 to 9999 against bounds near and far: exact near (every store), exact or
        refused far (stores whose epoch numbers are exact only in a window, e.g. 1678-2262)."""
        values: list[MetadataValue] = [
            "0001-01-01", "0001-01-01T00:30:00+01:00", "1000-06-15T12:00:00Z", "1677-01-01",
            "1700-01-01", "1969-12-31T23:59:59.999999Z", "1970-01-01", "2262-06-01", "2300-01-01",
            "9999-12-31T23:59:59.999999Z", "9999-12-31T23:00:00-15:59", ["0500-01-01", "8000-01-01"],
        ]
        records = self.filled(store, collection_name, dated_records(values, self.dimension))
        near = ["1970-01-01", "1969-12-31T23:59:59.999999Z", "1800-01-01", "2200-01-01T00:00:00+01:00"]
        self.check_filters(store, collection_name, records, [
            {"published": {op: bound}} for bound in near for op in ("$gt", "$gte", "$lt", "$lte")
        ])
        far = ["0001-01-01", "1000-06-15T12:00:00Z", "1600-01-01", "2300-01-01", "9999-12-31"]
        for bound in far:
            for op in ("$gt", "$lte"):
                self.check_or_refuse(store, collection_name, records, {"published": {op: bound}})

    def test_delete_by_time_filter(self, store: VectorStore, collection_name: str) -> None:
        records = self.filled(store, collection_name, dated_records(PUBLISHED, self.dimension))
        spec = {"published": {"$lt": "2024-01-01"}}
        tree = parse_filter(spec)
        doomed = {r.id for r in records if matches(tree, r.metadata)}
        assert doomed and len(doomed) < len(records)
        assert store.delete(collection_name, filter=spec) == len(doomed)
        left = {r.id for page in store.scan(collection_name, include_vectors=False) for r in page}
        assert left == {r.id for r in records} - doomed

    @pytest.mark.parametrize(
        "bound", ["2024-02-30", "2024-01-01 10:00:00", "2024-01-01T10:00", "yesterday", "2024-1-1", ""]
    )
    def test_range_values_that_are_not_times_raise(
        self, store: VectorStore, collection_name: str, bound: str
    ) -> None:
        records = self.filled(store, collection_name, dated_records(PUBLISHED[:4], self.dimension))
        spec = {"published": {"$gte": bound}}
        with pytest.raises(FilterError, match="ISO-8601"):
            store.count(collection_name, filter=spec)
        with pytest.raises(FilterError, match="ISO-8601"):
            store.query(collection_name, np.ones(self.dimension, dtype=np.float32), filter=spec)
        with pytest.raises(FilterError, match="ISO-8601"):
            store.delete(collection_name, filter=spec)
        assert store.count(collection_name) == len(records)


def awkward_vectors(dimension: int) -> npt.NDArray[np.float32]:
    """Vectors whose float32 values a unit-vector-times-norm round trip would change.

    Far from unit length in both directions, full 24-bit mantissas, tiny (1e-8) and huge (3.4e38,
    near float32's largest) components. The huge ones sit in vectors whose other components are
    small, so every metric's score stays finite in float32 against the unit-length query used.
    """
    rng = np.random.default_rng(161)
    rows = [
        rng.normal(size=dimension) * 1000.0,
        rng.normal(size=dimension) * 1e-3,
        rng.uniform(-1.0, 1.0, size=dimension),
        np.full(dimension, 1e-8),
        np.r_[3.4e38, np.full(dimension - 1, 1.5)],
        np.r_[-1.0, 3.4e38, np.zeros(dimension - 2)],
        np.r_[1e-8, 7.0, 1e-8 * np.arange(dimension - 2)],
        np.r_[np.float32(1) / np.float32(3), np.full(dimension - 1, np.float32(2) / np.float32(7))],
    ]
    rows += list(rng.normal(size=(8, dimension)) * rng.uniform(0.01, 100.0, size=(8, 1)))
    return np.asarray(rows, dtype=np.float32)


class ExactVectorTests(ConformanceBase):
    """Vectors come back exactly as written: float32 values equal bit for bit (every store)."""

    def assert_exact(self, got: Sequence[Record], written: Mapping[str, npt.NDArray[np.float32]], how: str) -> None:
        assert sorted(r.id for r in got) == sorted(written), f"{how}: wrong records"
        for r in got:
            assert r.vector is not None, f"{how}: {r.id!r} came back without its vector"
            vector = np.asarray(r.vector)
            want = written[r.id]
            assert vector.dtype == np.float32, f"{how}: {r.id!r} came back as {vector.dtype}, not float32"
            assert np.array_equal(vector, want), (
                f"{how}: {r.id!r} came back changed at positions {np.flatnonzero(vector != want).tolist()}: "
                f"{vector[vector != want].tolist()} instead of {want[vector != want].tolist()}"
            )

    @pytest.mark.parametrize("metric", METRICS)
    def test_vectors_round_trip_bit_for_bit(
        self, store: VectorStore, collection_name: str, metric: Metric
    ) -> None:
        vectors = awkward_vectors(self.dimension)
        records = [Record(f"v{i:02d}", vectors[i], "", {"i": i}) for i in range(len(vectors))]
        self.filled(store, collection_name, records, metric)
        written = {r.id: vectors[i] for i, r in enumerate(records)}
        query = np.full(self.dimension, 1.0 / np.sqrt(self.dimension), dtype=np.float32)
        for attempt in ("written", "reopened"):
            if attempt == "reopened":
                if not self.reopens():
                    return
                store = self._reopen(store)
            self.assert_exact(store.fetch(collection_name, list(written)), written, f"fetch ({attempt})")
            self.assert_exact(
                [r for page in store.scan(collection_name, batch_size=5) for r in page], written, f"scan ({attempt})"
            )
            hits = store.query(collection_name, query, k=len(records), include_vectors=True)[0]
            self.assert_exact(
                [Record(h.id, h.vector, h.text, h.metadata) for h in hits], written, f"query hits ({attempt})"
            )

    def test_rewritten_vectors_are_exact_too(self, store: VectorStore, collection_name: str) -> None:
        """An upsert over an existing id stores the new values exactly (no stale norm or unit row)."""
        vectors = awkward_vectors(self.dimension)
        first = [Record(f"w{i}", vectors[i], "", {}) for i in range(4)]
        self.filled(store, collection_name, first)
        again = [Record(f"w{i}", vectors[-1 - i] * np.float32(3.0), "", {}) for i in range(4)]
        store.upsert(collection_name, again)
        written = {r.id: np.asarray(r.vector, dtype=np.float32) for r in again}
        self.assert_exact(store.fetch(collection_name, list(written)), written, "fetch after rewrite")


__all__ = ["DateFilterTests", "ExactVectorTests", "awkward_vectors", "dated_records"]
