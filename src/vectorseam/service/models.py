"""Request and response bodies of the HTTP API, with hard limits that appear in the OpenAPI schema.

The limits here are ceilings no configuration can raise; ``service.max_*`` settings narrow them at
run time (see :class:`vectorseam.service.state.ServiceState` and :mod:`vectorseam.service.limits`).
Either way bad input is a 4xx that names the field.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

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


class SearchRequest(Strict):
    query: str | None = Field(None, min_length=1, max_length=HARD_MAX_TEXT, description="text to search for")
    vector: list[float] | None = Field(None, min_length=1, max_length=HARD_MAX_DIMENSION,
                                       description="a query vector instead of text (dense mode only)")
    k: int = Field(10, ge=1, le=HARD_MAX_K)
    filter: dict[str, Any] | None = Field(None, description='metadata filter, e.g. {"Score": {"$gte": 4}}')
    mode: Literal["dense", "bm25", "hybrid"] = Field(
        "dense", description="dense: embeddings; bm25: keywords; hybrid: both, fused by reciprocal rank")
    mmr: float | None = Field(None, ge=0.0, le=1.0, description=(
        "re-rank for diversity by maximal marginal relevance: 1 = relevance only, 0 = most diverse"))

    @model_validator(mode="after")
    def _one_query(self) -> SearchRequest:
        if (self.query is None) == (self.vector is None):
            raise ValueError("give exactly one of 'query' (text) or 'vector'")
        if self.vector is not None and self.mode != "dense":
            raise ValueError(f"mode {self.mode!r} needs query text; a 'vector' query is dense only")
        return self


class HitOut(BaseModel):
    id: str
    score: float
    text: str
    metadata: dict[str, MetadataValue]


class SearchResponse(BaseModel):
    collection: str
    mode: str
    hits: list[HitOut]
    took_ms: float


class RecommendRequest(Strict):
    positive: list[str] = Field(..., min_length=1, max_length=256, description="ids to find more like")
    negative: list[str] = Field(default_factory=list, max_length=256, description="ids to steer away from")
    k: int = Field(10, ge=1, le=HARD_MAX_K)
    filter: dict[str, Any] | None = None
    strategy: Literal["average_vector", "best_score"] = "average_vector"


class AskRequest(Strict):
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
    records: list[RecordIn] = Field(..., min_length=1, max_length=HARD_MAX_BATCH)


class UpsertResponse(BaseModel):
    written: int
    embedded: int = Field(description="records whose vector the service computed from their text")


class FetchRequest(Strict):
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
        "true when 'rejects' and 'error' are withheld: they name server files and row contents, so only "
        "admin keys and the key that started the job see them"))
    created_at: float
    started_at: float | None
    finished_at: float | None


class EmbeddingsRequest(BaseModel):
    """OpenAI's ``POST /v1/embeddings`` body. Unknown fields are ignored, as OpenAI's clients add some."""

    input: str | list[str] = Field(..., description="one text or a list of texts")
    model: str = Field(..., min_length=1)
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
