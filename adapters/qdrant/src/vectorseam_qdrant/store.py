"""The Qdrant-backed :class:`~vectorseam.store.VectorStore`.

One class serves the three deployments qdrant-client offers (in-process ``:memory:``, a local folder,
a server); they differ only where Qdrant does: local mode builds no payload indexes and searches
exactly, a server indexes filtered fields and searches with HNSW (approximate), and only a server has
transient failures worth retrying. See :mod:`vectorseam_qdrant.layout` for how records and collection
specs are stored, :mod:`vectorseam_qdrant.filters` for the filter translation and
:mod:`vectorseam_qdrant.keywords` for BM25 as sparse vectors (keyword and hybrid search in Qdrant).
"""

from __future__ import annotations

import contextlib
import random
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt
from qdrant_client import QdrantClient, models

from vectorseam.contract import (
    check_batch_size,
    check_compatible,
    check_delete_args,
    check_k,
    collection_not_found,
)
from vectorseam.errors import (
    CollectionNotFoundError,
    StoreUnavailableError,
    UnsupportedOperationError,
    ValidationError,
    VectorseamError,
)
from vectorseam.filters import Filter, FilterLike, parse_filter, require_operators
from vectorseam.keywords import check_depth, check_rrf, fuse_hits, tokenize_all
from vectorseam.options import reveal
from vectorseam.types import (
    Capabilities,
    CollectionInfo,
    CollectionSpec,
    Hit,
    Metadata,
    Metric,
    Record,
    as_query_matrix,
    ids_list,
    validate_collection_name,
    validate_id,
    validate_records,
)
from vectorseam_qdrant import keywords, layout
from vectorseam_qdrant.blobs import QdrantBlobs
from vectorseam_qdrant.filters import index_schemas, to_qdrant
from vectorseam_qdrant.options import QdrantOptions, parse_options
from vectorseam_qdrant.retry import call_server, describe, is_not_found, translate
from vectorseam_qdrant.scrolling import QdrantScroll

T = TypeVar("T")


_DISTANCE: dict[Metric, models.Distance] = {
    "cosine": models.Distance.COSINE,
    "dot": models.Distance.DOT,
    "euclidean": models.Distance.EUCLID,
}
_STRATEGY: dict[str, models.RecommendStrategy] = {
    "average_vector": models.RecommendStrategy.AVERAGE_VECTOR,
    "best_score": models.RecommendStrategy.BEST_SCORE,
}


@dataclass
class _Collection:
    """What the store knows of one of its collections; ``indexes`` maps Qdrant paths to index types."""

    name: str
    dimension: int
    metric: Metric
    metadata: dict[str, str]
    indexes: dict[str, models.PayloadSchemaType] = field(default_factory=dict)
    sparse: bool = False  # holds BM25 sparse vectors (created after they were added; see .keywords)
    avgdl: float | None = None  # the mean length the BM25 document weights use (set by the first write)

    def info(self, count: int) -> CollectionInfo:
        return CollectionInfo(self.name, self.dimension, self.metric, dict(self.metadata), count)


