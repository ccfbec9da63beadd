"""Records, hits, collection descriptions and the score convention shared by every store.

Score convention: **higher is more similar, for every metric**, so callers can sort, threshold and
fuse results without knowing the backend:

* ``cosine``: the cosine similarity, in [-1, 1];
* ``dot``: the inner product;
* ``euclidean``: the *negated* Euclidean (L2) distance, in (-inf, 0].

Adapters convert their backend's native distances to this convention.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, TypeAlias

import numpy as np
import numpy.typing as npt

from vectorseam.errors import DimensionMismatchError, ValidationError

Metric: TypeAlias = Literal["cosine", "dot", "euclidean"]
METRICS: tuple[Metric, ...] = ("cosine", "dot", "euclidean")

Scalar: TypeAlias = str | int | float | bool
MetadataValue: TypeAlias = Scalar | list[Scalar] | None
Metadata: TypeAlias = dict[str, MetadataValue]
Vector: TypeAlias = npt.NDArray[np.float32]

MAX_ID_LENGTH = 512
_SURROGATE = re.compile("[\ud800-\udfff]")


def check_storable_text(value: str, what: str) -> None:
    """Refuse a string that no store, file or tokenizer can take, naming ``what`` it is.

    Two things get through Python but not past a backend: NUL characters (PostgreSQL refuses them in
    ``text`` and JSONB, so one such row used to fail a whole batch) and lone surrogates (a JSON
    ``"\\ud800"`` escape decodes to one; it is not valid Unicode, so UTF-8 encoding fails when the
    memory store saves, a server store sends, or the tokenizer reads it). Every boundary that takes
    texts, ids or metadata (records, ingest rows, HTTP bodies) checks here, so the rule is one rule.
    ``what`` starts the message: ``"doc.csv:4: text"``, ``"record 'a': metadata field 'k'"``.
    """
    nul = value.find("\x00")
    if nul >= 0:
        raise ValidationError(f"{what} holds a NUL character at position {nul}; stores such as PostgreSQL "
                              "refuse it")
    if not value.isascii():
        bad = _SURROGATE.search(value)
        if bad is not None:
            raise ValidationError(f"{what} holds a lone surrogate {bad.group()!r} at position {bad.start()}: not "
                                  "valid Unicode (a broken \\u escape?), so it cannot be stored or embedded")


@dataclass(slots=True)
class Record:
    """One stored item: a caller-chosen string id, its vector, its text and flat metadata."""

    id: str
    vector: Vector | None
    text: str = ""
    metadata: Metadata = field(default_factory=dict)


@dataclass(slots=True)
class Hit:
    """One query result. ``score`` follows the module's higher-is-more-similar convention."""

    id: str
    score: float
    text: str
    metadata: Metadata
    vector: Vector | None = None


@dataclass(frozen=True, slots=True)
class CollectionSpec:
    """What a collection must be: its dimension, metric and descriptive metadata.

    ``metadata`` records at least the embedder fingerprint so that a collection built with one model
    is never silently queried with another.
    """

    name: str
    dimension: int
    metric: Metric = "cosine"
    metadata: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        validate_collection_name(self.name)
        if not isinstance(self.dimension, int) or self.dimension <= 0:
            raise ValidationError(f"collection {self.name!r}: dimension must be a positive integer, "
                                  f"got {self.dimension!r}")
        if self.metric not in METRICS:
            raise ValidationError(f"collection {self.name!r}: unknown metric {self.metric!r}; "
                                  f"expected one of {', '.join(METRICS)}")


