"""Collections, records (upsert, fetch, delete) and background ingest jobs.

Record ids are any string up to 512 characters, ``/`` included (a directory source makes ids such as
``sub/c.txt``), so the single-record routes take the rest of the path (``{record_id:path}``), percent-
decoded: ``GET /v1/collections/c/records/sub/c.txt`` and ``.../records/a%20b%3F`` both work.
"""

from __future__ import annotations

from pathlib import Path as FsPath
from typing import Annotated

import numpy as np
from fastapi import APIRouter, Path, Response
from fastapi.responses import JSONResponse

from vectorseam.client import Document, PreparedIngest
from vectorseam.errors import VectorseamError
from vectorseam.ingest_options import IngestOptions
from vectorseam.service.auth import Caller
from vectorseam.service.jobs import Job, Outcome, Progress
from vectorseam.service.json_route import JSONBodyRoute
from vectorseam.service.logs import request_id_var
from vectorseam.service.models import (
    CollectionOut,
    CollectionsResponse,
    DeleteRequest,
    DeleteResponse,
    FetchRequest,
    FetchResponse,
    IngestRequest,
    JobOut,
    RecordOut,
    UpsertRequest,
    UpsertResponse,
)
from vectorseam.service.off_loop import json_response
from vectorseam.service.responses import error_response
from vectorseam.service.roots import ingest_file
from vectorseam.service.route_params import ERRORS, AdminCaller, CollectionName, ReadCaller, StateDep
from vectorseam.service.state import ServiceState, require
from vectorseam.types import Record, Vector, validate_collection_name

router = APIRouter(tags=["data"], route_class=JSONBodyRoute)
RecordIdPath = Annotated[str, Path(min_length=1, max_length=512, description="record id ('/' allowed)")]


@router.get("/v1/collections", response_model=CollectionsResponse, responses=ERRORS,
            summary="List collections (those this key may use)")
def list_collections(state: StateDep, caller: ReadCaller) -> CollectionsResponse:
    return CollectionsResponse(collections=[
        CollectionOut(name=c.name, dimension=c.dimension, metric=c.metric, count=c.count,
                      metadata=dict(c.metadata))
        for c in state.client.collections() if caller.sees(c.name)
    ])


@router.post("/v1/collections/{name}/records", response_model=UpsertResponse, responses=ERRORS,
             dependencies=[require("admin")], summary="Insert or replace records (embeds texts)")
def upsert_records(name: CollectionName, body: UpsertRequest, state: StateDep) -> UpsertResponse:
    name = state.resolve(name)
    validate_collection_name(name)
    state.check_batch(len(body.records), "records")
    for i, rec in enumerate(body.records):
        state.check_text(rec.text, f"records[{i}].text")
    with np.errstate(over="ignore"):  # a float past float32's range becomes inf, refused by the store
        records = [Record(r.id, None if r.vector is None else np.asarray(r.vector, dtype=np.float32),
                          r.text, dict(r.metadata))
                   for r in body.records]
    result = state.client.upsert(records, name)  # embeds the texts of records sent without a vector
    return UpsertResponse(written=result.written, embedded=result.embedded)


@router.post("/v1/collections/{name}/records/fetch", response_model=FetchResponse, responses=ERRORS,
             dependencies=[require("read")], summary="Fetch records by id")
def fetch_records(name: CollectionName, body: FetchRequest, state: StateDep) -> FetchResponse:
    name = state.resolve(name)
    state.check_batch(len(body.ids), "ids")
    found = state.client.fetch(body.ids, name, include_vectors=body.include_vectors)
    have = {r.id for r in found}
    return FetchResponse(
        records=[RecordOut(id=r.id, text=r.text, metadata=r.metadata, vector=_floats(r.vector)
                           if body.include_vectors else None) for r in found],
        missing=[i for i in dict.fromkeys(body.ids) if i not in have],
    )


@router.get("/v1/collections/{name}/records/{record_id:path}", response_model=RecordOut, responses=ERRORS,
            dependencies=[require("read")], summary="Fetch one record")
async def get_record(name: CollectionName, record_id: RecordIdPath, state: StateDep) -> Response:
    return await state.off_loop.run(_get_record, state, name, record_id)


def _get_record(state: ServiceState, name: str, record_id: str) -> Response:
    name = state.resolve(name)
    found = state.client.fetch([record_id], name)
    if not found:
        return _not_found(f"no record with id {record_id!r} in collection {name!r}")
    r = found[0]
    return json_response(RecordOut(id=r.id, text=r.text, metadata=r.metadata))


@router.post("/v1/collections/{name}/records/delete", response_model=DeleteResponse, responses=ERRORS,
             dependencies=[require("admin")], summary="Delete records by ids or by filter")
