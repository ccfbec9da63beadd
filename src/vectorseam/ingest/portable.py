"""Export and import: a collection's records as a stream of NDJSON or Parquet, and back.

Both formats carry the collection's spec first (dimension, metric, metadata with the embedder's
fingerprint), then every record with its id, text, metadata and vector, so an export imports into any
store, under any name, and is searchable at once with the same results.

* **NDJSON** (``application/x-ndjson``): line 1 is the header object (``"format":
  "vectorseam-export/1"``), then one object per record: ``{"id", "text", "metadata", "vector"}``.
  Readable by anything; vectors are JSON numbers that convert back to the same float32 values.
* **Parquet** (``application/vnd.apache.parquet``): columns ``id``, ``text``, ``metadata`` (a JSON
  object as text: metadata is schemaless) and ``vector`` (a fixed-size list of float32, exact); the
  header is the file's key-value metadata ``vectorseam``. Written a row group at a time, so a large
  collection streams out without being held in memory.

Import reads either, in batches: a record without a vector (``"vector": null``, or an NDJSON line
written by hand) is embedded by the importing side's configured embedder. A line or row that cannot be
a record stops the import with its line number and id; the batches before it are written (import is
idempotent by id: fix the input and import it again).
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import IO, Any, Literal, TypeAlias, get_args

import numpy as np

from vectorseam.embedding import FINGERPRINT_KEY
from vectorseam.errors import CollectionNotFoundError, EmbedderMismatchError, ValidationError
from vectorseam.filters import Filter
from vectorseam.store import BulkLoading, VectorStore
from vectorseam.types import CollectionInfo, CollectionSpec, Metric, Record

Format: TypeAlias = Literal["ndjson", "parquet"]
FORMATS: tuple[str, ...] = get_args(Format)
MEDIA_TYPES: dict[str, str] = {"ndjson": "application/x-ndjson", "parquet": "application/vnd.apache.parquet"}
EXPORT_FORMAT = "vectorseam-export/1"
HEADER_KEY = b"vectorseam"
BATCH = 1000


def check_format(value: str) -> Format:
    if value not in FORMATS:
        raise ValidationError(f"unknown format {value!r}; use one of {', '.join(FORMATS)}")
    return value  # type: ignore[return-value]


@dataclass(frozen=True, slots=True)
class Header:
    """What a stream says of its collection before its records."""

    format: str
    collection: str
    dimension: int
    metric: Metric
    metadata: dict[str, str]
    extra: dict[str, Any]  # what a snapshot adds (count, profile), kept as read

    @classmethod
    def of(cls, info: CollectionInfo, fmt: str = EXPORT_FORMAT, **extra: Any) -> Header:
        return cls(fmt, info.name, info.dimension, info.metric, dict(info.metadata), extra)

    def to_json(self) -> dict[str, Any]:
        return {"format": self.format, "collection": self.collection, "dimension": self.dimension,
                "metric": self.metric, "metadata": self.metadata, **self.extra}

    @classmethod
    def from_json(cls, data: Any, where: str) -> Header:
        if not isinstance(data, Mapping) or not str(data.get("format", "")).startswith("vectorseam-"):
            raise ValidationError(f"{where}: not a vectorseam export (no header with a 'format' of vectorseam's)")
        try:
            spec = CollectionSpec(str(data["collection"]), int(data["dimension"]), data.get("metric", "cosine"),
                                  {str(k): str(v) for k, v in dict(data.get("metadata") or {}).items()})
        except (KeyError, TypeError, ValueError) as exc:
            raise ValidationError(f"{where}: the header is incomplete ({exc}); it needs collection, dimension and "
                                  "metric") from None
        known = {"format", "collection", "dimension", "metric", "metadata"}
        return cls(str(data["format"]), spec.name, spec.dimension, spec.metric, dict(spec.metadata),
                   {k: v for k, v in data.items() if k not in known})

    def spec(self, name: str) -> CollectionSpec:
        return CollectionSpec(name, self.dimension, self.metric, self.metadata)


# -- writing ---------------------------------------------------------------------------------------

def record_json(record: Record) -> dict[str, Any]:
    return {"id": record.id, "text": record.text, "metadata": record.metadata,
            "vector": None if record.vector is None else np.asarray(record.vector, dtype=np.float32).tolist()}


def ndjson_stream(header: Header, pages: Iterable[list[Record]]) -> Iterator[bytes]:
    """The header line, then one line per record, a page of lines per chunk."""
    yield (json.dumps(header.to_json(), ensure_ascii=False) + "\n").encode("utf-8")
    for page in pages:
        if page:
            yield "".join(json.dumps(record_json(r), ensure_ascii=False) + "\n" for r in page).encode("utf-8")


class _Chunks(io.RawIOBase):
    """A write-only file that hands out what was written since the last :meth:`drain`: pyarrow's
    Parquet writer writes into it and each row group streams on as soon as it is complete."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []
        self._position = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        chunk = bytes(data)
        self._parts.append(chunk)
        self._position += len(chunk)
        return len(chunk)

    def tell(self) -> int:
        return self._position

    def drain(self) -> bytes:
        out, self._parts = b"".join(self._parts), []
        return out


