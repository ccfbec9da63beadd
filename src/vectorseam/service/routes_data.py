"""Collections, records (upsert, fetch, delete) and background ingest jobs.

Record ids are any string up to 512 characters, ``/`` included (a directory source makes ids such as
``sub/c.txt``), so the single-record routes take the rest of the path (``{record_id:path}``), percent-
decoded: ``GET /v1/collections/c/records/sub/c.txt`` and ``.../records/a%20b%3F`` both work.
"""

from __future__ import annotations

from pathlib import Path as FsPath
from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, Depends, Path, Response
from fastapi.responses import JSONResponse

from vectorseam.client import Document, PreparedIngest
from vectorseam.errors import ValidationError
from vectorseam.service.auth import Caller
from vectorseam.service.jobs import Job, Outcome, Progress
from vectorseam.service.logs import request_id_var
from vectorseam.service.models import (
    CollectionOut,
    CollectionsResponse,
    DeleteRequest,
    DeleteResponse,
    ErrorResponse,
    FetchRequest,
    FetchResponse,
    IngestRequest,
    JobOut,
    RecordOut,
    UpsertRequest,
    UpsertResponse,
)
from vectorseam.service.responses import error_response
from vectorseam.service.state import ServiceState, get_state, require
from vectorseam.types import Record, Vector, validate_collection_name

router = APIRouter(tags=["data"])
CollectionName = Annotated[str, Path(min_length=1, max_length=63, description="collection name")]
RecordIdPath = Annotated[str, Path(min_length=1, max_length=512, description="record id ('/' allowed)")]
StateDep = Annotated[ServiceState, Depends(get_state)]
ReadCaller = Annotated[Caller, require("read")]
AdminCaller = Annotated[Caller, require("admin")]
ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse} for code in (400, 401, 403, 404, 409, 413, 422)
}


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
def get_record(name: CollectionName, record_id: RecordIdPath, state: StateDep) -> RecordOut | JSONResponse:
    name = state.resolve(name)
    found = state.client.fetch([record_id], name)
    if not found:
        return _not_found(f"no record with id {record_id!r} in collection {name!r}")
    r = found[0]
    return RecordOut(id=r.id, text=r.text, metadata=r.metadata)


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
    """A job as ``caller`` may see it: rejects and errors name server files and quote rows, so only
    admin keys and the key that started the job get them."""
    full = caller.scope == "admin" or caller.name == job.owner
    hidden_error = "the job failed; admin keys see why" if job.error is not None else None
    return JobOut(id=job.id, collection=job.collection, state=job.state, written=job.written,
                  rejected=job.rejected, rejects=job.rejects if full else [],
                  error=job.error if full else hidden_error, details_hidden=not full,
                  created_at=job.created_at, started_at=job.started_at, finished_at=job.finished_at)


def _allowed_path(state: ServiceState, raw: str) -> FsPath:
    """Only files under ``service.ingest_dirs`` may be read: an API key must not mean read-any-file."""
    roots = [FsPath(d).resolve() for d in state.settings.ingest_dirs]
    if not roots:
        raise ValidationError("this server reads no files for ingest (service.ingest_dirs is empty); "
                              "send the documents in the request body instead")
    shown = raw if len(raw) <= 200 else raw[:200] + "..."
    if "\x00" in raw:
        raise ValidationError(f"path {shown!r} contains a NUL character, which no file name can")
    path = FsPath(raw)
    try:  # a name over the file system's limits (ENAMETOOLONG) fails here, not as a 500
        resolved = (path if path.is_absolute() else roots[0] / path).resolve()
        if not any(resolved.is_relative_to(root) for root in roots):
            raise ValidationError(f"path {shown!r} is outside the directories this server may ingest from "
                                  f"(service.ingest_dirs: {', '.join(map(str, roots))})")
        if not resolved.is_file():
            raise ValidationError(f"path {shown!r}: no such file under the ingest directories")
    except OSError as exc:
        raise ValidationError(f"path {shown!r} cannot be read: {exc.strerror or type(exc).__name__}") from None
    return resolved


@router.post("/v1/collections/{name}/ingest", status_code=202, response_model=JobOut, responses=ERRORS,
             dependencies=[require("admin")], summary="Start a background ingest job")
def start_ingest(name: CollectionName, body: IngestRequest, state: StateDep, response: Response,
                 caller: AdminCaller) -> JobOut:
    name = state.resolve(name)
    validate_collection_name(name)
    client = state.client
    prepared: PreparedIngest
    if body.documents is not None:
        state.check_batch(len(body.documents), "documents")
        for i, doc in enumerate(body.documents):
            state.check_text(doc.text, f"documents[{i}].text")
        documents = [Document(d.id, d.text, dict(d.metadata), origin=f"documents[{i}]")
                     for i, d in enumerate(body.documents)]
        prepared = client.prepare_ingest(documents, name, batch_size=body.batch_size)
    else:
        assert body.path is not None
        prepared = client.prepare_ingest(
            _allowed_path(state, body.path), name, batch_size=body.batch_size, id_field=body.id_field,
            text_field=body.text_field, text_template=body.text_template, metadata_fields=body.metadata_fields)

    def work(progress: Progress) -> Outcome:
        report = prepared.run(progress)
        return Outcome(report.written, [str(r) for r in report.rejects])

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
