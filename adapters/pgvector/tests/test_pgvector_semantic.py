"""End to end with the real embedding model: sentences in, nearest sentences out, through PostgreSQL.

The pgvector store (HNSW and exact) must rank exactly as the in-memory reference store does on the
same real 384-dimensional embeddings, and the top answers must be the topical ones.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from vectorseam_pgvector import PgVectorStore

from vectorseam.embedders.local import LocalEmbedder
from vectorseam.stores.memory import MemoryStore
from vectorseam.types import CollectionSpec, Record

SENTENCES = {
    "pasta": "Whole wheat spaghetti cooks in nine minutes and tastes nutty.",
    "beans": "These canned black beans are delicious in a burrito.",
    "coffee": "The espresso roast is bitter but rich, great with milk.",
    "delivery": "The parcel arrived two weeks late and the box was crushed.",
    "refund": "Customer service refused to refund my damaged order.",
    "dog": "My dog loves these chicken treats and begs for more.",
    "cat": "The cat food made my kitten sick, avoid it.",
    "tea": "A soothing green tea with a hint of jasmine.",
    "chips": "Salty potato chips, very crunchy, a bit greasy.",
    "soup": "Tomato soup from the can needed extra salt and basil.",
}
QUERIES = {
    "late shipping, package damaged": "delivery",
    "food for my puppy": "dog",
    "a hot drink to relax": "tea",
    "noodles made from whole grain": "pasta",
}


@pytest.mark.slow
def test_real_embeddings_rank_like_the_reference(make_store: Callable[..., PgVectorStore]) -> None:
    embedder = LocalEmbedder()
    ids = list(SENTENCES)
    vectors = embedder.embed_documents([SENTENCES[i] for i in ids])
    records = [
        Record(i, vectors[n], SENTENCES[i], {"topic": "pets" if i in ("dog", "cat") else "food"})
        for n, i in enumerate(ids)
    ]
    spec = CollectionSpec("reviews", embedder.dimension, "cosine", {"embedder": embedder.fingerprint})
    reference = MemoryStore()
    reference.ensure_collection(spec)
    reference.upsert("reviews", records)
    for index in ("hnsw", "exact"):
        store = make_store(index=index)
        assert store.ensure_collection(spec).metadata["embedder"] == embedder.fingerprint
        store.upsert("reviews", records)
        for query, topical in QUERIES.items():
            q = embedder.embed_query(query)
            hits = store.query("reviews", q, k=3)[0]
            want = reference.query("reviews", q, k=3)[0]
            assert [h.id for h in hits] == [h.id for h in want], query
            assert [round(h.score, 4) for h in hits] == [round(h.score, 4) for h in want], query
            assert hits[0].id == topical, f"{query!r} -> {[h.id for h in hits]}"
        pets = store.query("reviews", embedder.embed_query("pet food"), k=5, filter={"topic": "pets"})[0]
        assert sorted(h.id for h in pets) == ["cat", "dog"]