def parquet_schema(header: Header) -> Any:
    import pyarrow as pa

    return pa.schema([("id", pa.string()), ("text", pa.string()), ("metadata", pa.string()),
                      ("vector", pa.list_(pa.float32(), header.dimension))],
                     metadata={HEADER_KEY: json.dumps(header.to_json(), ensure_ascii=False).encode("utf-8")})


def parquet_stream(header: Header, pages: Iterable[list[Record]], rows_per_group: int = 10_000) -> Iterator[bytes]:
    """A Parquet file, a row group (about ``rows_per_group`` records) per chunk."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = parquet_schema(header)
    sink = _Chunks()
    writer = pq.ParquetWriter(sink, schema, compression="zstd")
    pending: list[Record] = []

    def flush() -> bytes:
        vectors = np.stack([_vector_of(r, header.dimension) for r in pending]) if pending else np.zeros(
            (0, header.dimension), np.float32)
        table = pa.table({
            "id": [r.id for r in pending],
            "text": [r.text for r in pending],
            "metadata": [json.dumps(r.metadata, ensure_ascii=False) for r in pending],
            "vector": pa.FixedSizeListArray.from_arrays(pa.array(vectors.reshape(-1), pa.float32()), header.dimension),
        }, schema=schema)
        writer.write_table(table)
        pending.clear()
        return sink.drain()

    try:
        for page in pages:
            pending.extend(page)
            if len(pending) >= rows_per_group:
                yield flush()
        if pending:
            yield flush()
    finally:
        writer.close()
    yield sink.drain()


def _vector_of(record: Record, dimension: int) -> np.ndarray[Any, np.dtype[np.float32]]:
    if record.vector is None:
        raise ValidationError(f"record {record.id!r} came without its vector; exports carry every vector")
    vector = np.asarray(record.vector, dtype=np.float32)
    if vector.shape != (dimension,):
        raise ValidationError(f"record {record.id!r}: vector of dimension {vector.shape}, the collection's is "
                              f"{dimension}")
    return vector


def export_stream(fmt: Format, header: Header, pages: Iterable[list[Record]]) -> Iterator[bytes]:
    return ndjson_stream(header, pages) if fmt == "ndjson" else parquet_stream(header, pages)


# -- reading ---------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Opened:
    """A stream being read: its header (None for NDJSON without one) and its records, a batch at a time."""

    header: Header | None
    batches: Iterator[list[Record]]


def open_stream(fmt: Format, source: IO[bytes], batch: int = BATCH) -> Opened:
    return open_ndjson(source, batch) if fmt == "ndjson" else open_parquet(source, batch)


def open_ndjson(source: IO[bytes], batch: int = BATCH) -> Opened:
    lines = enumerate(source, start=1)
    header: Header | None = None
    first: tuple[int, Any] | None = None
    for number, raw in lines:
        if not raw.strip():
            continue
        data = _json_line(raw, number)
        if isinstance(data, Mapping) and "format" in data:
            header = Header.from_json(data, f"line {number}")
        else:
            first = (number, data)
        break

    def records() -> Iterator[Record]:
        if first is not None:
            yield _record(first[1], f"line {first[0]}", header)
        for number, raw in lines:
            if raw.strip():
                yield _record(_json_line(raw, number), f"line {number}", header)

    return Opened(header, _batched(records(), batch))


def _batched(records: Iterator[Record], size: int) -> Iterator[list[Record]]:
    """Batches of ``size``; when a record cannot be read, the ones before it come out first (and are
    written), then the error: nothing valid before a bad line is lost."""
    pending: list[Record] = []
    while True:
        try:
            record = next(records, None)
        except ValidationError:
            if pending:
                yield pending
            raise
        if record is None:
            break
        pending.append(record)
        if len(pending) >= size:
            yield pending
            pending = []
    if pending:
        yield pending


def _json_line(raw: bytes, number: int) -> Any:
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise ValidationError(f"line {number}: not JSON ({exc}); each line of an NDJSON import is one object") from None


def _record(data: Any, where: str, header: Header | None) -> Record:
    if not isinstance(data, Mapping):
        raise ValidationError(f"{where}: expected a record object with 'id', got {type(data).__name__}")
    unknown = set(data) - {"id", "text", "metadata", "vector"}
    if unknown:
        raise ValidationError(f"{where}: unknown fields {sorted(unknown)}; a record has id, text, metadata, vector")
    rid = data.get("id")
    if not isinstance(rid, str):
        raise ValidationError(f"{where}: 'id' must be a string, got {rid!r}")
    text = data.get("text", "")
    if not isinstance(text, str):
        raise ValidationError(f"{where} (id {rid!r}): 'text' must be a string")
    metadata = data.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise ValidationError(f"{where} (id {rid!r}): 'metadata' must be an object")
    raw = data.get("vector")
    vector = None
    if raw is not None:
        try:
            vector = np.asarray(raw, dtype=np.float32)
        except (TypeError, ValueError):
            raise ValidationError(f"{where} (id {rid!r}): 'vector' must be a list of numbers") from None
        if header is not None and vector.shape != (header.dimension,):
            raise ValidationError(f"{where} (id {rid!r}): vector of shape {vector.shape}, the header says "
                                  f"dimension {header.dimension}")
    return Record(rid, vector, text, metadata)


def open_parquet(source: IO[bytes], batch: int = BATCH) -> Opened:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(source)
    except (pa.ArrowException, OSError) as exc:
        raise ValidationError(f"not a Parquet file ({exc})") from None
    meta = parquet.schema_arrow.metadata or {}
    header = None
    if HEADER_KEY in meta:
        header = Header.from_json(_loads(meta[HEADER_KEY], "the Parquet header"), "the Parquet header")
    names = set(parquet.schema_arrow.names)
    if "id" not in names:
        raise ValidationError(f"the Parquet file has no 'id' column (columns: {', '.join(sorted(names))})")
    columns = [c for c in ("id", "text", "metadata", "vector") if c in names]

    def records() -> Iterator[Record]:
        row = 0
        for part in parquet.iter_batches(batch_size=batch, columns=columns):
            data = part.to_pydict()
            ids = data["id"]
            vectors = _vectors(part, len(ids)) if "vector" in data else [None] * len(ids)
            for i, rid in enumerate(ids):
                where = f"row {row + i}"
                meta_text = data["metadata"][i] if "metadata" in data else None
                yield _record({"id": rid, "text": data["text"][i] if "text" in data else "",
                               "metadata": _loads(meta_text, f"{where}: metadata") if meta_text else {},
                               "vector": vectors[i]}, where, header)
            row += len(ids)

    return Opened(header, _batched(records(), batch))


def _vectors(part: Any, n: int) -> list[Any]:
    """The vector column as float32 rows (a fixed-size list column converts without a Python float per value)."""
    import pyarrow as pa

    column = part.column("vector")
    if pa.types.is_fixed_size_list(column.type) and column.null_count == 0:
        flat = column.flatten().to_numpy(zero_copy_only=False).astype(np.float32, copy=False)
        return list(flat.reshape(n, column.type.list_size)) if n else []
    return list(column.to_pylist())


def _loads(raw: bytes | str, where: str) -> Any:
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise ValidationError(f"{where}: not JSON ({exc})") from None


def import_stream(opened: Opened, ensure: Callable[[Header | None], None],
                  write: Callable[[list[Record]], int]) -> int:
    """Write every batch of ``opened`` with ``write`` after ``ensure`` readied the target from the header;
    returns how many records were written."""
    ensure(opened.header)
    written = 0
    try:
        for batch in opened.batches:
            written += write(batch)
    except ValidationError as exc:
        raise ValidationError(f"{exc} (the {written} records before it were written; import is idempotent by id: "
                              "fix the input and import it again)") from None
    return written


# -- snapshots: one Parquet file with everything a collection is ----------------------------------

SNAPSHOT_FORMAT = "vectorseam-snapshot/1"


def snapshot_header(info: CollectionInfo, profile: bytes | None) -> Header:
    """A snapshot's header: the export header plus the tuned retrieval profile, if any (base64 of its bytes)."""
    return Header.of(info, SNAPSHOT_FORMAT, profile=None if profile is None else base64.b64encode(profile).decode())


