"""The portable filter language: dict parsing, its errors, rendering, and the reference semantics."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from vectorseam import filters as F
from vectorseam.errors import FilterError, ValidationError
from vectorseam.filters import And, Compare, Exists, In, Not, Or, matches, parse_filter, to_dict

# --- parsing -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "tree"),
    [
        ({"color": "red"}, Compare("eq", "color", "red")),
        ({"n": 3}, Compare("eq", "n", 3)),
        ({"flag": True}, Compare("eq", "flag", True)),
        ({"x": 2.5}, Compare("eq", "x", 2.5)),
        ({"color": {"$eq": "red"}}, Compare("eq", "color", "red")),
        ({"color": {"$ne": "red"}}, Compare("ne", "color", "red")),
        ({"n": {"$gt": 1}}, Compare("gt", "n", 1)),
        ({"n": {"$gte": 1.5}}, Compare("gte", "n", 1.5)),
        ({"n": {"$lt": -2}}, Compare("lt", "n", -2)),
        ({"n": {"$lte": 0}}, Compare("lte", "n", 0)),
        ({"c": {"$in": ["a", "b"]}}, In("c", ("a", "b"))),
        ({"c": {"$in": ("a",)}}, In("c", ("a",))),
        ({"c": {"$nin": [1, 2.0, True]}}, In("c", (1, 2.0, True), negate=True)),
        ({"c": {"$exists": True}}, Exists("c")),
        ({"c": {"$exists": False}}, Not(Exists("c"))),
        ({"$not": {"c": 1}}, Not(Compare("eq", "c", 1))),
        ({"$and": [{"a": 1}]}, And((Compare("eq", "a", 1),))),
        (
            {"$or": [{"a": 1}, {"b": {"$lt": 2}}]},
            Or((Compare("eq", "a", 1), Compare("lt", "b", 2))),
        ),
        # several operators in one field object, several keys, and logical next to fields: all "and"
        ({"n": {"$gt": 1, "$lt": 5}}, And((Compare("gt", "n", 1), Compare("lt", "n", 5)))),
        ({"a": 1, "b": "x"}, And((Compare("eq", "a", 1), Compare("eq", "b", "x")))),
        (
            {"a": {"$gte": 0, "$ne": 3}, "b": True},
            And((Compare("gte", "a", 0), Compare("ne", "a", 3), Compare("eq", "b", True))),
        ),
        (
            {"a": 1, "$or": [{"b": 2}, {"c": 3}]},
            And((Compare("eq", "a", 1), Or((Compare("eq", "b", 2), Compare("eq", "c", 3))))),
        ),
        (
            {"$or": [{"$and": [{"a": 1}, {"$not": {"b": {"$in": ["x"]}}}]}, {"c": {"$exists": False}}]},
            Or((
                And((Compare("eq", "a", 1), Not(In("b", ("x",))))),
                Not(Exists("c")),
            )),
        ),
        ({"weird key/with space.é": 1}, Compare("eq", "weird key/with space.é", 1)),
    ],
)
def test_parse_dict_form(spec: dict[str, Any], tree: F.Filter) -> None:
    assert parse_filter(spec) == tree


def test_no_filter() -> None:
    assert parse_filter(None) is None
    assert parse_filter({}) is None


def test_tree_passes_through_unchanged() -> None:
    tree = F.and_(F.eq("a", 1), F.not_(F.in_("b", ["x", "y"])))
    assert parse_filter(tree) is tree


def test_dsl_builds_the_same_tree_as_the_dict_form() -> None:
    dsl = F.or_(
        F.and_(F.gte("n", 1), F.lt("n", 5.5)),
        F.nin("tag", ["a", "b"]),
        F.not_(F.exists("gone")),
        F.ne("color", "red"),
        F.gt("x", 0),
        F.lte("y", 2),
    )
    spec = {"$or": [
        {"n": {"$gte": 1, "$lt": 5.5}},
        {"tag": {"$nin": ["a", "b"]}},
        {"gone": {"$exists": False}},
        {"color": {"$ne": "red"}},
        {"x": {"$gt": 0}},
        {"y": {"$lte": 2}},
    ]}
    assert parse_filter(spec) == dsl


@pytest.mark.parametrize(
    "spec",
    [
        {"color": "red"},
        {"n": {"$gt": 1, "$lt": 5}},
        {"a": 1, "b": {"$in": ["x", 2, 3.5, False]}},
        {"$not": {"$or": [{"a": {"$exists": False}}, {"b": {"$nin": [1]}}]}},
        {"$and": [{"$or": [{"a": 1}, {"b": 2}]}, {"$not": {"c": {"$lte": -1.5}}}]},
        {"a": {"$eq": True}, "$or": [{"b": {"$ne": "y"}}]},
    ],
)
def test_to_dict_round_trip(spec: dict[str, Any]) -> None:
    tree = parse_filter(spec)
    assert tree is not None
    rendered = to_dict(tree)
    assert parse_filter(rendered) == tree
    reparsed = parse_filter(rendered)
    assert reparsed is not None and to_dict(reparsed) == rendered
    # The rendered form means the same thing as the input on every sample record.
    for meta in SAMPLE_METADATA:
        assert matches(parse_filter(rendered), meta) == matches(tree, meta)


def test_to_dict_canonical_shapes() -> None:
    assert to_dict(Compare("eq", "a", 1)) == {"a": {"$eq": 1}}
    assert to_dict(In("a", (1, 2), negate=True)) == {"a": {"$nin": [1, 2]}}
    assert to_dict(Not(Exists("a"))) == {"$not": {"a": {"$exists": True}}}
    assert to_dict(And((Compare("eq", "a", 1), Compare("gt", "b", 2)))) == {
        "$and": [{"a": {"$eq": 1}}, {"b": {"$gt": 2}}]
    }
    with pytest.raises(TypeError):
        to_dict("not a filter")  # type: ignore[arg-type]


# --- errors --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "fragments"),
    [
        ({"a": {"$regex": "x"}}, ["filter.a", "'$regex'", "unknown operator", "$in"]),
        ({"a": {"gt": 1}}, ["filter.a", "'gt'", "unknown operator"]),
        ({"a": {1: 2}}, ["filter.a", "unknown operator 1"]),
        ({"a": {"$gt": "x"}}, ["filter.a", "$gt", "number", "str", "'x'"]),
        ({"a": {"$lte": True}}, ["filter.a", "$lte", "number", "bool"]),
        ({"a": {"$gte": [1, 2]}}, ["filter.a", "$gte", "number", "list"]),
        ({"a": {"$lt": float("nan")}}, ["filter.a", "$lt", "finite"]),
        ({"a": float("inf")}, ["filter.a", "finite"]),
        ({"a": None}, ["filter.a", "null", "$exists"]),
        ({"a": {"$eq": None}}, ["filter.a", "$eq", "null"]),
        ({"a": {"$ne": None}}, ["filter.a", "$ne", "null"]),
        ({"a": [1, 2]}, ["filter.a", "single value", "$in"]),
        ({"a": {"$eq": [1]}}, ["filter.a", "$eq", "$in"]),
        ({"a": {"$eq": {"b": 1}}}, ["filter.a", "$eq", "str, int, float or bool", "dict"]),
        ({"a": {"b": 1}}, ["filter.a", "unknown operator 'b'"]),
        ({"a": b"bytes"}, ["filter.a", "bytes"]),
        ({"a": {"$in": []}}, ["filter.a", "$in", "non-empty list"]),
        ({"a": {"$in": "xy"}}, ["filter.a", "$in", "non-empty list", "'xy'"]),
        ({"a": {"$nin": [1, None]}}, ["filter.a", "$nin", "null"]),
        ({"a": {"$in": [[1]]}}, ["filter.a", "$in", "single value"]),
        ({"a": {"$exists": 1}}, ["filter.a", "$exists", "true or false"]),
        ({"a": {}}, ["filter.a", "empty operator object"]),
        ({"$or": {}}, ["filter.$or", "non-empty list"]),
        ({"$or": []}, ["filter.$or", "non-empty list"]),
        ({"$and": {"a": 1}}, ["filter.$and", "non-empty list"]),
        ({"$and": [{}]}, ["filter.$and[0]", "non-empty object"]),
        ({"$and": [{"a": 1}, "b"]}, ["filter.$and[1]", "non-empty object", "'b'"]),
        ({"$not": []}, ["filter.$not", "non-empty object"]),
        ({"$not": {}}, ["filter.$not", "non-empty object"]),
        ({"$nor": [{"a": 1}]}, ["filter.$nor", "unknown operator", "$and, $or, $not"]),
        ({"$gt": 1}, ["filter.$gt", "field operators go inside a field"]),
        ({"$or": [{"a": 1}, {"b": {"$lt": "z"}}]}, ["filter.$or[1].b", "$lt", "number"]),
        ({"$not": {"$and": [{"x": {"$in": []}}]}}, ["filter.$not.$and[0].x", "$in"]),
        ({1: "x"}, ["keys must be strings"]),
        ({"": 1}, ["non-empty strings"]),
        ({"$or": [{"$x": 1}]}, ["filter.$or[0].$x", "unknown operator"]),
    ],
)
def test_parse_errors_name_operator_value_and_path(spec: Any, fragments: list[str]) -> None:
    with pytest.raises(FilterError) as info:
        parse_filter(spec)
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} missing from {message!r}"


@pytest.mark.parametrize("spec", [["a", 1], "color = red", 3, ("a", 1)])
def test_non_object_filters_rejected(spec: Any) -> None:
    with pytest.raises(FilterError, match="must be an object"):
        parse_filter(spec)


def test_filter_error_is_a_validation_error() -> None:
    """Callers that catch bad input (ValidationError / ValueError) also catch bad filters."""
    with pytest.raises(ValidationError):
        parse_filter({"a": {"$regex": "x"}})
    with pytest.raises(ValueError):
        parse_filter({"a": {"$regex": "x"}})


def test_dollar_field_names_rejected() -> None:
    with pytest.raises(FilterError, match="reserved for operators"):
        F.eq("$a", 1)


@pytest.mark.parametrize(
    "build",
    [
        lambda: F.eq("a", None),
        lambda: F.eq("a", [1]),
        lambda: F.ne("a", float("nan")),
        lambda: F.gt("a", "1"),
        lambda: F.gte("a", True),
        lambda: F.lt("a", float("inf")),
        lambda: F.lte("a", None),
        lambda: F.in_("a", []),
        lambda: F.nin("a", "abc"),
        lambda: F.in_("a", [None]),
        lambda: F.exists(""),
        lambda: F.and_(),
        lambda: F.or_(),
    ],
)
def test_dsl_rejects_bad_input(build: Any) -> None:
    with pytest.raises(FilterError):
        build()


# --- inspection and capability checks ----------------------------------------------------------


def test_operators_and_keys() -> None:
    tree = parse_filter({
        "$or": [
            {"a": 1, "b": {"$gt": 2}},
            {"$not": {"c": {"$nin": ["x"]}}},
            {"d": {"$exists": False}},
        ],
    })
    assert tree is not None
    assert F.operators(tree) == {"or", "and", "eq", "gt", "not", "nin", "exists"}
    assert F.keys(tree) == {"a", "b", "c", "d"}
    assert F.operators(F.in_("a", [1])) == {"in"}
    assert F.operators(F.ne("a", 1)) == {"ne"}


def test_require_operators_accepts_supported_and_no_filter() -> None:
    tree = parse_filter({"a": 1, "b": {"$in": [1, 2]}})
    F.require_operators(tree, frozenset({"eq", "in", "and"}), "toy")
    F.require_operators(None, frozenset(), "toy")
    F.require_operators(tree, F.ALL_OPERATORS, "toy")


def test_require_operators_names_every_missing_operator_and_the_backend() -> None:
    tree = parse_filter({"$not": {"a": {"$exists": True}}, "b": {"$nin": [1]}})
    with pytest.raises(FilterError) as info:
        F.require_operators(tree, frozenset({"eq", "in", "exists", "and"}), "pinecone")
    message = str(info.value)
    assert "pinecone" in message
    assert "$nin, $not" in message  # sorted, $-prefixed: what the user wrote
    assert "$exists" not in message and "$and" not in message


def test_require_operators_sees_negated_exists_as_not() -> None:
    """``$exists: false`` is Not(Exists): a backend without ``not`` must reject it, not drop it."""
    with pytest.raises(FilterError, match=r"\$not"):
        F.require_operators(parse_filter({"a": {"$exists": False}}), frozenset({"exists", "eq"}), "toy")


# --- the reference semantics ---------------------------------------------------------------------

SAMPLE_METADATA: list[dict[str, Any]] = [
    {},
    {"a": None},
    {"a": 1},
    {"a": 1.0},
    {"a": True},
    {"a": "1"},
    {"a": []},
    {"a": [1, "x"]},
    {"b": 2, "c": "y", "a": 5},
]


@pytest.mark.parametrize(
    ("spec", "metadata", "expected"),
    [
        # eq: type-aware, numeric across int/float, any element of a list
        ({"a": 1}, {"a": 1}, True),
        ({"a": 1}, {"a": 1.0}, True),
        ({"a": 1.0}, {"a": 1}, True),
        ({"a": 1}, {"a": True}, False),
        ({"a": True}, {"a": 1}, False),
        ({"a": False}, {"a": 0}, False),
        ({"a": True}, {"a": True}, True),
        ({"a": 1}, {"a": "1"}, False),
        ({"a": "1"}, {"a": 1}, False),
        ({"a": "x"}, {"a": ["y", "x"]}, True),
        ({"a": "x"}, {"a": "X"}, False),
        ({"a": 1}, {}, False),
        ({"a": 1}, {"a": None}, False),
        # ne / nin: exactly "not eq" / "not in", so absent and null match
        ({"a": {"$ne": 1}}, {}, True),
        ({"a": {"$ne": 1}}, {"a": None}, True),
        ({"a": {"$ne": 1}}, {"a": []}, True),
        ({"a": {"$ne": 1}}, {"a": [2, 1]}, False),
        ({"a": {"$ne": 1}}, {"a": True}, True),
        ({"a": {"$nin": [1, 2]}}, {}, True),
        ({"a": {"$nin": [1, 2]}}, {"a": 2.0}, False),
        ({"a": {"$nin": ["x"]}}, {"a": ["y"]}, True),
        # in
        ({"a": {"$in": [1, "x"]}}, {"a": "x"}, True),
        ({"a": {"$in": [1, "x"]}}, {"a": ["z", 1.0]}, True),
        ({"a": {"$in": [1]}}, {"a": True}, False),
        ({"a": {"$in": [True]}}, {"a": [False, True]}, True),
        ({"a": {"$in": [1]}}, {}, False),
        # ranges: numbers only, absent/other types never match, any list element
        ({"a": {"$gt": 1}}, {"a": 2}, True),
        ({"a": {"$gt": 1}}, {"a": 1}, False),
        ({"a": {"$gte": 1}}, {"a": 1.0}, True),
        ({"a": {"$gt": 1.5}}, {"a": 2}, True),
        ({"a": {"$lt": 2}}, {"a": 1.999}, True),
        ({"a": {"$lte": 2.0}}, {"a": 2}, True),
        ({"a": {"$gt": 0}}, {"a": True}, False),
        ({"a": {"$gt": 0}}, {"a": "5"}, False),
        ({"a": {"$gt": 0}}, {}, False),
        ({"a": {"$lt": 0}}, {"a": None}, False),
        ({"a": {"$gt": 5}}, {"a": [1, 7]}, True),
        ({"a": {"$gt": 5}}, {"a": ["9", 1]}, False),
        # each condition is tested by itself against the list: 5 > 1 and 0 < 3
        ({"a": {"$gt": 1, "$lt": 3}}, {"a": [0, 5]}, True),
        ({"a": {"$gt": 1, "$lt": 3}}, {"a": [0, 0.5]}, False),
        ({"a": {"$gt": 2**53}}, {"a": 2**53 + 2}, True),
        # exists: present, not null, not an empty list
        ({"a": {"$exists": True}}, {"a": 0}, True),
        ({"a": {"$exists": True}}, {"a": False}, True),
        ({"a": {"$exists": True}}, {"a": ""}, True),
        ({"a": {"$exists": True}}, {"a": None}, False),
        ({"a": {"$exists": True}}, {"a": []}, False),
        ({"a": {"$exists": True}}, {}, False),
        ({"a": {"$exists": False}}, {"a": []}, True),
        # logic
        ({"$not": {"a": {"$gt": 1}}}, {}, True),
        ({"$not": {"a": {"$gt": 1}}}, {"a": "x"}, True),
        ({"$or": [{"a": 1}, {"b": 2}]}, {"b": 2}, True),
        ({"$and": [{"a": 1}, {"b": 2}]}, {"b": 2}, False),
        ({"a": 1, "b": 2}, {"a": 1, "b": 2.0}, True),
        ({"$not": {"$or": [{"a": 1}, {"b": {"$exists": True}}]}}, {"a": 2}, True),
    ],
)
def test_reference_semantics(spec: dict[str, Any], metadata: dict[str, Any], expected: bool) -> None:
    assert matches(parse_filter(spec), metadata) is expected


def test_no_filter_matches_everything() -> None:
    assert all(matches(None, m) for m in SAMPLE_METADATA)


def test_ne_is_not_eq_and_nin_is_not_in_everywhere() -> None:
    for value in (1, 1.0, True, False, "1", "x", 5):
        for meta in SAMPLE_METADATA:
            assert matches(F.ne("a", value), meta) is not matches(F.eq("a", value), meta)
            assert matches(F.nin("a", [value, 2]), meta) is not matches(F.in_("a", [value, 2]), meta)
            assert matches(F.in_("a", [value]), meta) is matches(F.eq("a", value), meta)


def test_scalar_equal_has_no_cross_type_surprises() -> None:
    assert F.scalar_equal(1, 1.0)
    assert not F.scalar_equal(True, 1)
    assert not F.scalar_equal(1, True)
    assert not F.scalar_equal(0, False)
    assert F.scalar_equal(False, False)
    assert not F.scalar_equal("a", 1)
    assert not F.scalar_equal(None, "None")


# --- times: the ISO-8601 rule of range operators ---------------------------------------------------

_UTC = dt.UTC


def _micros(stamp: dt.datetime) -> int:
    """Epoch microseconds of an aware datetime, by exact integer arithmetic (the expected value)."""
    delta = stamp - dt.datetime(1970, 1, 1, tzinfo=_UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


@pytest.mark.parametrize(
    ("text", "stamp"),
    [
        ("2024-01-01", dt.datetime(2024, 1, 1, tzinfo=_UTC)),  # a date is midnight UTC
        ("2024-01-01T00:00:00", dt.datetime(2024, 1, 1, tzinfo=_UTC)),  # naive is UTC
        ("2024-01-01T00:00:00Z", dt.datetime(2024, 1, 1, tzinfo=_UTC)),
        ("2024-01-01T05:30:00+05:30", dt.datetime(2024, 1, 1, tzinfo=_UTC)),
        ("2023-12-31T19:00:00-05:00", dt.datetime(2024, 1, 1, tzinfo=_UTC)),
        ("2024-01-01T00:00:00-00:00", dt.datetime(2024, 1, 1, tzinfo=_UTC)),
        ("2024-06-15T08:45:10.5", dt.datetime(2024, 6, 15, 8, 45, 10, 500_000, tzinfo=_UTC)),
        ("2024-06-15T08:45:10.000001Z", dt.datetime(2024, 6, 15, 8, 45, 10, 1, tzinfo=_UTC)),
        ("2024-06-15T08:45:10.123456+15:59",
         dt.datetime(2024, 6, 15, 8, 45, 10, 123456, tzinfo=dt.timezone(dt.timedelta(hours=15, minutes=59)))),
        ("2024-02-29", dt.datetime(2024, 2, 29, tzinfo=_UTC)),
        ("2000-02-29T23:59:59Z", dt.datetime(2000, 2, 29, 23, 59, 59, tzinfo=_UTC)),
        ("1969-12-31T23:59:59.999999Z", dt.datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=_UTC)),
        ("0001-01-01", dt.datetime(1, 1, 1, tzinfo=_UTC)),
        ("9999-12-31T23:59:59.999999Z", dt.datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=_UTC)),
    ],
)
def test_parse_time_reads_the_instant(text: str, stamp: dt.datetime) -> None:
    assert F.parse_time(text) == _micros(stamp)


def test_parse_time_outside_years_1_to_9999_in_utc() -> None:
    """An offset can move an instant just outside datetime's range; integers still order it."""
    early = F.parse_time("0001-01-01T00:30:00+01:00")
    late = F.parse_time("9999-12-31T23:00:00-15:59")
    assert early is not None and late is not None
    assert early == _micros(dt.datetime(1, 1, 1, tzinfo=_UTC)) - 30 * 60 * 1_000_000
    assert late == _micros(dt.datetime(9999, 12, 31, 23, tzinfo=_UTC)) + (15 * 60 + 59) * 60 * 1_000_000


