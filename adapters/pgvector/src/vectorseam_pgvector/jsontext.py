"""JSON text for the JSONB metadata column that keeps floats floats, and storability checks.

JSONB keeps numbers as ``numeric`` and prints them back without an exponent, so ``json.dumps(1e16)``
(``1e+16``) would come back as the *int* 10000000000000000. Writing every float in positional
notation with a decimal point (``10000000000000000.0``) makes numeric keep its scale, so a float
read back is a float again. The same encoding is used for filter operands so that both sides of a
comparison are built alike.

PostgreSQL cannot store NUL characters in ``text`` or JSONB strings, nor text that is not valid
UTF-8 (Python strings with lone surrogates); :func:`unstorable` finds them so the adapter can refuse
such a record up front with a clear message instead of failing half-way through a batch.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from decimal import Decimal

from vectorseam.errors import ValidationError
from vectorseam.types import MetadataValue


def encode_float(value: float) -> str:
    if not math.isfinite(value):
        raise ValidationError(f"non-finite number {value!r} cannot be stored or compared")
    text = repr(value)
    if "e" in text or "E" in text:
        text = format(Decimal(text), "f")
        if "." not in text:
            text += ".0"
    return text


def encode_value(value: object) -> str:
    """One metadata value (a scalar, null or a flat list of scalars) as JSON text."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return encode_float(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list | tuple):
        return "[" + ",".join(encode_value(v) for v in value) + "]"
    raise ValidationError(f"value of type {type(value).__name__} cannot be stored as metadata: {value!r}")


def encode_object(items: Mapping[str, object]) -> str:
    """A flat JSON object; keys are JSON-escaped strings, values go through :func:`encode_value`."""
    return "{" + ",".join(f"{json.dumps(k, ensure_ascii=False)}:{encode_value(v)}" for k, v in items.items()) + "}"


def storable(text: str) -> bool:
    """Whether PostgreSQL can hold this string in a text or JSONB value."""
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def unstorable(text: str, metadata: Mapping[str, MetadataValue]) -> str | None:
    """A description of the first string PostgreSQL cannot store in a record, or None."""
    if not storable(text):
        return "its text contains a NUL character or invalid UTF-8 (a lone surrogate)"
    for key, value in metadata.items():
        if not storable(key):
            return f"metadata key {key!r} contains a NUL character or invalid UTF-8"
        values = value if isinstance(value, list) else [value]
        for v in values:
            if isinstance(v, str) and not storable(v):
                return f"metadata field {key!r} holds a string with a NUL character or invalid UTF-8"
    return None