def snapshot_profile(header: Header) -> bytes | None:
    raw = header.extra.get("profile")
    if raw is None:
        return None
    try:
        return base64.b64decode(str(raw), validate=True)
    except ValueError:
        raise ValidationError("the snapshot's profile is not base64; the file is damaged") from None


def open_snapshot(source: IO[bytes]) -> Opened:
    """A snapshot being read; ValidationError for anything but a vectorseam snapshot."""
    opened = open_parquet(source)
    if opened.header is None or opened.header.format != SNAPSHOT_FORMAT:
        found = "no vectorseam header" if opened.header is None else f"format {opened.header.format!r}"
        raise ValidationError(f"not a vectorseam snapshot ({found}); an export is imported with import, not restored")
    return opened


# -- over a store: what the facade and the conformance suite call -----------------------------------

def ensure_spec(store: VectorStore, spec: CollectionSpec) -> CollectionInfo:
    """``spec``'s collection, created if absent; an existing one of another dimension or metric raises
    (the store's check), and one filled by another embedder (fingerprint) raises EmbedderMismatchError."""
    info = store.ensure_collection(spec)
    wanted = spec.metadata.get(FINGERPRINT_KEY)
    have = info.metadata.get(FINGERPRINT_KEY)
    if wanted is not None and have is not None and have != wanted:
        raise EmbedderMismatchError(f"collection {spec.name!r} holds vectors of {have!r}, not {wanted!r}; "
                                    "import into another collection, or re-embed (`vectorseam reindex`)")
    return info


