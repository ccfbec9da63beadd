"""A :class:`~vectorseam.query.SearchResult` as the HTTP answer (:class:`~vectorseam.service.models.SearchResponse`),
and the checks every search-like route makes of a query before running it."""

from __future__ import annotations

import time

from vectorseam.query import Query, SearchResult
from vectorseam.service.models import GroupOut, HitOut, SearchResponse
from vectorseam.service.models_results import FacetValueOut, HighlightOut
from vectorseam.service.state import ServiceState
from vectorseam.types import Hit


def check_query(state: ServiceState, query: Query) -> None:
    """The server's limits on a query: k, text length and embedding budget, the filter's cost, and how
    deep a page may reach (offset + k within ``service.max_k`` x 10)."""
    state.check_k(query.k)
    state.check_filter(query.filter)
    if query.text is not None:
        state.check_text(query.text, "query")
        state.check_input_chars([query.text], "query")
    state.check_depth(query.offset + query.k, query.grouping[1] if query.grouping else 1)


def search_response(collection: str, mode: str, result: SearchResult, started: float) -> SearchResponse:
    """The answer's models are built without validation (``model_construct``): every value comes from the
    store's hits, of the types the models declare, and checking each hit's fields again cost about a
    tenth of a search's request path (the model is serialized as it would be after validation)."""

    def hit_out(hit: Hit) -> HitOut:
        mark = result.highlights.get(hit.id)
        highlight = None if mark is None else HighlightOut.model_construct(
            terms=list(mark.terms), snippet=mark.snippet, spans=list(mark.spans), offset=mark.offset)
        return HitOut.model_construct(id=hit.id, score=float(hit.score), text=hit.text, metadata=hit.metadata,
                                      highlight=highlight,
                                      vector=None if hit.vector is None else [float(x) for x in hit.vector])

    return SearchResponse.model_construct(
        collection=collection, mode=mode, hits=[hit_out(h) for h in result.hits],
        took_ms=round((time.perf_counter() - started) * 1000, 3),
        groups=None if result.groups is None else [
            GroupOut.model_construct(value=g.value, hits=[hit_out(h) for h in g.hits]) for g in result.groups],
        facets={name: [FacetValueOut.model_construct(value=v.value, count=v.count) for v in values]
                for name, values in result.facets.items()} or None,
        next_cursor=result.next_cursor, profile_note=None)
