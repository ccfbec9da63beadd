"""Every API call as data: the request to send and how to read its answer, shared by the sync and the
async client so that each of their methods is one line and the two cannot drift apart.

The JSON shapes are the service's (:mod:`vectorseam.service.models`); the answers become the library's
own types (:class:`~vectorseam.types.Hit`, :class:`~vectorseam.query.SearchResult`, ...), and an error
answer becomes the library's own exception for it (:func:`error_of`), so ``except CollectionNotFoundError``
works the same against the facade and against a server.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar
from urllib.parse import quote

import httpx
import numpy as np
import numpy.typing as npt

from vectorseam import errors
from vectorseam.filters import FilterLike
from vectorseam.query import (
    CollectionDescription,
    FacetValue,
    Group,
    Highlight,
    Query,
    ScrollPage,
    SearchOptions,
    SearchResult,
    Upserted,
    filter_dict,
)
from vectorseam.types import CollectionInfo, Hit, Metric, Record, ids_list

T = TypeVar("T")


class RemoteAuthError(errors.VectorseamError):
    """The server refused the API key (401) or its scope (403)."""


class RemoteServerError(errors.VectorseamError):
    """The server failed (500); its log holds the details under the request id in the message."""


@dataclass(frozen=True)
class Call(Generic[T]):
    method: str
    path: str
    parse: Callable[[Any], T]
    json: Any = None
    params: dict[str, str] = field(default_factory=dict)
    content: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)

    def finish(self, response: httpx.Response) -> T:
        if response.status_code >= 400:
            raise error_of(response)
        return self.parse(response.json())


def error_of(response: httpx.Response) -> errors.VectorseamError:
    """The library's exception for an error answer (its message is the server's own)."""
    try:
        body = response.json()
        detail = body.get("error", {}) if isinstance(body, dict) else {}
        message = str(detail.get("message") or response.reason_phrase)
        kind = str(detail.get("type") or "")
        request_id = body.get("request_id") if isinstance(body, dict) else None
    except ValueError:
        message, kind, request_id = response.text[:500] or response.reason_phrase, "", None
    status = response.status_code
    if status in (401, 403):
        return RemoteAuthError(message)
    if status == 404:
        return errors.CollectionNotFoundError(message) if kind == "not_found" else errors.ValidationError(message)
    if kind == "invalid_filter":
        return errors.FilterError(message)
    if kind == "embedder_mismatch":
        return errors.EmbedderMismatchError(message)
    if kind == "unsupported_operation":
        return errors.UnsupportedOperationError(message)
    if status in (429, 503, 504) or kind == "store_unavailable":
        return errors.StoreUnavailableError(f"{message} (the server at {response.request.url.host} answered "
                                            f"{status} after the client's retries)")
    if status == 502 or kind == "embedding_error":
        return errors.EmbeddingError(message)
    if status >= 500:
        return RemoteServerError(f"{message} (HTTP {status}{f', request id {request_id}' if request_id else ''})")
    return errors.ValidationError(message)


def _name(collection: str) -> str:
    return quote(collection, safe="")


# -- reading answers --------------------------------------------------------------------------------

def _vector(raw: Any) -> npt.NDArray[np.float32] | None:
    return None if raw is None else np.asarray(raw, dtype=np.float32)


def hit_of(raw: Mapping[str, Any]) -> Hit:
    return Hit(raw["id"], float(raw["score"]), raw["text"], dict(raw["metadata"]), _vector(raw.get("vector")))


def record_of(raw: Mapping[str, Any]) -> Record:
    return Record(raw["id"], _vector(raw.get("vector")), raw["text"], dict(raw["metadata"]))


def info_of(raw: Mapping[str, Any]) -> CollectionInfo:
    return CollectionInfo(raw["name"], int(raw["dimension"]), raw["metric"], dict(raw["metadata"]), int(raw["count"]))


def description_of(raw: Mapping[str, Any]) -> CollectionDescription:
    return CollectionDescription(info_of(raw), raw.get("fingerprint"), int(raw["vector_bytes"]),
                                 list(raw["aliases"]), bool(raw["tuned"]))


def result_of(raw: Mapping[str, Any]) -> SearchResult:
    highlights: dict[str, Highlight] = {}
    for h in raw["hits"] + [h for g in raw.get("groups") or [] for h in g["hits"]]:
        mark = h.get("highlight")
        if mark is not None:
            highlights[h["id"]] = Highlight(tuple(mark["terms"]), mark["snippet"],
                                            tuple((int(a), int(b)) for a, b in mark["spans"]), int(mark["offset"]))
    groups = raw.get("groups")
    return SearchResult(
        hits=[hit_of(h) for h in raw["hits"]],
        groups=None if groups is None else [Group(g["value"], [hit_of(h) for h in g["hits"]]) for g in groups],
        facets={name: [FacetValue(v["value"], int(v["count"])) for v in values]
                for name, values in (raw.get("facets") or {}).items()},
        highlights=highlights, next_cursor=raw.get("next_cursor"))


# -- the calls ----------------------------------------------------------------------------------------

def collections() -> Call[list[CollectionInfo]]:
    return Call("GET", "/v1/collections", lambda body: [info_of(c) for c in body["collections"]])


def describe(collection: str) -> Call[CollectionDescription]:
    return Call("GET", f"/v1/collections/{_name(collection)}", description_of)


def collection_info(collection: str) -> Call[CollectionInfo]:
    return Call("GET", f"/v1/collections/{_name(collection)}", info_of)


def create_collection(name: str, dimension: int | None, metric: Metric,
                      metadata: Mapping[str, str] | None) -> Call[CollectionInfo]:
    body: dict[str, Any] = {"metric": metric, "metadata": dict(metadata or {})}
    if dimension is not None:
        body["dimension"] = dimension
    return Call("PUT", f"/v1/collections/{_name(name)}", info_of, json=body)


def drop_collection(collection: str) -> Call[bool]:
    return Call("DELETE", f"/v1/collections/{_name(collection)}", lambda body: bool(body["dropped"]))


def list_aliases() -> Call[dict[str, str]]:
    return Call("GET", "/v1/aliases", lambda body: {a["alias"]: a["collection"] for a in body["aliases"]})


def set_alias(alias: str, collection: str) -> Call[None]:
    return Call("PUT", f"/v1/aliases/{_name(alias)}", lambda body: None, json={"collection": collection})


def remove_alias(alias: str) -> Call[bool]:
    return Call("DELETE", f"/v1/aliases/{_name(alias)}", lambda body: bool(body["removed"]))


def search_body(query: Query) -> tuple[str, dict[str, Any]]:
    """The route (search or recommend) and the JSON body of ``query``."""
    options = {name: value for name, value in query.options().model_dump(mode="json").items()
               if value != SearchOptions.model_fields[name].default}
    body: dict[str, Any] = {"k": query.k, **options}
    if query.filter is not None:
        body["filter"] = filter_dict(query.filter)
    if query.include_vectors:
        body["include_vectors"] = True
    if query.positive:
        body.update(positive=list(query.positive), negative=list(query.negative), strategy=query.strategy)
        return "recommend", body
    body["mode"] = query.mode
    if query.text is not None:
        body["query"] = query.text
        if query.vector is not None:
            body["query_vector"] = list(query.vector)
    else:
        body["vector"] = list(query.vector or ())
    for name in ("mmr", "candidates", "weights"):
        if getattr(query, name) is not None:
            body[name] = getattr(query, name)
    if not query.profile:
        body["profile"] = False
    return "search", body


def query(query: Query, collection: str) -> Call[SearchResult]:
    route, body = search_body(query)
    return Call("POST", f"/v1/collections/{_name(collection)}/{route}", result_of, json=body)


def multi_search(searches: Sequence[tuple[str, Query]]) -> Call[list[SearchResult]]:
    items = []
    for collection, q in searches:
        route, body = search_body(q)
        if route != "search":
            raise errors.ValidationError("several searches in one request take query text or vectors; send a "
                                         "recommendation with query()")
        items.append({"collection": collection, **body})
    return Call("POST", "/v1/search", lambda body: [result_of(r) for r in body["results"]], json={"searches": items})


def upsert(records: Sequence[Record], collection: str) -> Call[Upserted]:
    body = {"records": [{"id": r.id, "text": r.text, "metadata": r.metadata,
                         **({} if r.vector is None else {"vector": np.asarray(r.vector, np.float32).tolist()})}
                        for r in records]}
    return Call("POST", f"/v1/collections/{_name(collection)}/records",
                lambda out: Upserted(int(out["written"]), int(out["embedded"])), json=body)


def fetch(ids: Sequence[str], collection: str, include_vectors: bool) -> Call[list[Record]]:
    return Call("POST", f"/v1/collections/{_name(collection)}/records/fetch",
                lambda body: [record_of(r) for r in body["records"]],
                json={"ids": ids_list(ids), "include_vectors": include_vectors})


def delete(ids: Sequence[str] | None, filter: FilterLike, collection: str) -> Call[int]:
    body: dict[str, Any] = {"ids": ids_list(ids)} if ids is not None else {"filter": filter_dict(filter)}
    if ids is not None and filter is not None:
        raise errors.ValidationError("delete by ids or by filter, not both")
    return Call("POST", f"/v1/collections/{_name(collection)}/records/delete", lambda out: int(out["deleted"]),
                json=body)


def count(filter: FilterLike, collection: str) -> Call[int]:
    return Call("POST", f"/v1/collections/{_name(collection)}/count", lambda body: int(body["count"]),
                json={"filter": filter_dict(filter)})


def scroll(collection: str, filter: FilterLike, limit: int, cursor: str | None,
           include_vectors: bool) -> Call[ScrollPage]:
    return Call("POST", f"/v1/collections/{_name(collection)}/scroll",
                lambda body: ScrollPage([record_of(r) for r in body["records"]], body.get("next_cursor")),
                json={"filter": filter_dict(filter), "limit": limit, "cursor": cursor,
                      "include_vectors": include_vectors})


def export(collection: str, filter: FilterLike, format: str) -> Call[None]:
    """Streamed by the client (its body is the export, not JSON)."""
    return Call("POST", f"/v1/collections/{_name(collection)}/export", lambda body: None,
                json={"filter": filter_dict(filter), "format": format})


def snapshot(collection: str) -> Call[None]:
    return Call("GET", f"/v1/collections/{_name(collection)}/snapshot", lambda body: None)


def import_records(data: bytes, collection: str, format: str) -> Call[int]:
    return Call("POST", f"/v1/collections/{_name(collection)}/import", lambda body: int(body["written"]),
                params={"format": format}, content=data, headers={"Content-Type": "application/octet-stream"})


def restore(data: bytes, collection: str, replace: bool) -> Call[CollectionInfo]:
    return Call("POST", f"/v1/collections/{_name(collection)}/snapshot", info_of,
                params={"replace": "true" if replace else "false"}, content=data,
                headers={"Content-Type": "application/octet-stream"})


def embedder_info() -> Call[dict[str, Any]]:
    return Call("GET", "/v1/embedder", dict)


def embeddings(texts: Sequence[str], model: str) -> Call[npt.NDArray[np.float32]]:
    def parse(body: Any) -> npt.NDArray[np.float32]:
        rows = sorted(body["data"], key=lambda d: d["index"])
        if not rows:
            return np.zeros((0, 0), np.float32)
        return np.stack([np.frombuffer(base64.b64decode(d["embedding"]), dtype="<f4") for d in rows]).astype(np.float32)

    return Call("POST", "/v1/embeddings", parse, json={"input": list(texts), "model": model,
                                                        "encoding_format": "base64"})