@pytest.mark.parametrize(
    "text",
    [
        "2023-02-29", "1900-02-29", "2024-02-30", "2024-04-31", "2024-13-01", "2024-00-10", "2024-01-00",
        "0000-01-01",  # no year 0
        "2024-01-01 10:00:00", "2024-01-01T10:00", "2024-01-01T10", "2024-01-01T10:00:00.",
        "2024-01-01T10:00:00.1234567Z",  # more than microseconds
        "2024-01-01T24:00:00", "2024-01-01T10:60:00", "2024-01-01T10:00:60",  # no leap seconds
        "2024-01-01T10:00:00+16:00", "2024-01-01T10:00:00+05:60", "2024-01-01T10:00:00+0530",
        "2024-01-01T10:00:00+05", "2024-01-01t10:00:00z", "2024-01-01T10:00:00z", "20240101", "2024-1-1",
        "24-01-01", "+2024-01-01", " 2024-01-01", "2024-01-01 ", "2024-01-01\n", "２０２４-01-01",
        "2024-W01-1", "2024-001", "yesterday", "",
    ],
)
def test_strings_that_are_not_times(text: str) -> None:
    assert F.parse_time(text) is None
    assert matches(F.Compare("gte", "d", "2000-01-01"), {"d": text}) is False
    with pytest.raises(FilterError, match="ISO-8601"):
        parse_filter({"d": {"$gte": text}})


