"""Portable metadata filters: one typed expression tree, its dict syntax and its reference semantics.

Every backend translates this tree; :func:`matches` is the definition those translations are tested
against (the conformance suite compares every adapter's results with it).

Semantics, chosen to be expressible on every backend:

* A key that is missing and a key whose value is ``null`` are the same: *absent*.
* ``eq`` is true when the field equals the value; on a list field, when any element equals it.
  Booleans only equal booleans; ints and floats compare numerically; strings compare exactly.
* ``gt``/``gte``/``lt``/``lte`` take a number or a time (below). A number range matches numeric fields
  (any element of a list field); a time range matches time strings. Absent fields and fields of
  another type never match: numbers never match a time range, strings never match a number range.
* **Times** are ISO-8601 strings of one strict shape (:func:`parse_time`): a date ``YYYY-MM-DD``, or
  a datetime ``YYYY-MM-DDTHH:MM:SS`` with up to six fractional digits (``.ffffff``) and an optional
  offset, ``Z`` or ``+HH:MM``/``-HH:MM`` (at most 15:59, as PostgreSQL accepts). A datetime without
  an offset is UTC, a date is midnight UTC. A time range value must be such a string (a Python
  ``date``/``datetime`` in the DSL or dict form becomes its ``isoformat()``); anything else is a
  :class:`FilterError` naming it. A field matches when one of its strings (or list elements) is a
  time by the same rule, compared as an instant with microsecond resolution. Strings that are not
  times by this rule (``2024-02-30``, ``2024-01-01 10:00``, seven fractional digits, an offset of
  24:00) never match a time range on any backend. Why so strict: every backend must parse exactly
  the same strings to the same instants, and this shape is what Python, PostgreSQL, Qdrant and
  Weaviate all read alike.
* ``eq``/``in`` stay exact value equality, times included: ``"2024-01-01"`` does not equal
  ``"2024-01-01T00:00:00Z"``; use ``{"$gte": d, "$lte": d}`` for "the same instant".
* ``in`` is ``eq`` against any of a non-empty list of values.
* ``ne`` is exactly ``not eq`` and ``nin`` exactly ``not in``: both match absent fields.
* ``exists`` is true when the field is present, not null and not an empty list (an empty list has
  no value to match, as in Qdrant's ``is_empty``).
"""

from __future__ import annotations

import datetime as dt
import functools
import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias

from vectorseam.errors import FilterError
from vectorseam.types import Scalar

CompareOp: TypeAlias = Literal["eq", "ne", "gt", "gte", "lt", "lte"]
RANGE_OPS: frozenset[str] = frozenset({"gt", "gte", "lt", "lte"})
ALL_OPERATORS: frozenset[str] = frozenset(
    {"eq", "ne", "gt", "gte", "lt", "lte", "in", "nin", "exists", "and", "or", "not"}
)
MAX_DEPTH = 64
"""The deepest nesting of ``$and``/``$or``/``$not`` the dict form may have. Deeper input is refused
(FilterError) rather than overflowing the stack here or in a backend's translation; no real filter
comes close."""


@dataclass(frozen=True, slots=True)
class Compare:
    op: CompareOp
    key: str
    value: Scalar


@dataclass(frozen=True, slots=True)
class In:
    key: str
    values: tuple[Scalar, ...]
    negate: bool = False  # True for ``nin``

    @property
    def op(self) -> str:
        return "nin" if self.negate else "in"


@dataclass(frozen=True, slots=True)
class Exists:
    key: str


@dataclass(frozen=True, slots=True)
class And:
    children: tuple[Filter, ...]


@dataclass(frozen=True, slots=True)
class Or:
    children: tuple[Filter, ...]


@dataclass(frozen=True, slots=True)
class Not:
    child: Filter


Filter: TypeAlias = Compare | In | Exists | And | Or | Not
FilterLike: TypeAlias = Filter | Mapping[str, Any] | None


# --- construction helpers (a small Python DSL) -------------------------------------------------

def eq(key: str, value: Scalar) -> Compare:
    return Compare("eq", _key(key), _scalar(value, "eq", key))


def ne(key: str, value: Scalar) -> Compare:
    return Compare("ne", _key(key), _scalar(value, "ne", key))


