"""Collections, aliases, count, scroll, export/import, snapshots and multi-search over HTTP.

Who may do what: creating and dropping collections, switching aliases, importing and restoring need an
admin key; describing, counting, scrolling, exporting, downloading a snapshot and searching need a read
key. A key limited to some collections reaches only those: anything else answers the same 404 as a
collection that does not exist (:func:`vectorseam.service.auth.not_visible`), for an alias both its name
and its target must be in scope, and the alias list shows only such aliases.

Exports and snapshots stream (a row group or a page of lines at a time), so a large collection leaves
the server without being held in memory; the collection and the filter are checked before the first
byte, so a bad request is still a 4xx. Imports and restores read the request body, which
``service.max_body_bytes`` bounds: import a large collection in several requests.
"""

from __future__ import annotations

import io
import time
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool

from vectorseam.errors import CollectionNotFoundError, ValidationError
from vectorseam.service.auth import Caller, not_visible
from vectorseam.service.json_route import JSONBodyRoute
from vectorseam.service.models import CollectionOut, RecordOut
from vectorseam.service.models_collections import (
    AliasesResponse,
    AliasIn,
    AliasOut,
    AliasRemoved,
    CollectionCreate,
    CollectionDescription,
    CountRequest,
    CountResponse,
    DropResponse,
    EmbedderOut,
    ExportRequest,
    ImportResponse,
    MultiSearchRequest,
    MultiSearchResponse,
    ScrollRequest,
    ScrollResponse,
)
from vectorseam.service.responses import error_response
from vectorseam.service.route_params import ERRORS, AdminCaller, CollectionName, ReadCaller, StateDep
from vectorseam.service.routes_openai import served_models
from vectorseam.service.search_out import check_query, search_response
from vectorseam.service.state import ServiceState, require

router = APIRouter(tags=["collections"], route_class=JSONBodyRoute)
AliasName = Annotated[str, Path(min_length=1, max_length=63, description="alias name")]
NDJSON, PARQUET = "application/x-ndjson", "application/vnd.apache.parquet"
MEDIA_TYPES = {"ndjson": NDJSON, "parquet": PARQUET}
# Request bodies are declared as bytes (what they are on the wire; OpenAPI tools serialize those) and
# described: NDJSON or Parquet, told apart by ?format= or the Content-Type the client sends.
STREAM_BODY: dict[str, Any] = {"requestBody": {"required": True, "description": (
    f"an export: NDJSON ({NDJSON}; a header line, then one record per line) or Parquet ({PARQUET})"),
    "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}, "example": (
        '{"format": "vectorseam-export/1", "collection": "reviews", "dimension": 3, "metric": "cosine", '
        '"metadata": {}}\n'
        '{"id": "r1", "text": "tasty beans", "metadata": {"Score": 5}, "vector": [0.1, 0.2, 0.3]}\n')}}}}
