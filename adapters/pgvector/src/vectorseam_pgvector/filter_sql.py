"""Translation of the portable filter tree into a SQL condition over the JSONB ``metadata`` column.

Every key and value travels as a **bound parameter**; the SQL text holds only fixed fragments, so no
key or value can change the statement whatever characters it holds.

How each operator reproduces :func:`vectorseam.filters.matches` exactly:

* ``eq`` is JSONB containment, ``metadata @> {"k": v}`` OR ``metadata @> {"k": [v]}``: the first
  matches a scalar field, the second a list field holding v. JSONB compares numbers numerically
  (1 = 1.0), never equates true with 1 or "1" with 1, and an absent or null field contains nothing.
  Containment can use the GIN index on ``metadata``.
* ``in`` is the same against every value (``@> ANY(array)``).
* ``ne``/``nin`` are ``NOT`` of ``eq``/``in``; each part is never NULL, so absent fields match.
* ``gt``/``gte``/``lt``/``lte`` with a number use a constant SQL/JSON path in lax mode,
  ``$[*] ? (@ > $v)``: ``$[*]`` visits a scalar field as itself and a list field element by element,
  and comparing a number with a string or a boolean is "unknown", which the filter treats as false.
* the same with a **time** (an ISO-8601 string, see :mod:`vectorseam.filters`) compares
  ``timestamptz`` values: each string element of the field is cast only when it has the exact shape
  and calendar validity of :func:`vectorseam.filters.parse_time` (a regular expression, then the
  day-of-month check, inside nested ``CASE`` so the cast never sees anything else and cannot raise);
  naive values are read ``AT TIME ZONE 'UTC'`` so the session's ``TimeZone`` plays no part. Other
  strings, numbers and booleans are NULL there, which never matches. The bound is a parameter cast
  the same way.
* ``exists`` is: the key is present (``?``) and its value is neither null nor the empty list.

A key or string value that PostgreSQL cannot store (a NUL character, a lone surrogate) can never be
in the table, so a condition on it is the constant FALSE rather than an error from the server.
"""

from __future__ import annotations

import json
import re

from psycopg import sql

from vectorseam.errors import FilterError
from vectorseam.filters import And, Compare, Exists, Filter, In, Not, Or, parse_time
from vectorseam.types import Scalar
from vectorseam_pgvector.jsontext import encode_value, storable

_PATHS = {
    "gt": "lax $[*] ? (@ > $v)",
    "gte": "lax $[*] ? (@ >= $v)",
    "lt": "lax $[*] ? (@ < $v)",
    "lte": "lax $[*] ? (@ <= $v)",
}
_COMPARE = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<="}
# The shape vectorseam.filters.parse_time accepts, with the hour/minute/second/offset limits it checks
# written into the pattern; month and day are checked by _VALID_DAY.
TIME_PATTERN = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}"
    r"(T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]{1,6})?(Z|[+-](0[0-9]|1[0-5]):[0-5][0-9])?)?$"
)
_OFFSET_PATTERN = r"(Z|[+-][0-9]{2}:[0-9]{2})$"
_Y, _M, _D = "substr(vs_e.v, 1, 4)::int", "substr(vs_e.v, 6, 2)::int", "substr(vs_e.v, 9, 2)::int"
_VALID_DAY = (
    f"{_Y} >= 1 AND {_M} BETWEEN 1 AND 12 AND {_D} BETWEEN 1 AND CASE WHEN {_M} = 2 THEN CASE"
    f" WHEN mod({_Y}, 4) = 0 AND (mod({_Y}, 100) <> 0 OR mod({_Y}, 400) = 0) THEN 29 ELSE 28 END"
    f" WHEN {_M} IN (4, 6, 9, 11) THEN 30 ELSE 31 END"
)
# The instant of the text element vs_e.v, or NULL when it is not a time. (vs_ aliases: no clash with
# the caller's names, as the subquery sees the outer query's columns.)
_INSTANT = (
    f"CASE WHEN vs_e.v ~ {{pattern}} THEN CASE WHEN {_VALID_DAY} THEN"
    f" CASE WHEN vs_e.v ~ {{offset}} THEN vs_e.v::timestamptz ELSE vs_e.v::timestamp AT TIME ZONE 'UTC' END END END"
)
_TIME_RANGE = (
    "EXISTS (SELECT 1 FROM (SELECT {col} -> %s AS j) AS vs_f, jsonb_array_elements_text(CASE jsonb_typeof(vs_f.j)"
    " WHEN 'array' THEN vs_f.j WHEN 'string' THEN jsonb_build_array(vs_f.j) ELSE '[]'::jsonb END) AS vs_e(v)"
    f" WHERE ({_INSTANT}) {{op}} {{bound}})"
)
_TRUE = sql.SQL("TRUE")
_FALSE = sql.SQL("FALSE")


