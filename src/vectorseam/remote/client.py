"""The remote client: :class:`vectorseam.client.VectorSeam`'s search API over HTTP, against ``vectorseam serve``.

    from vectorseam.remote import RemoteVectorSeam

    with RemoteVectorSeam("http://search.internal:8000", api_key="vs_...", collection="reviews") as vs:
        for hit in vs.search("delicious beans", k=5):
            print(hit.score, hit.id, hit.text)

The same method names, arguments and return types as the facade (both satisfy
:class:`vectorseam.api.VectorSeamAPI`), so code written against one runs against the other. What
differs is where the work happens: the server embeds texts, resolves aliases, applies tuned profiles and
enforces its limits and the key's scope. Errors are the library's own (``CollectionNotFoundError``,
``FilterError``, ...) carrying the server's message; a 429 or 5xx is retried in the transport
(:mod:`vectorseam.remote.transport`) with the shared :class:`~vectorseam.retrying.RetryPolicy`.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator, Mapping, Sequence
from functools import cached_property
from pathlib import Path
from typing import IO, TypeVar

import httpx
import numpy as np
import numpy.typing as npt

from vectorseam.api import QueryShortcuts
from vectorseam.durable import atomic_write
from vectorseam.errors import StoreUnavailableError, ValidationError
from vectorseam.filters import FilterLike
from vectorseam.ingest.portable import open_snapshot
from vectorseam.query import (
    CollectionDescription,
    Query,
    ScrollPage,
    SearchResult,
    Upserted,
    text_query,
)
from vectorseam.remote import calls
from vectorseam.remote.embedder import RemoteEmbedder
from vectorseam.remote.transport import DEFAULT_POLICY, RetryTransport
from vectorseam.retrying import RetryPolicy
from vectorseam.types import CollectionInfo, Hit, Metric, Record

T = TypeVar("T")
DEFAULT_TIMEOUT = 60.0


def auth_headers(api_key: str | None, headers: Mapping[str, str] | None) -> dict[str, str]:
    out = {"User-Agent": "vectorseam-remote/0.1", **dict(headers or {})}
    if api_key:
        out["Authorization"] = f"Bearer {api_key}"
    return out


def snapshot_bytes(source: str | os.PathLike[str] | IO[bytes]) -> bytes:
    data = Path(source).read_bytes() if isinstance(source, str | os.PathLike) else source.read()
    if not data:
        raise ValidationError("the snapshot is empty")
    return data


def snapshot_name(data: bytes) -> str:
    """The collection name a snapshot file holds (read from its footer, here, before uploading it)."""
    header = open_snapshot(io.BytesIO(data)).header
    assert header is not None
    return header.collection


class RemoteVectorSeam(QueryShortcuts):
    """The search API of a ``vectorseam serve`` at ``url`` (see the module docstring).

    ``collection`` is the default for calls that name none (the facade's is ``settings.collection``);
    ``retry`` the policy for 429/5xx answers and connection failures; ``transport`` an httpx transport to
    send through (the retrying transport wraps it; tests pass :class:`httpx.MockTransport`)."""

    def __init__(self, url: str, api_key: str | None = None, collection: str = "default",
                 timeout: float = DEFAULT_TIMEOUT, retry: RetryPolicy = DEFAULT_POLICY,
                 transport: httpx.BaseTransport | None = None, headers: Mapping[str, str] | None = None) -> None:
        self.url = url.rstrip("/")
        self.collection = collection
        self._http = httpx.Client(base_url=self.url, headers=auth_headers(api_key, headers), timeout=timeout,
                                  transport=RetryTransport(transport, retry))

    def __repr__(self) -> str:
        return f"RemoteVectorSeam({self.url!r}, collection={self.collection!r})"

    def _name(self, collection: str | None) -> str:
        return collection or self.collection

    def _run(self, call: calls.Call[T]) -> T:
        try:
            response = self._http.request(call.method, call.path, json=call.json, params=call.params or None,
                                          content=call.content, headers=call.headers or None)
        except httpx.HTTPError as exc:
            raise StoreUnavailableError(f"cannot reach the vectorseam service at {self.url}: {exc}") from exc
        return call.finish(response)

    def _stream(self, call: calls.Call[None]) -> Iterator[bytes]:
        """The body of ``call`` as chunks; the status is checked before this returns (errors raise here)."""
        request = self._http.build_request(call.method, call.path, json=call.json, params=call.params or None)
        try:
            response = self._http.send(request, stream=True)
        except httpx.HTTPError as exc:
            raise StoreUnavailableError(f"cannot reach the vectorseam service at {self.url}: {exc}") from exc
        if response.status_code >= 400:
            response.read()
            response.close()
            raise calls.error_of(response)

        def chunks() -> Iterator[bytes]:
            try:
                yield from response.iter_bytes()
            finally:
                response.close()

        return chunks()

    # -- the embedder (the server's) -------------------------------------------------------------------
    @cached_property
    def embedder(self) -> RemoteEmbedder:
        """The server's embedder, embedding through ``POST /v1/embeddings`` (float32 exact)."""
        info = self._run(calls.embedder_info())
        return RemoteEmbedder(str(info["fingerprint"]), int(info["dimension"]), str(info["model"]),
                              lambda texts: self._run(calls.embeddings(texts, str(info["model"]))))

    @property
    def model_name(self) -> str:
        return self.embedder.model

    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        return self.embedder.embed_documents(texts)

    # -- collections and aliases -----------------------------------------------------------------------
    def resolve(self, collection: str | None) -> str:
        """The collection a name means on the server (aliases followed)."""
        name = self._name(collection)
        aliases = self.list_aliases()
        seen = {name}
        while name in aliases and aliases[name] not in seen:
            name = aliases[name]
            seen.add(name)
        return name

    def collections(self) -> list[CollectionInfo]:
        return self._run(calls.collections())

    def collection_info(self, collection: str | None = None) -> CollectionInfo:
        return self._run(calls.collection_info(self._name(collection)))

    def describe(self, collection: str | None = None) -> CollectionDescription:
        return self._run(calls.describe(self._name(collection)))

    def create_collection(self, name: str, dimension: int | None = None, metric: Metric = "cosine",
                          metadata: Mapping[str, str] | None = None) -> CollectionInfo:
        return self._run(calls.create_collection(name, dimension, metric, metadata))

    def drop_collection(self, collection: str) -> bool:
        return self._run(calls.drop_collection(collection))

    def set_alias(self, alias: str, collection: str) -> None:
        self._run(calls.set_alias(alias, collection))

    def remove_alias(self, alias: str) -> bool:
        return self._run(calls.remove_alias(alias))

    def list_aliases(self) -> dict[str, str]:
        return self._run(calls.list_aliases())

    # -- search ------------------------------------------------------------------------------------------
    def search_many(self, queries: Sequence[str], k: int = 10, filter: FilterLike = None,
                    collection: str | None = None, mode: str = "dense", mmr: float | None = None,
                    profile: bool = True) -> list[list[Hit]]:
        """One request for all of them (``POST /v1/search``)."""
        if not queries:
            return []
        name = self._name(collection)
        found = self.multi_search([(name, text_query(q, k, filter, mode, mmr, profile)) for q in queries])
        return [r.hits for r in found]

    retrieve_many = search_many

    def query(self, query: Query, collection: str | None = None) -> SearchResult:
        return self._run(calls.query(query, self._name(collection)))

    def multi_search(self, searches: Sequence[tuple[str | None, Query]]) -> list[SearchResult]:
        return self._run(calls.multi_search([(self._name(c), q) for c, q in searches]))

    # -- records -----------------------------------------------------------------------------------------
    def upsert(self, records: Sequence[Record], collection: str | None = None) -> Upserted:
        return self._run(calls.upsert(records, self._name(collection)))

    def fetch(self, ids: Sequence[str], collection: str | None = None, include_vectors: bool = False) -> list[Record]:
        return self._run(calls.fetch(ids, self._name(collection), include_vectors))

    def delete(self, ids: Sequence[str] | None = None, filter: FilterLike = None,
               collection: str | None = None) -> int:
        return self._run(calls.delete(ids, filter, self._name(collection)))

    def count(self, filter: FilterLike = None, collection: str | None = None) -> int:
        return self._run(calls.count(filter, self._name(collection)))

    def scroll(self, collection: str | None = None, filter: FilterLike = None, limit: int = 1000,
               cursor: str | None = None, include_vectors: bool = False) -> ScrollPage:
        return self._run(calls.scroll(self._name(collection), filter, limit, cursor, include_vectors))

    # -- export, import, snapshots ---------------------------------------------------------------------------
    def export(self, collection: str | None = None, filter: FilterLike = None,
               format: str = "ndjson") -> Iterator[bytes]:
        return self._stream(calls.export(self._name(collection), filter, format))

    def import_records(self, source: IO[bytes], collection: str | None = None, format: str = "ndjson") -> int:
        """One request with the whole of ``source`` (the server's ``service.max_body_bytes`` bounds it)."""
        return self._run(calls.import_records(source.read(), self._name(collection), format))

    def snapshot(self, collection: str | None = None) -> Iterator[bytes]:
        return self._stream(calls.snapshot(self._name(collection)))

    def save_snapshot(self, path: str | os.PathLike[str], collection: str | None = None) -> Path:
        return atomic_write(path, self.snapshot(collection))

    def restore(self, source: str | os.PathLike[str] | IO[bytes], collection: str | None = None,
                replace: bool = False) -> CollectionInfo:
        """Upload a snapshot into ``collection`` (default: the snapshot's own name, as for the facade)."""
        data = snapshot_bytes(source)
        return self._run(calls.restore(data, collection or snapshot_name(data), replace))

    # -- lifetime ------------------------------------------------------------------------------------------
    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> RemoteVectorSeam:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
