"""Read routes over a collection: search (dense, bm25, hybrid; MMR), recommend, ask.

Each checks its filter against the server's limits first (``state.check_filter``), before any store call.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path
from fastapi.responses import StreamingResponse

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
from vectorseam.types import Hit

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
    state.check_filter(body.filter)
    name = state.resolve(name)
    client = state.client
    if body.query is not None:
        state.check_text(body.query, "query")
        hits = client.retrieve_many([body.query], body.k, body.filter, name, body.mode, body.mmr)[0]
    else:
        assert body.vector is not None
        hits = client.search_vector(body.vector, body.k, body.filter, name, body.mmr)
    return SearchResponse(collection=name, mode=body.mode, hits=[hit_out(h) for h in hits],
                          took_ms=round((time.perf_counter() - start) * 1000, 3))


@router.post("/{name}/recommend", response_model=SearchResponse, responses=ERRORS,
             dependencies=[require("read")], summary="Records like the given ones (and unlike others)")
def recommend_route(name: CollectionName, body: RecommendRequest, state: StateDep) -> SearchResponse:
    start = time.perf_counter()
    state.check_k(body.k)
    state.check_filter(body.filter)
    name = state.resolve(name)
    hits = state.client.recommend(body.positive, body.negative, body.k, body.filter, body.strategy, name)
    return SearchResponse(collection=name, mode=f"recommend:{body.strategy}", hits=[hit_out(h) for h in hits],
                          took_ms=round((time.perf_counter() - start) * 1000, 3))


@router.post("/{name}/ask", response_model=AskResponse, responses={
    **ERRORS,
    200: {"content": {"text/event-stream": {}}, "description": "the answer, or SSE when stream=true"}},
    dependencies=[require("read")], summary="Answer a question from the collection, with citations")
def ask(name: CollectionName, body: AskRequest, state: StateDep) -> AskResponse | StreamingResponse:
    state.check_text(body.question, "question")
    state.check_filter(body.filter)
    name = state.resolve(name)
    if not body.stream:
        return answer_question(state, name, body)
    events = stream_answer(state, name, body)  # validates and retrieves before the stream opens

    def sse() -> Iterator[str]:
        for event, data in events:
            yield f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"

    return StreamingResponse(sse(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
