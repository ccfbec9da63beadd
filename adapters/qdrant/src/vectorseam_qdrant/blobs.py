"""Collection blobs (:class:`vectorseam.store.CollectionBlobs`) in Qdrant: small named byte strings kept with a
collection, such as its tuned retrieval profile.

They live in one companion collection, ``_vectorseam_blobs``, a point per (collection, name) with the
bytes in its payload (base64) and a one-dimensional placeholder vector. Not in the collection's own
metadata: that is read on every ``collection_info``, and a profile (a 384 x 384 adapter is 0.6 MB)
would travel with each of those reads. Not as a point of the collection itself: it would be counted,
scanned and searched. Every client of the same Qdrant (server or local folder) sees a blob as soon as
the write returns; dropping a collection removes its blobs; the companion collection has no
vectorseam spec, so listings leave it out.
"""

from __future__ import annotations

import base64
import uuid
from typing import TYPE_CHECKING, Any, TypeVar

from qdrant_client import models

from vectorseam.contract import check_blob_name
from vectorseam.errors import ValidationError

if TYPE_CHECKING:
    from collections.abc import Callable

    from qdrant_client import QdrantClient

BLOBS = "_vectorseam_blobs"
_NAMESPACE = uuid.UUID("0b6a3f9e-51c2-5e7d-8f14-9a3c2d7e6b10")
T = TypeVar("T")


def _point_id(collection: str, name: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, f"{collection}\x00{name}"))


class QdrantBlobs:
    """The :class:`~vectorseam.store.CollectionBlobs` methods of :class:`~vectorseam_qdrant.store.QdrantStore`."""

    if TYPE_CHECKING:
        _client: QdrantClient

        def _call(self, what: str, fn: Callable[[], T], collection: str | None = None) -> T: ...

        def _get(self, name: str) -> Any: ...

    def _blob_collection(self, create: bool) -> bool:
        """Whether the companion collection exists (made first when ``create``)."""
        if self._call("checking the blob collection", lambda: self._client.collection_exists(BLOBS)):
            return True
        if not create:
            return False
        try:
            self._call("creating the blob collection", lambda: self._client.create_collection(
                BLOBS, vectors_config=models.VectorParams(size=1, distance=models.Distance.DOT)))
        except Exception:  # another process made it meanwhile
            if not self._call("checking the blob collection", lambda: self._client.collection_exists(BLOBS)):
                raise
        return True

    def get_blob(self, collection: str, name: str) -> bytes | None:
        key = check_blob_name(name)
        self._get(collection)  # CollectionNotFoundError for an absent collection
        if not self._blob_collection(create=False):
            return None
        points = self._call(f"reading blob {key!r} of {collection!r}", lambda: self._client.retrieve(
            BLOBS, [_point_id(collection, key)], with_payload=True, with_vectors=False))
        if not points or not points[0].payload:
            return None
        return base64.b64decode(str(points[0].payload["data"]))

    def put_blob(self, collection: str, name: str, data: bytes) -> None:
        key = check_blob_name(name)
        if not isinstance(data, bytes | bytearray | memoryview):
            raise ValidationError(f"a blob is bytes, got {type(data).__name__}")
        self._get(collection)
        self._blob_collection(create=True)
        point = models.PointStruct(id=_point_id(collection, key), vector=[1.0], payload={
            "collection": collection, "name": key, "data": base64.b64encode(bytes(data)).decode("ascii")})
        self._call(f"writing blob {key!r} of {collection!r}",
                   lambda: self._client.upsert(BLOBS, [point], wait=True))

    def delete_blob(self, collection: str, name: str) -> bool:
        key = check_blob_name(name)
        self._get(collection)
        if self.get_blob(collection, key) is None:
            return False
        self._call(f"deleting blob {key!r} of {collection!r}", lambda: self._client.delete(
            BLOBS, models.PointIdsList(points=[_point_id(collection, key)]), wait=True))
        return True

    def _drop_blobs(self, collection: str) -> None:
        """Remove every blob of ``collection`` (its drop calls this)."""
        if not self._blob_collection(create=False):
            return
        selector = models.FilterSelector(filter=models.Filter(must=[
            models.FieldCondition(key="collection", match=models.MatchValue(value=collection))]))
        self._call(f"deleting the blobs of {collection!r}", lambda: self._client.delete(BLOBS, selector, wait=True))
