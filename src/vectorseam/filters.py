"""Portable metadata filters: one typed expression tree, its dict syntax and its reference semantics.

Every backend translates this tree; :func:`matches` is the definition those translations are tested
against (the conformance suite compares every adapter's results with it).

Semantics, chosen to be expressible on every backend:

* A key that is missing and a key whose value is ``null`` are the same: *absent*.
* ``eq`` is true when the field equals the value; on a list field, when any element equals it.
  Booleans only equal booleans; ints and floats compare numerically; strings compare exactly.
* ``gt``/``gte``/``lt``/``lte`` take a number and match numeric fields (any element of a list field).
  Absent fields and fields of another type never match.
* ``in`` is ``eq`` against any of a non-empty list of values.
* ``ne`` is exactly ``not eq`` and ``nin`` exactly ``not in``: both match absent fields.
* ``exists`` is true when the field is present, not null and not an empty list (an empty list has
  no value to match, as in Qdrant's ``is_empty``).
"""

from __future__ import annotations

import math
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


def gt(key: str, value: float) -> Compare:
    return Compare("gt", _key(key), _number(value, "gt", key))


def gte(key: str, value: float) -> Compare:
    return Compare("gte", _key(key), _number(value, "gte", key))


def lt(key: str, value: float) -> Compare:
    return Compare("lt", _key(key), _number(value, "lt", key))


def lte(key: str, value: float) -> Compare:
    return Compare("lte", _key(key), _number(value, "lte", key))


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
    return _parse_object(spec, "filter")


def _parse_object(spec: Mapping[str, Any], path: str) -> Filter:
    if not isinstance(spec, Mapping) or not spec:
        raise FilterError(f"{path}: expected a non-empty object, got {spec!r}")
    parts: list[Filter] = []
    for key, value in spec.items():
        if not isinstance(key, str):
            raise FilterError(f"{path}: keys must be strings, got {key!r}")
        if key.startswith("$"):
            parts.append(_parse_logical(key, value, path))
        else:
            parts.extend(_parse_field(key, value, f"{path}.{key}"))
    return parts[0] if len(parts) == 1 else And(tuple(parts))


def _parse_logical(op: str, value: Any, path: str) -> Filter:
    where = f"{path}.{op}"
    if op in ("$and", "$or"):
        if not isinstance(value, list) or not value:
            raise FilterError(f"{where}: expected a non-empty list of conditions, got {value!r}")
        children = tuple(_parse_object(v, f"{where}[{i}]") for i, v in enumerate(value))
        return And(children) if op == "$and" else Or(children)
    if op == "$not":
        return Not(_parse_object(value, where))
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
            out.append(Compare(name, key, _number(operand, op, key, path)))  # type: ignore[arg-type]
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
    if isinstance(value, str | bool | int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise FilterError(f"{where}: {op} needs a finite number, got {value!r}")
        return value
    if value is None:
        raise FilterError(f"{where}: {op} cannot compare with null; use {{\"$exists\": false}}")
    if isinstance(value, list | tuple):
        raise FilterError(f"{where}: {op} takes a single value; use $in for a list")
    raise FilterError(
        f"{where}: {op} takes a str, int, float or bool value, got {type(value).__name__} {value!r}"
    )


def _number(value: object, op: str, key: str, path: str | None = None) -> float | int:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise FilterError(f"{path or key}: {op} takes a number, got {type(value).__name__} {value!r}")
    if isinstance(value, float) and not math.isfinite(value):
        raise FilterError(f"{path or key}: {op} needs a finite number, got {value!r}")
    return value


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
    if not _is_number(a):
        return False
    x, y = float(a), float(b)  # type: ignore[arg-type]
    if op == "gt":
        return x > y
    if op == "gte":
        return x >= y
    if op == "lt":
        return x < y
    return x <= y


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
