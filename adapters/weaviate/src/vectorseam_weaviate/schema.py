"""Names and property types: how vectorseam collections and metadata keys live in Weaviate's schema.

Weaviate class and property names must be GraphQL names (``[_A-Za-z][_0-9A-Za-z]*``, classes
capitalised, at most 230 characters) and properties are strictly typed. vectorseam metadata keys are
any string and a key may hold a string in one record and a number in another. So:

* a collection ``films-2`` is the class ``Vs_films_2d_`` (every character outside ``[A-Za-z0-9]``
  becomes ``_<hex>_``: reversible and collision-free);
* a metadata key is stored in one property **per value type** it is seen with:
  ``m<type>_<escaped key>`` with type ``t`` text, ``n`` number, ``b`` boolean, ``ta``/``na``/``ba``
  arrays of those. A filter on the key ORs over the typed properties that exist, so mixed types filter
  exactly as the portable semantics say (a string never equals a number);
* the exact metadata, text and original id are kept in ``vs_meta`` / ``vs_text`` / ``vs_id`` so reads
  round-trip byte for byte (ints stay ints, nulls stay nulls). Nulls, empty lists and mixed-type lists
  get no typed property: nulls and empty lists are "absent" to filters anyway; a mixed-type list is
  the one documented filtering gap;
* a key holding ISO-8601 times (:func:`vectorseam.filters.parse_time`: a string, or strings of a
  list) also gets a ``date`` (``d``) or ``date[]`` (``da``) property: the instants as RFC 3339 in
  UTC, which time ranges compare natively. Weaviate indexes a date as int64 nanoseconds since 1970
  (``time.UnixNano``, undefined outside 1677-2262), so instants are clamped into
  :data:`DATE_WINDOW` first; with every filter bound strictly inside the window (``filters``
  refuses others) a clamped instant compares with it exactly as the true one does.
"""

from __future__ import annotations

import math
from typing import Any, Literal, TypeAlias

from vectorseam.errors import ValidationError
from vectorseam.filters import format_time, parse_time, times_of

TypeCode: TypeAlias = Literal["t", "n", "b", "ta", "na", "ba", "d", "da"]
TYPE_CODES: tuple[TypeCode, ...] = ("t", "n", "b", "ta", "na", "ba", "d", "da")
# Epoch microseconds of 1678-01-01 and 2262-01-01 (UTC): inside int64 nanoseconds, with a margin.
DATE_WINDOW = (parse_time("1678-01-01") or 0, parse_time("2262-01-01") or 0)
ID_PROP, TEXT_PROP, META_PROP = "vs_id", "vs_text", "vs_meta"
MAX_NAME = 230


def escape(name: str) -> str:
    return "".join(c if c.isascii() and c.isalnum() else f"_{ord(c):x}_" for c in name)


def class_name(prefix: str, collection: str) -> str:
    return prefix + escape(collection)


def collection_name(prefix: str, cls: str) -> str | None:
    """The vectorseam collection of a Weaviate class name, or None for a class that is not ours."""
    if not cls.startswith(prefix):
        return None
    rest, out, i = cls[len(prefix):], [], 0
    while i < len(rest):
        if rest[i] == "_":
            end = rest.index("_", i + 1)
            out.append(chr(int(rest[i + 1 : end], 16)))
            i = end + 1
        else:
            out.append(rest[i])
            i += 1
    return "".join(out)


def property_name(key: str, code: TypeCode) -> str:
    name = f"m{code}_{escape(key)}"
    if len(name) > MAX_NAME:
        raise ValidationError(
            f"metadata key {key[:40]!r}... is too long for a Weaviate property name once escaped "
            f"({len(name)} > {MAX_NAME} characters); use a shorter key"
        )
    return name


def type_code(value: Any) -> TypeCode | None:
    """The typed property a value is filterable through, or None (side-car only)."""
    if isinstance(value, bool):
        return "b"
    if isinstance(value, int | float):
        return "n" if math.isfinite(value) else None
    if isinstance(value, str):
        return "t"
    if isinstance(value, list) and value:
        if all(isinstance(v, bool) for v in value):
            return "ba"
        if all(isinstance(v, str) for v in value):
            return "ta"
        if all(isinstance(v, int | float) and not isinstance(v, bool) for v in value):
            return "na"
    return None


def date_text(instant: int) -> str:
    """An instant (epoch microseconds) as the RFC 3339 text of a date property, clamped to the window."""
    low, high = DATE_WINDOW
    return format_time(min(max(instant, low), high))


def filter_properties(metadata: dict[str, Any]) -> dict[str, Any]:
    """The typed, filterable properties of one record's metadata."""
    out: dict[str, Any] = {}
    for key, value in metadata.items():
        code = type_code(value)
        if code is not None:
            out[property_name(key, code)] = [float(v) for v in value] if code == "na" else (
                float(value) if code == "n" else value
            )
        instants = times_of(value)
        if instants:
            dates = [date_text(t) for t in instants]
            if isinstance(value, list):
                out[property_name(key, "da")] = dates
            else:
                out[property_name(key, "d")] = dates[0]
    return out


def code_of(prop: str) -> TypeCode | None:
    if not prop.startswith("m") or "_" not in prop:
        return None
    code = prop[1 : prop.index("_")]
    return code if code in TYPE_CODES else None
