"""The store's options as they come from configuration (``store.options``), validated up front.

A :class:`vectorseam.options.StoreOptions` model: unknown names and bad values are one
:class:`~vectorseam.errors.ConfigError` naming the option; ``api_key`` is a ``SecretStr`` and, when
the configuration names none, comes from ``PINECONE_API_KEY`` as in Pinecone's own SDK.

Retries are not an option here: the SDK already retries 408/429/5xx and connection errors with
backoff (honouring ``Retry-After``), and a second loop around it would multiply the attempts.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import Field, SecretStr, model_validator

from vectorseam.options import Flag, Int, Seconds, StoreOptions, with_env_default
from vectorseam.options import parse_options as parse_store_options
from vectorseam.types import Metric
from vectorseam_pinecone import encoding

API_KEY_ENV = "PINECONE_API_KEY"
MAX_DIMENSION = 20_000  # Pinecone's limit for dense indexes


class PineconeOptions(StoreOptions):
    api_key: SecretStr = Field(description=f"or the {API_KEY_ENV} environment variable")
    index_host: str | None = Field(default=None, min_length=1, description="the index's data-plane URL (preferred)")
    index_name: str | None = Field(default=None, min_length=1, description="resolve the index by name (control plane)")
    namespace_prefix: str = Field(default="", description="prefix of every namespace (several stores in one index)")
    controller_host: str | None = Field(default=None, description="control-plane URL (default: Pinecone's)")
    create_index: Flag = Field(default=False, description="create index_name when it does not exist")
    dimension: Int | None = Field(default=None, ge=1, le=MAX_DIMENSION, description="of an index to create")
    metric: Metric | None = Field(default=None, description="of an index to create; default: the index's")
    cloud: str = "aws"
    region: str = "us-east-1"
    timeout: Seconds = Field(default=30.0, gt=0, description="per request")
    max_request_bytes: Int = Field(default=encoding.MAX_REQUEST_BYTES, ge=1, description="upsert request size limit")
    max_vectors_per_upsert: Int = Field(default=encoding.MAX_VECTORS_PER_UPSERT, ge=1, description="upsert batch limit")

    @model_validator(mode="before")
    @classmethod
    def _key_from_environment(cls, data: Any) -> Any:
        data = with_env_default(data, "api_key", API_KEY_ENV)
        if isinstance(data, Mapping) and not data.get("api_key"):
            raise ValueError(f"the pinecone store needs api_key (or the {API_KEY_ENV} environment variable)")
        return data


def parse_options(options: Mapping[str, Any]) -> PineconeOptions:
    """The configuration's ``store.options`` checked; a ConfigError names each wrong option."""
    return parse_store_options(PineconeOptions, options, backend="pinecone")
