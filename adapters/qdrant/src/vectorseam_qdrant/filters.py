"""Translation of the portable filter tree into a Qdrant ``Filter``, with the exact reference semantics.

:func:`vectorseam.filters.matches` is the definition; each rule below is how Qdrant is made to agree:

* **absent == null**: a ``FieldCondition`` never matches a missing or null field, so ``eq``/range/``in``
  are false there, and their negations (``ne``/``nin``, built as ``must_not``) are true, as required.
* **lists**: Qdrant applies a field condition to every element of an array and matches if any does,
  which is the portable "any element" rule.
* **numbers**: Qdrant's exact match keeps ints and floats apart (``MatchValue(1)`` never matches a
  stored ``1.0``, and a float can never be an exact-match operand), while the portable rule compares
  numerically. Numeric equality is therefore the closed range ``[v, v]``, which matches ints and floats
  alike and never booleans. An int too large to be represented exactly as a float64 can only equal an
  int, so it stays an exact match.
* **booleans** are a type of their own in Qdrant (``MatchValue(True)`` does not match the integer 1),
  as in the portable rule.
* **exists** is ``NOT is_empty``: Qdrant's ``is_empty`` is true for a missing field, ``null`` and ``[]``,
  precisely the portable "no value".
* **times**: a range with an ISO-8601 bound is a ``DatetimeRange`` on the key's time mirror
  (``_vs_time``, see ``layout``), which holds only the strings that are times by the portable rule,
  as UTC text; Qdrant compares them as instants (microseconds, like the rule), and a missing mirror
  (no time in the field) never matches.
"""

from __future__ import annotations

from datetime import datetime

from qdrant_client import models

from vectorseam.errors import FilterError
from vectorseam.filters import And, Compare, Exists, Filter, In, Not, Or, is_time_range, walk
from vectorseam.types import Scalar
from vectorseam_qdrant.layout import ID_KEY, TIME_KEY, meta_path, time_text

_I64_MIN, _I64_MAX = -(2**63), 2**63 - 1

# Every stored point has a non-empty ``_vs_id``, so "is it empty" is false for all of them: a condition
# that matches nothing, used for comparisons no stored value can satisfy.
NEVER: models.Condition = models.IsEmptyCondition(is_empty=models.PayloadField(key=ID_KEY))


def to_qdrant(f: Filter | None) -> models.Filter | None:
    """The Qdrant filter equivalent to ``f`` (None for no filter)."""
    if f is None:
        return None
    cond = _condition(f)
    if isinstance(cond, models.Filter):
        return cond
    return models.Filter(must=[cond])


def _condition(f: Filter) -> models.Condition:
    match f:
        case Compare(op, key, value):
            if op == "eq":
                return _equals(meta_path(key), value)
            if op == "ne":
                return models.Filter(must_not=[_equals(meta_path(key), value)])
            if is_time_range(f):
                text = time_text(str(value))
                if text is None:  # parse_filter never builds one; a hand-made tree might
                    raise FilterError(f"{key}: ${op} takes a number or an ISO-8601 date/time, got {value!r}")
                bound = datetime.fromisoformat(text)
                return models.FieldCondition(key=meta_path(key, TIME_KEY), range=models.DatetimeRange(**{op: bound}))
            return models.FieldCondition(key=meta_path(key), range=models.Range(**{op: float(value)}))
        case In(key, values, negate):
            cond = _any_of(meta_path(key), values)
            return models.Filter(must_not=[cond]) if negate else cond
        case Exists(key):
            return models.Filter(
                must_not=[models.IsEmptyCondition(is_empty=models.PayloadField(key=meta_path(key)))]
            )
        case And(children):
            if not children:
                raise FilterError("$and needs at least one condition")
            return models.Filter(must=[_condition(c) for c in children])
        case Or(children):
            if not children:
                raise FilterError("$or needs at least one condition")
            return models.Filter(should=[_condition(c) for c in children])
        case Not(child):
            return models.Filter(must_not=[_condition(child)])
    raise FilterError(f"not a filter node: {f!r}")


def _equals(path: str, value: Scalar) -> models.Condition:
    if isinstance(value, bool | str):
        return models.FieldCondition(key=path, match=models.MatchValue(value=value))
    if isinstance(value, int):
        if float(value) == value:
            return models.FieldCondition(key=path, range=models.Range(gte=float(value), lte=float(value)))
        if _I64_MIN <= value <= _I64_MAX:  # only an int can equal it, and only exactly
            return models.FieldCondition(key=path, match=models.MatchValue(value=value))
        return NEVER  # stored ints are 64-bit and no float equals it
    return models.FieldCondition(key=path, range=models.Range(gte=value, lte=value))


def _any_of(path: str, values: tuple[Scalar, ...]) -> models.Condition:
    strings = sorted({v for v in values if isinstance(v, str)})
    conditions: list[models.Condition] = []
    if strings:
        conditions.append(
            models.FieldCondition(key=path, match=models.MatchValue(value=strings[0]))
            if len(strings) == 1
            else models.FieldCondition(key=path, match=models.MatchAny(any=strings))
        )
    seen: set[tuple[type, Scalar]] = set()
    for v in values:
        if isinstance(v, str) or (type(v), v) in seen:
            continue
        seen.add((type(v), v))
        conditions.append(_equals(path, v))
    if len(conditions) == 1:
        return conditions[0]
    return models.Filter(should=conditions)


def index_schemas(f: Filter | None) -> dict[str, models.PayloadSchemaType]:
    """Payload index to create for each field a filter reads, keyed by Qdrant path.

    Strings get a keyword index, booleans a bool index and numbers a float index (numeric equality
    is a range, which a float index serves for ints and floats alike); a time range gets a datetime
    index on the key's time mirror. ``exists`` needs none. A field
    read with values of several types gets the index of the first one seen: Qdrant keeps one index
    per field, and conditions the index cannot serve are still checked against the payload.
    """
    out: dict[str, models.PayloadSchemaType] = {}
    if f is None:
        return out
    for node in walk(f):
        values: tuple[Scalar, ...]
        if isinstance(node, Compare):
            values = (node.value,)
        elif isinstance(node, In):
            values = node.values
        else:
            continue
        if is_time_range(node):
            out.setdefault(meta_path(node.key, TIME_KEY), models.PayloadSchemaType.DATETIME)
            continue
        path = meta_path(node.key)
        if path in out:
            continue
        first = values[0]
        if isinstance(first, bool):
            out[path] = models.PayloadSchemaType.BOOL
        elif isinstance(first, str):
            out[path] = models.PayloadSchemaType.KEYWORD
        else:
            out[path] = models.PayloadSchemaType.FLOAT
    return out