class QdrantStore(QdrantBlobs, QdrantScroll):
    """A vectorseam store on Qdrant: local (``:memory:`` or a folder) or a server."""

    def __init__(self, options: QdrantOptions | None = None) -> None:
        self._options = options or QdrantOptions(location=":memory:")
        self._lock = threading.RLock()
        self._rng = random.Random()
        self._collections: dict[str, _Collection] = {}
        self._closed = False
        self._client = self._connect()

    def __repr__(self) -> str:
        return f"QdrantStore({self._options.backend})"

    # -- plumbing -----------------------------------------------------------------------------------
    @property
    def _server(self) -> bool:
        return self._options.mode == "server"

    def _connect(self) -> QdrantClient:
        opts = self._options
        if opts.mode == "server":
            # check_compatibility=False: no request at construction; the first call reports an
            # unreachable server through the retry path with a clear message instead.
            return QdrantClient(
                url=reveal(opts.url),
                api_key=reveal(opts.api_key),
                prefer_grpc=opts.prefer_grpc,
                grpc_port=opts.grpc_port,
                timeout=opts.client_timeout,
                check_compatibility=False,
            )
        if opts.mode == "path":
            try:
                # Calls are serialised by self._lock, so the client may be used from any thread.
                return QdrantClient(path=opts.path, force_disable_check_same_thread=True)
            except RuntimeError as exc:  # the folder is locked by another client
                raise StoreUnavailableError(
                    f"cannot open the {opts.backend}: {exc} Local mode allows one process per folder; "
                    "close the other one, or run a Qdrant server and set url=..."
                ) from None
            except OSError as exc:
                raise StoreUnavailableError(f"cannot open the {opts.backend}: {exc}") from None
        return QdrantClient(location=":memory:")

    def _call(self, what: str, fn: Callable[[], T], collection: str | None = None) -> T:
        """Run one client call: serialised in local mode, retried on a server, errors translated."""
        if self._closed:
            raise VectorseamError(f"the {self._options.backend} was closed; open the store again")
        try:
            if not self._server:
                with self._lock:
                    return fn()
            return call_server(
                fn, policy=self._options.retry, backend=self._options.backend, what=what, rng=self._rng
            )
        except VectorseamError:
            raise
        except Exception as exc:
            if collection is not None and is_not_found(exc):
                with self._lock:
                    self._collections.pop(collection, None)
                raise CollectionNotFoundError(
                    f"collection {collection!r} does not exist in the {self._options.backend} "
                    f"({describe(exc)})"
                ) from None
            raise translate(exc, self._options.backend, what) from None

    @property
    def capabilities(self) -> Capabilities:
        notes = [
            "string ids are stored as uuid5 point ids; the original id is kept in the payload",
            "recommend(collection, positive_ids, negative_ids, k, filter, strategy) uses Qdrant's "
            "native recommendation (average_vector or best_score)",
            "keyword_search/hybrid_search: BM25 as sparse vectors with Qdrant's IDF modifier, document "
            "weights fixed at write time with the collection's first avgdl; hybrid is one query_points call",
        ]
        if self._server:
            notes.append("HNSW search is approximate; payload indexes are created for filtered fields")
        else:
            notes.append("local mode searches exactly and needs no payload indexes")
        local = None if self._server else (
            "runs in qdrant-client's local mode (no 'url'), inside one process; other processes need a Qdrant "
            "server (store.options.url)")
        return Capabilities(
            name="qdrant",
            persistent=self._options.mode != "memory",
            approximate=self._server,
            notes=tuple(notes),
            one_process=local,
            one_machine=local,
            native_keywords=True,
        )

    # -- collections --------------------------------------------------------------------------------
    def _read_collection(self, name: str) -> _Collection | None:
        """The collection as stored in Qdrant (uncached); None if it does not exist."""
        if not self._call(f"checking collection {name!r}", lambda: self._client.collection_exists(name)):
            return None
        try:
            info = self._call(f"reading collection {name!r}", lambda: self._client.get_collection(name), name)
        except CollectionNotFoundError:  # dropped in between
            return None
        spec = layout.read_spec(info.config.metadata)
        if spec is None:
            raise ValidationError(
                f"collection {name!r} exists in the {self._options.backend} but was not created by "
                "vectorseam (its collection metadata has no 'vectorseam' spec); use another collection name"
            )
        return _Collection(
            name=name,
            dimension=int(spec["dimension"]),
            metric=spec["metric"],
            metadata={str(k): str(v) for k, v in dict(spec.get("metadata") or {}).items()},
            indexes={
                key: schema.data_type
                for key, schema in (info.payload_schema or {}).items()
                if isinstance(schema.data_type, models.PayloadSchemaType)
            },
            sparse=keywords.has_sparse(info.config.params.sparse_vectors),
            avgdl=_float_or_none(dict(spec.get("keywords") or {}).get("avgdl")),
        )

    def _read_collection_or_none(self, name: str) -> _Collection | None:
        """Like _read_collection, but a collection without a vectorseam spec reads as None."""
        try:
            return self._read_collection(name)
        except ValidationError:
            return None

    def _get(self, name: str) -> _Collection:
        with self._lock:
            cached = self._collections.get(name)
        if cached is not None:
            return cached
        try:
            validate_collection_name(name)  # nothing vectorseam created can have another name
            valid = True
        except ValidationError:
            valid = False
        coll = self._read_collection(name) if valid else None
        if coll is None:
            existing = ", ".join(sorted(c.name for c in self.collections())) or "none"
            raise CollectionNotFoundError(
                f"collection {name!r} does not exist in the {self._options.backend} (existing: {existing})"
            )
        with self._lock:
            return self._collections.setdefault(name, coll)

    def _count(self, name: str, qfilter: models.Filter | None = None) -> int:
        result = self._call(
            f"counting points in {name!r}",
            lambda: self._client.count(name, count_filter=qfilter, exact=True),
            name,
        )
        return int(result.count)

    def ensure_collection(self, spec: CollectionSpec) -> CollectionInfo:
        coll = self._read_collection(spec.name)
        if coll is None:
            try:
                self._call(
                    f"creating collection {spec.name!r}",
                    lambda: self._client.create_collection(
                        spec.name,
                        vectors_config=models.VectorParams(
                            size=spec.dimension, distance=_DISTANCE[spec.metric]
                        ),
                        sparse_vectors_config=keywords.sparse_config(),
                        metadata=layout.spec_metadata(spec.dimension, spec.metric, spec.metadata),
                    ),
                )
            except VectorseamError:
                # Another process may have created it meanwhile; that one counts if compatible.
                if self._read_collection(spec.name) is None:
                    raise
            coll = self._read_collection_or_none(spec.name)
            if coll is None:
                with contextlib.suppress(VectorseamError):  # don't leave a collection nobody can use
                    self._call("removing it", lambda: self._client.delete_collection(spec.name))
                raise UnsupportedOperationError(
                    f"the {self._options.backend} did not keep the collection metadata of {spec.name!r}; "
                    "vectorseam needs Qdrant >= 1.16 (collection metadata support)"
                )
        check_compatible(coll.info(0), spec)
        with self._lock:
            self._collections[spec.name] = coll
        return coll.info(self._count(spec.name))

    def collections(self) -> list[CollectionInfo]:
        response = self._call("listing collections", self._client.get_collections)
        out: list[CollectionInfo] = []
        for name in sorted(c.name for c in response.collections):
            try:
                coll = self._read_collection(name)
                if coll is None:
                    continue
                out.append(coll.info(self._count(name)))
            except (ValidationError, CollectionNotFoundError):
                continue  # not a vectorseam collection, or dropped while listing
        return out

    def collection_info(self, collection: str) -> CollectionInfo:
        """Read from Qdrant (not the cache) so a collection dropped elsewhere is reported missing."""
        try:
            validate_collection_name(collection)  # nothing vectorseam created can have another name
            coll = self._read_collection_or_none(collection)
        except ValidationError:
            coll = None
        if coll is None:
            raise collection_not_found("qdrant", collection, (c.name for c in self.collections()))
        return coll.info(self._count(collection))

    def drop_collection(self, collection: str) -> bool:
        coll = self._read_collection(collection)  # raises for a collection vectorseam did not create
        with self._lock:
            self._collections.pop(collection, None)
        if coll is None:
            return False
        deleted = self._call(
            f"deleting collection {collection!r}", lambda: self._client.delete_collection(collection)
        )
        self._drop_blobs(collection)  # its tuned profile goes with it (see .blobs)
        return bool(deleted)

    # -- writes -------------------------------------------------------------------------------------
    def upsert(self, collection: str, records: Iterable[Record]) -> int:
        coll = self._get(collection)
        checked = validate_records(records, coll.dimension)
        token_lists = tokenize_all([r.text for r in checked]) if coll.sparse else []
        if coll.sparse and coll.avgdl is None:
            self._set_avgdl(coll, keywords.first_avgdl(token_lists))
        points: list[models.PointStruct] = []
        for i, record in enumerate(checked):
            assert record.vector is not None
            where = f"record {record.id!r}"
            layout.check_payload_metadata(record.metadata, where)
            vector = record.vector
            as_written: npt.NDArray[np.float32] | None = None
            if coll.metric == "cosine":
                # Sent already unit-length: Qdrant normalises cosine vectors itself, but local mode
                # persists the raw vector and reloads it un-normalised, so the stored vector would
                # depend on whether the folder was reopened. The payload keeps the vector as written
                # (layout.VECTOR_KEY). Norm in float64: float32 squares under/overflow at 1e-23/1e20.
                norm = float(np.linalg.norm(vector.astype(np.float64)))
                if norm == 0.0:
                    raise ValidationError(
                        f"{where}: a zero vector has no direction, so cosine similarity is undefined; "
                        "use the 'dot' or 'euclidean' metric or drop the record"
                    )
                as_written = vector
                vector = (vector.astype(np.float64) / norm).astype(np.float32)
            point_vector: models.VectorStruct = vector.tolist()
            if coll.sparse:
                point_vector = {keywords.DENSE: vector.tolist(),
                                keywords.SPARSE: keywords.document_vector(token_lists[i], coll.avgdl or 1.0)}
            points.append(
                models.PointStruct(
                    id=layout.point_id(record.id),
                    vector=point_vector,
                    payload=layout.payload(record.id, record.text, record.metadata, as_written),
                )
            )
        size = self._options.batch_size
        for start in range(0, len(points), size):
            batch = points[start : start + size]
            self._call(
                f"upserting {len(batch)} points into {collection!r}",
                lambda batch=batch: self._client.upsert(collection, points=batch, wait=True),  # type: ignore[misc]
                collection,
            )
        return len(checked)

    def delete(self, collection: str, ids: Sequence[str] | None = None, filter: FilterLike = None) -> int:
        check_delete_args(ids, filter)
        coll = self._get(collection)
        if ids is not None:
            wanted = sorted({layout.point_id(i) for i in ids_list(ids)})
            step = self._options.batch_size * 4
            existing = [
                str(p.id)
                for start in range(0, len(wanted), step)
                for p in self._retrieve(coll.name, wanted[start : start + step], payload=False, vectors=False)
            ]
        else:
            f = self._filter(filter)
            pages = self._scroll(coll.name, f, self._options.batch_size * 4, payload=False, vectors=False)
            existing = [str(p.id) for page in pages for p in page]
        size = self._options.batch_size * 4
        for start in range(0, len(existing), size):
            chunk: list[models.ExtendedPointId] = list(existing[start : start + size])
            self._call(
                f"deleting {len(chunk)} points from {collection!r}",
                lambda chunk=chunk: self._client.delete(  # type: ignore[misc]
                    collection, points_selector=models.PointIdsList(points=chunk), wait=True
                ),
                collection,
            )
        return len(existing)

    # -- reads --------------------------------------------------------------------------------------
    def _filter(self, spec: FilterLike) -> Filter | None:
        f = parse_filter(spec)
        require_operators(f, self.capabilities.filter_operators, "qdrant")
        return f

    def _qdrant_filter(self, coll: _Collection, f: Filter | None) -> models.Filter | None:
        qfilter = to_qdrant(f)
        if self._server and f is not None:
            self._ensure_indexes(coll, f)
        return qfilter

    def _ensure_indexes(self, coll: _Collection, f: Filter) -> None:
        """Create a payload index for each filtered field that has none (servers only)."""
        for path, schema in index_schemas(f).items():
            with self._lock:
                if path in coll.indexes:
                    continue
            self._call(
                f"creating a {schema.value} payload index on {path} in {coll.name!r}",
                lambda path=path, schema=schema: self._client.create_payload_index(  # type: ignore[misc]
                    coll.name, field_name=path, field_schema=schema, wait=True
                ),
                coll.name,
            )
            with self._lock:
                coll.indexes[path] = schema

    def indexed_fields(self, collection: str) -> dict[str, str]:
        """Payload indexes this store knows of in ``collection`` (Qdrant path -> index type)."""
        coll = self._get(collection)
        with self._lock:
            return {path: schema.value for path, schema in coll.indexes.items()}

    @staticmethod
    def _payload(include_vectors: bool) -> models.PayloadSelectorExclude:
        """The payload a read needs: never the time mirror, the kept vector only when vectors are asked."""
        return models.PayloadSelectorExclude(
            exclude=[layout.TIME_KEY] if include_vectors else [layout.TIME_KEY, layout.VECTOR_KEY]
        )

    def _retrieve(
        self, name: str, point_ids: Sequence[str], *, payload: bool | models.PayloadSelector, vectors: bool
    ) -> list[models.Record]:
        if not point_ids:
            return []
        ids: list[models.ExtendedPointId] = list(point_ids)
        return self._call(
            f"retrieving {len(ids)} points from {name!r}",
            lambda: self._client.retrieve(name, ids=ids, with_payload=payload, with_vectors=vectors),
            name,
        )

    def _scroll(
        self, name: str, f: Filter | None, page_size: int, *, payload: bool | models.PayloadSelector, vectors: bool
    ) -> Iterator[list[models.Record]]:
        coll = self._get(name)
        qfilter = self._qdrant_filter(coll, f)
        offset: models.ExtendedPointId | None = None
        while True:
            page, offset = self._call(
                f"scrolling {name!r}",
                lambda offset=offset: self._client.scroll(  # type: ignore[misc]
                    name,
                    scroll_filter=qfilter,
                    limit=page_size,
                    offset=offset,
                    with_payload=payload,
                    with_vectors=vectors,
                ),
                name,
            )
            if page:
                yield page
            if offset is None:
                return

    def _vector(self, coll: _Collection, point: Any) -> npt.NDArray[np.float32] | None:
        raw = getattr(point, "vector", None)
        if isinstance(raw, dict):  # a collection with the BM25 sparse vector: the dense one is unnamed
            raw = raw.get(keywords.DENSE)
        if raw is None:
            return None
        vec = np.asarray(raw, dtype=np.float32)
        if coll.metric == "cosine":
            as_written = layout.decode_vector((point.payload or {}).get(layout.VECTOR_KEY))
            if as_written is not None:
                return as_written
            norm = (point.payload or {}).get(layout.NORM_KEY)  # a point of the earlier layout
            if isinstance(norm, int | float):
                vec = (vec * np.float32(norm)).astype(np.float32)
        return vec

    @staticmethod
    def _parts(point: Any) -> tuple[str, str, Metadata]:
        body = point.payload or {}
        return str(body.get(layout.ID_KEY, "")), str(body.get(layout.TEXT_KEY, "")), dict(
            body.get(layout.META_KEY) or {}
        )

    def _record(self, coll: _Collection, point: Any) -> Record:
        rid, text, meta = self._parts(point)
        return Record(id=rid, vector=self._vector(coll, point), text=text, metadata=meta)

    def fetch(self, collection: str, ids: Sequence[str], include_vectors: bool = True) -> list[Record]:
        wanted = ids_list(ids)
        coll = self._get(collection)
        unique = sorted({layout.point_id(i) for i in wanted})
        found: dict[str, Record] = {}
        step = self._options.batch_size * 4
        for start in range(0, len(unique), step):
            chunk = unique[start : start + step]
            for point in self._retrieve(coll.name, chunk, payload=self._payload(include_vectors),
                                        vectors=include_vectors):
                record = self._record(coll, point)
                found[record.id] = record
        return [found[i] for i in wanted if i in found]

    def count(self, collection: str, filter: FilterLike = None) -> int:
        f = self._filter(filter)
        coll = self._get(collection)
        return self._count(coll.name, self._qdrant_filter(coll, f))

    def scan(
        self,
        collection: str,
        batch_size: int = 1000,
        filter: FilterLike = None,
        include_vectors: bool = True,
    ) -> Iterator[list[Record]]:
        """Pages in Qdrant's point-id order (stable: ids never change), fetched lazily with scroll."""
        check_batch_size(batch_size)
        f = self._filter(filter)
        coll = self._get(collection)
        return self._scan(coll, f, batch_size, include_vectors)

    def _scan(self, coll: _Collection, f: Filter | None, batch_size: int, include_vectors: bool) -> Iterator[
        list[Record]
    ]:
        for page in self._scroll(coll.name, f, batch_size, payload=self._payload(include_vectors),
                                 vectors=include_vectors):
            yield [self._record(coll, p) for p in page]

    # -- search -------------------------------------------------------------------------------------
    def _similarity(self, coll: _Collection, score: float) -> float:
        # Qdrant reports the Euclidean *distance*; vectorseam's convention is higher-is-more-similar.
        return 0.0 - float(score) if coll.metric == "euclidean" else float(score)

    def _hits(
        self, coll: _Collection, points: Sequence[models.ScoredPoint], k: int, convert: bool
    ) -> list[Hit]:
        hits: list[Hit] = []
        for p in points:
            rid, text, meta = self._parts(p)
            score = self._similarity(coll, p.score) if convert else float(p.score)
            hits.append(Hit(id=rid, score=score, text=text, metadata=meta, vector=self._vector(coll, p)))
        hits.sort(key=lambda h: (-h.score, h.id))
        return hits[:k]

    @staticmethod
    def _complete(points: Sequence[models.ScoredPoint], limit: int, k: int) -> bool:
        """Whether ``points`` (best first, asked with ``limit``) surely hold the top k with all their ties.

        True when Qdrant returned fewer than asked (nothing else matches) or when the last returned
        point scores strictly worse than the k-th, so no unseen point can tie with the k-th.
        """
        if len(points) < limit or len(points) <= k:
            return True
        return points[-1].score != points[k - 1].score

    def _search_one(
        self, coll: _Collection, query: Any, k: int, qfilter: models.Filter | None, include_vectors: bool,
        first: Sequence[models.ScoredPoint] | None, limit: int, using: str | None = None,
    ) -> list[models.ScoredPoint]:
        points = first
        while points is None or not self._complete(points, limit, k):
            if points is not None:
                limit *= 2
            response = self._call(
                f"querying {coll.name!r}",
                lambda limit=limit: self._client.query_points(  # type: ignore[misc]
                    coll.name,
                    query=query,
                    using=using,
                    query_filter=qfilter,
                    limit=limit,
                    with_payload=self._payload(include_vectors),
                    with_vectors=include_vectors,
                ),
                coll.name,
            )
            points = response.points
        return list(points)

    def query(
        self,
        collection: str,
        vectors: npt.ArrayLike,
        k: int = 10,
        filter: FilterLike = None,
        include_vectors: bool = False,
    ) -> list[list[Hit]]:
        check_k(k)
        f = self._filter(filter)
        coll = self._get(collection)
        queries = as_query_matrix(vectors, coll.dimension)
        if queries.shape[0] == 0:
            return []
        qfilter = self._qdrant_filter(coll, f)
        limit = k + 1 + k // 8  # a little headroom so ties at the k-th place rarely need a second call
        requests = [
            models.QueryRequest(
                query=q.tolist(), filter=qfilter, limit=limit, with_payload=self._payload(include_vectors),
                with_vector=include_vectors,
            )
            for q in queries
        ]
        responses: list[models.QueryResponse] = []
        for start in range(0, len(requests), 64):
            chunk = requests[start : start + 64]
            responses.extend(
                self._call(
                    f"querying {collection!r}",
                    lambda chunk=chunk: self._client.query_batch_points(coll.name, requests=chunk),  # type: ignore[misc]
                    collection,
                )
            )
        out: list[list[Hit]] = []
        for q, response in zip(queries, responses, strict=True):
            points = self._search_one(coll, q.tolist(), k, qfilter, include_vectors, response.points, limit)
            out.append(self._hits(coll, points, k, convert=True))
        return out

    def recommend(
        self,
        collection: str,
        positive_ids: Sequence[str],
        negative_ids: Sequence[str] = (),
        k: int = 10,
        filter: FilterLike = None,
        strategy: str = "average_vector",
        include_vectors: bool = False,
    ) -> list[Hit]:
        """Qdrant's native recommendation from stored examples; the examples themselves are excluded.

        ``average_vector`` searches with ``avg(pos) + (avg(pos) - avg(neg))`` built from the stored
        vectors (unit-normalised ones in a cosine collection), so scores follow the collection metric
        and vectorseam's convention, as in :meth:`query`. ``best_score`` ranks each candidate by its
        best similarity to any positive unless a negative is closer; its scores are Qdrant's, in
        (-1, 1), higher is better, and are not comparable with query scores. Unknown ids raise.
        """
        check_k(k)
        if strategy not in _STRATEGY:
            raise ValidationError(
                f"recommend strategy {strategy!r} is not supported; use one of {', '.join(_STRATEGY)}"
            )
        pos = ids_list(positive_ids)
        neg = ids_list(negative_ids)
        if strategy == "average_vector" and not pos:
            raise ValidationError("recommend with strategy 'average_vector' needs at least one positive id")
        if not pos and not neg:
            raise ValidationError("recommend needs at least one positive or negative id")
        f = self._filter(filter)
        coll = self._get(collection)
        if strategy == "best_score" and coll.metric == "euclidean":
            # Qdrant's best_score compares squared L2 distances; the ranking agrees with vectorseam's
            # definition but the scores do not, so the generic path (same ranking, defined scores) answers.
            raise UnsupportedOperationError(
                "the qdrant store's best_score scores squared distances in euclidean collections; "
                "vectorseam.retrieval.recommend computes it from the stored vectors instead"
            )
        examples = sorted({layout.point_id(validate_id(i, "recommend")) for i in pos + neg})
        present = {str(p.id) for p in self._retrieve(coll.name, examples, payload=False, vectors=False)}
        missing = [i for i in dict.fromkeys(pos + neg) if layout.point_id(i) not in present]
        if missing:
            raise ValidationError(
                f"recommend: id(s) {', '.join(repr(m) for m in missing[:10])} do not exist in collection "
                f"{collection!r}; recommendations start from stored records"
            )
        query = models.RecommendQuery(
            recommend=models.RecommendInput(
                positive=[layout.point_id(i) for i in pos],
                negative=[layout.point_id(i) for i in neg],
                strategy=_STRATEGY[strategy],
            )
        )
        qfilter = self._qdrant_filter(coll, f)
        points = self._search_one(coll, query, k, qfilter, include_vectors, None, k + 1 + k // 8)
        return self._hits(coll, points, k, convert=strategy == "average_vector")

    # -- keyword and hybrid search (see .keywords) -------------------------------------------------------
    def _keyword_collection(self, collection: str) -> _Collection:
        coll = self._get(collection)
        if not coll.sparse:
            raise UnsupportedOperationError(
                f"collection {collection!r} in the {self._options.backend} was created before vectorseam kept BM25 "
                "in Qdrant (it has no sparse vector, and Qdrant cannot add one); its keyword search uses the BM25 "
                "sidecar until it is migrated to a new collection"
            )
        return coll

    def _set_avgdl(self, coll: _Collection, avgdl: float | None) -> None:
        """Fix the collection's avgdl for BM25 weights at its first write with tokens (kept in its metadata);
        one another process set meanwhile wins, so all points of the collection share one."""
        if avgdl is None:
            return
        info = self._call(f"reading collection {coll.name!r}", lambda: self._client.get_collection(coll.name),
                          coll.name)
        spec = layout.read_spec(info.config.metadata) or {}
        stored = _float_or_none(dict(spec.get("keywords") or {}).get("avgdl"))
        if stored is None:
            spec["keywords"] = {"avgdl": avgdl}
            self._call(f"updating collection {coll.name!r}",
                       lambda: self._client.update_collection(coll.name, metadata={layout.SPEC_KEY: spec}), coll.name)
            stored = avgdl
        coll.avgdl = stored

    def keyword_search(self, collection: str, query: str, k: int = 10, filter: FilterLike = None) -> list[Hit]:
        """The BM25 top ``k`` under ``filter``: one sparse query, Qdrant computing the idf."""
        check_k(k)
        f = self._filter(filter)
        coll = self._keyword_collection(collection)
        sparse = keywords.query_vector(query)
        if sparse is None:
            return []
        qfilter = self._qdrant_filter(coll, f)
        points = self._search_one(coll, sparse, k, qfilter, False, None, k + 1 + k // 8, using=keywords.SPARSE)
        return self._hits(coll, points, k, convert=False)

    def hybrid_search(
        self,
        collection: str,
        query: str,
        vector: npt.ArrayLike,
        k: int = 10,
        filter: FilterLike = None,
        rrf_k: float = 60,
        weights: Sequence[float] = (1.0, 1.0),
        depth: int = 100,
    ) -> list[Hit]:
        """RRF of the dense and the BM25 top ``depth``, both filtered, from one batch call (see .keywords)."""
        check_k(k)
        d = check_depth(depth, k)
        w = check_rrf(rrf_k, weights, 2)
        f = self._filter(filter)
        coll = self._keyword_collection(collection)
        dense = as_query_matrix(vector, coll.dimension)
        if dense.shape[0] != 1:
            raise ValidationError(f"hybrid_search takes one query vector, got {dense.shape[0]}")
        sparse = keywords.query_vector(query)
        qfilter = self._qdrant_filter(coll, f)
        limit = d + 1 + d // 8  # headroom for ties at the depth-th place, as in query()
        halves: list[tuple[Any, str | None]] = [(dense[0].tolist(), None)]
        if sparse is not None:
            halves.append((sparse, keywords.SPARSE))
        requests = [models.QueryRequest(query=q, using=using, filter=qfilter, limit=limit,
                                        with_payload=self._payload(False)) for q, using in halves]
        responses = self._call(f"querying {collection!r}",
                               lambda: self._client.query_batch_points(coll.name, requests=requests), collection)
        lists = [
            self._hits(coll, self._search_one(coll, q, d, qfilter, False, r.points, limit, using=using), d,
                       convert=using is None)
            for (q, using), r in zip(halves, responses, strict=True)
        ]
        return fuse_hits(lists[0], lists[1] if len(lists) > 1 else [], k, rrf_k, w)

    def reweight_keywords(self, collection: str, batch_size: int = 500) -> float:
        """Rewrite every point's BM25 weights with the collection's current mean length (returned), e.g.
        after its texts changed character; searches stay correct meanwhile, only their weights move."""
        check_batch_size(batch_size)
        coll = self._keyword_collection(collection)
        texts_only = models.PayloadSelectorInclude(include=[layout.TEXT_KEY])
        total, count = 0, 0
        for page in self._scroll(coll.name, None, batch_size, payload=texts_only, vectors=False):
            for tokens in tokenize_all([str((p.payload or {}).get(layout.TEXT_KEY, "")) for p in page]):
                total += len(tokens)
                count += 1
        avgdl = total / count if total else 1.0
        info = self._call(f"reading collection {coll.name!r}", lambda: self._client.get_collection(coll.name),
                          coll.name)
        spec = layout.read_spec(info.config.metadata) or {}
        spec["keywords"] = {"avgdl": avgdl}
        self._call(f"updating collection {coll.name!r}",
                   lambda: self._client.update_collection(coll.name, metadata={layout.SPEC_KEY: spec}), coll.name)
        coll.avgdl = avgdl
        for page in self._scroll(coll.name, None, batch_size, payload=texts_only, vectors=False):
            texts = [str((p.payload or {}).get(layout.TEXT_KEY, "")) for p in page]
            updates = [models.PointVectors(id=p.id, vector={keywords.SPARSE: keywords.document_vector(t, avgdl)})
                       for p, t in zip(page, tokenize_all(texts), strict=True)]
            self._call(f"reweighting {len(updates)} points of {collection!r}",
                       lambda updates=updates: self._client.update_vectors(  # type: ignore[misc]
                           coll.name, points=updates, wait=True), collection)
        return avgdl

    # -- lifecycle ----------------------------------------------------------------------------------
    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(Exception):  # closing must not fail the caller; it is letting go anyway
            self._client.close()

    def __enter__(self) -> QdrantStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _float_or_none(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def create_store(**options: Any) -> QdrantStore:
    """Entry-point factory (``vectorseam.stores`` group, name ``qdrant``)."""
    return QdrantStore(parse_options(options))
