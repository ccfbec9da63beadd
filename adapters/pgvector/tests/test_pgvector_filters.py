"""The SQL translation of filters against the reference evaluator, and against injection.

The conformance suite checks hand-picked filters; here Hypothesis generates filter trees over
records whose values sit on the awkward edges (1 vs 1.0 vs True vs "1", big ints, floats written
with exponents, null, empty lists, absent keys), and every count must equal what
``vectorseam.filters.matches`` selects. Keys and values that try to break out of the SQL are bound
parameters, so they must select exactly what the reference selects and leave the table untouched.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import numpy as np
import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg import sql
from vectorseam_pgvector import PgVectorStore, create_store
from vectorseam_pgvector.filter_sql import where_clause
from vectorseam_pgvector.testing import PostgresServer

from vectorseam import filters as F
from vectorseam.errors import FilterError
from vectorseam.filters import Filter, matches
from vectorseam.types import CollectionSpec, Metadata, Record

COLLECTION = "filters"
INJECTIONS = [
    "'; DROP TABLE filters; --",
    "x' OR '1'='1",
    '"; DROP SCHEMA public CASCADE; --',
    "a\\'b",
    "back\\slash\\",
    "$$; DELETE FROM filters; $$",
    '}, "n": 1, {',
    "%s %(x)s {}",
    "ünïcødé ✓ 标识 🙂",
    "k') OR TRUE --",
    "metadata",
    "",
]

VALUES: list[Any] = [
    0,
    1,
    -1,
    2,
    1.0,
    1.5,
    -0.5,
    2.0,
    True,
    False,
    "1",
    "a",
    "b",
    "A",
    "",
    "true",
    10**16,
    1e16,
    10**20,
    1e300,
    5e-324,
    123456789.125,
]
KEYS = ["n", "s", "b", "tags", "mixed", "opt", "absent"]


def _metadata(i: int) -> Metadata:
    rng = np.random.default_rng(i)
    meta: Metadata = {}

    def pick(seq: list[Any]) -> Any:
        return seq[int(rng.integers(len(seq)))]

    if i % 5:
        meta["n"] = pick([0, 1, 2, -1, 1.0, 1.5, 2.0, 10**16, 1e16, 10**20, 1e300, 5e-324])
    if i % 4:
        meta["s"] = pick(["a", "b", "A", "", "1", "true", "'; DROP TABLE filters; --"])
    if i % 3:
        meta["b"] = pick([True, False])
    if i % 6 != 5:
        meta["tags"] = [pick(["a", "b", "c", 1, 2.5, True]) for _ in range(int(rng.integers(0, 4)))]
    meta["mixed"] = pick([1, "1", True, 1.0, None, [], [1, "1"], [True], 0, False, "a"])
    if i % 2:
        meta["opt"] = None
    return meta


RECORDS = [
    Record(f"r{i:03d}", np.random.default_rng(1000 + i).normal(size=4).astype(np.float32), f"t{i}", _metadata(i))
    for i in range(90)
]


@pytest.fixture(scope="module")
def filter_store(pg_server: PostgresServer) -> Iterator[PgVectorStore]:
    schema = f"f_{uuid.uuid4().hex[:10]}"
    store = create_store(dsn=pg_server.dsn(), schema=schema, index="exact")
    store.ensure_collection(CollectionSpec(COLLECTION, 4, "euclidean"))
    store.upsert(COLLECTION, RECORDS)
    yield store
    store.close()
    with psycopg.connect(pg_server.dsn(), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))


def expected_ids(f: Filter | None) -> list[str]:
    return sorted(r.id for r in RECORDS if matches(f, r.metadata))


def got_ids(store: PgVectorStore, f: Filter | None) -> list[str]:
    return sorted(r.id for page in store.scan(COLLECTION, batch_size=37, filter=f, include_vectors=False) for r in page)


scalars = st.sampled_from(VALUES)
numbers = st.sampled_from([v for v in VALUES if isinstance(v, int | float) and not isinstance(v, bool)])
keys = st.sampled_from(KEYS)
leaves = st.one_of(
    st.builds(F.eq, keys, scalars),
    st.builds(F.ne, keys, scalars),
    st.builds(F.gt, keys, numbers),
    st.builds(F.gte, keys, numbers),
    st.builds(F.lt, keys, numbers),
    st.builds(F.lte, keys, numbers),
    st.builds(F.in_, keys, st.lists(scalars, min_size=1, max_size=4)),
    st.builds(F.nin, keys, st.lists(scalars, min_size=1, max_size=4)),
    st.builds(F.exists, keys),
)
trees = st.recursive(
    leaves,
    lambda children: st.one_of(
        st.lists(children, min_size=1, max_size=3).map(lambda c: F.and_(*c)),
        st.lists(children, min_size=1, max_size=3).map(lambda c: F.or_(*c)),
        children.map(F.not_),
    ),
    max_leaves=6,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(tree=trees)
def test_random_filters_count_exactly_what_the_reference_selects(filter_store: PgVectorStore, tree: Filter) -> None:
    want = expected_ids(tree)
    assert filter_store.count(COLLECTION, filter=tree) == len(want), F.to_dict(tree)
    assert got_ids(filter_store, tree) == want, F.to_dict(tree)


@pytest.mark.parametrize(
    "leaf",
    [
        F.eq("n", 1),
        F.eq("n", True),
        F.eq("n", "1"),
        F.eq("n", 1e16),
        F.eq("n", 10**16),
        F.eq("n", 1e300),
        F.eq("n", 5e-324),
        F.gt("n", 1e299),
        F.lt("n", 1e-300),
        F.gte("n", 10**20),
        F.eq("mixed", 1),
        F.eq("mixed", "1"),
        F.eq("mixed", True),
        F.ne("mixed", 1),
        F.exists("mixed"),
        F.exists("opt"),
        F.not_(F.exists("opt")),
        F.eq("tags", 2.5),
        F.gt("tags", 2),
        F.in_("tags", [True, "c"]),
        F.nin("tags", ["a", 1]),
        F.eq("s", ""),
        F.ne("s", ""),
        F.in_("b", [False]),
        F.lt("b", 2),
    ],
)
def test_edge_filters(filter_store: PgVectorStore, leaf: Filter) -> None:
    assert got_ids(filter_store, leaf) == expected_ids(leaf)


def test_query_under_filter_equals_reference(filter_store: PgVectorStore) -> None:
    tree = F.or_(F.eq("tags", "a"), F.gt("n", 1))
    want = expected_ids(tree)
    hits = filter_store.query(COLLECTION, np.zeros(4, dtype=np.float32), k=len(RECORDS), filter=tree)[0]
    assert sorted(h.id for h in hits) == want


@pytest.mark.parametrize("text", INJECTIONS)
def test_injection_in_keys_and_values_matches_like_the_reference(filter_store: PgVectorStore, text: str) -> None:
    before = filter_store.count(COLLECTION)
    cases: list[Filter] = [F.eq("s", text), F.ne("s", text), F.in_("s", [text, "a"]), F.nin("s", [text])]
    if text:  # keys built directly: the dict syntax would refuse an empty key or a leading '$'
        cases += [
            F.Compare("eq", text, "a"),
            F.Compare("eq", text, text),
            F.Compare("ne", text, 1),
            F.Exists(text),
            F.Compare("gt", text, 0),
            F.Not(F.Exists(text)),
            F.In(text, (text, 1)),
            F.In(text, (text,), negate=True),
        ]
    for tree in cases:
        assert got_ids(filter_store, tree) == expected_ids(tree), F.to_dict(tree)
        assert filter_store.count(COLLECTION, filter=tree) == len(expected_ids(tree))
        hits = filter_store.query(COLLECTION, np.ones(4, dtype=np.float32), k=5, filter=tree)[0]
        assert {h.id for h in hits} <= set(expected_ids(tree))
        assert filter_store.delete(COLLECTION, filter=F.and_(tree, F.eq("s", "no such value"))) == 0
    assert filter_store.count(COLLECTION) == before == len(RECORDS)
    assert COLLECTION in {c.name for c in filter_store.collections()}


def test_injection_string_is_stored_and_found_verbatim(filter_store: PgVectorStore) -> None:
    """The one stored injection string (in field 's') is matched as plain data."""
    text = "'; DROP TABLE filters; --"
    want = expected_ids(F.eq("s", text))
    assert want, "the fixture data should hold the injection string"
    assert got_ids(filter_store, F.eq("s", text)) == want


def test_nul_in_filters_is_refused_before_reaching_sql() -> None:
    """No backend can store NUL, so the portable filter refuses it outright (a clear 4xx in the service)."""
    for make in (lambda: F.eq("s", "nul\x00byte"), lambda: F.eq("k\x00", "a"),
                 lambda: F.parse_filter({"s": {"$in": ["a", "nul\x00"]}})):
        with pytest.raises(FilterError, match="NUL"):
            make()


@pytest.mark.parametrize("text", ["lone \ud800 surrogate"])
def test_unstorable_strings_in_filters_follow_the_reference(filter_store: PgVectorStore, text: str) -> None:
    """No stored key or value can hold these, so eq matches nothing and ne matches everything."""
    for tree in (
        F.eq("s", text),
        F.ne("s", text),
        F.eq(text, "a"),
        F.ne(text, "a"),
        F.exists(text),
        F.gt(text, 1),
        F.in_("s", [text, "a"]),
        F.nin("s", [text]),
        F.in_(text, ["a", 1]),
    ):
        assert got_ids(filter_store, tree) == expected_ids(tree), F.to_dict(tree)


def test_sql_text_holds_no_key_or_value() -> None:
    tree = F.and_(F.eq("'; DROP TABLE x; --", "v'al"), F.gt('k"ey', 3), F.exists("e'x"), F.in_("i", ["'; --", 2]))
    clause, params = where_clause(tree)
    text = clause.as_string(None)
    for fragment in ("DROP", "v'al", 'k"ey', "e'x", "'; --"):
        assert fragment not in text
    assert text.count("%s") == len(params)


def test_empty_logical_nodes_follow_the_reference(filter_store: PgVectorStore) -> None:
    assert got_ids(filter_store, F.And(())) == expected_ids(F.And(()))
    assert got_ids(filter_store, F.Or(())) == expected_ids(F.Or(())) == []


def test_non_scalar_filter_values_are_rejected(filter_store: PgVectorStore) -> None:
    with pytest.raises(FilterError):
        filter_store.count(COLLECTION, filter=F.Compare("eq", "n", None))  # type: ignore[arg-type]
    with pytest.raises(FilterError):
        filter_store.count(COLLECTION, filter=F.Compare("gt", "n", "3"))


# Times by the portable rule and strings that only look like times: PostgreSQL must read exactly the
# former, to the same instants, whatever the session's TimeZone (naive values are UTC by the rule).
TIME_TEXTS = [
    "2024-01-01", "2024-01-01T00:00:00Z", "2024-01-01T05:30:00+05:30", "2023-12-31T19:00:00-05:00",
    "2023-12-31T23:59:59.999999Z", "2024-01-01T00:00:00.000001", "2024-01-01T00:00:00.5", "2024-02-29",
    "2000-02-29", "2024-03-01T12:00:00+15:59", "2024-03-01T12:00:00-15:59", "0001-01-01",
    "0001-01-01T00:30:00+01:00", "9999-12-31T23:00:00-15:59", "1969-12-31T23:59:59.999999Z",
    "2023-02-29", "1900-02-29", "2024-02-30", "2024-04-31", "2024-13-01", "2024-00-10", "2024-01-00",
    "0000-01-01", "2024-01-01 10:00:00", "2024-01-01T10:00", "2024-01-01T10:00:00.1234567Z",
    "2024-01-01T24:00:00", "2024-01-01T10:60:00", "2024-01-01T10:00:60", "2024-01-01T10:00:00+16:00",
    "2024-01-01T10:00:00+05:60", "2024-01-01T10:00:00+0530", "2024-01-01t10:00:00z", "20240101",
    "2024-1-1", "2024-01-01\n", "２０２４-01-01", "epoch", "infinity", "now", "today", "",
]


def test_time_ranges_read_exactly_the_portable_times_in_any_session_time_zone(pg_server: PostgresServer) -> None:
    schema = f"t_{uuid.uuid4().hex[:10]}"
    # Chatham is UTC+12:45/+13:45: a naive value read in the session zone would be off by hours.
    dsn = pg_server.dsn() + "?options=-c%20TimeZone%3DPacific%2FChatham"
    store = create_store(dsn=dsn, schema=schema, index="exact")
    try:
        store.ensure_collection(CollectionSpec("times", 4, "cosine"))
        vectors = np.ones((len(TIME_TEXTS) + 1, 4), dtype=np.float32)
        records = [Record(f"t{i:02d}", vectors[i], "", {"d": text}) for i, text in enumerate(TIME_TEXTS)]
        records.append(Record("list", vectors[-1], "", {"d": ["x", 3, "1999-01-01", "2030-01-01T00:00:00+01:00"]}))
        store.upsert("times", records)
        for bound in ("2024-01-01", "2024-01-01T00:00:00.000001+00:00", "0001-01-01", "2000-01-01T12:00:00-03:00"):
            for op in ("gt", "gte", "lt", "lte"):
                tree = F.Compare(op, "d", bound)  # type: ignore[arg-type]
                want = sorted(r.id for r in records if matches(tree, r.metadata))
                got = sorted(r.id for page in store.scan("times", filter=tree, include_vectors=False) for r in page)
                assert got == want, F.to_dict(tree)
    finally:
        store.close()
        with psycopg.connect(pg_server.dsn(), autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))


def test_time_bound_travels_as_a_parameter() -> None:
    clause, params = where_clause(F.gte("d'; DROP TABLE x; --", "2024-01-01T00:00:00+01:00"))
    text = clause.as_string(None)
    assert "DROP" not in text and "2024-01-01" not in text
    assert params == ["d'; DROP TABLE x; --", "2024-01-01T00:00:00+01:00"] and text.count("%s") == 2