@pytest.mark.parametrize("value", [20240101, 1704067200.0, True, None, ["2024-01-01"], b"2024-01-01"])
def test_parse_time_takes_strings_only(value: object) -> None:
    assert F.parse_time(value) is None


def test_time_bounds_parse_and_render() -> None:
    assert parse_filter({"d": {"$gte": "2024-01-01"}}) == Compare("gte", "d", "2024-01-01")
    assert parse_filter({"d": {"$lt": "2024-01-01T10:00:00+02:00"}}) == Compare("lt", "d", "2024-01-01T10:00:00+02:00")
    # date and datetime objects become their isoformat() text, so trees stay JSON and to_dict round-trips
    assert parse_filter({"d": {"$gt": dt.date(2024, 1, 1)}}) == Compare("gt", "d", "2024-01-01")
    assert F.lte("d", dt.datetime(2024, 1, 1, 10, tzinfo=_UTC)) == Compare("lte", "d", "2024-01-01T10:00:00+00:00")
    assert F.gte("d", dt.datetime(2024, 1, 1, 10, 0, 0, 5)) == Compare("gte", "d", "2024-01-01T10:00:00.000005")
    tree = parse_filter({"d": {"$gte": "2024-01-01", "$lt": dt.datetime(2025, 1, 1)}})
    assert tree is not None and parse_filter(to_dict(tree)) == tree
    assert F.is_time_range(Compare("gte", "d", "2024-01-01"))
    assert not F.is_time_range(Compare("gte", "d", 3))
    assert not F.is_time_range(Compare("eq", "d", "2024-01-01"))


