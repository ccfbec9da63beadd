"""Collection blobs in Qdrant beyond the conformance mixin (which test_qdrant_conformance_local runs): the
companion collection that holds them is no collection of the user's."""

from __future__ import annotations

from vectorseam_qdrant.blobs import BLOBS
from vectorseam_qdrant.store import create_store

from vectorseam.testing.conformance import unique_collection_name
from vectorseam.types import CollectionSpec


def test_the_blob_collection_is_not_listed() -> None:
    store = create_store(location=":memory:")
    name = unique_collection_name("listed")
    store.ensure_collection(CollectionSpec(name, 4, "cosine"))
    store.put_blob(name, "profile", b"x")
    names = [c.name for c in store.collections()]
    assert names == [name] and BLOBS not in names
    assert store.drop_collection(name) and store.collections() == []
    store.close()
