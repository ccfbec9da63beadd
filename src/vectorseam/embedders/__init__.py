"""Embedders: the protocol and the factory that builds one from the configuration."""

from __future__ import annotations

from vectorseam.config import EmbedderSettings
from vectorseam.embedders.base import FINGERPRINT_KEY, Embedder

__all__ = ["FINGERPRINT_KEY", "Embedder", "build_embedder"]


def build_embedder(settings: EmbedderSettings) -> Embedder:
    base = _build_base_embedder(settings)
    if settings.custom_matrix is None:
        return base
    # A customized space: the base model's vectors mapped through a learned matrix (whose hash is in
    # the fingerprint, so collections built with another matrix or none are refused).
    from vectorseam.embedders.custom_matrix import CustomizedEmbedder, CustomMatrix

    return CustomizedEmbedder(base, CustomMatrix.load(settings.custom_matrix))


def _build_base_embedder(settings: EmbedderSettings) -> Embedder:
    if settings.name == "local":
        from vectorseam.embedders.local import DEFAULT_MODEL, LocalEmbedder

        return LocalEmbedder(
            model=settings.model or DEFAULT_MODEL,
            batch_size=settings.batch_size,
            on_too_long=settings.on_too_long or "truncate",
            backend=settings.backend,
        )
    from vectorseam.embedders.openai_api import DEFAULT_OPENAI_MODEL, OpenAIEmbedder

    return OpenAIEmbedder(
        model=settings.model or DEFAULT_OPENAI_MODEL,
        api_key=settings.api_key.get_secret_value() if settings.api_key else None,
        base_url=settings.base_url,
        dimension=settings.dimension,
        batch_size=settings.batch_size,
        max_retries=settings.max_retries,
        timeout=settings.timeout,
        on_too_long=settings.on_too_long or "error",
    )