def export_collection(store: VectorStore, collection: str, fmt: Format, f: Filter | None = None) -> Iterator[bytes]:
    """The records of ``collection`` that ``f`` admits, with its spec (checked before this returns)."""
    info = store.collection_info(collection)
    return export_stream(fmt, Header.of(info), store.scan(collection, 1000, f, include_vectors=True))


def snapshot_collection(store: VectorStore, collection: str, profile: bytes | None = None) -> Iterator[bytes]:
    """The snapshot file of ``collection`` (with ``profile``, a tuned profile's bytes), a row group per chunk."""
    info = store.collection_info(collection)
    return parquet_stream(snapshot_header(info, profile), store.scan(collection, 1000, include_vectors=True))


def restore_collection(store: VectorStore, source: IO[bytes], name: str | None = None, replace: bool = False,
                       drop: Callable[[str], object] | None = None) -> tuple[CollectionInfo, bytes | None]:
    """Make collection ``name`` (default: the snapshot's) from a snapshot; returns it and the profile bytes
    the snapshot holds. A collection of that name holding records is refused unless ``replace``, which
    drops it first (with ``drop``: the facade also forgets its profile)."""
    opened = open_snapshot(source)
    header = opened.header
    assert header is not None
    target = name or header.collection
    try:
        exists = store.collection_info(target).count > 0
    except CollectionNotFoundError:
        exists = False
    if exists:
        if not replace:
            raise ValidationError(f"collection {target!r} already holds records; restore under another name (then "
                                  "switch an alias to it), or replace it")
        (drop or store.drop_collection)(target)
    ensure_spec(store, header.spec(target))
    loading = store.bulk_load(target) if isinstance(store, BulkLoading) else contextlib.nullcontext()
    with loading:
        for batch in opened.batches:
            store.upsert(target, batch)
    return store.collection_info(target), snapshot_profile(header)