def gt(key: str, value: float | str | dt.date) -> Compare:
    return Compare("gt", _key(key), _bound(value, "gt", key))


def gte(key: str, value: float | str | dt.date) -> Compare:
    return Compare("gte", _key(key), _bound(value, "gte", key))


def lt(key: str, value: float | str | dt.date) -> Compare:
    return Compare("lt", _key(key), _bound(value, "lt", key))


def lte(key: str, value: float | str | dt.date) -> Compare:
    return Compare("lte", _key(key), _bound(value, "lte", key))


def in_(key: str, values: list[Scalar] | tuple[Scalar, ...]) -> In:
    return In(_key(key), _values(values, "in", key))


def nin(key: str, values: list[Scalar] | tuple[Scalar, ...]) -> In:
    return In(_key(key), _values(values, "nin", key), negate=True)


def exists(key: str) -> Exists:
    return Exists(_key(key))


def and_(*children: Filter) -> And:
    if not children:
        raise FilterError("$and needs at least one condition")
    return And(tuple(children))


def or_(*children: Filter) -> Or:
    if not children:
        raise FilterError("$or needs at least one condition")
    return Or(tuple(children))


def not_(child: Filter) -> Not:
    return Not(child)


# --- the dict form ----------------------------------------------------------------------------

_FIELD_OPS = {"$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin", "$exists"}
_LOGICAL_OPS = {"$and", "$or", "$not"}


def parse_filter(spec: FilterLike) -> Filter | None:
    """Parse the plain-dict form (``{"score": {"$gte": 4}}``, ``{"$or": [...]}``) into the tree.

    A tree passes through unchanged; ``None`` and ``{}`` mean "no filter".
    """
    if spec is None:
        return None
    if isinstance(spec, Compare | In | Exists | And | Or | Not):
        return spec
    if not isinstance(spec, Mapping):
        raise FilterError(f"a filter must be an object such as {{\"field\": value}}, got {spec!r}")
    if not spec:
        return None
    return _parse_object(spec, "filter", 1)


def _parse_object(spec: Mapping[str, Any], path: str, depth: int) -> Filter:
    if depth > MAX_DEPTH:
        raise FilterError(f"the filter nests $and/$or/$not more than {MAX_DEPTH} levels deep; flatten it")
    if not isinstance(spec, Mapping) or not spec:
        raise FilterError(f"{path}: expected a non-empty object, got {spec!r}")
    parts: list[Filter] = []
    for key, value in spec.items():
        if not isinstance(key, str):
            raise FilterError(f"{path}: keys must be strings, got {key!r}")
        if key.startswith("$"):
            parts.append(_parse_logical(key, value, path, depth))
        else:
            parts.extend(_parse_field(key, value, f"{path}.{key}"))
    return parts[0] if len(parts) == 1 else And(tuple(parts))


def _parse_logical(op: str, value: Any, path: str, depth: int) -> Filter:
    where = f"{path}.{op}"
    if op in ("$and", "$or"):
        if not isinstance(value, list) or not value:
            raise FilterError(f"{where}: expected a non-empty list of conditions, got {value!r}")
        children = tuple(_parse_object(v, f"{where}[{i}]", depth + 1) for i, v in enumerate(value))
        return And(children) if op == "$and" else Or(children)
    if op == "$not":
        return Not(_parse_object(value, where, depth + 1))
    hint = " (field operators go inside a field: {\"field\": {\"$gt\": 1}})" if op in _FIELD_OPS else ""
    raise FilterError(f"{where}: unknown operator {op!r}; expected one of $and, $or, $not{hint}")