@pytest.mark.parametrize(
    ("spec", "fragments"),
    [
        ({"d": {"$gte": "2024-02-30"}}, ["filter.d", "$gte", "ISO-8601", "'2024-02-30'", "number"]),
        ({"d": {"$lt": "2024-01-01 10:00"}}, ["filter.d", "$lt", "ISO-8601", "YYYY-MM-DD"]),
        ({"d": {"$gt": dt.datetime(2024, 1, 1, tzinfo=dt.timezone(dt.timedelta(hours=5, seconds=7)))}},
         ["filter.d", "$gt", "offset"]),
        ({"d": {"$gt": dt.time(10, 0)}}, ["filter.d", "$gt", "time"]),
        ({"d": {"$eq": dt.date(2024, 1, 1)}}, ["filter.d", "$eq", "date"]),  # equality stays exact values
    ],
)
def test_time_bound_errors_name_the_value(spec: dict[str, Any], fragments: list[str]) -> None:
    with pytest.raises(FilterError) as info:
        parse_filter(spec)
    for fragment in fragments:
        assert fragment in str(info.value), f"{fragment!r} missing from {str(info.value)!r}"


@pytest.mark.parametrize(
    ("spec", "metadata", "expected"),
    [
        # the same instant in every spelling
        ({"d": {"$gte": "2024-01-01"}}, {"d": "2024-01-01T00:00:00Z"}, True),
        ({"d": {"$gt": "2024-01-01"}}, {"d": "2024-01-01T05:30:00+05:30"}, False),
        ({"d": {"$lte": "2024-01-01T05:30:00+05:30"}}, {"d": "2023-12-31T19:00:00-05:00"}, True),
        # one microsecond either side
        ({"d": {"$gt": "2024-01-01"}}, {"d": "2024-01-01T00:00:00.000001"}, True),
        ({"d": {"$lt": "2024-01-01"}}, {"d": "2023-12-31T23:59:59.999999Z"}, True),
        ({"d": {"$lt": "2024-01-01"}}, {"d": "2024-01-01T00:00:00.000000"}, False),
        # any element of a list; non-times in it are skipped
        ({"d": {"$gt": "2024-01-01"}}, {"d": ["x", 5, "2025-01-01"]}, True),
        ({"d": {"$gt": "2024-01-01", "$lt": "2024-02-01"}}, {"d": ["2023-01-01", "2025-01-01"]}, True),
        ({"d": {"$gt": "2024-01-01"}}, {"d": ["x", "2024-02-30"]}, False),
        # numbers never match a time range, strings never match a number range
        ({"d": {"$gt": "1970-01-01"}}, {"d": 1704067200}, False),
        ({"d": {"$gt": 0}}, {"d": "2024-01-01"}, False),
        ({"d": {"$gt": "1970-01-01"}}, {"d": True}, False),
        ({"d": {"$gt": "1970-01-01"}}, {}, False),
        ({"d": {"$gt": "1970-01-01"}}, {"d": None}, False),
        # equality stays exact
        ({"d": "2024-01-01"}, {"d": "2024-01-01T00:00:00Z"}, False),
        ({"d": {"$in": ["2024-01-01"]}}, {"d": "2024-01-01"}, True),
        ({"$not": {"d": {"$gte": "2024-01-01"}}}, {"d": "2024-02-30"}, True),
        # offsets move instants outside years 1-9999, still ordered
        ({"d": {"$lt": "0001-01-01"}}, {"d": "0001-01-01T00:30:00+01:00"}, True),
        ({"d": {"$gt": "9999-12-31T23:59:59.999999Z"}}, {"d": "9999-12-31T23:00:00-15:59"}, True),
    ],
)
def test_time_range_semantics(spec: dict[str, Any], metadata: dict[str, Any], expected: bool) -> None:
    assert matches(parse_filter(spec), metadata) is expected


