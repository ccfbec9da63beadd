"""Query micro-batching (vectorseam.embedders.batching, used by the local embedder's embed_query):
concurrent queries share model calls, and each caller gets the vector it would get alone, or its
own error."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pytest

from vectorseam.embedders.batching import QueryBatcher
from vectorseam.errors import ValidationError

QUERIES = [f"{w} {i}" for i, w in enumerate(["whole wheat pasta", "bad delivery", "spoilt milk", "pet food",
                                             "great coffee", "too salty", "healthy snack", "arrived broken"] * 6)]


def test_concurrent_queries_share_model_calls_and_get_their_own_vectors(local_embedder: Any) -> None:
    alone = np.stack([local_embedder.embed_documents([q])[0] for q in QUERIES])
    batcher = QueryBatcher(local_embedder.embed_documents, max_batch=16)
    with ThreadPoolExecutor(8) as pool:
        together = np.stack(list(pool.map(batcher.embed, QUERIES)))
    assert batcher.calls < len(QUERIES)  # batches formed while the model was busy
    np.testing.assert_allclose(together, alone, rtol=0, atol=2e-6)


def test_the_local_embedder_batches_its_queries(local_embedder: Any) -> None:
    before = local_embedder._queries.calls
    with ThreadPoolExecutor(8) as pool:
        got = list(pool.map(local_embedder.embed_query, QUERIES))
    assert local_embedder._queries.calls - before < len(QUERIES)
    np.testing.assert_allclose(got[0], local_embedder.embed_documents([QUERIES[0]])[0], rtol=0, atol=2e-6)


def test_a_lone_query_is_embedded_at_once(local_embedder: Any) -> None:
    batcher = QueryBatcher(local_embedder.embed_documents)
    for q in QUERIES[:3]:
        np.testing.assert_allclose(batcher.embed(q), local_embedder.embed_documents([q])[0], rtol=0, atol=2e-6)
    assert batcher.calls == 3


def test_a_bad_text_fails_only_its_own_caller(local_embedder: Any) -> None:
    batcher = QueryBatcher(local_embedder.embed_documents, max_batch=16)
    texts = [*QUERIES[:7], "   ", *QUERIES[7:14]]  # a blank text is refused, with its reason

    def one(text: str) -> object:
        try:
            return batcher.embed(text)
        except ValidationError as exc:
            return exc

    with ThreadPoolExecutor(8) as pool:
        got = list(pool.map(one, texts))
    assert isinstance(got[7], ValidationError) and "empty or whitespace" in str(got[7])
    assert all(isinstance(v, np.ndarray) and v.shape == (local_embedder.dimension,) for i, v in enumerate(got) if i != 7)


def test_settings_are_checked(local_embedder: Any) -> None:
    with pytest.raises(ValueError, match="max_batch"):
        QueryBatcher(local_embedder.embed_documents, max_batch=0)
