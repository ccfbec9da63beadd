"""How a vectorseam record becomes a Pinecone vector and back, within Pinecone's limits.

Pinecone metadata holds strings, float64 numbers, booleans and lists of strings, at most 40 KB per
record; nulls are not allowed. To keep every record byte-for-byte round-trippable *and* filterable:

* filterable values (str, bool, finite numbers, non-empty lists of strings) are stored as themselves;
* ints are stored as numbers (float64) and their keys listed in ``_vs_ints`` so ``fetch`` gives
  ints back; ints beyond 2**53 (not exact in float64) go to the JSON side-car below;
* values Pinecone cannot hold (null, empty lists, lists of numbers or booleans) go to one JSON
  string ``_vs_json``. They round-trip exactly but are not filterable -- a null or an empty list is
  "absent" for filters anyway; a list of numbers is the one documented filtering gap;
* the text lives under ``_vs_text``; keys starting with ``_vs_`` are reserved, ``$`` is refused;
* a field holding ISO-8601 times (:func:`vectorseam.filters.parse_time`; a string or strings of a
  list) also gets two hidden numbers, ``_vs_tmin_<key>`` and ``_vs_tmax_<key>``: the earliest and the
  latest of its instants in epoch microseconds, which is what Pinecone's numeric ``$gt``/``$lt`` can
  compare. "Some element is later than t" is exactly "the latest is later than t" (and "earlier"
  the earliest), so a list of times filters exactly although Pinecone stores no list of numbers.
  Records written before this existed have no such numbers and match no time range until rewritten.

Ids: Pinecone ids are strings up to 512 characters; printable ASCII ids are kept as they are. Other
ids (unicode, control characters) and ids starting with the reserved ``vsh~`` prefix are stored as
``vsh~<sha256>`` with the original under ``_vs_id``: deterministic, so fetch/delete by id still work.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import numpy as np

from vectorseam.errors import ValidationError
from vectorseam.filters import times_of
from vectorseam.types import Metadata, Record

RESERVED_PREFIX = "_vs_"
TEXT_KEY = "_vs_text"
ID_KEY = "_vs_id"
INTS_KEY = "_vs_ints"
JSON_KEY = "_vs_json"
TIME_MIN_PREFIX = "_vs_tmin_"
TIME_MAX_PREFIX = "_vs_tmax_"
HASHED_ID_PREFIX = "vsh~"

MAX_METADATA_BYTES = 40 * 1024
MAX_REQUEST_BYTES = 2 * 1024 * 1024
MAX_VECTORS_PER_UPSERT = 1000
_REQUEST_OVERHEAD = 256  # '{"vectors":[...],"namespace":"..."}'
_EXACT_INT = 2**53


def to_pinecone_id(record_id: str) -> str:
    if record_id.startswith(HASHED_ID_PREFIX) or not all(" " <= c <= "~" for c in record_id):
        return HASHED_ID_PREFIX + hashlib.sha256(record_id.encode("utf-8")).hexdigest()
    return record_id


def encode_metadata(record: Record) -> dict[str, Any]:
    """The Pinecone metadata of one record; raises naming the record for what cannot be stored."""
    out: dict[str, Any] = {}
    ints: list[str] = []
    extra: dict[str, Any] = {}
    for key, value in record.metadata.items():
        if key.startswith(RESERVED_PREFIX) or key.startswith("$"):
            raise ValidationError(
                f"record {record.id!r}: metadata key {key!r} is not allowed in the pinecone store "
                f"(keys starting with {RESERVED_PREFIX!r} are reserved by the adapter, '$' by Pinecone); "
                "rename the key"
            )
        if isinstance(value, bool | str):
            out[key] = value
        elif isinstance(value, int):
            if abs(value) > _EXACT_INT:
                extra[key] = value
            else:
                out[key] = value
                ints.append(key)
        elif isinstance(value, float):
            out[key] = value
        elif isinstance(value, list) and value and all(isinstance(v, str) for v in value):
            out[key] = list(value)
        else:  # None, [], lists holding numbers or booleans
            extra[key] = value
        instants = times_of(value)
        if instants:  # float64: rounding keeps the order, see filters.translate for the exact window
            out[TIME_MIN_PREFIX + key] = float(min(instants))
            out[TIME_MAX_PREFIX + key] = float(max(instants))
    if record.text:
        out[TEXT_KEY] = record.text
    if ints:
        out[INTS_KEY] = ints
    if extra:
        out[JSON_KEY] = json.dumps(extra, ensure_ascii=False, separators=(",", ":"))
    if to_pinecone_id(record.id) != record.id:
        out[ID_KEY] = record.id
    size = len(json.dumps(out, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))
    if size > MAX_METADATA_BYTES:
        raise ValidationError(
            f"record {record.id!r}: its text and metadata take {size} bytes once encoded, over Pinecone's "
            f"limit of {MAX_METADATA_BYTES} bytes per record; shorten the text (chunk it) or drop "
            "metadata fields"
        )
    return out


def decode_metadata(pinecone_id: str, metadata: Mapping[str, Any] | None) -> tuple[str, str, Metadata]:
    """(original id, text, user metadata) from a stored Pinecone vector."""
    meta = dict(metadata or {})
    original_id = meta.pop(ID_KEY, None)
    text = meta.pop(TEXT_KEY, "")
    ints = meta.pop(INTS_KEY, [])
    extra_json = meta.pop(JSON_KEY, None)
    out: Metadata = {}
    for key, value in meta.items():
        if key.startswith((TIME_MIN_PREFIX, TIME_MAX_PREFIX)):
            continue
        if key in ints and isinstance(value, float) and value.is_integer():
            out[key] = int(value)
        else:
            out[key] = value
    if isinstance(extra_json, str):
        out.update(json.loads(extra_json))
    return (original_id if isinstance(original_id, str) else pinecone_id), str(text), out


def to_item(record: Record) -> dict[str, Any]:
    """The JSON object of one vector in an upsert request."""
    assert record.vector is not None
    return {
        "id": to_pinecone_id(record.id),
        "values": np.asarray(record.vector, dtype=np.float32).astype(np.float64).tolist(),
        "metadata": encode_metadata(record),
    }


def request_batches(
    records: Iterable[Record],
    max_bytes: int = MAX_REQUEST_BYTES,
    max_vectors: int = MAX_VECTORS_PER_UPSERT,
) -> Iterator[list[dict[str, Any]]]:
    """Upsert bodies packed greedily under both Pinecone caps (encoded bytes and vector count)."""
    batch: list[dict[str, Any]] = []
    used = _REQUEST_OVERHEAD
    for record in records:
        item = to_item(record)
        size = len(json.dumps(item, ensure_ascii=False).encode("utf-8")) + 2
        if size + _REQUEST_OVERHEAD > max_bytes:
            raise ValidationError(
                f"record {record.id!r}: one vector with its metadata takes {size} bytes, more than the "
                f"{max_bytes}-byte upsert request limit; shorten its text or metadata"
            )
        if batch and (used + size > max_bytes or len(batch) >= max_vectors):
            yield batch
            batch, used = [], _REQUEST_OVERHEAD
        batch.append(item)
        used += size
    if batch:
        yield batch
