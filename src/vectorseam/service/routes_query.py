"""Read routes over a collection: search (dense, bm25, hybrid; MMR), recommend, ask."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, Depends, Path
from fastapi.responses import StreamingResponse

from vectorseam.filters import parse_filter
from vectorseam.retrieval.mmr import mmr_order
from vectorseam.retrieval.recommend import recommend
from vectorseam.service.models import (
    AskRequest,
    AskResponse,
    ErrorResponse,
    HitOut,
    RecommendRequest,
    SearchRequest,
    SearchResponse,
)
from vectorseam.service.qa_bridge import answer_question, stream_answer
from vectorseam.service.state import ServiceState, get_state, require
from vectorseam.store import describe
from vectorseam.types import Hit, as_vector

router = APIRouter(prefix="/v1/collections", tags=["query"])
CollectionName = Annotated[str, Path(min_length=1, max_length=63, description="collection name")]
StateDep = Annotated[ServiceState, Depends(get_state)]
ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse} for code in (400, 401, 403, 404, 409, 413, 422)
}


def hit_out(hit: Hit) -> HitOut:
    return HitOut(id=hit.id, score=float(hit.score), text=hit.text, metadata=hit.metadata)


@router.post("/{name}/search", response_model=SearchResponse, responses=ERRORS,
             dependencies=[require("read")], summary="Search a collection by text or vector")
def search(name: CollectionName, body: SearchRequest, state: StateDep) -> SearchResponse:
    start = time.perf_counter()
    state.check_k(body.k)
    name = state.resolve(name)
    if body.query is not None:
        state.check_text(body.query, "query")
        if body.mode == "dense" and body.mmr is None:
            hits = state.searcher.search(name, body.query, body.k, body.filter)
        else:
            hits = state.retrieval.search(name, body.query, body.k, body.filter, body.mode, body.mmr)
    else:
        assert body.vector is not None
        hits = _vector_search(state, name, body.vector, body.k, body.filter, body.mmr)
    return SearchResponse(collection=name, mode=body.mode, hits=[hit_out(h) for h in hits],
                          took_ms=round((time.perf_counter() - start) * 1000, 3))


def _vector_search(state: ServiceState, name: str, values: list[float], k: int, raw_filter: Any,
                   lam: float | None) -> list[Hit]:
    f = parse_filter(raw_filter)
    info = describe(state.store, name)
    vector = as_vector(values, info.dimension, "query vector")
    if lam is None:
        return state.store.query(name, vector, k=k, filter=f)[0]
    pool = state.store.query(name, vector, k=max(k, min(state.retrieval.candidates, 4 * k + 20)), filter=f,
                             include_vectors=True)[0]
    if not pool:
        return []
    matrix = np.stack([np.asarray(h.vector) for h in pool])
    return [Hit(pool[i].id, pool[i].score, pool[i].text, pool[i].metadata)
            for i in mmr_order(vector, matrix, k, lam, info.metric)]


@router.post("/{name}/recommend", response_model=SearchResponse, responses=ERRORS,
             dependencies=[require("read")], summary="Records like the given ones (and unlike others)")
def recommend_route(name: CollectionName, body: RecommendRequest, state: StateDep) -> SearchResponse:
    start = time.perf_counter()
    state.check_k(body.k)
    name = state.resolve(name)
    hits = recommend(state.store, name, body.positive, body.negative, body.k, body.filter, body.strategy)
    return SearchResponse(collection=name, mode=f"recommend:{body.strategy}", hits=[hit_out(h) for h in hits],
                          took_ms=round((time.perf_counter() - start) * 1000, 3))


@router.post("/{name}/ask", response_model=AskResponse, responses={
    **ERRORS,
    200: {"content": {"text/event-stream": {}}, "description": "the answer, or SSE when stream=true"}},
    dependencies=[require("read")], summary="Answer a question from the collection, with citations")
def ask(name: CollectionName, body: AskRequest, state: StateDep) -> AskResponse | StreamingResponse:
    state.check_text(body.question, "question")
    name = state.resolve(name)
    if not body.stream:
        return answer_question(state, name, body)
    events = stream_answer(state, name, body)  # validates and retrieves before the stream opens

    def sse() -> Iterator[str]:
        for event, data in events:
            yield f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"

    return StreamingResponse(sse(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
