"""The Pinecone store: one vectorseam collection = one namespace of one Pinecone index.

Why namespaces: they are Pinecone's unit of multi-tenancy -- free to create, isolated for queries,
deletable as a whole -- while an index has a fixed dimension and metric and costs money on its own.
So every collection of one store shares the index's dimension and metric; ``ensure_collection``
refuses a spec that differs instead of writing vectors Pinecone would reject or score wrongly.

Collection specs (dimension, metric, descriptive metadata such as the embedder fingerprint) live as
one record per collection in the reserved namespace ``<prefix>_vectorseam_catalog`` (collection
names start with a letter, so it can never clash with one). A record rather than index tags because
tags are control-plane only (another API key scope and host, absent from Pinecone Local) and limited
to short strings; the catalog travels with the data plane and is read with the same key.

Emulated, and why:

* ``count`` with a filter and ``delete``/``scan`` with a filter page through ``list`` + ``fetch`` and
  apply :func:`vectorseam.filters.matches` client side: serverless indexes reject filtered
  ``describe_index_stats``, and Pinecone's filtered delete does not say how many records it removed.
* ``query`` with several vectors sends one request per vector (the endpoint takes one).
* ``recommend`` with exactly one positive and no negative is native query-by-id; with several ids
  the average vector is computed client side from fetched vectors (query-by-id takes a single id).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
from pinecone import Index

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
    ConfigError,
    DimensionMismatchError,
    UnsupportedOperationError,
    ValidationError,
)
from vectorseam.filters import Filter, FilterLike, parse_filter
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
    validate_records,
)
from vectorseam_pinecone import encoding
from vectorseam_pinecone.errors import call
from vectorseam_pinecone.filters import SUPPORTED_OPERATORS, translate

_TO_PINECONE_METRIC: dict[str, str] = {"cosine": "cosine", "dot": "dotproduct", "euclidean": "euclidean"}
_FROM_PINECONE_METRIC: dict[str, Metric] = {"cosine": "cosine", "dotproduct": "dot", "euclidean": "euclidean"}
CATALOG_SUFFIX = "_vectorseam_catalog"
MAX_TOP_K = 10_000
_FETCH_PAGE = 100  # ids travel in the query string of GET /vectors/fetch
_LIST_PAGE = 100


class PineconeStore:
    """A :class:`~vectorseam.store.VectorStore` over the data plane of one Pinecone index."""

    def __init__(
        self,
        index: Index,
        *,
        namespace_prefix: str = "",
        metric: Metric | None = None,
        max_request_bytes: int = encoding.MAX_REQUEST_BYTES,
        max_vectors_per_upsert: int = encoding.MAX_VECTORS_PER_UPSERT,
    ) -> None:
        self._index = index
        self._host = index.host
        self._prefix = namespace_prefix
        self._metric_option = metric
        self._max_request_bytes = max_request_bytes
        self._max_vectors = max_vectors_per_upsert
        self._specs: dict[str, CollectionSpec] = {}

    @property
    def capabilities(self) -> Capabilities:
        return Capabilities(
            name="pinecone",
            persistent=True,
            approximate=True,
            filter_operators=SUPPORTED_OPERATORS,
            notes=(
                "one collection = one namespace of the index; all share its dimension and metric",
                "no $not (nor $exists: false): Pinecone has no negation",
                "count/delete/scan with a filter are emulated with list + fetch (client-side filter)",
                "lists of numbers or booleans round-trip but are not filterable (Pinecone indexes "
                "lists of strings only)",
            ),
        )

    # -- helpers -----------------------------------------------------------------------------------
    def namespace(self, collection: str) -> str:
        return self._prefix + collection

    @property
    def catalog_namespace(self) -> str:
        return self._prefix + CATALOG_SUFFIX

    def _call(self, operation: str, fn: Any) -> Any:
        return call(self._host, operation, fn)

    def _stats(self) -> Any:
        return self._call("describe_index_stats", lambda: self._index.describe_index_stats())

    def _index_shape(self) -> tuple[int | None, Metric | None]:
        stats = self._stats()
        metric = _FROM_PINECONE_METRIC.get(stats.metric or "") or self._metric_option
        return stats.dimension, metric

    def _catalog_vector(self, dimension: int) -> list[float]:
        # Pinecone rejects all-zero dense vectors; the catalog record's vector is never queried.
        return [1.0] + [0.0] * (dimension - 1)

    def _spec(self, collection: str) -> CollectionSpec:
        spec = self._specs.get(collection)
        if spec is not None:
            return spec
        found = self._fetch_raw(self.catalog_namespace, [collection])
        raw = found.get(collection)
        if raw is None:
            existing = ", ".join(sorted(s.name for s in self._catalog())) or "none"
            raise CollectionNotFoundError(
                f"collection {collection!r} does not exist in the pinecone store at {self._host} "
                f"(existing: {existing}); create it with `vectorseam ingest FILE --collection {collection}`"
            )
        spec = _spec_from_catalog(raw.metadata or {})
        self._specs[collection] = spec
        return spec

    def _catalog(self) -> list[CollectionSpec]:
        ids = self._list_ids(self.catalog_namespace)
        found = self._fetch_raw(self.catalog_namespace, ids)
        specs = [_spec_from_catalog(v.metadata or {}) for v in found.values()]
        for spec in specs:
            self._specs[spec.name] = spec
        return sorted(specs, key=lambda s: s.name)

    def _fetch_raw(self, namespace: str, pinecone_ids: Sequence[str]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for start in range(0, len(pinecone_ids), _FETCH_PAGE):
            page = list(pinecone_ids[start : start + _FETCH_PAGE])
            resp = self._call("fetch", lambda page=page: self._index.fetch(ids=page, namespace=namespace))
            out.update(resp.vectors)
        return out

    def _list_ids(self, namespace: str) -> list[str]:
        ids: list[str] = []
        token: str | None = None
        while True:
            resp = self._call(
                "list",
                lambda token=token: self._index.list_paginated(
                    namespace=namespace, limit=_LIST_PAGE, pagination_token=token
                ),
            )
            ids.extend(item.id for item in resp.vectors if item.id is not None)
            token = resp.pagination.next if resp.pagination is not None else None
            if not token:
                return ids

    # -- collections -------------------------------------------------------------------------------
    def ensure_collection(self, spec: CollectionSpec) -> CollectionInfo:
        dimension, metric = self._index_shape()
        if dimension is not None and dimension != spec.dimension:
            raise DimensionMismatchError(
                f"collection {spec.name!r} needs dimension {spec.dimension}, but the Pinecone index at "
                f"{self._host} has dimension {dimension}; every collection of a Pinecone store is a "
                "namespace of that one index, so use an index created with the right dimension"
            )
        if metric is not None and metric != spec.metric:
            raise ValidationError(
                f"collection {spec.name!r} needs metric {spec.metric!r}, but the Pinecone index at "
                f"{self._host} uses {metric!r}; use an index created with metric "
                f"{_TO_PINECONE_METRIC[spec.metric]!r}"
            )
        try:
            existing = self._spec(spec.name)
        except CollectionNotFoundError:
            existing = None
        if existing is None:
            dim = dimension or spec.dimension
            item = {
                "id": spec.name,
                "values": self._catalog_vector(dim),
                "metadata": {
                    "name": spec.name,
                    "dimension": spec.dimension,
                    "metric": spec.metric,
                    "spec_metadata": json.dumps(dict(spec.metadata), sort_keys=True),
                },
            }
            self._call(
                "upsert (catalog)",
                lambda: self._index.upsert(vectors=[item], namespace=self.catalog_namespace),
            )
            self._specs[spec.name] = spec
            existing = spec
        else:
            check_compatible(existing, spec)
        return self._info(existing, self._stats())

    def _info(self, spec: CollectionSpec, stats: Any) -> CollectionInfo:
        summary = stats.namespaces.get(self.namespace(spec.name))
        count = int(summary.vector_count) if summary is not None else 0
        return CollectionInfo(spec.name, spec.dimension, spec.metric, dict(spec.metadata), count)

    def collections(self) -> list[CollectionInfo]:
        specs = self._catalog()
        stats = self._stats()
        return [self._info(s, stats) for s in specs]

    def collection_info(self, collection: str) -> CollectionInfo:
        """The catalog record of this collection alone (read fresh, not from the spec cache) and the
        index statistics, which Pinecone returns in one call whatever the number of namespaces."""
        raw = self._fetch_raw(self.catalog_namespace, [collection]).get(collection)
        if raw is None:
            raise collection_not_found("pinecone", collection, (s.name for s in self._catalog()))
        spec = _spec_from_catalog(raw.metadata or {})
        self._specs[collection] = spec
        return self._info(spec, self._stats())

    def drop_collection(self, collection: str) -> bool:
        try:
            self._spec(collection)
        except CollectionNotFoundError:
            return False
        ns = self.namespace(collection)
        if self._list_ids(ns):
            self._call("delete (namespace)", lambda: self._index.delete(delete_all=True, namespace=ns))
        self._call(
            "delete (catalog)",
            lambda: self._index.delete(ids=[collection], namespace=self.catalog_namespace),
        )
        self._specs.pop(collection, None)
        return True

    # -- writes ------------------------------------------------------------------------------------
    def upsert(self, collection: str, records: Iterable[Record]) -> int:
        spec = self._spec(collection)
        checked = validate_records(records, spec.dimension)
        if spec.metric == "cosine":
            for r in checked:
                if not np.any(r.vector):
                    raise ValidationError(
                        f"record {r.id!r}: a zero vector has no direction, so cosine similarity is "
                        "undefined (and Pinecone rejects all-zero dense vectors); drop the record"
                    )
        # Encode everything first so an oversized record fails before anything is written.
        batches = list(encoding.request_batches(checked, self._max_request_bytes, self._max_vectors))
        ns = self.namespace(collection)
        for batch in batches:
            self._call("upsert", lambda batch=batch: self._index.upsert(vectors=batch, namespace=ns))
        return len(checked)

    def delete(self, collection: str, ids: Sequence[str] | None = None, filter: FilterLike = None) -> int:
        check_delete_args(ids, filter)
        self._spec(collection)
        ns = self.namespace(collection)
        if ids is not None:
            wanted = list(dict.fromkeys(encoding.to_pinecone_id(i) for i in ids_list(ids)))
            present = list(self._fetch_raw(ns, wanted))
        else:
            present = [
                encoding.to_pinecone_id(r.id)
                for page in self.scan(collection, filter=filter, include_vectors=False)
                for r in page
            ]
        for start in range(0, len(present), 1000):
            chunk = present[start : start + 1000]
            self._call("delete", lambda chunk=chunk: self._index.delete(ids=chunk, namespace=ns))
        return len(present)

    # -- reads -------------------------------------------------------------------------------------
    def query(
        self,
        collection: str,
        vectors: npt.ArrayLike,
        k: int = 10,
        filter: FilterLike = None,
        include_vectors: bool = False,
    ) -> list[list[Hit]]:
        _check_k(k)
        spec = self._spec(collection)
        queries = as_query_matrix(vectors, spec.dimension)
        pinecone_filter = translate(filter)
        ns = self.namespace(collection)
        out: list[list[Hit]] = []
        for row in queries:
            values = row.astype(np.float64).tolist()
            resp = self._call(
                "query",
                lambda values=values: self._index.query(
                    top_k=k, vector=values, namespace=ns, filter=pinecone_filter,
                    include_metadata=True, include_values=include_vectors,
                ),
            )
            out.append(self._hits(resp.matches, spec.metric, include_vectors))
        return out

    def _hits(self, matches_: Sequence[Any], metric: Metric, include_vectors: bool) -> list[Hit]:
        hits = []
        for m in matches_:
            rid, text, meta = encoding.decode_metadata(m.id, m.metadata)
            hits.append(Hit(
                id=rid,
                score=to_score(float(m.score), metric),
                text=text,
                metadata=meta,
                vector=np.asarray(m.values, dtype=np.float32) if include_vectors and m.values else None,
            ))
        hits.sort(key=lambda h: (-h.score, h.id))
        return hits

    def fetch(self, collection: str, ids: Sequence[str], include_vectors: bool = True) -> list[Record]:
        wanted = ids_list(ids)
        self._spec(collection)
        found = self._fetch_raw(self.namespace(collection), list(dict.fromkeys(
            encoding.to_pinecone_id(i) for i in wanted
        )))
        out = []
        for rid in wanted:
            raw = found.get(encoding.to_pinecone_id(rid))
            if raw is not None:
                out.append(_record(raw, include_vectors))
        return out

    def count(self, collection: str, filter: FilterLike = None) -> int:
        spec = self._spec(collection)
        if parse_filter(filter) is None:
            return self._info(spec, self._stats()).count
        return sum(len(page) for page in self.scan(collection, filter=filter, include_vectors=False))

    def scan(
        self,
        collection: str,
        batch_size: int = 1000,
        filter: FilterLike = None,
        include_vectors: bool = True,
    ) -> Iterator[list[Record]]:
        check_batch_size(batch_size)
        f = parse_filter(filter)
        translate(f)  # the same operators as a query, so a filter never works in one place only
        self._spec(collection)
        return self._scan(collection, batch_size, f, include_vectors)

    def _scan(
        self, collection: str, batch_size: int, f: Filter | None, include_vectors: bool
    ) -> Iterator[list[Record]]:
        return filtered_pages(self._records(collection, include_vectors), batch_size, f)

    def _records(self, collection: str, include_vectors: bool) -> Iterator[Record]:
        ns = self.namespace(collection)
        snapshot = sorted(self._list_ids(ns))
        for start in range(0, len(snapshot), _FETCH_PAGE):
            chunk = snapshot[start : start + _FETCH_PAGE]
            found = self._fetch_raw(ns, chunk)
            for pid in chunk:
                raw = found.get(pid)
                if raw is not None:  # None: deleted since the listing
                    yield _record(raw, include_vectors)

    # -- recommendations ---------------------------------------------------------------------------
    def recommend(
        self,
        collection: str,
        positive_ids: Sequence[str],
        negative_ids: Sequence[str] = (),
        k: int = 10,
        filter: FilterLike = None,
        strategy: str = "average_vector",
    ) -> list[Hit]:
        """Records like ``positive_ids`` (and unlike ``negative_ids``), the inputs themselves excluded.

        One positive, no negative: Pinecone's native query-by-id (the stored vector never leaves the
        server). Otherwise Pinecone cannot help -- query-by-id takes one id -- so the target is
        ``mean(pos)`` or, with negatives, ``mean(pos) + (mean(pos) - mean(neg))`` (Qdrant's
        average_vector rule), computed client side from fetched vectors.
        """
        if strategy != "average_vector":
            raise UnsupportedOperationError(
                f"the pinecone store supports the 'average_vector' recommend strategy only, got {strategy!r}"
            )
        _check_k(k)
        pos, neg = ids_list(positive_ids), ids_list(negative_ids)
        if not pos:
            raise ValidationError("recommend needs at least one positive id")
        spec = self._spec(collection)
        pinecone_filter = translate(filter)
        exclude = set(pos) | set(neg)
        ns = self.namespace(collection)
        top_k = min(k + len(exclude), MAX_TOP_K)
        if len(pos) == 1 and not neg:
            pid = encoding.to_pinecone_id(pos[0])
            if pid not in self._fetch_raw(ns, [pid]):
                raise ValidationError(
                    f"recommend: positive id {pos[0]!r} is not in collection {collection!r}"
                )
            resp = self._call("query (by id)", lambda: self._index.query(
                top_k=top_k, id=pid, namespace=ns, filter=pinecone_filter, include_metadata=True,
            ))
        else:
            found = {r.id: r for r in self.fetch(collection, pos + neg, include_vectors=True)}
            missing = [i for i in pos + neg if i not in found]
            if missing:
                raise ValidationError(f"recommend: ids not in collection {collection!r}: {missing[:10]}")
            values = average_vector(_stack(found, pos, spec.dimension), _stack(found, neg, spec.dimension),
                                    spec.metric).tolist()
            resp = self._call("query", lambda: self._index.query(
                top_k=top_k, vector=values, namespace=ns, filter=pinecone_filter, include_metadata=True,
            ))
        hits = [h for h in self._hits(resp.matches, spec.metric, False) if h.id not in exclude]
        return hits[:k]

    def close(self) -> None:
        self._index.close()


def to_score(native: float, metric: Metric) -> float:
    """Pinecone score -> vectorseam's higher-is-more-similar score.

    cosine and dotproduct already are; euclidean is the *squared* L2 distance, so -sqrt(d).
    """
    if metric == "euclidean":
        return -float(np.sqrt(max(native, 0.0)))
    return native


def _record(raw: Any, include_vectors: bool) -> Record:
    rid, text, meta = encoding.decode_metadata(raw.id, raw.metadata)
    vector = np.asarray(raw.values, dtype=np.float32) if include_vectors else None
    return Record(id=rid, vector=vector, text=text, metadata=meta)


def _spec_from_catalog(metadata: dict[str, Any]) -> CollectionSpec:
    return CollectionSpec(
        name=str(metadata["name"]),
        dimension=int(metadata["dimension"]),
        metric=metadata["metric"],
        metadata=json.loads(str(metadata.get("spec_metadata", "{}"))),
    )


def _stack(found: dict[str, Record], ids: Sequence[str], dimension: int) -> npt.NDArray[np.float64]:
    if not ids:
        return np.zeros((0, dimension), dtype=np.float64)
    return np.stack([np.asarray(found[i].vector, dtype=np.float64) for i in ids])


def _check_k(k: int) -> None:
    check_k(k, MAX_TOP_K, "Pinecone")


def open_index(
    *,
    api_key: str | None,
    index_host: str | None,
    index_name: str | None,
    controller_host: str | None,
    timeout: float,
    create_index: bool,
    dimension: int | None,
    metric: Metric | None,
    cloud: str,
    region: str,
) -> Index:
    """The data-plane handle: straight from ``index_host``, or resolved (and created) by name."""
    from pinecone import Pinecone

    if index_host:
        return Index(host=index_host, api_key=api_key, timeout=timeout)
    if not index_name:
        raise ConfigError("the pinecone store needs index_host (the index's data-plane URL) or index_name")
    pc = Pinecone(api_key=api_key, host=controller_host, timeout=timeout)
    where = controller_host or "the Pinecone control plane"
    if not call(where, "describe_index", lambda: pc.indexes.exists(index_name)):
        if not create_index:
            raise ConfigError(f"Pinecone index {index_name!r} does not exist; create it or set create_index")
        if dimension is None or metric is None:
            raise ConfigError("creating a Pinecone index needs the dimension and metric options")
        call(where, "create_index", lambda: pc.indexes.create(
            name=index_name, dimension=dimension, metric=_TO_PINECONE_METRIC[metric],
            spec={"serverless": {"cloud": cloud, "region": region}},
        ))
    return pc.index(name=index_name)
