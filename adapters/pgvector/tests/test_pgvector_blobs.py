"""Collection blobs in PostgreSQL beyond the conformance mixin (which test_pgvector_conformance runs): two
store objects over one database stand for two processes, and each sees the other's write at once."""

from __future__ import annotations

from collections.abc import Callable

from vectorseam_pgvector import PgVectorStore

from vectorseam.testing.conformance import unique_collection_name
from vectorseam.types import CollectionSpec


def test_a_second_store_sees_a_blob_at_once(make_store: Callable[..., PgVectorStore]) -> None:
    one = make_store(index="exact")
    other = make_store(index="exact", schema=one.options.schema)
    name = unique_collection_name("shared")
    one.ensure_collection(CollectionSpec(name, 4, "cosine"))
    one.put_blob(name, "profile", b"one")
    assert other.get_blob(name, "profile") == b"one"
    other.put_blob(name, "profile", b"two")
    assert one.get_blob(name, "profile") == b"two"
    assert other.drop_collection(name) and one.collections() == []