def delete_records(name: CollectionName, body: DeleteRequest, state: StateDep) -> DeleteResponse:
    state.check_filter(body.filter)
    name = state.resolve(name)
    if body.ids is not None:
        state.check_batch(len(body.ids), "ids")
    deleted = state.client.delete(body.ids, body.filter, name)
    return DeleteResponse(deleted=deleted)


@router.delete("/v1/collections/{name}/records/{record_id:path}", response_model=DeleteResponse,
               responses=ERRORS, dependencies=[require("admin")], summary="Delete one record")
def delete_record(name: CollectionName, record_id: RecordIdPath, state: StateDep) -> DeleteResponse:
    name = state.resolve(name)
    deleted = state.client.delete([record_id], collection=name)
    return DeleteResponse(deleted=deleted)


def job_out(job: Job, caller: Caller) -> JobOut:
    """A job as ``caller`` may see it: rejects and errors name the files read (relative to the ingest
    directory of the key that started it) and quote rows, so only that key and admin keys that reach
    every collection get them; another tenant's key reaching the same collection does not."""
    full = caller.name == job.owner or (caller.scope == "admin" and not caller.scoped)
    hidden_error = "the job failed; the key that started it sees why" if job.error is not None else None
    return JobOut(id=job.id, collection=job.collection, state=job.state, written=job.written,
                  rejected=job.rejected, rejects=job.rejects if full else [],
                  error=job.error if full else hidden_error, details_hidden=not full,
                  created_at=job.created_at, started_at=job.started_at, finished_at=job.finished_at)


@router.post("/v1/collections/{name}/ingest", status_code=202, response_model=JobOut, responses=ERRORS,
             dependencies=[require("admin")], summary="Start a background ingest job")
def start_ingest(name: CollectionName, body: IngestRequest, state: StateDep, response: Response,
                 caller: AdminCaller) -> JobOut:
    name = state.resolve(name)
    validate_collection_name(name)
    client = state.client
    prepared: PreparedIngest
    own: tuple[FsPath, ...] = ()
    if body.documents is not None:
        state.check_batch(len(body.documents), "documents")
        for i, doc in enumerate(body.documents):
            state.check_text(doc.text, f"documents[{i}].text")
        documents = [Document(d.id, d.text, dict(d.metadata), origin=f"documents[{i}]")
                     for i, d in enumerate(body.documents)]
        prepared = client.prepare_ingest(documents, name, options=IngestOptions(batch_size=body.batch_size))
    else:
        assert body.path is not None
        path, root = ingest_file(body.path, caller.roots)  # only the key's own directories (roots.py)
        own = (root,)
        try:  # messages name the file relative to the key's directory (``x.csv:3``), never the server's path
            prepared = client.prepare_ingest(path, name, body.id_field, body.text_field, body.text_template,
                                             body.metadata_fields, IngestOptions(batch_size=body.batch_size))
        except VectorseamError as exc:
            raise type(exc)(state.scrub(str(exc), own, hide_others=False)) from None

    def work(progress: Progress) -> Outcome:
        # Other keys may read this job: its rejects and error name files relative to the directory read from
        try:
            report = prepared.run(progress)
        except VectorseamError as exc:
            raise type(exc)(state.scrub(str(exc), own, hide_others=False)) from None
        error = None
        if report.nothing_accepted:
            error = (f"nothing was written: every one of the {report.rejected} rows was rejected (the rejects say "
                     "why; is text_field, id_field or text_template right?)")
        return Outcome(report.written, [state.scrub(str(r), own, hide_others=False) for r in report.rejects], error)

    # the source and the embedder were checked: errors from now on are the job's, not a 4xx
    job = state.jobs.submit(name, work, caller.name, request_id_var.get())
    response.headers["Location"] = f"/v1/jobs/{job.id}"
    return job_out(job, caller)


@router.get("/v1/jobs/{job_id}", response_model=JobOut, responses=ERRORS, summary="Status of an ingest job")
def get_job(job_id: Annotated[str, Path(min_length=1, max_length=64)], state: StateDep,
            caller: ReadCaller) -> JobOut | JSONResponse:
    job = state.jobs.get(job_id)
    if job is None or not caller.sees(job.collection):  # another tenant's job does not exist for this key
        return _not_found(f"no ingest job {job_id!r} (the newest 200 finished jobs are kept)")
    return job_out(job, caller)


@router.get("/v1/jobs", response_model=list[JobOut], responses=ERRORS,
            summary="Recent ingest jobs into the collections this key may use, newest first")
def list_jobs(state: StateDep, caller: ReadCaller) -> list[JobOut]:
    return [job_out(j, caller) for j in state.jobs.all() if caller.sees(j.collection)]


def _floats(vector: Vector | None) -> list[float] | None:
    return None if vector is None else [float(x) for x in vector]


def _not_found(message: str) -> JSONResponse:
    return error_response(404, "not_found", message)
