"""The server's embedder, seen from a client: an :class:`~vectorseam.embedding.Embedder` whose
vectors come from ``POST /v1/embeddings`` (base64 float32: bit for bit what the server computes).

Integrations that embed with "vectorseam's embedder" (LangChain's ``VectorSeamEmbeddings``, LlamaIndex's
``VectorSeamEmbedding``, Haystack's embedders) get the server's model this way, with its fingerprint, so
a collection filled through the client is read by the server's own text search and the other way round.
Queries are embedded as documents (the OpenAI route has one kind); the default model embeds both alike,
and searches by text go to the server, which embeds them as queries.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import numpy.typing as npt

from vectorseam.embedding import WordTokens


class RemoteEmbedder(WordTokens):
    def __init__(self, fingerprint: str, dimension: int, model: str,
                 embed: Callable[[Sequence[str]], npt.NDArray[np.float32]], batch_size: int = 64) -> None:
        self._fingerprint = fingerprint
        self._dimension = dimension
        self.model = model
        self._embed = embed
        self.batch_size = batch_size

    @property
    def dimension(self) -> int:
        return self._dimension

    @property
    def fingerprint(self) -> str:
        return self._fingerprint


    def embed_documents(self, texts: Sequence[str], batch_size: int | None = None) -> npt.NDArray[np.float32]:
        size = batch_size or self.batch_size
        if not texts:
            return np.zeros((0, self._dimension), np.float32)
        parts = [self._embed(list(texts[i : i + size])) for i in range(0, len(texts), size)]
        return np.concatenate(parts).astype(np.float32, copy=False)

    def embed_query(self, text: str) -> npt.NDArray[np.float32]:
        vector: npt.NDArray[np.float32] = self.embed_documents([text])[0]
        return vector
