"""Embedders (the protocol they follow is :mod:`vectorseam.embedding`, in the core): the local model, OpenAI-
compatible endpoints, customized spaces, and the factory that builds one from the configuration."""

from __future__ import annotations

from vectorseam.config import EmbedderSettings
from vectorseam.embedding import Embedder

__all__ = ["build_embedder", "model_name"]


def build_embedder(settings: EmbedderSettings, device: str | None = None) -> Embedder:
    """The configured embedder; ``device`` ('cuda', 'cpu') is where a local model computes (default: its
    own choice; the Ray engine's actors name the GPU Ray gave them)."""
    base = _build_base_embedder(settings, device)
    if settings.custom_matrix is None:
        return base
    # A customized space: the base model's vectors mapped through a learned matrix (whose hash is in
    # the fingerprint, so collections built with another matrix or none are refused).
    from vectorseam.embedders.custom_matrix import CustomizedEmbedder, CustomMatrix

    return CustomizedEmbedder(base, CustomMatrix.load(settings.custom_matrix))


def model_name(settings: EmbedderSettings) -> str:
    """The name of the model the configuration embeds with (the provider's default when it names none)."""
    if settings.name == "local":
        from vectorseam.embedders.local import DEFAULT_MODEL

        return settings.model or DEFAULT_MODEL
    from vectorseam.embedders.openai_api import DEFAULT_OPENAI_MODEL

    return settings.model or DEFAULT_OPENAI_MODEL


def _build_base_embedder(settings: EmbedderSettings, device: str | None) -> Embedder:
    if settings.name == "local":
        from vectorseam.embedders.local import LocalEmbedder

        return LocalEmbedder(
            model=model_name(settings),
            batch_size=settings.batch_size,
            on_too_long=settings.on_too_long or "truncate",
            backend=settings.backend,
            device=device,
        )
    from vectorseam.embedders.openai_api import OpenAIEmbedder

    return OpenAIEmbedder(
        model=model_name(settings),
        api_key=settings.api_key.get_secret_value() if settings.api_key else None,
        base_url=settings.base_url,
        dimension=settings.dimension,
        batch_size=settings.batch_size,
        max_retries=settings.max_retries,
        timeout=settings.timeout,
        on_too_long=settings.on_too_long or "error",
    )
