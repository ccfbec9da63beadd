"""The asynchronous remote client: :class:`~vectorseam.remote.client.RemoteVectorSeam`'s methods as
coroutines, on :class:`httpx.AsyncClient`, for asyncio services (a FastAPI app answering its users by
asking vectorseam).

    async with AsyncRemoteVectorSeam("http://search.internal:8000", api_key="vs_...") as vs:
        hits = await vs.search("delicious beans", k=5, collection="reviews")

Every call is built by :mod:`vectorseam.remote.calls`, exactly as the sync client builds it, and retried
by :class:`~vectorseam.remote.transport.AsyncRetryTransport` with the same policy. Exports and snapshots
come as async iterators of chunks.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import IO, TypeVar

import httpx
import numpy as np
import numpy.typing as npt

from vectorseam.errors import StoreUnavailableError
from vectorseam.filters import FilterLike
from vectorseam.query import (
    CollectionDescription,
    Query,
    ScrollPage,
    SearchResult,
    Upserted,
    recommendation,
    text_query,
    vector_query,
)
from vectorseam.remote import calls
from vectorseam.remote.client import DEFAULT_TIMEOUT, auth_headers, snapshot_bytes, snapshot_name
from vectorseam.remote.transport import DEFAULT_POLICY, AsyncRetryTransport
from vectorseam.retrying import RetryPolicy
from vectorseam.types import CollectionInfo, Hit, Metric, Record

T = TypeVar("T")


class AsyncRemoteVectorSeam:
    """The search API of a ``vectorseam serve`` at ``url``, as coroutines (see the module docstring)."""

    def __init__(self, url: str, api_key: str | None = None, collection: str = "default",
                 timeout: float = DEFAULT_TIMEOUT, retry: RetryPolicy = DEFAULT_POLICY,
                 transport: httpx.AsyncBaseTransport | None = None, headers: Mapping[str, str] | None = None) -> None:
        self.url = url.rstrip("/")
        self.collection = collection
        self._http = httpx.AsyncClient(base_url=self.url, headers=auth_headers(api_key, headers), timeout=timeout,
                                       transport=AsyncRetryTransport(transport, retry))
        self._model: str | None = None

    def __repr__(self) -> str:
        return f"AsyncRemoteVectorSeam({self.url!r}, collection={self.collection!r})"

    def _name(self, collection: str | None) -> str:
        return collection or self.collection

    async def _run(self, call: calls.Call[T]) -> T:
        try:
            response = await self._http.request(call.method, call.path, json=call.json, params=call.params or None,
                                                content=call.content, headers=call.headers or None)
        except httpx.HTTPError as exc:
            raise StoreUnavailableError(f"cannot reach the vectorseam service at {self.url}: {exc}") from exc
        return call.finish(response)

    async def _stream(self, call: calls.Call[None]) -> AsyncIterator[bytes]:
        request = self._http.build_request(call.method, call.path, json=call.json, params=call.params or None)
        try:
            response = await self._http.send(request, stream=True)
        except httpx.HTTPError as exc:
            raise StoreUnavailableError(f"cannot reach the vectorseam service at {self.url}: {exc}") from exc
        if response.status_code >= 400:
            await response.aread()
            await response.aclose()
            raise calls.error_of(response)

        async def chunks() -> AsyncIterator[bytes]:
            try:
                async for chunk in response.aiter_bytes():
                    yield chunk
            finally:
                await response.aclose()

        return chunks()

    # -- the embedder (the server's) ---------------------------------------------------------------------
    async def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        if self._model is None:
            self._model = str((await self._run(calls.embedder_info()))["model"])
        if not texts:
            return np.zeros((0, 0), np.float32)
        return await self._run(calls.embeddings(texts, self._model))

    # -- collections and aliases -------------------------------------------------------------------------
    async def resolve(self, collection: str | None) -> str:
        name = self._name(collection)
        aliases = await self.list_aliases()
        seen = {name}
        while name in aliases and aliases[name] not in seen:
            name = aliases[name]
            seen.add(name)
        return name

    async def collections(self) -> list[CollectionInfo]:
        return await self._run(calls.collections())

    async def collection_info(self, collection: str | None = None) -> CollectionInfo:
        return await self._run(calls.collection_info(self._name(collection)))

    async def describe(self, collection: str | None = None) -> CollectionDescription:
        return await self._run(calls.describe(self._name(collection)))

    async def create_collection(self, name: str, dimension: int | None = None, metric: Metric = "cosine",
                                metadata: Mapping[str, str] | None = None) -> CollectionInfo:
        return await self._run(calls.create_collection(name, dimension, metric, metadata))

    async def drop_collection(self, collection: str) -> bool:
        return await self._run(calls.drop_collection(collection))

    async def set_alias(self, alias: str, collection: str) -> None:
        await self._run(calls.set_alias(alias, collection))

    async def remove_alias(self, alias: str) -> bool:
        return await self._run(calls.remove_alias(alias))

    async def list_aliases(self) -> dict[str, str]:
        return await self._run(calls.list_aliases())

    # -- search --------------------------------------------------------------------------------------------
    async def search(self, query: str, k: int = 10, filter: FilterLike = None, collection: str | None = None,
                     mode: str = "dense", mmr: float | None = None, profile: bool = True) -> list[Hit]:
        return (await self.query(text_query(query, k, filter, mode, mmr, profile), collection)).hits

    async def search_many(self, queries: Sequence[str], k: int = 10, filter: FilterLike = None,
                          collection: str | None = None, mode: str = "dense", mmr: float | None = None,
                          profile: bool = True) -> list[list[Hit]]:
        if not queries:
            return []
        name = self._name(collection)
        found = await self.multi_search([(name, text_query(q, k, filter, mode, mmr, profile)) for q in queries])
        return [r.hits for r in found]

    retrieve = search  # the name search had when it did not apply the tuned profile
    retrieve_many = search_many

    async def search_vector(self, vector: npt.ArrayLike, k: int = 10, filter: FilterLike = None,
                            collection: str | None = None, mmr: float | None = None) -> list[Hit]:
        return (await self.query(vector_query(vector, k, filter, mmr), collection)).hits

    async def recommend(self, positive: Sequence[str] | str, negative: Sequence[str] | str = (), k: int = 10,
                        filter: FilterLike = None, strategy: str = "average_vector",
                        collection: str | None = None) -> list[Hit]:
        return (await self.query(recommendation(positive, negative, k, filter, strategy), collection)).hits

    async def query(self, query: Query, collection: str | None = None) -> SearchResult:
        return await self._run(calls.query(query, self._name(collection)))

    async def multi_search(self, searches: Sequence[tuple[str | None, Query]]) -> list[SearchResult]:
        return await self._run(calls.multi_search([(self._name(c), q) for c, q in searches]))

    # -- records -------------------------------------------------------------------------------------------
    async def upsert(self, records: Sequence[Record], collection: str | None = None) -> Upserted:
        return await self._run(calls.upsert(records, self._name(collection)))

    async def fetch(self, ids: Sequence[str], collection: str | None = None,
                    include_vectors: bool = False) -> list[Record]:
        return await self._run(calls.fetch(ids, self._name(collection), include_vectors))

    async def delete(self, ids: Sequence[str] | None = None, filter: FilterLike = None,
                     collection: str | None = None) -> int:
        return await self._run(calls.delete(ids, filter, self._name(collection)))

    async def count(self, filter: FilterLike = None, collection: str | None = None) -> int:
        return await self._run(calls.count(filter, self._name(collection)))

    async def scroll(self, collection: str | None = None, filter: FilterLike = None, limit: int = 1000,
                     cursor: str | None = None, include_vectors: bool = False) -> ScrollPage:
        return await self._run(calls.scroll(self._name(collection), filter, limit, cursor, include_vectors))

    # -- export, import, snapshots -----------------------------------------------------------------------------
    async def export(self, collection: str | None = None, filter: FilterLike = None,
                     format: str = "ndjson") -> AsyncIterator[bytes]:
        return await self._stream(calls.export(self._name(collection), filter, format))

    async def import_records(self, source: IO[bytes], collection: str | None = None, format: str = "ndjson") -> int:
        return await self._run(calls.import_records(source.read(), self._name(collection), format))

    async def snapshot(self, collection: str | None = None) -> AsyncIterator[bytes]:
        return await self._stream(calls.snapshot(self._name(collection)))

    async def restore(self, source: str | os.PathLike[str] | IO[bytes], collection: str | None = None,
                      replace: bool = False) -> CollectionInfo:
        data = snapshot_bytes(source)
        return await self._run(calls.restore(data, collection or snapshot_name(data), replace))

    # -- lifetime --------------------------------------------------------------------------------------------
    async def close(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncRemoteVectorSeam:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
