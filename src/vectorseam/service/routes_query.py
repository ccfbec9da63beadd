"""Read routes over a collection: search (dense, bm25, hybrid; MMR), recommend, ask.

Each checks its filter against the server's limits first (``state.check_filter``), before any store call.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

from fastapi import APIRouter
from fastapi.responses import StreamingResponse
from starlette.responses import Response

from vectorseam.service.json_route import JSONBodyRoute
from vectorseam.service.models import (
    AskRequest,
    AskResponse,
    RecommendRequest,
    SearchRequest,
    SearchResponse,
)
from vectorseam.service.off_loop import json_response
from vectorseam.service.qa_bridge import answer_question, stream_answer
from vectorseam.service.route_params import ERRORS, CollectionName, StateDep
from vectorseam.service.search_out import check_query, search_response
from vectorseam.service.state import ServiceState, require

router = APIRouter(prefix="/v1/collections", tags=["query"], route_class=JSONBodyRoute)


@router.post("/{name}/search", response_model=SearchResponse, responses=ERRORS,
             dependencies=[require("read")], summary="Search a collection by text or vector")
async def search(name: CollectionName, body: SearchRequest, state: StateDep) -> Response:
    """Text, a vector or both, in any mode, with the search options (pages, groups, facets, highlights)."""
    return await state.off_loop.run(_search, state, name, body, time.perf_counter())


def _search(state: ServiceState, name: str, body: SearchRequest, start: float) -> Response:
    query = body.to_query()
    check_query(state, query)
    name = state.resolve(name)  # the answer names the collection searched (an alias resolves to it)
    response = search_response(name, body.mode, state.client.query(query, name), start)
    response.profile_note = state.client.profile_note(name)  # a profile it could not use says so
    return json_response(response)


@router.post("/{name}/recommend", response_model=SearchResponse, responses=ERRORS,
             dependencies=[require("read")], summary="Records like the given ones (and unlike others)")
async def recommend_route(name: CollectionName, body: RecommendRequest, state: StateDep) -> Response:
    """The id of a chunked document stands for its chunks; the search options apply as for search."""
    return await state.off_loop.run(_recommend, state, name, body, time.perf_counter())


def _recommend(state: ServiceState, name: str, body: RecommendRequest, start: float) -> Response:
    query = body.to_query()
    check_query(state, query)
    name = state.resolve(name)
    return json_response(search_response(name, f"recommend:{body.strategy}", state.client.query(query, name), start))


@router.post("/{name}/ask", response_model=AskResponse, responses={
    **ERRORS,
    200: {"content": {"text/event-stream": {}}, "description": "the answer, or SSE when stream=true"}},
    dependencies=[require("read")], summary="Answer a question from the collection, with citations")
def ask(name: CollectionName, body: AskRequest, state: StateDep) -> AskResponse | StreamingResponse:
    state.check_text(body.question, "question")
    state.check_input_chars([body.question], "question")
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