def _parse_field(key: str, value: Any, path: str) -> list[Filter]:
    _key(key)
    if not isinstance(value, Mapping):
        return [Compare("eq", key, _scalar(value, "eq", key, path))]
    if not value:
        raise FilterError(f"{path}: empty operator object")
    out: list[Filter] = []
    for op, operand in value.items():
        name = op[1:] if isinstance(op, str) and op.startswith("$") else None
        if name is None or op not in _FIELD_OPS:
            raise FilterError(
                f"{path}: unknown operator {op!r}; expected one of {', '.join(sorted(_FIELD_OPS))}"
            )
        if name in ("eq", "ne"):
            out.append(Compare(name, key, _scalar(operand, op, key, path)))  # type: ignore[arg-type]
        elif name in RANGE_OPS:
            out.append(Compare(name, key, _bound(operand, op, key, path)))  # type: ignore[arg-type]
        elif name in ("in", "nin"):
            out.append(In(key, _values(operand, op, key, path), negate=name == "nin"))
        else:  # $exists
            if not isinstance(operand, bool):
                raise FilterError(f"{path}: $exists takes true or false, got {operand!r}")
            out.append(Exists(key) if operand else Not(Exists(key)))
    return out


def _key(key: object) -> str:
    if not isinstance(key, str) or not key:
        raise FilterError(f"filter field names must be non-empty strings, got {key!r}")
    if key.startswith("$"):
        raise FilterError(f"filter field name {key!r} may not start with '$' (reserved for operators)")
    if "\x00" in key:
        raise FilterError(f"filter field name {key!r} contains a NUL character, which no backend can store")
    return key


def _scalar(value: object, op: str, key: str, path: str | None = None) -> Scalar:
    where = path or key
    if isinstance(value, str) and "\x00" in value:
        raise FilterError(f"{where}: {op} value {value!r} contains a NUL character, which no backend can store")
    if isinstance(value, str | bool):
        return value
    if isinstance(value, int | float):
        return _finite(value, op, where)
    if value is None:
        raise FilterError(f"{where}: {op} cannot compare with null; use {{\"$exists\": false}}")
    if isinstance(value, list | tuple):
        raise FilterError(f"{where}: {op} takes a single value; use $in for a list")
    raise FilterError(
        f"{where}: {op} takes a str, int, float or bool value, got {type(value).__name__} {value!r}"
    )


def _bound(value: object, op: str, key: str, path: str | None = None) -> float | int | str:
    """A range operand: a finite number, or a time kept as its ISO-8601 string (see the module doc)."""
    where = path or key
    if isinstance(value, dt.date):  # datetime is a date too
        value = value.isoformat()
        if parse_time(value) is None:  # e.g. an offset with seconds (+05:30:15), which no backend reads
            raise FilterError(f"{where}: {op} cannot compare with {value!r}: its UTC offset is not whole minutes "
                              "up to 15:59")
        return value
    if isinstance(value, str):
        if parse_time(value) is None:
            raise FilterError(
                f"{where}: {op} takes a number or an ISO-8601 date/time (YYYY-MM-DD or "
                f"YYYY-MM-DDTHH:MM:SS[.ffffff][Z|+HH:MM]), got str {value!r}"
            )
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise FilterError(
            f"{where}: {op} takes a number or an ISO-8601 date/time string, got {type(value).__name__} {value!r}"
        )
    return _finite(value, op, where)


def _finite(value: int | float, op: str, where: str) -> int | float:
    """A number every backend can compare: finite, and an int no larger than a float can hold (beyond
    about 1.8e308 numeric comparisons overflow; such an int is never a real bound, only hostile input)."""
    if isinstance(value, float):
        if not math.isfinite(value):
            raise FilterError(f"{where}: {op} needs a finite number, got {value!r}")
        return value
    try:
        float(value)
    except OverflowError:
        raise FilterError(f"{where}: {op} number of {value.bit_length()} bits is out of range; "
                          "filter numbers must lie within ±1.8e308") from None
    return value


# --- times ---------------------------------------------------------------------------------------

# ASCII digits only ([0-9], not \d, which also matches other scripts' digits).
_TIME = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})"
    r"(?:T([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]{1,6}))?(Z|[+-][0-9]{2}:[0-9]{2})?)?"
)
_EPOCH_ORDINAL = dt.date(1970, 1, 1).toordinal()
_US_PER_DAY = 86_400_000_000
MAX_OFFSET_MINUTES = 15 * 60 + 59  # PostgreSQL refuses larger UTC offsets


