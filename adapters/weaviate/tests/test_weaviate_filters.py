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
