"""Embeddings from OpenAI or any server that speaks its embeddings wire format.

Retries: the ``openai`` client already retries 408/409/429/5xx and connection errors with
exponential backoff and jitter (honouring ``Retry-After``); we set how many times and turn the final
failure into one clear error that names the endpoint, instead of a stack of client internals.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from vectorseam.embedders.texts import TooLongPolicy, check_texts
from vectorseam.embedding import WordTokens
from vectorseam.errors import ConfigError, EmbeddingError, ValidationError

DEFAULT_OPENAI_MODEL = "text-embedding-3-small"
KNOWN_DIMENSIONS = {
    "text-embedding-3-small": 1536,
    "text-embedding-3-large": 3072,
    "text-embedding-ada-002": 1536,
}
MAX_INPUTS_PER_REQUEST = 2048  # the API's limit on inputs per request


class OpenAIEmbedder(WordTokens):
    """Batches texts into requests; normalises the returned vectors (OpenAI's already are)."""

    def __init__(
        self,
        model: str = DEFAULT_OPENAI_MODEL,
        api_key: str | None = None,
        base_url: str | None = None,
        dimension: int | None = None,
        batch_size: int = 256,
        max_retries: int = 5,
        timeout: float = 60.0,
        max_input_chars: int = 24_000,
        on_too_long: TooLongPolicy = "error",
    ) -> None:
        from openai import OpenAI

        if not 1 <= batch_size <= MAX_INPUTS_PER_REQUEST:
            raise ConfigError(f"embedder batch_size must be 1..{MAX_INPUTS_PER_REQUEST}, got {batch_size}")
        self.model = model
        self.base_url = base_url or "https://api.openai.com/v1"
        self.batch_size = batch_size
        self.max_input_chars = max_input_chars
        self.on_too_long = on_too_long
        self._dimension = dimension or KNOWN_DIMENSIONS.get(model)
        self._client = OpenAI(
            api_key=api_key or "unset",
            base_url=self.base_url,
            max_retries=max_retries,
            timeout=timeout,
        )

    @property
    def dimension(self) -> int:
        if self._dimension is None:  # an unknown model on a compatible server: ask it once
            self._dimension = int(self._request(["dimension probe"]).shape[1])
        return self._dimension

    @property
    def fingerprint(self) -> str:
        return f"openai:{self.model}:{self.dimension}"


    def _fit(self, texts: list[str], offset: int) -> list[str]:
        out = []
        for i, text in enumerate(texts):
            if len(text) > self.max_input_chars:
                if self.on_too_long == "error":
                    raise ValidationError(
                        f"text {offset + i}: {len(text)} characters, over the embedder's max_input_chars "
                        f"({self.max_input_chars}); split it into chunks or set on_too_long = 'truncate'"
                    )
                text = text[: self.max_input_chars]
            out.append(text)
        return out

    def _request(self, batch: list[str]) -> npt.NDArray[np.float32]:
        import openai

        kwargs: dict[str, Any] = {"model": self.model, "input": batch, "encoding_format": "float"}
        try:
            response = self._client.embeddings.create(**kwargs)
        except openai.BadRequestError as exc:
            raise EmbeddingError(
                f"the embeddings endpoint {self.base_url} rejected the input ({exc.status_code}): "
                f"{_message(exc)}. If a text is too long, split it or lower max_input_chars"
            ) from None
        except openai.AuthenticationError:
            raise EmbeddingError(
                f"the embeddings endpoint {self.base_url} refused the API key (401); check embedder.api_key"
            ) from None
        except openai.APIStatusError as exc:
            raise EmbeddingError(
                f"the embeddings endpoint {self.base_url} answered {exc.status_code} after retries: "
                f"{_message(exc)}"
            ) from None
        except openai.APIConnectionError as exc:
            raise EmbeddingError(
                f"cannot reach the embeddings endpoint {self.base_url} after retries ({exc.__class__.__name__})"
            ) from None
        data = sorted(response.data, key=lambda d: d.index)
        if len(data) != len(batch):
            raise EmbeddingError(
                f"the embeddings endpoint {self.base_url} returned {len(data)} vectors for {len(batch)} inputs"
            )
        matrix = np.asarray([d.embedding for d in data], dtype=np.float32)
        norms = np.linalg.norm(matrix, axis=1, keepdims=True)
        norms[norms == 0] = 1.0
        return np.ascontiguousarray(matrix / norms, dtype=np.float32)

    def embed_documents(self, texts: Sequence[str], batch_size: int | None = None) -> npt.NDArray[np.float32]:
        checked = check_texts(texts)
        size = min(batch_size or self.batch_size, MAX_INPUTS_PER_REQUEST)
        parts = [
            self._request(self._fit(checked[s : s + size], s)) for s in range(0, len(checked), size)
        ]
        if not parts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        matrix = np.concatenate(parts)
        if self._dimension is None:
            self._dimension = int(matrix.shape[1])
        elif matrix.shape[1] != self._dimension:
            raise EmbeddingError(
                f"the model {self.model} at {self.base_url} returned {matrix.shape[1]}-d vectors, "
                f"the configuration says {self._dimension}; fix embedder.dimension"
            )
        return matrix

    def embed_query(self, text: str) -> npt.NDArray[np.float32]:
        vector: npt.NDArray[np.float32] = self.embed_documents([text])[0]
        return vector


def _message(exc: Any) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        err = body.get("error", body)
        if isinstance(err, dict) and "message" in err:
            return str(err["message"])
    return str(getattr(exc, "message", exc))