@functools.lru_cache(maxsize=65536)
def _parse_time_text(text: str) -> int | None:
    m = _TIME.fullmatch(text)
    if m is None:
        return None
    year, month, day = int(m[1]), int(m[2]), int(m[3])
    try:
        days = dt.date(year, month, day).toordinal() - _EPOCH_ORDINAL
    except ValueError:  # year 0, month 13, February 30, ...
        return None
    if m[4] is None:
        return days * _US_PER_DAY
    hour, minute, second = int(m[4]), int(m[5]), int(m[6])
    if hour > 23 or minute > 59 or second > 59:
        return None
    micros = int((m[7] or "").ljust(6, "0"))
    offset = 0
    if m[8] is not None and m[8] != "Z":
        oh, om = int(m[8][1:3]), int(m[8][4:6])
        if om > 59 or oh * 60 + om > MAX_OFFSET_MINUTES:
            return None
        offset = (oh * 60 + om) * (-1 if m[8][0] == "-" else 1)
    seconds = ((hour * 60 + minute - offset) * 60) + second
    return days * _US_PER_DAY + seconds * 1_000_000 + micros


def parse_time(value: object) -> int | None:
    """The instant a time string denotes, in microseconds since 1970-01-01T00:00:00Z; None otherwise.

    This is *the* definition of which strings are times (see the module docstring); adapters use it
    to derive whatever their backend compares (instants, canonical strings, epoch numbers), so every
    backend agrees on it. Integer microseconds rather than ``datetime``: an offset can move an instant
    outside years 1-9999 (``0001-01-01T00:00:00+01:00``), where ``datetime`` overflows.
    """
    return _parse_time_text(value) if isinstance(value, str) else None


def times_of(value: object) -> list[int]:
    """The instants of a metadata value's time strings (a scalar, or the elements of a list)."""
    items = value if isinstance(value, list | tuple) else (value,)
    return [t for t in map(parse_time, items) if t is not None]


def is_time_range(node: Filter) -> bool:
    """Whether ``node`` is a range comparison against a time (its value is then a time string)."""
    return isinstance(node, Compare) and node.op in RANGE_OPS and isinstance(node.value, str)


def time_bound(node: Compare) -> int:
    """The instant of a time range's value, in microseconds since the epoch (see :func:`parse_time`)."""
    instant = parse_time(node.value)
    if instant is None:  # parse_filter and the DSL never build such a node
        raise FilterError(f"{node.key}: ${node.op} value {node.value!r} is not an ISO-8601 date/time")
    return instant


def format_time(micros: int) -> str:
    """An instant as RFC 3339 in UTC with six fractional digits (``2024-01-01T00:00:00.000000Z``).

    Years must stay within 1-9999 in UTC; callers clamp instants outside their backend's range first.
    """
    t = dt.datetime(1970, 1, 1) + dt.timedelta(microseconds=micros)
    # Spelled out: strftime("%Y") does not pad years below 1000 on every platform.
    return f"{t.year:04d}-{t.month:02d}-{t.day:02d}T{t.hour:02d}:{t.minute:02d}:{t.second:02d}.{t.microsecond:06d}Z"


def require_time_window(node: Compare, low: int, high: int, backend: str, why: str) -> int:
    """The instant of a time range's value, refusing values outside the open interval (low, high).

    Backends that hold times as bounded numbers (epoch nanoseconds in int64, epoch microseconds in a
    float64) compare exactly only inside such a window; stored values outside it are clamped to its
    edges, which keeps every comparison with a value strictly inside exact. A value outside raises
    rather than answering differently from :func:`matches`.
    """
    instant = time_bound(node)
    if not low < instant < high:
        raise FilterError(
            f"filter on {node.key!r}: the {backend} backend compares times exactly only between "
            f"{format_time(low)} and {format_time(high)} ({why}); ${node.op} {node.value!r} lies outside"
        )
    return instant


def _values(values: object, op: str, key: str, path: str | None = None) -> tuple[Scalar, ...]:
    if not isinstance(values, list | tuple) or not values:
        raise FilterError(f"{path or key}: {op} takes a non-empty list of values, got {values!r}")
    return tuple(_scalar(v, op, key, path) for v in values)


# --- rendering and inspection ------------------------------------------------------------------