SNAPSHOT_BODY: dict[str, Any] = {"requestBody": {"required": True, "description": (
    f"a snapshot file ({PARQUET}), as GET .../snapshot returns it"),
    "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}}
STREAM_OUT: dict[int | str, dict[str, Any]] = {200: {"content": {NDJSON: {"schema": {"type": "string"}},
                                                                  PARQUET: {"schema": {"type": "string",
                                                                                       "format": "binary"}}},
                                                      "description": "the records, streamed"}}


def _visible(caller: Caller, *names: str) -> None:
    """404 (the same as for an absent collection) unless ``caller`` may use every one of ``names``."""
    for name in names:
        if not caller.sees(name):
            hidden = CollectionNotFoundError(not_visible(names[0]))
            hidden.collection = names[0]  # type: ignore[attr-defined]  # for the 404 of a route without {name}
            raise hidden


def _described(state: ServiceState, name: str) -> CollectionDescription:
    d = state.client.describe(name)
    return CollectionDescription(name=d.info.name, dimension=d.info.dimension, metric=d.info.metric,
                                 metadata=dict(d.info.metadata), count=d.info.count, fingerprint=d.fingerprint,
                                 vector_bytes=d.vector_bytes, aliases=d.aliases, tuned=d.tuned)


# -- collections ---------------------------------------------------------------------------------------

@router.put("/v1/collections/{name}", response_model=CollectionDescription, status_code=200,
            responses={**ERRORS, 201: {"model": CollectionDescription, "description": "created"}},
            summary="Create a collection (or confirm it exists alike)")
def create_collection(name: CollectionName, body: CollectionCreate, state: StateDep, caller: AdminCaller,
                      response: Response) -> CollectionDescription:
    target = state.resolve(name)
    existed = _exists(state, target)
    state.client.create_collection(target, body.dimension, body.metric, body.metadata)
    if not existed:
        response.status_code = 201
    return _described(state, target)


@router.get("/v1/collections/{name}", response_model=CollectionDescription, responses=ERRORS,
            dependencies=[require("read")], summary="Describe a collection: spec, count, embedder, size, aliases")
def describe_collection(name: CollectionName, state: StateDep) -> CollectionDescription:
    return _described(state, state.resolve(name))


@router.delete("/v1/collections/{name}", response_model=DropResponse, responses=ERRORS,
               dependencies=[require("admin")], summary="Drop a collection, its records and its profile")
def drop_collection(name: CollectionName, state: StateDep) -> DropResponse | JSONResponse:
    if name in state.client.list_aliases():
        return error_response(409, "conflict", f"{name!r} is an alias (of {state.resolve(name)!r}); remove the "
                                               "alias, or drop the collection by its own name")
    return DropResponse(dropped=state.client.drop_collection(name))


def _exists(state: ServiceState, name: str) -> bool:
    try:
        state.client.collection_info(name)
    except CollectionNotFoundError:
        return False
    return True


# -- aliases -------------------------------------------------------------------------------------------

@router.get("/v1/aliases", response_model=AliasesResponse, responses=ERRORS,
            summary="Aliases (those whose name and target this key may use)")
def list_aliases(state: StateDep, caller: ReadCaller) -> AliasesResponse:
    return AliasesResponse(aliases=[AliasOut(alias=a, collection=c)
                                    for a, c in sorted(state.client.list_aliases().items())
                                    if caller.sees(a) and caller.sees(c)])


@router.put("/v1/aliases/{alias}", response_model=AliasOut, responses=ERRORS,
            summary="Point an alias at a collection, atomically (blue/green switch)")
def set_alias(alias: AliasName, body: AliasIn, state: StateDep, caller: AdminCaller) -> AliasOut:
    current = state.client.list_aliases().get(alias)
    _visible(caller, alias, body.collection, *([current] if current is not None else []))
    if alias != body.collection and _exists_as_collection(state, alias):
        raise ValidationError(f"{alias!r} is a collection; an alias of that name would hide it. Choose another "
                              "alias name")
    state.client.set_alias(alias, body.collection)
    return AliasOut(alias=alias, collection=body.collection)


@router.delete("/v1/aliases/{alias}", response_model=AliasRemoved, responses=ERRORS,
               summary="Remove an alias (its collection stays)")
def remove_alias(alias: AliasName, state: StateDep, caller: AdminCaller) -> AliasRemoved:
    current = state.client.list_aliases().get(alias)
    _visible(caller, alias, *([current] if current is not None else []))
    return AliasRemoved(removed=state.client.remove_alias(alias))


def _exists_as_collection(state: ServiceState, name: str) -> bool:
    return any(c.name == name for c in state.client.collections())


# -- count, scroll -------------------------------------------------------------------------------------

@router.post("/v1/collections/{name}/count", response_model=CountResponse, responses=ERRORS,
             dependencies=[require("read")], summary="Count the records a filter admits")
def count(name: CollectionName, body: CountRequest, state: StateDep) -> CountResponse:
    state.check_filter(body.filter)
    return CountResponse(count=state.client.count(body.filter, state.resolve(name)))


@router.post("/v1/collections/{name}/scroll", response_model=ScrollResponse, responses=ERRORS,
             dependencies=[require("read")], summary="Page through the records a filter admits, by cursor")
def scroll(name: CollectionName, body: ScrollRequest, state: StateDep) -> ScrollResponse:
    state.check_filter(body.filter)
    state.check_batch(body.limit, "records per page (limit)")
    page = state.client.scroll(state.resolve(name), body.filter, body.limit, body.cursor, body.include_vectors)
    return ScrollResponse(records=[RecordOut(id=r.id, text=r.text, metadata=r.metadata,
                                             vector=None if r.vector is None else [float(x) for x in r.vector])
                                   for r in page.records], next_cursor=page.next_cursor)


# -- export, import, snapshots -------------------------------------------------------------------------

@router.post("/v1/collections/{name}/export", responses={**ERRORS, **STREAM_OUT}, response_class=StreamingResponse,
             dependencies=[require("read")], summary="Export the records a filter admits as NDJSON or Parquet")
def export(name: CollectionName, body: ExportRequest, state: StateDep) -> StreamingResponse:
    state.check_filter(body.filter)
    target = state.resolve(name)
    chunks = state.client.export(target, body.filter, body.format)  # checked here: a bad request is a 4xx
    return StreamingResponse(chunks, media_type=MEDIA_TYPES[body.format], headers={
        "Content-Disposition": f'attachment; filename="{target}.{body.format}"'})


@router.post("/v1/collections/{name}/import", response_model=ImportResponse, responses=ERRORS,
             dependencies=[require("admin")], openapi_extra=STREAM_BODY,
             summary="Import records (an export, or NDJSON/Parquet records) into a collection")
async def import_records(name: CollectionName, request: Request, state: StateDep,
                         format: Annotated[Literal["ndjson", "parquet"] | None,
                                           Query(description="default: from Content-Type")] = None
                         ) -> ImportResponse:
    fmt = format or ("parquet" if request.headers.get("content-type", "").startswith(PARQUET) else "ndjson")
    body = await request.body()
    target = state.resolve(name)
    written = await run_in_threadpool(state.client.import_records, io.BytesIO(body), target, fmt)
    return ImportResponse(collection=target, written=written)


@router.get("/v1/collections/{name}/snapshot", responses={**ERRORS, 200: {
    "content": {PARQUET: {"schema": {"type": "string", "format": "binary"}}}, "description": "the snapshot file"}},
    response_class=StreamingResponse, dependencies=[require("read")],
    summary="Download a snapshot: spec, records, vectors and tuned profile in one Parquet file")
def snapshot(name: CollectionName, state: StateDep) -> StreamingResponse:
    target = state.resolve(name)
    chunks = state.client.snapshot(target)
    return StreamingResponse(chunks, media_type=PARQUET, headers={
        "Content-Disposition": f'attachment; filename="{target}-{time.strftime("%Y%m%dT%H%M%S")}.snapshot.parquet"'})


@router.post("/v1/collections/{name}/snapshot", response_model=CollectionOut, responses=ERRORS,
             dependencies=[require("admin")], summary="Restore a snapshot into this collection",
             openapi_extra=SNAPSHOT_BODY)
async def restore(name: CollectionName, request: Request, state: StateDep,
                  replace: Annotated[bool, Query(description="drop a collection of this name that holds records")]
                  = False) -> CollectionOut:
    body = await request.body()
    target = state.resolve(name)
    info = await run_in_threadpool(state.client.restore, io.BytesIO(body), target, replace)
    return CollectionOut(name=info.name, dimension=info.dimension, metric=info.metric, count=info.count,
                         metadata=dict(info.metadata))


# -- several searches in one request ---------------------------------------------------------------------

@router.post("/v1/search", response_model=MultiSearchResponse, responses=ERRORS,
             summary="Several searches, over one collection or several, answered in order")
def multi_search(body: MultiSearchRequest, state: StateDep, caller: ReadCaller) -> MultiSearchResponse:
    start = time.perf_counter()
    plans = []
    for item in body.searches:
        _visible(caller, item.collection, state.resolve(item.collection))
        query = item.to_query()
        check_query(state, query)
        plans.append((state.resolve(item.collection), item.mode, query))
    results = state.client.multi_search([(name, query) for name, _, query in plans])
    return MultiSearchResponse(results=[search_response(name, mode, result, start)
                                        for (name, mode, _), result in zip(plans, results, strict=True)])


# -- the embedder, for clients that embed through the server ---------------------------------------------

@router.get("/v1/embedder", response_model=EmbedderOut, responses=ERRORS, dependencies=[require("read")],
            summary="The server's embedder: fingerprint, dimension, and the model name /v1/embeddings takes")
def embedder(state: StateDep) -> EmbedderOut:
    embedder = state.client.embedder
    return EmbedderOut(fingerprint=embedder.fingerprint, dimension=embedder.dimension, model=served_models(state)[0])
