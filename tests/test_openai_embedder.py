"""The OpenAI embedder end to end against a real HTTP server speaking the embeddings wire format."""

from __future__ import annotations

import socket

import numpy as np
import pytest

from tests.openai_wire import OpenAIWireServer
from vectorseam.embedders.openai_api import OpenAIEmbedder
from vectorseam.errors import EmbeddingError, ValidationError

TEXTS = ["delicious beans", "whole wheat pasta", "bad delivery", "spoilt milk", "pet food for cats"]


@pytest.fixture()
def server(local_embedder):  # type: ignore[no-untyped-def]
    with OpenAIWireServer(local_embedder, model="text-embedding-3-small") as srv:
        yield srv


def make(server: OpenAIWireServer, **kw: object) -> OpenAIEmbedder:
    kw.setdefault("dimension", 384)
    return OpenAIEmbedder(api_key="sk-test-secret", base_url=server.base_url, **kw)  # type: ignore[arg-type]


def test_vectors_equal_the_model_behind_the_server(server, local_embedder) -> None:  # type: ignore[no-untyped-def]
    emb = make(server, batch_size=2)
    got = emb.embed_documents(TEXTS)
    want = local_embedder.embed_documents(TEXTS)
    assert got.shape == (5, 384) and got.dtype == np.float32
    assert np.allclose(np.sum(got * want, axis=1), 1.0, atol=1e-5)
    # batching: 5 texts in batches of 2 -> 3 requests, in order, carrying the model and the key
    assert [len(r["body"]["input"]) for r in server.requests] == [2, 2, 1]
    assert [t for r in server.requests for t in r["body"]["input"]] == TEXTS
    assert all(r["body"]["model"] == "text-embedding-3-small" for r in server.requests)
    assert server.requests[0]["auth"] == "Bearer sk-test-secret"
    assert emb.fingerprint == "openai:text-embedding-3-small:384"


def test_query_embedding_is_one_vector(server) -> None:  # type: ignore[no-untyped-def]
    vec = make(server).embed_query("delicious beans")
    assert vec.shape == (384,)
    assert abs(float(np.linalg.norm(vec)) - 1.0) < 1e-5


def test_unknown_model_dimension_is_probed_from_the_server(server) -> None:  # type: ignore[no-untyped-def]
    emb = OpenAIEmbedder(model="my-local-model", api_key="k", base_url=server.base_url)
    assert emb.dimension == 384


@pytest.mark.parametrize("status", [429, 500, 503])
def test_transient_errors_are_retried_with_backoff(server, status: int) -> None:  # type: ignore[no-untyped-def]
    server.fail_next = [status, status]
    vectors = make(server, max_retries=3).embed_documents(TEXTS[:2])
    assert vectors.shape == (2, 384)
    assert server.statuses == [status, status, 200]


def test_persistent_server_error_is_one_clear_error(server) -> None:  # type: ignore[no-untyped-def]
    server.fail_next = [500] * 10
    with pytest.raises(EmbeddingError) as info:
        make(server, max_retries=2).embed_documents(TEXTS[:1])
    message = str(info.value)
    assert server.base_url in message and "500" in message
    assert "sk-test-secret" not in message
    assert len(server.requests) == 3  # first try + two retries


def test_input_rejected_by_server_is_reported(server) -> None:  # type: ignore[no-untyped-def]
    emb = make(server, max_input_chars=100_000)
    with pytest.raises(EmbeddingError, match="maximum context length"):
        emb.embed_documents(["x" * 5000])


def test_too_long_input_is_rejected_before_sending_or_truncated(server) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValidationError, match=r"text 1: 3000 characters"):
        make(server, max_input_chars=1000).embed_documents(["short", "y" * 3000])
    assert server.requests == []
    vec = make(server, max_input_chars=1000, on_too_long="truncate").embed_documents(["y" * 3000])
    assert vec.shape == (1, 384)
    assert len(server.requests[-1]["body"]["input"][0]) == 1000


def test_empty_text_is_rejected_with_its_position(server) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValidationError, match=r"text 1: text is empty"):
        make(server).embed_documents(["fine", "   "])


def test_unreachable_endpoint_is_one_clear_error() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # a port nothing listens on once closed
    emb = OpenAIEmbedder(api_key="k", base_url=f"http://127.0.0.1:{port}/v1", dimension=8, max_retries=1,
                         timeout=2)
    with pytest.raises(EmbeddingError, match=f"cannot reach the embeddings endpoint http://127.0.0.1:{port}/v1"):
        emb.embed_documents(["hello"])