def to_dict(f: Filter) -> dict[str, Any]:
    """The canonical dict form of a tree (``parse_filter(to_dict(f)) == f`` for parsed trees)."""
    match f:
        case Compare(op, key, value):
            return {key: {f"${op}": value}}
        case In(key, values, negate):
            return {key: {"$nin" if negate else "$in": list(values)}}
        case Exists(key):
            return {key: {"$exists": True}}
        case And(children):
            return {"$and": [to_dict(c) for c in children]}
        case Or(children):
            return {"$or": [to_dict(c) for c in children]}
        case Not(child):
            return {"$not": to_dict(child)}
    raise TypeError(f"not a filter: {f!r}")


def walk(f: Filter) -> Iterator[Filter]:
    yield f
    if isinstance(f, And | Or):
        for c in f.children:
            yield from walk(c)
    elif isinstance(f, Not):
        yield from walk(f.child)


def operators(f: Filter) -> set[str]:
    """The portable operator names a tree uses (``eq``, ``in``, ``not``, ...)."""
    ops: set[str] = set()
    for node in walk(f):
        match node:
            case Compare(op, _, _):
                ops.add(op)
            case In():
                ops.add(node.op)
            case Exists():
                ops.add("exists")
            case And():
                ops.add("and")
            case Or():
                ops.add("or")
            case Not():
                ops.add("not")
    return ops


def keys(f: Filter) -> set[str]:
    """The metadata keys a tree reads (used to create payload indexes on servers)."""
    return {n.key for n in walk(f) if isinstance(n, Compare | In | Exists)}


def require_operators(f: Filter | None, supported: frozenset[str], backend: str) -> None:
    """Raise a clear error when a backend cannot express part of a filter, rather than drop it."""
    if f is None:
        return
    missing = operators(f) - supported
    if missing:
        raise FilterError(
            f"the {backend} backend cannot express the filter operator(s) "
            f"{', '.join('$' + m for m in sorted(missing))}; rewrite the filter without them "
            f"(for example $not over $eq as $ne) or use another backend"
        )


# --- the reference evaluator -------------------------------------------------------------------

def _is_number(v: object) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def scalar_equal(a: object, b: Scalar) -> bool:
    """Equality without Python's cross-type surprises (``True == 1``)."""
    if isinstance(b, bool) or isinstance(a, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a is b
    if _is_number(b):
        return _is_number(a) and a == b
    return isinstance(a, str) and a == b


def _range(a: object, op: str, b: Scalar) -> bool:
    x: float | int
    y: float | int
    if isinstance(b, str):  # a time range: both sides are instants
        instant, bound = parse_time(a), parse_time(b)
        if instant is None or bound is None:
            return False
        x, y = instant, bound
    elif not _is_number(a):
        return False
    else:
        x, y = _as_float(a), _as_float(b)
    if op == "gt":
        return x > y
    if op == "gte":
        return x >= y
    if op == "lt":
        return x < y
    return x <= y


def _as_float(value: object) -> float:
    """A number as every backend compares it (float64); an int past float range is +-inf, not an error:
    stored metadata may hold such an int, and a filter over it must answer, not raise."""
    try:
        return float(value)  # type: ignore[arg-type]
    except OverflowError:
        return math.inf if value > 0 else -math.inf  # type: ignore[operator]


def _elements(value: object) -> list[object]:
    if value is None:
        return []
    if isinstance(value, list | tuple):
        return list(value)
    return [value]


def matches(f: Filter | None, metadata: Mapping[str, Any]) -> bool:
    """The reference semantics of a filter against one record's metadata."""
    if f is None:
        return True
    match f:
        case Compare(op, key, value):
            elems = _elements(metadata.get(key))
            if op == "eq":
                return any(scalar_equal(e, value) for e in elems)
            if op == "ne":
                return not any(scalar_equal(e, value) for e in elems)
            return any(_range(e, op, value) for e in elems)
        case In(key, values, negate):
            elems = _elements(metadata.get(key))
            hit = any(scalar_equal(e, v) for e in elems for v in values)
            return not hit if negate else hit
        case Exists(key):
            return len(_elements(metadata.get(key))) > 0
        case And(children):
            return all(matches(c, metadata) for c in children)
        case Or(children):
            return any(matches(c, metadata) for c in children)
        case Not(child):
            return not matches(child, metadata)
    raise TypeError(f"not a filter: {f!r}")
