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
* **Cosine collections.** Qdrant normalises vectors on write for ``Distance.COSINE``. The original
  norm is kept in ``_vs_norm`` so ``fetch`` returns the vector that was written, as every store does.
* **Collection spec.** Dimension, metric, format version and the caller's collection metadata
  (embedder fingerprint included) are stored in Qdrant's own collection metadata under the
  ``vectorseam`` key, so they round-trip with the collection and need no side catalog. A Qdrant
  collection without that key was not made by vectorseam and is left alone.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from vectorseam.errors import FilterError, ValidationError
from vectorseam.types import Metadata, Metric

ID_NAMESPACE = uuid.UUID("6f1c9a52-3b8e-5d0f-9a47-2c61e8b0d7f3")

ID_KEY = "_vs_id"
TEXT_KEY = "_vs_text"
META_KEY = "_vs_meta"
NORM_KEY = "_vs_norm"

SPEC_KEY = "vectorseam"
SPEC_FORMAT = 1

# Qdrant stores integers as signed 64-bit; a larger int would come back changed (or be refused).
_I64_MIN, _I64_MAX = -(2**63), 2**63 - 1


def point_id(record_id: str) -> str:
    """The Qdrant point id (a UUID string) of a vectorseam record id."""
    return str(uuid.uuid5(ID_NAMESPACE, record_id))


def meta_path(key: str) -> str:
    """The Qdrant payload path of a user metadata key, always quoted so it stays one key.

    Qdrant's path syntax has no escape inside quotes, so a key holding ``"`` or ``\\`` cannot be
    addressed by a filter; those raise instead of silently addressing another field.
    """
    if '"' in key or "\\" in key:
        raise FilterError(
            f"filter field {key!r} contains a double quote or backslash, which Qdrant field paths "
            "cannot express; rename the metadata field to filter on it"
        )
    return f'{META_KEY}."{key}"'


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


def payload(record_id: str, text: str, metadata: Metadata, norm: float | None) -> dict[str, Any]:
    out: dict[str, Any] = {ID_KEY: record_id, TEXT_KEY: text, META_KEY: dict(metadata)}
    if norm is not None:
        out[NORM_KEY] = norm
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
