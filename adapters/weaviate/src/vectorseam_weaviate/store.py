"""The Weaviate store (v4 client, collections API): one vectorseam collection = one Weaviate collection.

* ids: Weaviate wants UUIDs, so an id is stored under ``uuid5(NAMESPACE, id)`` with the original in
  ``vs_id`` (deterministic: fetch/delete by id need no lookup).
* the spec (dimension, metric, descriptive metadata) is JSON in the collection's description; the
  vector index uses the spec's metric (cosine, dot, l2-squared) and vectors are self-provided.
* scores: Weaviate returns distances; cosine distance = 1 - sim, dot distance = -dot, l2-squared =
  squared L2, so score = 1 - d, -d and -sqrt(d).
* batch writes go through ``insert_many``; any failed object raises, naming the record ids and the
  server's message, instead of being reported in a return value nobody reads.
* ``tenant``: with this option every collection is created multi-tenant and all reads and writes go
  to that tenant (created on demand).
* transient failures (HTTP 429/5xx, gRPC UNAVAILABLE/RESOURCE_EXHAUSTED, connection errors) are
  retried with exponential backoff; what remains becomes a vectorseam error naming the URL.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt
import weaviate
from weaviate.classes.config import Configure, DataType, Property, Tokenization, VectorDistances
from weaviate.classes.data import DataObject
from weaviate.classes.query import Filter, MetadataQuery
from weaviate.classes.tenants import Tenant
from weaviate.collections import Collection
from weaviate.exceptions import (
    UnexpectedStatusCodeError,
    WeaviateBaseError,
    WeaviateConnectionError,
    WeaviateInsertManyAllFailedError,
    WeaviateQueryError,
)

from vectorseam.contract import (
    check_batch_size,
    check_compatible,
    check_delete_args,
    check_k,
    collection_not_found,
    filtered_pages,
)
from vectorseam.errors import (
    CollectionNotFoundError,
    StoreUnavailableError,
    UnsupportedOperationError,
    ValidationError,
    VectorseamError,
)
from vectorseam.filters import FilterLike, parse_filter
from vectorseam.retrying import RetryPolicy
from vectorseam.similarity import average_vector
from vectorseam.types import (
    Capabilities,
    CollectionInfo,
    CollectionSpec,
    Hit,
    Metric,
    Record,
    as_query_matrix,
    ids_list,
    validate_collection_name,
    validate_records,
)
from vectorseam_weaviate import schema
from vectorseam_weaviate.filters import SUPPORTED_OPERATORS, Compiled, translate

T = TypeVar("T")
ID_NAMESPACE = uuid.UUID("6f0c5d0e-6c8e-5d43-9a53-7665637473ea")
_DISTANCE = {"cosine": VectorDistances.COSINE, "dot": VectorDistances.DOT,
             "euclidean": VectorDistances.L2_SQUARED}
_DATA_TYPES = {"t": DataType.TEXT, "n": DataType.NUMBER, "b": DataType.BOOL,
               "ta": DataType.TEXT_ARRAY, "na": DataType.NUMBER_ARRAY, "ba": DataType.BOOL_ARRAY,
               "d": DataType.DATE, "da": DataType.DATE_ARRAY}
_TRANSIENT_GRPC = ("UNAVAILABLE", "RESOURCE_EXHAUSTED", "DEADLINE_EXCEEDED")
_RETURN_PROPS = [schema.ID_PROP, schema.TEXT_PROP, schema.META_PROP]
MAX_RESULTS = 10_000  # Weaviate's default QUERY_MAXIMUM_RESULTS
MAX_BACKOFF_S = 5.0  # cap of the wait between retries (full jitter below it)


def object_uuid(record_id: str) -> str:
    return str(uuid.uuid5(ID_NAMESPACE, record_id))


def to_score(distance: float, metric: Metric) -> float:
    if metric == "cosine":
        return 1.0 - distance
    if metric == "dot":
        return -distance
    return -float(np.sqrt(max(distance, 0.0)))


class WeaviateStore:
    def __init__(
        self,
        client: weaviate.WeaviateClient,
        url: str,
        *,
        prefix: str = "Vs_",
        tenant: str | None = None,
        batch_size: int = 500,
        retries: int = 3,
        backoff_s: float = 0.2,
    ) -> None:
        if not prefix[:1].isupper():
            raise ValidationError(f"weaviate store: prefix {prefix!r} must start with an uppercase letter")
        self._client = client
        self._url = url
        self._prefix = prefix
        self._tenant = tenant
        self._batch_size = batch_size
        self._retry = RetryPolicy.from_retries(retries, backoff_s, MAX_BACKOFF_S)
        self._specs: dict[str, CollectionSpec] = {}
        self._props: dict[str, dict[str, schema.TypeCode]] = {}

    @property
    def capabilities(self) -> Capabilities:
        return Capabilities(
            name="weaviate",
            persistent=True,
            approximate=True,
            filter_operators=SUPPORTED_OPERATORS,
            notes=("metadata values of a list mixing types round-trip but are not filterable",),
        )

    # -- plumbing ----------------------------------------------------------------------------------
    def _call(self, operation: str, fn: Callable[..., T]) -> T:
        try:
            return self._retry.call(
                fn, is_transient=lambda exc: isinstance(exc, WeaviateBaseError) and _is_transient(exc)
            )
        except WeaviateBaseError as exc:
            where = f"weaviate {operation} at {self._url}"
            if _is_transient(exc):
                raise StoreUnavailableError(f"{where} failed after {self._retry.attempts} attempts: {exc}") from exc
            raise VectorseamError(f"{where} failed: {exc}") from exc

    def _handle(self, collection: str) -> tuple[Collection[Any, Any], CollectionSpec]:
        spec = self._spec(collection)
        handle = self._client.collections.use(schema.class_name(self._prefix, collection))
        if self._tenant is not None:
            handle = handle.with_tenant(self._tenant)
        return handle, spec

    def _spec(self, collection: str) -> CollectionSpec:
        spec = self._specs.get(collection)
        if spec is None:
            self._load_all()
            spec = self._specs.get(collection)
        if spec is None:
            existing = ", ".join(sorted(self._specs)) or "none"
            raise CollectionNotFoundError(
                f"collection {collection!r} does not exist in the weaviate store at {self._url} "
                f"(existing: {existing}); create it with `vectorseam ingest FILE --collection {collection}`"
            )
        return spec

    def _load_all(self) -> list[CollectionSpec]:
        configs = self._call("list collections", lambda: self._client.collections.list_all(simple=False))
        specs = []
        self._specs.clear()
        for cls, config in configs.items():
            spec = self._remember(cls, config)
            if spec is not None:
                specs.append(spec)
        return sorted(specs, key=lambda s: s.name)

    def _remember(self, cls: str, config: Any) -> CollectionSpec | None:
        """Cache the spec and properties of a class vectorseam created; None for any other class."""
        name = schema.collection_name(self._prefix, cls)
        if name is None or not config.description:
            return None
        try:
            stored = json.loads(config.description)["vectorseam"]
        except (ValueError, KeyError, TypeError):
            return None
        spec = CollectionSpec(name, int(stored["dimension"]), stored["metric"], stored["metadata"])
        self._specs[name] = spec
        self._props[name] = {
            p.name: code for p in config.properties if (code := schema.code_of(p.name)) is not None
        }
        return spec

    # -- collections -------------------------------------------------------------------------------
    def ensure_collection(self, spec: CollectionSpec) -> CollectionInfo:
        try:
            existing = self._spec(spec.name)
        except CollectionNotFoundError:
            existing = None
        if existing is None:
            description = json.dumps({"vectorseam": {
                "dimension": spec.dimension, "metric": spec.metric, "metadata": dict(spec.metadata),
            }})
            text = Tokenization.FIELD
            self._call("create collection", lambda: self._client.collections.create(
                schema.class_name(self._prefix, spec.name),
                description=description,
                vector_config=Configure.Vectors.self_provided(
                    vector_index_config=Configure.VectorIndex.hnsw(distance_metric=_DISTANCE[spec.metric]),
                ),
                inverted_index_config=Configure.inverted_index(index_null_state=True),
                multi_tenancy_config=Configure.multi_tenancy(enabled=self._tenant is not None),
                properties=[
                    Property(name=schema.ID_PROP, data_type=DataType.TEXT, tokenization=text),
                    Property(name=schema.TEXT_PROP, data_type=DataType.TEXT, index_filterable=False),
                    Property(name=schema.META_PROP, data_type=DataType.TEXT, index_filterable=False,
                             index_searchable=False),
                ],
            ))
            self._specs[spec.name] = spec
            self._props[spec.name] = {}
            existing = spec
        else:
            check_compatible(existing, spec)
        self._ensure_tenant(spec.name)
        return CollectionInfo(existing.name, existing.dimension, existing.metric,
                              dict(existing.metadata), self.count(spec.name))

    def _ensure_tenant(self, collection: str) -> None:
        if self._tenant is None:
            return
        tenant = self._tenant
        base = self._client.collections.use(schema.class_name(self._prefix, collection))
        tenants = self._call("get tenants", lambda: base.tenants.get())
        if tenant not in tenants:
            self._call("create tenant", lambda: base.tenants.create([Tenant(name=tenant)]))

    def collections(self) -> list[CollectionInfo]:
        return [
            CollectionInfo(s.name, s.dimension, s.metric, dict(s.metadata), self.count(s.name))
            for s in self._load_all()
        ]

    def collection_info(self, collection: str) -> CollectionInfo:
        """This collection's class alone, read fresh from the schema, and its own count."""
        spec = None
        try:
            validate_collection_name(collection)
        except ValidationError:
            pass
        else:
            cls = schema.class_name(self._prefix, collection)
            if self._call("collection exists", lambda: self._client.collections.exists(cls)):
                config = self._call("get collection", lambda: self._client.collections.use(cls).config.get())
                spec = self._remember(cls, config)
        if spec is None:
            self._specs.pop(collection, None)
            raise collection_not_found("weaviate", collection, (s.name for s in self._load_all()))
        return CollectionInfo(spec.name, spec.dimension, spec.metric, dict(spec.metadata), self.count(collection))

    def drop_collection(self, collection: str) -> bool:
        try:
            self._spec(collection)
        except CollectionNotFoundError:
            return False
        cls = schema.class_name(self._prefix, collection)
        self._call("delete collection", lambda: self._client.collections.delete(cls))
        self._specs.pop(collection, None)
        self._props.pop(collection, None)
        return True

    # -- writes ------------------------------------------------------------------------------------
    def upsert(self, collection: str, records: Iterable[Record]) -> int:
        handle, spec = self._handle(collection)
        checked = validate_records(records, spec.dimension)
        objects = []
        needed: dict[str, schema.TypeCode] = {}
        for r in checked:
            if spec.metric == "cosine" and not np.any(r.vector):
                raise ValidationError(f"record {r.id!r}: a zero vector has no direction, so cosine "
                                      "similarity is undefined; use 'dot' or 'euclidean' or drop the record")
            try:
                typed = schema.filter_properties(r.metadata)
            except ValidationError as exc:
                raise ValidationError(f"record {r.id!r}: {exc}") from None
            for prop in typed:
                needed[prop] = schema.code_of(prop)  # type: ignore[assignment]
            props = {schema.ID_PROP: r.id, schema.TEXT_PROP: r.text,
                     schema.META_PROP: json.dumps(r.metadata, ensure_ascii=False), **typed}
            assert r.vector is not None
            objects.append(DataObject(properties=props, uuid=object_uuid(r.id),
                                      vector=r.vector.astype(np.float64).tolist()))
        self._add_properties(collection, needed)
        for start in range(0, len(objects), self._batch_size):
            chunk = objects[start : start + self._batch_size]
            try:
                result = self._call("insert_many", lambda chunk=chunk: handle.data.insert_many(chunk))
            except VectorseamError as exc:
                if not isinstance(exc.__cause__, WeaviateInsertManyAllFailedError):
                    raise
                # every object of the chunk was refused: the client raises instead of returning errors
                ids = ", ".join(repr(r.id) for r in checked[start : start + 5])
                raise VectorseamError(
                    f"weaviate insert_many at {self._url}: all {len(chunk)} objects were rejected (records "
                    f"{ids}{', ...' if len(chunk) > 5 else ''}): {exc.__cause__}; {start} earlier records "
                    "were written"
                ) from exc.__cause__
            if result.errors:
                failed = sorted(result.errors.items())
                details = "; ".join(
                    f"record {checked[start + i].id!r}: {err.message}" for i, err in failed[:5]
                )
                raise VectorseamError(
                    f"weaviate insert_many at {self._url}: {len(failed)} of {len(chunk)} objects were "
                    f"rejected ({details}); {start} earlier records were written"
                )
        return len(checked)

    def _add_properties(self, collection: str, needed: dict[str, schema.TypeCode]) -> None:
        known = self._props.setdefault(collection, {})
        base = self._client.collections.use(schema.class_name(self._prefix, collection))
        for prop, code in sorted(needed.items()):
            if prop in known:
                continue
            tokenization = Tokenization.FIELD if code in ("t", "ta") else None
            new = Property(name=prop, data_type=_DATA_TYPES[code], tokenization=tokenization)
            self._call("add property", lambda new=new: base.config.add_property(new))
            known[prop] = code

    def delete(self, collection: str, ids: Sequence[str] | None = None, filter: FilterLike = None) -> int:
        check_delete_args(ids, filter)
        handle, _ = self._handle(collection)
        if ids is not None:
            uuids = sorted({object_uuid(i) for i in ids_list(ids)})
            removed = 0
            for start in range(0, len(uuids), MAX_RESULTS):
                chunk = uuids[start : start + MAX_RESULTS]
                res = self._call("delete_many", lambda chunk=chunk: handle.data.delete_many(
                    where=Filter.by_id().contains_any(chunk)))
                removed += int(res.successful)
            return removed
        compiled = self._compile(collection, filter)
        if compiled is False:
            return 0
        where = Filter.by_id().not_equal(str(uuid.UUID(int=0))) if compiled is True else compiled
        removed = 0
        while True:  # delete_many removes at most QUERY_MAXIMUM_RESULTS objects per call
            res = self._call("delete_many", lambda: handle.data.delete_many(where=where))
            removed += int(res.successful)
            if int(res.successful) == 0 or int(res.matches) < MAX_RESULTS:
                return removed

    # -- reads -------------------------------------------------------------------------------------
    def _compile(self, collection: str, filter: FilterLike) -> Compiled:
        return translate(filter, self._props.get(collection, {}))

    def _hit(self, obj: Any, metric: Metric, include_vectors: bool) -> Hit:
        props = obj.properties
        return Hit(
            id=str(props[schema.ID_PROP]),
            score=to_score(float(obj.metadata.distance), metric),
            text=str(props.get(schema.TEXT_PROP) or ""),
            metadata=json.loads(props[schema.META_PROP]),
            vector=_vector(obj) if include_vectors else None,
        )

    def query(
        self,
        collection: str,
        vectors: npt.ArrayLike,
        k: int = 10,
        filter: FilterLike = None,
        include_vectors: bool = False,
    ) -> list[list[Hit]]:
        _check_k(k)
        handle, spec = self._handle(collection)
        queries = as_query_matrix(vectors, spec.dimension)
        compiled = self._compile(collection, filter)
        if compiled is False:
            return [[] for _ in range(queries.shape[0])]
        out = []
        flt = None if compiled is True else compiled
        for row in queries:
            values = row.astype(np.float64).tolist()

            def search(limit: int, values: list[float] = values) -> Sequence[Any]:
                return self._call("near_vector", lambda: handle.query.near_vector(
                    near_vector=values, limit=limit, filters=flt,
                    return_metadata=MetadataQuery(distance=True), include_vector=include_vectors,
                    return_properties=_RETURN_PROPS,
                )).objects

            objects = self._top(k, search)
            hits = [self._hit(o, spec.metric, include_vectors) for o in objects]
            hits.sort(key=lambda h: (-h.score, h.id))
            out.append(hits[:k])
        return out

    @staticmethod
    def _top(k: int, search: Callable[[int], Sequence[Any]]) -> Sequence[Any]:
        """Ask for ``k + 1`` neighbours and widen while the distance at the cut is tied.

        Weaviate orders equal distances arbitrarily, but the store contract breaks ties by id; so
        every object tied with the k-th must be seen before sorting by id and cutting."""
        limit = min(k + 1, MAX_RESULTS)
        while True:
            objects = search(limit)
            if len(objects) < limit or limit >= MAX_RESULTS or len(objects) <= k:
                return objects
            if objects[k - 1].metadata.distance != objects[-1].metadata.distance:
                return objects
            limit = min(limit * 2, MAX_RESULTS)

    def fetch(self, collection: str, ids: Sequence[str], include_vectors: bool = True) -> list[Record]:
        wanted = ids_list(ids)
        handle, _ = self._handle(collection)
        found: dict[str, Record] = {}
        uuids = list(dict.fromkeys(object_uuid(i) for i in wanted))
        for start in range(0, len(uuids), 1000):
            chunk = uuids[start : start + 1000]
            res = self._call("fetch_objects_by_ids", lambda chunk=chunk: handle.query.fetch_objects_by_ids(
                chunk, limit=len(chunk), include_vector=include_vectors, return_properties=_RETURN_PROPS,
            ))
            for obj in res.objects:
                rec = _record(obj, include_vectors)
                found[rec.id] = rec
        return [found[i] for i in wanted if i in found]

    def count(self, collection: str, filter: FilterLike = None) -> int:
        handle, _ = self._handle(collection)
        compiled = self._compile(collection, filter)
        if compiled is False:
            return 0
        res = self._call("aggregate", lambda: handle.aggregate.over_all(
            total_count=True, filters=None if compiled is True else compiled))
        return int(res.total_count or 0)

    def scan(
        self,
        collection: str,
        batch_size: int = 1000,
        filter: FilterLike = None,
        include_vectors: bool = True,
    ) -> Iterator[list[Record]]:
        """Cursor (uuid order) over the whole collection; a filter is applied client side because
        Weaviate's cursor API takes no filter."""
        check_batch_size(batch_size)
        handle, _ = self._handle(collection)
        f = parse_filter(filter)
        self._compile(collection, f)  # refuse malformed filters before the first page
        return self._scan(handle, batch_size, f, include_vectors)

    def _scan(self, handle: Any, batch_size: int, f: Any, include_vectors: bool) -> Iterator[list[Record]]:
        return filtered_pages(self._records(handle, batch_size, include_vectors), batch_size, f)

    def _records(self, handle: Any, batch_size: int, include_vectors: bool) -> Iterator[Record]:
        after: str | None = None
        while True:
            res = self._call("fetch_objects", lambda after=after: handle.query.fetch_objects(
                limit=min(batch_size, MAX_RESULTS), after=after, include_vector=include_vectors,
                return_properties=_RETURN_PROPS,
            ))
            if not res.objects:
                return
            for obj in res.objects:
                yield _record(obj, include_vectors)
            after = str(res.objects[-1].uuid)

    def recommend(
        self,
        collection: str,
        positive_ids: Sequence[str],
        negative_ids: Sequence[str] = (),
        k: int = 10,
        filter: FilterLike = None,
        strategy: str = "average_vector",
    ) -> list[Hit]:
        """One positive and no negative: native ``near_object``. Otherwise the average_vector rule
        (``mean(pos) + (mean(pos) - mean(neg))``) computed client side and sent as ``near_vector``."""
        if strategy != "average_vector":
            raise UnsupportedOperationError(
                f"the weaviate store supports the 'average_vector' recommend strategy only, got {strategy!r}"
            )
        _check_k(k)
        pos, neg = ids_list(positive_ids), ids_list(negative_ids)
        if not pos:
            raise ValidationError("recommend needs at least one positive id")
        handle, spec = self._handle(collection)
        compiled = self._compile(collection, filter)
        if compiled is False:
            return []
        flt = None if compiled is True else compiled
        exclude = set(pos) | set(neg)
        limit = min(k + len(exclude), MAX_RESULTS)
        found = {r.id: r for r in self.fetch(collection, pos + neg, include_vectors=True)}
        missing = [i for i in pos + neg if i not in found]
        if missing:
            raise ValidationError(f"recommend: ids not in collection {collection!r}: {missing[:10]}")
        common: dict[str, Any] = {"filters": flt, "return_properties": _RETURN_PROPS,
                                  "return_metadata": MetadataQuery(distance=True)}
        search: Callable[[int], Sequence[Any]]
        if len(pos) == 1 and not neg:
            target = object_uuid(pos[0])
            search = lambda limit: self._call("near_object", lambda: handle.query.near_object(  # noqa: E731
                near_object=target, limit=limit, **common)).objects
        else:
            def stack(ids: Sequence[str]) -> npt.NDArray[np.float64]:
                vectors = [np.asarray(found[i].vector, dtype=np.float64) for i in ids]
                return np.stack(vectors) if vectors else np.zeros((0, spec.dimension), dtype=np.float64)

            values = average_vector(stack(pos), stack(neg), spec.metric).tolist()
            search = lambda limit: self._call("near_vector", lambda: handle.query.near_vector(  # noqa: E731
                near_vector=values, limit=limit, **common)).objects
        hits = [self._hit(o, spec.metric, False) for o in self._top(limit, search)]
        hits = sorted((h for h in hits if h.id not in exclude), key=lambda h: (-h.score, h.id))
        return hits[:k]

    def close(self) -> None:
        self._client.close()


def _vector(obj: Any) -> npt.NDArray[np.float32] | None:
    vec = obj.vector
    if isinstance(vec, dict):
        vec = vec.get("default") or next(iter(vec.values()), None)
    return None if vec is None else np.asarray(vec, dtype=np.float32)


def _record(obj: Any, include_vectors: bool) -> Record:
    props = obj.properties
    return Record(
        id=str(props[schema.ID_PROP]),
        vector=_vector(obj) if include_vectors else None,
        text=str(props.get(schema.TEXT_PROP) or ""),
        metadata=json.loads(props[schema.META_PROP]),
    )


def _is_transient(exc: WeaviateBaseError) -> bool:
    if isinstance(exc, WeaviateConnectionError):
        return True
    if isinstance(exc, UnexpectedStatusCodeError):
        return exc.status_code == 429 or exc.status_code >= 500
    if isinstance(exc, WeaviateQueryError):
        return any(code in str(exc) for code in _TRANSIENT_GRPC)
    return any(code in str(exc) for code in _TRANSIENT_GRPC)


def _check_k(k: int) -> None:
    check_k(k)
