"""What the search page shows beside the hits: a collection's overview and the 2-D map of its clusters.

* ``GET /v1/collections/{name}/overview``: record count, dimension, metric, the embedder's fingerprint,
  every metadata field with its kind and value range (:mod:`vectorseam.analysis.fields`; the page shows
  ``time`` and ``unix_time`` fields as dates), and which search options this server takes (the page asks
  for facet counts and highlights only where it does).
* ``GET /v1/collections/{name}/map``: the clusters ``vectorseam cluster`` finds, as points in [0, 1]^2
  with ids, cluster numbers and short texts (:mod:`vectorseam.analysis.map_points`), cached per
  collection state, so the page's second look costs one scan.

Both read the collection through the facade like every other route, with the caller's read scope.
"""

from __future__ import annotations

import time
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from vectorseam.embedding import FINGERPRINT_KEY
from vectorseam.service.models import MetadataValue, SearchRequest
from vectorseam.service.route_params import CollectionName, StateDep, error_responses
from vectorseam.service.state import require

router = APIRouter(prefix="/v1/collections", tags=["page"])
ERRORS = error_responses(400, 401, 403, 404, 422, 501)
MAX_MAP_POINTS = 5000


class ValueCount(BaseModel):
    value: MetadataValue
    count: int


class FieldOut(BaseModel):
    name: str
    kind: Literal["number", "unix_time", "unix_time_ms", "time", "string", "bool", "mixed"] = Field(
        description="time: ISO-8601 strings; unix_time(_ms): numbers a time-named field holds in the Unix "
                    "range of 1973-2128 (seconds or milliseconds); mixed: values of several kinds")
    present: int = Field(description="records holding the field")
    distinct: int = Field(description="distinct values (at least this many when distinct_capped)")
    distinct_capped: bool
    low: MetadataValue = Field(description="smallest number, or earliest time (RFC 3339), else null")
    high: MetadataValue = Field(description="largest number, or latest time (RFC 3339), else null")
    is_list: bool = Field(description="some record holds a list of values")
    top: list[ValueCount] = Field(description="the commonest values, most frequent first")


class OverviewResponse(BaseModel):
    collection: str
    count: int
    dimension: int
    metric: str
    embedder: str | None = Field(description="the fingerprint of the embedder that fills the collection")
    fields: list[FieldOut]
    search_options: list[str] = Field(description="the optional search request fields this server takes "
                                                   "(facets, highlight, group_by, ...)")
    took_ms: float


class PointOut(BaseModel):
    id: str
    x: float
    y: float
    cluster: int
    text: str


class ClusterOut(BaseModel):
    index: int
    label: str
    size: int
    terms: list[str]


class MapResponse(BaseModel):
    collection: str
    state: str = Field(description="SHA-256 of the collection's ids, texts and vectors: the cache key")
    projection: Literal["tsne", "pca"]
    k: int
    silhouette: float | None
    total: int = Field(description="records in the collection")
    sampled: bool = Field(description="true when the map shows a fixed sample of max_points records")
    cached: bool
    points: list[PointOut]
    clusters: list[ClusterOut]
    took_ms: float


OPTIONAL_SEARCH_FIELDS = ("facets", "facet_scope", "highlight", "group_by", "score_threshold", "offset", "cursor")


@router.get("/{name}/overview", response_model=OverviewResponse, responses=ERRORS,
            dependencies=[require("read")], summary="Record count, fields with value ranges, embedder")
def overview(name: CollectionName, state: StateDep) -> OverviewResponse:
    start = time.perf_counter()
    name = state.resolve(name)
    info = state.client.collection_info(name)
    count, fields = state.client.field_summary(name)
    return OverviewResponse(
        collection=name, count=count, dimension=info.dimension, metric=info.metric,
        embedder=info.metadata.get(FINGERPRINT_KEY), fields=[FieldOut.model_validate(f.to_json()) for f in fields],
        search_options=[f for f in OPTIONAL_SEARCH_FIELDS if f in SearchRequest.model_fields],
        took_ms=round((time.perf_counter() - start) * 1000, 3))


@router.get("/{name}/map", response_model=MapResponse, responses=ERRORS, dependencies=[require("read")],
            summary="The collection's clusters as 2-D points (cached per collection state)")
def cluster_map(name: CollectionName, state: StateDep,
                projection: Annotated[Literal["tsne", "pca"], Query(description="t-SNE or PCA")] = "tsne",
                k: Annotated[int | None, Query(ge=2, le=50, description="clusters (default: by silhouette)")] = None,
                max_points: Annotated[int, Query(ge=3, le=MAX_MAP_POINTS,
                                                 description="a larger collection is mapped on a sample")] = 2000,
                ) -> MapResponse:
    start = time.perf_counter()
    name = state.resolve(name)
    m = state.client.cluster_points(name, k=k, projection=projection, max_points=max_points)
    return MapResponse(
        collection=m.collection, state=m.state, projection=projection, k=m.k, silhouette=m.silhouette,
        total=m.total, sampled=m.sampled, cached=m.cached,
        points=[PointOut(id=p.id, x=p.x, y=p.y, cluster=p.cluster, text=p.text) for p in m.points],
        clusters=[ClusterOut(index=c.index, label=c.label, size=c.size, terms=c.terms) for c in m.clusters],
        took_ms=round((time.perf_counter() - start) * 1000, 3))
