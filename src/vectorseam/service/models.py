"""Request and response bodies of the HTTP API, with hard limits that appear in the OpenAPI schema.

The limits here are ceilings no configuration can raise; ``service.max_*`` settings narrow them at
run time (see :class:`vectorseam.service.state.ServiceState` and :mod:`vectorseam.service.limits`).
Either way bad input is a 4xx that names the field.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic import ValidationError as PydanticValidationError
from pydantic_core import PydanticCustomError

from vectorseam.errors import ValidationError
from vectorseam.query import MAX_CANDIDATES, Query, SearchOptions
from vectorseam.service.models_results import FacetValueOut, HighlightOut
from vectorseam.types import MAX_ID_LENGTH

HARD_MAX_K = 1000
HARD_MAX_TEXT = 100_000
HARD_MAX_BATCH = 10_000
HARD_MAX_DIMENSION = 8192

Scalar = str | int | float | bool
MetadataValue = Scalar | None | list[Scalar]
RecordId = Field(min_length=1, max_length=MAX_ID_LENGTH)


class Strict(BaseModel):
    """Unknown fields are errors: a misspelt ``fitler`` must not silently search everything."""

    model_config = ConfigDict(extra="forbid")


class SearchRequest(Strict, SearchOptions):
    """A search by text or by vector; with ``query`` text, ``query_vector`` may carry the text's embedding
    computed by the caller (the dense side of the search: the server embeds nothing), plus the
    :class:`~vectorseam.query.SearchOptions` fields: a page by ``offset`` or ``cursor``,
    ``group_by``/``group_size``, ``facets``, ``highlight``, ``score_threshold``."""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"query": "delicious beans", "k": 5, "filter": {"Score": {"$gte": 4}}},
        {"query": "whole wheat pasta", "mode": "hybrid", "k": 10, "group_by": "source_id", "group_size": 2,
         "facets": ["category"], "highlight": True},
        {"query": "bad delivery", "k": 10, "cursor": "eyJ2IjoxLCJ0Ijoic2VhcmNoIn0", "score_threshold": 0.3},
    ]})

    query: str | None = Field(None, min_length=1, max_length=HARD_MAX_TEXT, description="text to search for")
    vector: list[float] | None = Field(None, min_length=1, max_length=HARD_MAX_DIMENSION,
                                       description="a query vector instead of text (dense mode only)")
    query_vector: list[float] | None = Field(default=None, min_length=1, max_length=HARD_MAX_DIMENSION, description=(
        "with 'query': its embedding, computed by the caller in the collection's space (the dense side)"))
    k: int = Field(10, ge=1, le=HARD_MAX_K, description="results (groups, with group_by) per page")
    filter: dict[str, Any] | None = Field(None, description='metadata filter, e.g. {"Score": {"$gte": 4}}')
    mode: Literal["dense", "bm25", "hybrid"] = Field(
        "dense", description="dense: embeddings; bm25: keywords; hybrid: both, fused by reciprocal rank")
    mmr: float | None = Field(None, ge=0.0, le=1.0, description=(
        "re-rank for diversity by maximal marginal relevance: 1 = relevance only, 0 = most diverse"))
    candidates: int | None = Field(None, ge=1, le=MAX_CANDIDATES, description=(
        "with mmr: how many of the best hits it chooses among (default: about 4k + 20, at most 100)"))
    weights: tuple[float, float] | None = Field(default=None, description="hybrid's RRF weights: (dense, BM25)")
    profile: bool = Field(default=True, description="apply the collection's tuned retrieval profile, if it has one")
    include_vectors: bool = Field(default=False, description="return each hit's vector")

    @model_validator(mode="after")
    def _one_query(self) -> SearchRequest:
        if (self.query is None) == (self.vector is None):
            raise ValueError("give exactly one of 'query' (text) or 'vector'")
        if self.vector is not None and self.mode != "dense":
            raise ValueError(f"mode {self.mode!r} needs query text; a 'vector' query is dense only")
        if self.query_vector is not None and self.query is None:
            raise ValueError("'query_vector' is the embedding of 'query': give the text as well")
        if self.highlight and self.query is None:
            raise ValueError("'highlight' marks the query's words: give 'query' text")
        if self.weights is not None and not all(0 <= w <= 1e6 for w in self.weights):
            raise ValueError("'weights' are two numbers >= 0")
        return self

    def to_query(self) -> Query:
        vector = self.vector if self.query is None else self.query_vector
        return make_query(text=self.query, vector=vector, k=self.k, filter=self.filter, mode=self.mode,
                          mmr=self.mmr, candidates=self.candidates, weights=self.weights, profile=self.profile,
                          include_vectors=self.include_vectors, options=self)


class HitOut(BaseModel):
    id: str
    score: float
    text: str
    metadata: dict[str, MetadataValue]
    highlight: HighlightOut | None = Field(default=None, description="with highlight=true: the query's words")
    vector: list[float] | None = Field(default=None, description="with include_vectors=true")


class GroupOut(BaseModel):
    value: Scalar | None = Field(description="the group field's value (for source_id: the document id)")
    hits: list[HitOut] = Field(description="the group's best hits, best first")


class SearchResponse(BaseModel):
    collection: str
    mode: str
    hits: list[HitOut] = Field(description="best first; with group_by, the best hit of each group")
    took_ms: float
    groups: list[GroupOut] | None = Field(default=None, description="with group_by/group_size: groups, best first")
    facets: dict[str, list[FacetValueOut]] | None = Field(default=None, description="with facets: counts per field")
    next_cursor: str | None = Field(default=None, description="pass as 'cursor' for the next page; null: no more")
    profile_note: str | None = Field(default=None, description="why the collection's tuned profile was not applied "
                                     "(tuned for another embedder); null when it was, or there is none")


class RecommendRequest(Strict, SearchOptions):
    """Records like ``positive`` (and unlike ``negative``); the id of a chunked document stands for its
    chunks. Takes the :class:`~vectorseam.query.SearchOptions` fields but ``highlight`` (no query text)."""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"positive": ["r05"], "k": 5},
        {"positive": ["r05", "r08"], "negative": ["r06"], "k": 10, "strategy": "best_score",
         "filter": {"Score": {"$gte": 4}}, "group_by": "source_id"},
    ]})

    positive: list[str] = Field(..., min_length=1, max_length=256, description="ids to find more like")
    negative: list[str] = Field(default_factory=list, max_length=256, description="ids to steer away from")
    k: int = Field(10, ge=1, le=HARD_MAX_K)
    filter: dict[str, Any] | None = None
    strategy: Literal["average_vector", "best_score"] = "average_vector"
    include_vectors: bool = Field(default=False, description="return each hit's vector")

    @model_validator(mode="after")
    def _no_highlight(self) -> RecommendRequest:
        if self.highlight:
            raise ValueError("'highlight' marks a query's words; a recommendation has no query text")
        return self

    def to_query(self) -> Query:
        return make_query(positive=self.positive, negative=self.negative, strategy=self.strategy, k=self.k,
                          filter=self.filter, include_vectors=self.include_vectors, options=self)


def make_query(options: SearchOptions, **fields: Any) -> Query:
    """A :class:`~vectorseam.query.Query` from a request's fields and the :class:`SearchOptions` fields of
    ``options`` (the request itself: its options are validated already, and copying them into a model of
    their own first validated them twice); what the request's own checks let through but the query
    refuses (a rule of the core, say) is a 400 naming it, never a 500."""
    try:
        return Query(**fields, **{name: getattr(options, name) for name in SearchOptions.model_fields})
    except PydanticValidationError as exc:
        raise ValidationError("; ".join(str(e.get("msg", e)) for e in exc.errors())) from None


class AskRequest(Strict):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"question": "Which pasta do reviewers like?", "k": 5},
        {"question": "What arrived late?", "mode": "hybrid", "filter": {"Score": {"$lte": 2}}, "stream": True}]})

    question: str = Field(..., min_length=1, max_length=HARD_MAX_TEXT)
    k: int = Field(5, ge=1, le=50, description="passages to read")
    filter: dict[str, Any] | None = None
    mode: Literal["dense", "bm25", "hybrid"] = Field("dense", description="how passages are retrieved")
    stream: bool = Field(False, description="answer as server-sent events")


class Citation(BaseModel):
    number: int = Field(description="the [n] the answer uses for this passage")
    id: str
    score: float
    text: str
    metadata: dict[str, MetadataValue]


class AskResponse(BaseModel):
    question: str
    answer: str
    citations: list[Citation] = Field(description="the passages the answer cites, in citation order")
    passages: list[Citation] = Field(description="every passage the answer was drawn from, numbered from 1")
    unknown_citations: list[int] = Field(description="[n] markers in the answer that match no passage")
    method: Literal["extractive", "llm"] = Field(description="'extractive' (offline default) or 'llm'")
    abstained: bool


class RecordIn(Strict):
    id: str = RecordId
    text: str = Field("", max_length=HARD_MAX_TEXT)
    vector: list[float] | None = Field(None, min_length=1, max_length=HARD_MAX_DIMENSION,
                                       description="omit to embed 'text' with the configured embedder")
    metadata: dict[str, MetadataValue] = Field(default_factory=dict)


class UpsertRequest(Strict):
    model_config = ConfigDict(json_schema_extra={"examples": [{"records": [
        {"id": "r1", "text": "Delicious black beans, great in burritos.",
         "metadata": {"category": "beans", "Score": 5}},
        {"id": "r2", "text": "", "vector": [0.1, 0.2, 0.3], "metadata": {"category": "pasta"}}]}]})

    records: list[RecordIn] = Field(..., min_length=1, max_length=HARD_MAX_BATCH)


class UpsertResponse(BaseModel):
    written: int
    embedded: int = Field(description="records whose vector the service computed from their text")


class FetchRequest(Strict):
    model_config = ConfigDict(json_schema_extra={"examples": [{"ids": ["r1", "r2"]},
                                                             {"ids": ["r1"], "include_vectors": True}]})

    ids: list[str] = Field(..., min_length=1, max_length=HARD_MAX_BATCH)
    include_vectors: bool = False


class RecordOut(BaseModel):
    id: str
    text: str
    metadata: dict[str, MetadataValue]
    vector: list[float] | None = None


class FetchResponse(BaseModel):
    records: list[RecordOut]
    missing: list[str]


class DeleteRequest(Strict):
    model_config = ConfigDict(json_schema_extra={"examples": [{"ids": ["r1", "r2"]},
                                                             {"filter": {"category": "delivery"}}]})

    ids: list[str] | None = Field(None, min_length=1, max_length=HARD_MAX_BATCH)
    filter: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _one_selector(self) -> DeleteRequest:
        if (self.ids is None) == (self.filter is None):
            raise ValueError("give exactly one of 'ids' or 'filter' (an empty filter is refused)")
        return self


class DeleteResponse(BaseModel):
    deleted: int


class CollectionOut(BaseModel):
    name: str
    dimension: int
    metric: str
    count: int
    metadata: dict[str, str]


class CollectionsResponse(BaseModel):
    collections: list[CollectionOut]


class DocumentIn(Strict):
    id: str = RecordId
    text: str = Field(..., min_length=1, max_length=HARD_MAX_TEXT)
    metadata: dict[str, MetadataValue] = Field(default_factory=dict)


class IngestRequest(Strict):
    """Either documents in the body, or a file the server may read (under ``service.ingest_dirs``)."""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"documents": [{"id": "guide", "text": "A long text, split into chunks as it is ingested.",
                        "metadata": {"lang": "en"}}]},
        {"path": "reviews.csv", "id_field": "Id", "text_template": "Title: {Summary}; Content: {Text}",
         "metadata_fields": ["Score", "ProductId"]}]})

    documents: list[DocumentIn] | None = Field(None, min_length=1, max_length=HARD_MAX_BATCH)
    path: str | None = Field(None, min_length=1, max_length=4096)
    id_field: str | None = None
    text_field: str = "text"
    text_template: str | None = None
    metadata_fields: list[str] | None = None
    batch_size: int = Field(64, ge=1, le=4096)

    @model_validator(mode="after")
    def _one_source(self) -> IngestRequest:
        if (self.documents is None) == (self.path is None):
            raise ValueError("give exactly one of 'documents' or 'path'")
        return self


class JobOut(BaseModel):
    id: str
    collection: str
    state: Literal["queued", "running", "succeeded", "failed"]
    written: int
    rejected: int
    rejects: list[str] = Field(description="the first rejected rows (file:line: reason)")
    error: str | None
    details_hidden: bool = Field(False, description=(
        "true when 'rejects' and 'error' are withheld: they name the files read and quote rows, so only the "
        "key that started the job and admin keys that reach every collection see them"))
    created_at: float
    started_at: float | None
    finished_at: float | None


EmbeddingText = Annotated[str, Field(max_length=HARD_MAX_TEXT)]


class EmbeddingsRequest(BaseModel):
    """OpenAI's ``POST /v1/embeddings`` body. Unknown fields are ignored, as OpenAI's clients add some.

    Texts are checked like every other route's: a lone surrogate is a 422 here too (the tokenizer
    raised a TypeError on one, a 500), because a ``str | list[str]`` union lets such a string through.
    """

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"input": "delicious beans", "model": "all-MiniLM-L6-v2"},
        {"input": ["whole wheat pasta", "bad delivery"], "model": "all-MiniLM-L6-v2", "encoding_format": "base64"}]})

    input: EmbeddingText | Annotated[list[EmbeddingText], Field(max_length=HARD_MAX_BATCH)] = Field(
        ..., description="one text or a list of texts")
    model: str = Field(..., min_length=1, examples=["all-MiniLM-L6-v2"])

    @field_validator("input")
    @classmethod
    def _encodable(cls, value: str | list[str]) -> str | list[str]:
        for text in [value] if isinstance(value, str) else value:
            try:
                text.encode("utf-8")
            except UnicodeEncodeError:
                raise PydanticCustomError("string_unicode", "not valid Unicode text") from None
        return value
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: int | None = Field(None, ge=1)
    user: str | None = None


class EmbeddingOut(BaseModel):
    object: Literal["embedding"] = "embedding"
    index: int
    embedding: list[float] | str


class Usage(BaseModel):
    prompt_tokens: int
    total_tokens: int


class EmbeddingsResponse(BaseModel):
    object: Literal["list"] = "list"
    data: list[EmbeddingOut]
    model: str
    usage: Usage


class ModelOut(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int = 0
    owned_by: str = "vectorseam"


class ModelsResponse(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelOut]


class ErrorDetail(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorResponse(BaseModel):
    """Every error, in OpenAI's envelope so OpenAI clients show the message, plus the request id."""

    error: ErrorDetail
    request_id: str | None = None
