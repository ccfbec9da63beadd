"""``BlobTests``: collection blobs (:class:`~vectorseam.store.CollectionBlobs` stores), the ability a tuned
retrieval profile is kept with its collection through."""

from __future__ import annotations

import os

import pytest

from vectorseam.errors import CollectionNotFoundError
from vectorseam.store import CollectionBlobs, VectorStore
from vectorseam.testing.conformance.base import ConformanceBase


class BlobTests(ConformanceBase):
    def _blobs(self, store: VectorStore) -> CollectionBlobs:
        return self.require(store, CollectionBlobs,  # type: ignore[type-abstract]
                            "blobs are kept with collections only by stores that can")

    def test_blob_round_trip_replace_and_delete(self, store: VectorStore, collection_name: str) -> None:
        blobs = self._blobs(store)
        self.create(store, collection_name)
        assert blobs.get_blob(collection_name, "profile") is None
        data = os.urandom(300_000) + b"\x00\xff"  # binary, NUL bytes included, larger than a page
        blobs.put_blob(collection_name, "profile", data)
        assert blobs.get_blob(collection_name, "profile") == data
        blobs.put_blob(collection_name, "profile", b"v2")
        blobs.put_blob(collection_name, "profile.version", b"")
        assert blobs.get_blob(collection_name, "profile") == b"v2"
        assert blobs.get_blob(collection_name, "profile.version") == b""
        assert blobs.delete_blob(collection_name, "profile") and not blobs.delete_blob(collection_name, "profile")
        assert blobs.get_blob(collection_name, "profile") is None
        assert blobs.get_blob(collection_name, "profile.version") == b""

    def test_blobs_belong_to_their_collection(self, store: VectorStore, collection_name: str) -> None:
        blobs = self._blobs(store)
        other = collection_name + "_b"
        self.create(store, collection_name)
        self.create(store, other)
        blobs.put_blob(collection_name, "profile", b"a")
        assert blobs.get_blob(other, "profile") is None
        with pytest.raises(CollectionNotFoundError):
            blobs.get_blob(collection_name + "_absent", "profile")
        with pytest.raises(CollectionNotFoundError):
            blobs.put_blob(collection_name + "_absent", "profile", b"x")
        # a dropped collection takes its blobs along: one created again under the name starts without
        assert store.drop_collection(collection_name)
        self.create(store, collection_name)
        assert blobs.get_blob(collection_name, "profile") is None

    def test_blobs_survive_reopening(self, store: VectorStore, collection_name: str) -> None:
        self._blobs(store)
        if not store.capabilities.persistent or not self.reopens():
            pytest.skip(f"the {store.capabilities.name} store here keeps nothing across a reopen")
        self.create(store, collection_name)
        self._blobs(store).put_blob(collection_name, "profile", b"kept")
        again = self._reopen(store)
        assert self._blobs(again).get_blob(collection_name, "profile") == b"kept"
