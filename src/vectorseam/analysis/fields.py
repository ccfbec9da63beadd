"""What a collection's metadata holds: each field's kind, how many records have it, and its value range.

The search page's collection overview shows this, and uses the kinds to show times as dates: a field of
ISO-8601 strings (the filter syntax's times, :func:`vectorseam.filters.parse_time`) is ``time``; a
numeric field whose name says it is a time (``Time``, ``created_at``, ``published``...) and whose every
value lies in the range of Unix times of 1973-2128 is ``unix_time`` (seconds) or ``unix_time_ms``. A
number alone never makes a date: a price of 1,500,000,000 must stay a number.

One pass over the collection through the protocol's ``scan`` without vectors, so any store answers it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal, TypeAlias

from vectorseam.filters import FilterLike, format_time, parse_time
from vectorseam.store import VectorStore
from vectorseam.types import Metadata, Scalar
from vectorseam.values import ValueKey, distinct_values, facet_top, value_key

FieldKind: TypeAlias = Literal["number", "unix_time", "unix_time_ms", "time", "string", "bool", "mixed"]
TIME_NAME = re.compile(r"time|date|timestamp|created|updated|modified|published|_at$|At$", re.IGNORECASE)
UNIX_SECONDS = (1e8, 5e9)  # 1973-03-03 .. 2128-06-11
UNIX_MILLIS = (1e11, 5e12)
MAX_TRACKED = 10_000  # distinct values counted per field; beyond it the count says "at least"


@dataclass
class FieldSummary:
    """One metadata field: ``present`` records hold it (lists count once); ``low``/``high`` bound its
    numbers (or times, as RFC 3339 strings); ``top`` are its most frequent values with their counts."""

    name: str
    kind: FieldKind
    present: int
    distinct: int
    distinct_capped: bool
    low: Scalar | None
    high: Scalar | None
    top: list[tuple[Scalar, int]]
    is_list: bool = False

    def to_json(self) -> dict[str, object]:
        return {"name": self.name, "kind": self.kind, "present": self.present, "distinct": self.distinct,
                "distinct_capped": self.distinct_capped, "low": self.low, "high": self.high, "is_list": self.is_list,
                "top": [{"value": v, "count": c} for v, c in self.top]}


@dataclass
class _Tally:
    present: int = 0
    is_list: bool = False
    kinds: set[str] = field(default_factory=set)
    low: float | None = None
    high: float | None = None
    time_low: int | None = None
    time_high: int | None = None
    counts: dict[ValueKey, tuple[Scalar, int]] = field(default_factory=dict)
    capped: bool = False

    def add(self, value: object) -> None:
        values = distinct_values(value)
        if not values:
            return
        self.present += 1
        self.is_list = self.is_list or isinstance(value, list)
        for v in values:
            self._one(v)

    def _one(self, v: Scalar) -> None:
        if isinstance(v, bool):
            self.kinds.add("bool")
        elif isinstance(v, int | float):
            self.kinds.add("number")
            x = float(v)
            self.low = x if self.low is None else min(self.low, x)
            self.high = x if self.high is None else max(self.high, x)
        else:
            instant = parse_time(v)
            self.kinds.add("time" if instant is not None else "string")
            if instant is not None:
                self.time_low = instant if self.time_low is None else min(self.time_low, instant)
                self.time_high = instant if self.time_high is None else max(self.time_high, instant)
        key = value_key(v)
        seen = self.counts.get(key)
        if seen is not None:
            self.counts[key] = (seen[0], seen[1] + 1)
        elif len(self.counts) < MAX_TRACKED:
            self.counts[key] = (v, 1)
        else:
            self.capped = True

    def summary(self, name: str, top: int) -> FieldSummary:
        kind: FieldKind
        low: Scalar | None = None
        high: Scalar | None = None
        if self.kinds == {"number"}:
            kind = _number_kind(name, self.low, self.high)
            low, high = _plain(self.low), _plain(self.high)
        elif self.kinds == {"time"}:
            kind = "time"
            assert self.time_low is not None and self.time_high is not None
            low, high = format_time(self.time_low), format_time(self.time_high)
        elif len(self.kinds) == 1:
            kind = "bool" if "bool" in self.kinds else "string"
        else:
            kind = "mixed"
        return FieldSummary(name, kind, self.present, len(self.counts), self.capped, low, high,
                            facet_top(self.counts, top), self.is_list)


def _plain(x: float | None) -> Scalar | None:
    return int(x) if x is not None and x.is_integer() and abs(x) < 2**53 else x


def _number_kind(name: str, low: float | None, high: float | None) -> FieldKind:
    if low is None or high is None or not TIME_NAME.search(name):
        return "number"
    for kind, (a, b) in (("unix_time", UNIX_SECONDS), ("unix_time_ms", UNIX_MILLIS)):
        if a <= low and high <= b:
            return kind  # type: ignore[return-value]
    return "number"


def summarize_metadata(metadata: Iterable[Metadata], top: int = 5) -> tuple[int, list[FieldSummary]]:
    """How many records there were, and every field's summary in name order."""
    tallies: dict[str, _Tally] = {}
    n = 0
    for meta in metadata:
        n += 1
        for name, value in meta.items():
            tallies.setdefault(name, _Tally()).add(value)
    return n, [tallies[name].summary(name, top) for name in sorted(tallies)]


def summarize_fields(store: VectorStore, collection: str, filter: FilterLike = None,
                     top: int = 5) -> tuple[int, list[FieldSummary]]:
    """Every metadata field of ``collection`` (of the records ``filter`` admits), read by one scan."""
    def metadata() -> Iterable[Metadata]:
        for batch in store.scan(collection, batch_size=1000, filter=filter, include_vectors=False):
            for record in batch:
                yield record.metadata

    return summarize_metadata(metadata(), top)