@dataclass(frozen=True, slots=True)
class CollectionInfo:
    """A collection as it exists in a store."""

    name: str
    dimension: int
    metric: Metric
    metadata: Mapping[str, str]
    count: int


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a backend is, as data: the core reads these facts, never a store's name. Abilities that are
    methods (bulk_load, a native recommend, keyword search) are protocols in :mod:`vectorseam.store`
    instead, so the type checker sees them.

    ``filter_operators`` lists the portable operators the backend can express; a filter that uses any
    other raises :class:`~vectorseam.errors.FilterError` instead of being ignored. ``approximate``
    says the backend may miss true neighbours (the conformance suite then checks recall, not exact
    order); ``notes`` are shown to people (``vectorseam collections``).

    Where the data lives, for work spread over processes and machines (the Ray engine's writers, service
    replicas): ``one_process`` says why only this process reaches it ("runs in ... local mode"; None:
    other processes open the same data), ``one_machine`` why only this machine does (None: a server or
    a database other nodes reach). ``native_keywords``: the store keeps a BM25 index itself (it is a
    :class:`~vectorseam.store.NativeKeywordSearch`; the conformance suite checks the two agree).
    ``database_option`` names the option holding the PostgreSQL database (a DSN) the store lives in:
    state every replica must share (the Ray record manager, the service's job table) defaults to it.
    """

    name: str
    persistent: bool
    approximate: bool = False
    filter_operators: frozenset[str] = frozenset(
        {"eq", "ne", "gt", "gte", "lt", "lte", "in", "nin", "exists", "and", "or", "not"}
    )
    notes: tuple[str, ...] = ()
    one_process: str | None = None
    one_machine: str | None = None
    native_keywords: bool = False
    database_option: str | None = None


def validate_collection_name(name: str) -> None:
    if not isinstance(name, str) or not name or len(name) > 63:
        raise ValidationError(f"collection name must be 1-63 characters, got {name!r}")
    if not all(c.isascii() and (c.isalnum() or c in "_-") for c in name) or not name[0].isalpha():
        raise ValidationError(
            f"collection name {name!r} is not portable: use a letter followed by letters, digits, '_' or '-'"
        )


def validate_id(record_id: object, where: str = "record") -> str:
    """Ids are any non-empty string (unicode included) up to MAX_ID_LENGTH characters."""
    if not isinstance(record_id, str):
        raise ValidationError(f"{where}: id must be a string, got {type(record_id).__name__} {record_id!r}")
    if not record_id:
        raise ValidationError(f"{where}: id must not be empty")
    if len(record_id) > MAX_ID_LENGTH:
        raise ValidationError(f"{where}: id is {len(record_id)} characters long; the limit is {MAX_ID_LENGTH}")
    check_storable_text(record_id, f"{where}: id {record_id!r}")
    return record_id


def as_vector(values: object, dimension: int | None, where: str) -> Vector:
    """Coerce one vector to contiguous float32, rejecting wrong shapes, NaN and infinity (and a length
    other than ``dimension``, unless None: a store's ``query`` checks it against the collection)."""
    try:
        arr = np.asarray(values, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"{where}: vector is not numeric ({exc})") from None
    if arr.ndim != 1:
        raise ValidationError(f"{where}: vector must be one-dimensional, got shape {arr.shape}")
    if dimension is not None and arr.shape[0] != dimension:
        raise DimensionMismatchError(
            f"{where}: vector has dimension {arr.shape[0]}, the collection expects {dimension}"
        )
    if not np.isfinite(arr).all():
        bad = int(np.flatnonzero(~np.isfinite(arr))[0])
        raise ValidationError(f"{where}: vector holds a non-finite value (NaN or inf) at position {bad}")
    return np.ascontiguousarray(arr)


def as_query_matrix(vectors: object, dimension: int) -> npt.NDArray[np.float32]:
    """Queries come as one vector (d,) or many (n, d); both become a float32 (n, d) matrix."""
    try:
        arr = np.asarray(vectors, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"query vector is not numeric ({exc})") from None
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2:
        raise ValidationError(f"query vectors must have shape (d,) or (n, d), got {arr.shape}")
    if arr.shape[1] != dimension:
        raise DimensionMismatchError(
            f"query vector has dimension {arr.shape[1]}, the collection expects {dimension}"
        )
    if not np.isfinite(arr).all():
        raise ValidationError("query vector holds a non-finite value (NaN or inf)")
    return np.ascontiguousarray(arr)


def validate_metadata(metadata: object, where: str) -> Metadata:
    """Metadata is flat: str keys; str/int/float/bool/None values or lists of str/int/float/bool.

    Nested objects are rejected rather than flattened so that every backend stores the same thing.
    """
    if metadata is None:
        return {}
    if not isinstance(metadata, Mapping):
        raise ValidationError(f"{where}: metadata must be a mapping, got {type(metadata).__name__}")
    out: Metadata = {}
    for key, value in metadata.items():
        if not isinstance(key, str) or not key:
            raise ValidationError(f"{where}: metadata key {_brief(key)} must be a non-empty string")
        check_storable_text(key, f"{where}: metadata key {key!r}")
        out[key] = _check_value(value, f"{where}: metadata field {key!r}")
    return out


def _brief(value: object) -> str:
    """A bad value for a message: short, and never a recursive repr (a list nested 900 deep from JSON)."""
    if isinstance(value, list | tuple | dict):
        return f"a {type(value).__name__} of {len(value)} items"
    text = repr(value)
    return text if len(text) <= 80 else f"{text[:77]}..."


def _check_value(value: object, where: str) -> MetadataValue:
    if isinstance(value, str):
        check_storable_text(value, where)
    if value is None or isinstance(value, str | bool | int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValidationError(f"{where}: non-finite number {value!r} is not allowed")
        return value
    if isinstance(value, list | tuple):
        items: list[Scalar] = []
        for position, item in enumerate(value):
            if isinstance(item, str):
                check_storable_text(item, f"{where} item {position}")
            if isinstance(item, str | bool | int) or (isinstance(item, float) and math.isfinite(item)):
                items.append(item)
            else:
                raise ValidationError(
                    f"{where}: list items must be str, int, float or bool, got {_brief(item)}"
                )
        return items
    if isinstance(value, np.generic):
        return _check_value(value.item(), where)
    raise ValidationError(
        f"{where}: value of type {type(value).__name__} is not supported; "
        "use str, int, float, bool, null or a list of those"
    )


def validate_records(records: Iterable[Record], dimension: int) -> list[Record]:
    """Validate a whole batch before any write, so a bad record leaves the store untouched.

    Later duplicates of an id within one batch win, as if upserted one after another.
    """
    checked: dict[str, Record] = {}
    for position, record in enumerate(records):
        if not isinstance(record, Record):
            raise ValidationError(f"batch item {position}: expected a Record, got {type(record).__name__}")
        rid = validate_id(record.id, f"batch item {position}")
        where = f"record {rid!r}"
        if record.vector is None:
            raise ValidationError(f"{where}: vector is missing")
        if not isinstance(record.text, str):
            raise ValidationError(f"{where}: text must be a string, got {type(record.text).__name__}")
        check_storable_text(record.text, f"{where}: text")
        checked.pop(rid, None)
        checked[rid] = Record(
            id=rid,
            vector=as_vector(record.vector, dimension, where),
            text=record.text,
            metadata=validate_metadata(record.metadata, where),
        )
    return list(checked.values())


def ids_list(ids: Sequence[str] | str) -> list[str]:
    """Accept one id or many; a bare string is one id, never a sequence of characters."""
    if isinstance(ids, str):
        return [validate_id(ids)]
    return [validate_id(i) for i in ids]
