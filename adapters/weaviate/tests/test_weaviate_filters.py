"""Filter translation into real weaviate-client ``Filter`` objects, with constant folding."""

from __future__ import annotations

import pytest
from vectorseam_weaviate.filters import translate
from vectorseam_weaviate.schema import (
    TypeCode,
    class_name,
    collection_name,
    filter_properties,
    property_name,
)
from weaviate.collections.classes.filters import _FilterAnd, _FilterNot, _FilterOr, _FilterValue, _Operator

from vectorseam.errors import FilterError, ValidationError

PROPS: dict[str, TypeCode] = {"mt_genre": "t", "mn_year": "n", "mta_tags": "ta", "mb_year": "b"}


def test_eq_on_a_text_key_uses_only_text_properties() -> None:
    f = translate({"genre": "drama"}, PROPS)
    assert isinstance(f, _FilterValue)
    assert (f.target, f.operator, f.value) == ("mt_genre", _Operator.CONTAINS_ANY, ["drama"])


def test_mixed_type_key_ors_over_typed_properties() -> None:
    f = translate({"year": {"$in": [2001, True]}}, PROPS)
    assert isinstance(f, _FilterOr)
    leaves = [c for c in f.filters if isinstance(c, _FilterValue)]
    assert len(leaves) == len(f.filters)
    assert {(c.target, tuple(c.value)) for c in leaves if isinstance(c.value, list)} == {("mn_year", (2001.0,)), ("mb_year", (True,))}


def test_negations_and_ranges() -> None:
    f = translate({"$not": {"year": {"$gte": 2010}}}, PROPS)
    assert isinstance(f, _FilterNot)
    (inner,) = f.filters
    assert isinstance(inner, _FilterValue)
    assert (inner.target, inner.operator, inner.value) == ("mn_year", _Operator.GREATER_THAN_EQUAL, 2010.0)
    ne = translate({"tags": {"$ne": "x"}}, PROPS)
    assert isinstance(ne, _FilterNot)
    ex = translate({"genre": {"$exists": True}, "year": {"$lt": 3}}, PROPS)
    assert isinstance(ex, _FilterAnd)
    first = ex.filters[0]
    assert isinstance(first, _FilterValue)
    assert first.operator == _Operator.IS_NULL and first.value is False


def test_constants_fold() -> None:
    assert translate({"genre": 5}, PROPS) is False  # no numeric property: nothing can match
    assert translate({"genre": {"$ne": 5}}, PROPS) is True
    assert translate({"unknown": {"$exists": True}}, PROPS) is False
    assert translate({"$or": [{"genre": 5}, {"genre": "x"}]}, PROPS) == translate({"genre": "x"}, PROPS)
    assert translate(None, PROPS) is True
    with pytest.raises(FilterError):
        translate({"genre": {"$regex": "x"}}, PROPS)


def test_names_are_graphql_safe_and_reversible() -> None:
    cls = class_name("Vs_", "my-films_2")
    assert cls == "Vs_my_2d_films_5f_2" and collection_name("Vs_", cls) == "my-films_2"
    assert property_name("naïve key", "t") == "mt_na_ef_ve_20_key"
    assert filter_properties({"n": 3, "l": [1, 2], "e": [], "z": None, "m": [1, "a"]}) == {
        "mn_n": 3.0, "mna_l": [1.0, 2.0]}
    with pytest.raises(ValidationError, match="too long"):
        property_name("é" * 60, "t")


def test_times_get_date_properties_clamped_into_the_int64_nanosecond_window() -> None:
    props = filter_properties({
        "day": "2024-01-01T05:30:00+05:30", "old": "0001-01-01", "days": ["x", 3, "2262-06-01"], "word": "x",
    })
    assert props[property_name("day", "t")] == "2024-01-01T05:30:00+05:30"  # equality keeps the text
    assert props[property_name("day", "d")] == "2024-01-01T00:00:00.000000Z"
    assert props[property_name("old", "d")] == "1678-01-01T00:00:00.000000Z"  # clamped: outside UnixNano
    assert props[property_name("days", "da")] == ["2262-01-01T00:00:00.000000Z"]
    assert property_name("word", "d") not in props


def test_time_ranges_use_date_properties_and_refuse_bounds_outside_the_window() -> None:
    props: dict[str, TypeCode] = {"mt_day": "t", "md_day": "d", "mda_day": "da", "mn_day": "n"}
    f = translate({"day": {"$lt": "2024-01-01T05:30:00+05:30"}}, props)
    assert isinstance(f, _FilterOr)
    leaves = [c for c in f.filters if isinstance(c, _FilterValue)]
    assert {(c.target, c.operator) for c in leaves} == {("md_day", _Operator.LESS_THAN), ("mda_day", _Operator.LESS_THAN)}
    assert {str(c.value) for c in leaves} == {"2024-01-01 00:00:00+00:00"}
    assert translate({"day": {"$gt": "2024-01-01"}}, {"mt_day": "t"}) is False  # no time was ever stored
    for bound in ("1677-12-31", "1678-01-01", "2262-01-01", "9999-01-01"):
        with pytest.raises(FilterError, match="weaviate backend .* between 1678-01-01"):
            translate({"day": {"$gte": bound}}, props)
