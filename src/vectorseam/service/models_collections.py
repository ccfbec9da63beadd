"""Request and response bodies of the collection, alias, count, scroll, export/import, snapshot and
multi-search routes (:mod:`vectorseam.service.routes_collections`)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from vectorseam.query import MAX_SCROLL_LIMIT
from vectorseam.service.models import HARD_MAX_DIMENSION, RecordOut, SearchRequest, SearchResponse, Strict

CollectionNameField = Field(min_length=1, max_length=63, pattern=r"^[A-Za-z][A-Za-z0-9_-]*$")


class CollectionCreate(Strict):
    """Omit ``dimension`` for a collection the server's embedder fills (ingest, text records); give it
    for vectors you bring, and name their space in ``metadata.embedder`` if you like."""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {}, {"metric": "cosine"},
        {"dimension": 768, "metric": "dot", "metadata": {"embedder": "my-model:768", "owner": "search-team"}},
    ]})

    dimension: int | None = Field(default=None, ge=1, le=HARD_MAX_DIMENSION)
    metric: Literal["cosine", "dot", "euclidean"] = "cosine"
    metadata: dict[str, str] = Field(default_factory=dict, max_length=64,
                                     description="descriptive key/values kept with the collection")


class CollectionDescription(BaseModel):
    name: str
    dimension: int
    metric: str
    metadata: dict[str, str]
    count: int = Field(description="records it holds")
    fingerprint: str | None = Field(description="the embedder whose vectors fill it")
    vector_bytes: int = Field(description="the size of its vectors: count x dimension x 4 bytes")
    aliases: list[str] = Field(description="aliases naming it")
    tuned: bool = Field(description="whether it has a tuned retrieval profile")


class DropResponse(BaseModel):
    dropped: bool


class AliasIn(Strict):
    model_config = ConfigDict(json_schema_extra={"examples": [{"collection": "reviews_v2"}]})

    collection: str = CollectionNameField


class AliasOut(BaseModel):
    alias: str
    collection: str


class AliasesResponse(BaseModel):
    aliases: list[AliasOut]


class AliasRemoved(BaseModel):
    removed: bool


class CountRequest(Strict):
    model_config = ConfigDict(json_schema_extra={"examples": [{}, {"filter": {"Score": {"$gte": 4}}}]})

    filter: dict[str, Any] | None = None


class CountResponse(BaseModel):
    count: int


class ScrollRequest(Strict):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"limit": 100}, {"limit": 500, "filter": {"category": "pasta"}, "include_vectors": True},
        {"limit": 100, "cursor": "eyJ2IjoxLCJ0Ijoic2Nyb2xsIn0"},
    ]})

    filter: dict[str, Any] | None = None
    limit: int = Field(default=100, ge=1, le=MAX_SCROLL_LIMIT, description="records per page")
    cursor: str | None = Field(default=None, min_length=1, max_length=4096,
                               description="the next_cursor of the previous page (same filter)")
    include_vectors: bool = False


class ScrollResponse(BaseModel):
    records: list[RecordOut]
    next_cursor: str | None = Field(description="pass as 'cursor' for the next page; null: that was the last")


class ExportRequest(Strict):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"format": "ndjson"}, {"format": "parquet", "filter": {"Score": {"$gte": 4}}}]})

    format: Literal["ndjson", "parquet"] = "ndjson"
    filter: dict[str, Any] | None = None


class ImportResponse(BaseModel):
    collection: str
    written: int


class MultiSearchItem(SearchRequest):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"collection": "reviews", "query": "delicious beans", "k": 3}]})

    collection: str = CollectionNameField


class MultiSearchRequest(Strict):
    model_config = ConfigDict(json_schema_extra={"examples": [{"searches": [
        {"collection": "reviews", "query": "delicious beans", "k": 3},
        {"collection": "reviews", "query": "bad delivery", "mode": "bm25", "k": 3, "facets": ["category"]},
    ]}]})

    searches: list[MultiSearchItem] = Field(..., min_length=1, max_length=32)


class MultiSearchResponse(BaseModel):
    results: list[SearchResponse] = Field(description="one per search, in order")


class EmbedderOut(BaseModel):
    fingerprint: str = Field(description="the vector space: collections it fills record this")
    dimension: int
    model: str = Field(description="the model name POST /v1/embeddings takes")