def test_times_of_and_format_time() -> None:
    assert F.times_of("2024-01-01") == [F.parse_time("2024-01-01")]
    assert F.times_of(["x", "1970-01-01", 3, "1970-01-02"]) == [0, 86_400_000_000]
    assert F.times_of(None) == [] and F.times_of(20240101) == []
    assert F.format_time(0) == "1970-01-01T00:00:00.000000Z"
    assert F.format_time(F.parse_time("0001-01-01T00:00:00.000001Z") or 0) == "0001-01-01T00:00:00.000001Z"
    assert F.format_time(F.parse_time("2024-06-15T10:45:10.5+02:00") or 0) == "2024-06-15T08:45:10.500000Z"


def test_require_time_window_refuses_bounds_a_backend_cannot_compare_exactly() -> None:
    low, high = F.parse_time("1700-01-01") or 0, F.parse_time("2200-01-01") or 0
    inside = Compare("gte", "d", "2024-01-01")
    assert F.require_time_window(inside, low, high, "toy", "why") == F.parse_time("2024-01-01")
    for outside in ("1700-01-01", "1600-01-01", "2200-01-01", "9999-01-01"):
        with pytest.raises(FilterError, match=r"toy backend .* 1700-01-01T00:00:00.000000Z .* \(why\)"):
            F.require_time_window(Compare("lt", "d", outside), low, high, "toy", "why")


