"""Chat completions from any OpenAI-compatible endpoint (OpenAI, llama.cpp's server, vLLM, Ollama...).

The ``openai`` client retries connection errors, 408/409/429 and 5xx with backoff; its final failure
becomes one :class:`LLMError` that names the endpoint and what to do, never a stack of client
internals (the CLI turns it into a one-line message and a non-zero exit).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from vectorseam.config import LLMSettings
from vectorseam.errors import ConfigError, VectorseamError

ChatMessage = dict[str, str]


class LLMError(VectorseamError):
    """The language model endpoint was unreachable or answered with an error."""


class ChatLLM:
    def __init__(self, settings: LLMSettings, temperature: float = 0.0, max_tokens: int = 512) -> None:
        from openai import OpenAI

        if not settings.model:
            raise ConfigError("llm.model is not set; set VECTORSEAM_LLM__MODEL (and VECTORSEAM_LLM__BASE_URL for a "
                              "local server) or leave the LLM unconfigured for extractive answers")
        self.model = settings.model
        self.base_url = settings.base_url or "https://api.openai.com/v1"
        self.temperature = temperature
        self.max_tokens = max_tokens
        self._client = OpenAI(
            api_key=settings.api_key.get_secret_value() if settings.api_key else "not-needed",
            base_url=self.base_url,
            timeout=settings.timeout,
            max_retries=settings.max_retries,
        )

    def _request(self, messages: list[ChatMessage], stream: bool) -> Any:
        import openai

        try:
            return self._client.chat.completions.create(
                model=self.model,
                messages=messages,  # type: ignore[arg-type]
                temperature=self.temperature,
                max_tokens=self.max_tokens,
                stream=stream,
            )
        except openai.APIConnectionError as exc:  # includes timeouts
            raise LLMError(
                f"the language model endpoint {self.base_url} is unreachable ({exc.__class__.__name__}: {exc}); "
                "start the server or fix llm.base_url, or unset llm.model for extractive answers"
            ) from None
        except openai.APIStatusError as exc:
            raise LLMError(
                f"the language model endpoint {self.base_url} answered HTTP {exc.status_code} for model "
                f"{self.model!r}: {_detail(exc)}"
            ) from None

    def complete(self, messages: list[ChatMessage]) -> str:
        response = self._request(messages, stream=False)
        try:
            return str(response.choices[0].message.content or "")
        except (AttributeError, IndexError) as exc:
            raise LLMError(f"the language model endpoint {self.base_url} sent a malformed reply: {exc}") from None

    def stream(self, messages: list[ChatMessage]) -> Iterator[str]:
        """Yield the answer's text as it arrives."""
        import openai

        chunks = self._request(messages, stream=True)
        try:
            for chunk in chunks:
                if not chunk.choices:
                    continue
                delta = chunk.choices[0].delta.content
                if delta:
                    yield delta
        except (openai.APIError, OSError) as exc:
            raise LLMError(f"the language model endpoint {self.base_url} failed mid-answer: {exc}") from None


def _detail(exc: Any) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        err = body.get("error", body)
        if isinstance(err, dict) and err.get("message"):
            return str(err["message"])[:300]
    return str(getattr(exc, "message", exc))[:300]