class _Builder:
    def __init__(self, column: sql.Composable) -> None:
        self.column = column
        self.params: list[object] = []

    def build(self, f: Filter) -> sql.Composable:
        match f:
            case Compare(op, key, value):
                if op == "eq":
                    return self._contains_any(key, [value])
                if op == "ne":
                    return self._negate(self._contains_any(key, [value]))
                if op in _PATHS:
                    return self._range(op, key, value)
                raise FilterError(f"unknown comparison operator {op!r} on field {key!r}")
            case In(key, values, negate):
                cond = self._contains_any(key, list(values))
                return self._negate(cond) if negate else cond
            case Exists(key):
                _check_key(key)
                if not storable(key):
                    return _FALSE
                self.params.extend([key, key])
                return sql.SQL("({col} ? %s AND ({col} -> %s) NOT IN ('null'::jsonb, '[]'::jsonb))").format(
                    col=self.column
                )
            case And(children):
                if not children:
                    return _TRUE
                return sql.SQL("({})").format(sql.SQL(" AND ").join(self.build(c) for c in children))
            case Or(children):
                if not children:
                    return _FALSE
                return sql.SQL("({})").format(sql.SQL(" OR ").join(self.build(c) for c in children))
            case Not(child):
                return self._negate(self.build(child))
        raise FilterError(f"not a filter: {f!r}")

    @staticmethod
    def _negate(cond: sql.Composable) -> sql.Composable:
        return sql.SQL("(NOT {})").format(cond)

    def _contains_any(self, key: str, values: list[Scalar]) -> sql.Composable:
        _check_key(key)
        if not storable(key):
            return _FALSE
        quoted_key = json.dumps(key, ensure_ascii=False)
        documents: list[str] = []
        for value in values:
            _check_scalar(key, value)
            if isinstance(value, str) and not storable(value):
                continue  # no stored string can equal it
            encoded = encode_value(value)
            documents.append(f"{{{quoted_key}:{encoded}}}")
            documents.append(f"{{{quoted_key}:[{encoded}]}}")
        if not documents:
            return _FALSE
        self.params.append(documents)
        return sql.SQL("({col} @> ANY(%s::jsonb[]))").format(col=self.column)

    def _range(self, op: str, key: str, value: Scalar) -> sql.Composable:
        _check_key(key)
        if isinstance(value, str):
            return self._time_range(op, key, value)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise FilterError(f"{key}: ${op} takes a number, got {type(value).__name__} {value!r}")
        if not storable(key):
            return _FALSE
        self.params.extend([key, _PATHS[op], f'{{"v":{encode_value(value)}}}'])
        return sql.SQL("COALESCE(jsonb_path_exists({col} -> %s, %s::jsonpath, %s::jsonb), FALSE)").format(
            col=self.column
        )


    def _time_range(self, op: str, key: str, value: str) -> sql.Composable:
        if parse_time(value) is None:  # parse_filter never builds one; a hand-made tree might
            raise FilterError(f"{key}: ${op} takes a number or an ISO-8601 date/time, got {value!r}")
        if not storable(key):
            return _FALSE
        self.params.extend([key, value])
        has_offset = re.search(_OFFSET_PATTERN, value) is not None
        bound = "%s::timestamptz" if has_offset else "(%s::timestamp AT TIME ZONE 'UTC')"
        return sql.SQL(_TIME_RANGE).format(
            col=self.column,
            pattern=sql.Literal(TIME_PATTERN),
            offset=sql.Literal(_OFFSET_PATTERN),
            op=sql.SQL(_COMPARE[op]),
            bound=sql.SQL(bound),
        )


def _check_key(key: object) -> None:
    if not isinstance(key, str) or not key:
        raise FilterError(f"filter field names must be non-empty strings, got {key!r}")


def _check_scalar(key: str, value: object) -> None:
    if not isinstance(value, str | bool | int | float):
        raise FilterError(f"{key}: filter values must be str, int, float or bool, got {type(value).__name__} {value!r}")


def where_clause(f: Filter | None, column: sql.Composable | None = None) -> tuple[sql.Composable, list[object]]:
    """A boolean SQL condition (with ``%s`` placeholders) and its parameters, in placeholder order."""
    if f is None:
        return _TRUE, []
    builder = _Builder(column if column is not None else sql.Identifier("metadata"))
    return builder.build(f), builder.params