# --- hostile input: refused with FilterError, never a RecursionError or OverflowError -------------

def _nested(op: str, depth: int) -> dict[str, Any]:
    spec: dict[str, Any] = {"a": 1}
    for _ in range(depth - 1):
        spec = {op: spec if op == "$not" else [spec]}
    return spec


@pytest.mark.parametrize("op", ["$not", "$and", "$or"])
def test_nesting_is_capped_at_max_depth(op: str) -> None:
    assert parse_filter(_nested(op, F.MAX_DEPTH)) is not None
    for depth in (F.MAX_DEPTH + 1, 500, 5000):
        with pytest.raises(FilterError, match=f"more than {F.MAX_DEPTH} levels"):
            parse_filter(_nested(op, depth))


@pytest.mark.parametrize("spec", [
    {"a": {"$gt": 10 ** 400}}, {"a": {"$lte": -(10 ** 400)}}, {"a": 10 ** 400},
    {"a": {"$ne": 2 ** 1024}}, {"a": {"$in": [1, 10 ** 4000]}},
])
def test_numbers_beyond_float_range_are_refused(spec: dict[str, Any]) -> None:
    with pytest.raises(FilterError, match="out of range"):
        parse_filter(spec)
    assert parse_filter({"a": {"$gt": 10 ** 300}}) == Compare("gt", "a", 10 ** 300)  # large but comparable
