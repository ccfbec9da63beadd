"""How vectorseam records map onto Qdrant points, and how a collection's spec is kept in Qdrant.

Why this layout:

* **Point ids.** Qdrant only accepts unsigned integers or UUIDs as point ids, while vectorseam ids are
  arbitrary strings. Each id becomes ``uuid5(ID_NAMESPACE, id)``: deterministic (every process and
  every version maps an id to the same point, so upserts stay idempotent and ``fetch`` needs no
  lookup table) and collision-free in practice (122 bits). The original id is kept in the payload.
* **Payload.** Internal fields live at the top level under a ``_vs_`` prefix; the user's metadata
  is nested, whole, under ``_vs_meta``. A user key can therefore never collide with an internal one
  (a user may well have a field called ``_vs_id``), and every filter key translates to the single
  quoted path ``_vs_meta."key"``, so keys containing dots or brackets stay one key instead of being
  read as a nested path.
* **Cosine collections.** Qdrant normalises vectors on write for ``Distance.COSINE``, and a unit
  vector times its norm comes back a float32 ulp or two off. So the vector as written is kept, bit
  for bit, in ``_vs_vec`` (its little-endian float32 bytes in base64: 4/3 of the vector's size, no
  index, no change to the collection's vector config) and returned by ``fetch`` and by hits with
  vectors; queries exclude it from the payload otherwise. Points written before this layout carry
  ``_vs_norm`` instead, and still read back as unit vector times norm. (A second, unindexed named
  vector would also hold it, but would change the vector config of every existing collection.)
* **Times.** Each metadata key holding ISO-8601 times (:func:`vectorseam.filters.parse_time`) is
  mirrored under ``_vs_time`` as RFC 3339 UTC text (a list for a list), which ``DatetimeRange``
  compares as instants. Qdrant's own date parser is more lenient than the portable rule (it reads
  ``2024-01-01 10:00`` too); the mirror holds only strings that are times by that rule, so Qdrant
  never sees another. Points written before the mirror existed match no time range until rewritten.
* **Collection spec.** Dimension, metric, format version and the caller's collection metadata
  (embedder fingerprint included) are stored in Qdrant's own collection metadata under the
  ``vectorseam`` key, so they round-trip with the collection and need no side catalog. A Qdrant
  collection without that key was not made by vectorseam and is left alone.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

from vectorseam.errors import FilterError, ValidationError
from vectorseam.filters import format_time, parse_time
from vectorseam.types import Metadata, Metric

ID_NAMESPACE = uuid.UUID("6f1c9a52-3b8e-5d0f-9a47-2c61e8b0d7f3")

ID_KEY = "_vs_id"
TEXT_KEY = "_vs_text"
META_KEY = "_vs_meta"
NORM_KEY = "_vs_norm"  # the layout before VECTOR_KEY: cosine vectors read back as unit vector * norm
VECTOR_KEY = "_vs_vec"
TIME_KEY = "_vs_time"

SPEC_KEY = "vectorseam"
SPEC_FORMAT = 1

# Qdrant stores integers as signed 64-bit; a larger int would come back changed (or be refused).
_I64_MIN, _I64_MAX = -(2**63), 2**63 - 1


def point_id(record_id: str) -> str:
    """The Qdrant point id (a UUID string) of a vectorseam record id."""
    return str(uuid.uuid5(ID_NAMESPACE, record_id))


def meta_path(key: str, root: str = META_KEY) -> str:
    """The Qdrant payload path of a user metadata key, always quoted so it stays one key.

    Qdrant's path syntax has no escape inside quotes, so a key holding ``"`` or ``\\`` cannot be
    addressed by a filter; those raise instead of silently addressing another field. ``root`` is
    ``TIME_KEY`` for the key's time mirror.
    """
    if '"' in key or "\\" in key:
        raise FilterError(
            f"filter field {key!r} contains a double quote or backslash, which Qdrant field paths "
            "cannot express; rename the metadata field to filter on it"
        )
    return f'{root}."{key}"'


_UTC_RANGE = (parse_time("0001-01-01") or 0, parse_time("9999-12-31T23:59:59.999999Z") or 0)


def time_text(value: str) -> str | None:
    """The RFC 3339 UTC text of a time string (None for a string that is not a time).

    An instant that falls outside years 1-9999 in UTC (``0001-01-01T00:30:00+01:00``) keeps its own
    offset form, which is valid RFC 3339 and read alike by Qdrant and by Python's ``datetime``.
    """
    instant = parse_time(value)
    if instant is None:
        return None
    return format_time(instant) if _UTC_RANGE[0] <= instant <= _UTC_RANGE[1] else value


def time_mirror(metadata: Metadata) -> dict[str, Any]:
    """The ``_vs_time`` payload: each key with times, as UTC text (a list for a list value)."""
    out: dict[str, Any] = {}
    for key, value in metadata.items():
        if isinstance(value, list):
            texts = [t for t in (time_text(v) for v in value if isinstance(v, str)) if t is not None]
            if texts:
                out[key] = texts
        elif isinstance(value, str):
            text = time_text(value)
            if text is not None:
                out[key] = text
    return out


def encode_vector(vector: npt.NDArray[np.float32]) -> str:
    return base64.b64encode(np.asarray(vector, dtype="<f4").tobytes()).decode("ascii")


def decode_vector(text: object) -> npt.NDArray[np.float32] | None:
    if not isinstance(text, str):
        return None
    return np.frombuffer(base64.b64decode(text), dtype="<f4").astype(np.float32)


def check_payload_metadata(metadata: Metadata, where: str) -> None:
    """Reject values Qdrant would not store faithfully (integers outside signed 64-bit)."""
    for key, value in metadata.items():
        items = value if isinstance(value, list) else [value]
        for item in items:
            if isinstance(item, int) and not isinstance(item, bool) and not _I64_MIN <= item <= _I64_MAX:
                raise ValidationError(
                    f"{where}: metadata field {key!r} holds the integer {item}, outside the signed 64-bit "
                    "range Qdrant stores; store it as a string or a float"
                )


def payload(
    record_id: str, text: str, metadata: Metadata, vector: npt.NDArray[np.float32] | None
) -> dict[str, Any]:
    """A point's payload; ``vector`` is the vector as written, kept for cosine collections only."""
    out: dict[str, Any] = {ID_KEY: record_id, TEXT_KEY: text, META_KEY: dict(metadata)}
    if vector is not None:
        out[VECTOR_KEY] = encode_vector(vector)
    times = time_mirror(metadata)
    if times:
        out[TIME_KEY] = times
    return out


def spec_metadata(dimension: int, metric: Metric, metadata: Mapping[str, str]) -> dict[str, Any]:
    return {
        SPEC_KEY: {
            "format": SPEC_FORMAT,
            "dimension": dimension,
            "metric": metric,
            "metadata": dict(metadata),
        }
    }


def read_spec(collection_metadata: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The stored spec, or None for a collection vectorseam did not create."""
    if not collection_metadata:
        return None
    spec = collection_metadata.get(SPEC_KEY)
    if not isinstance(spec, Mapping) or spec.get("format") != SPEC_FORMAT:
        return None
    return dict(spec)
