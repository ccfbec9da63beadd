"""vectorseam adapter for Pinecone: each collection is a namespace of one index (see ``store``)."""

from __future__ import annotations

import os
from typing import Any

from vectorseam.errors import ConfigError
from vectorseam.types import METRICS, Metric
from vectorseam_pinecone.store import PineconeStore, open_index

__all__ = ["PineconeStore", "create_store"]


def create_store(
    api_key: str | None = None,
    index_host: str | None = None,
    index_name: str | None = None,
    namespace_prefix: str = "",
    controller_host: str | None = None,
    create_index: bool = False,
    dimension: int | None = None,
    metric: str | None = None,
    cloud: str = "aws",
    region: str = "us-east-1",
    timeout: float = 30.0,
    max_request_bytes: int | None = None,
    max_vectors_per_upsert: int | None = None,
    **unknown: Any,
) -> PineconeStore:
    """Entry-point factory (``vectorseam.stores`` group, name ``pinecone``)."""
    if unknown:
        raise ConfigError(f"unknown options for the pinecone store: {', '.join(sorted(unknown))}")
    key = api_key or os.environ.get("PINECONE_API_KEY")
    if not key:
        raise ConfigError("the pinecone store needs api_key (or the PINECONE_API_KEY environment variable)")
    if metric is not None and metric not in METRICS:
        raise ConfigError(f"pinecone store: unknown metric {metric!r}; expected one of {', '.join(METRICS)}")
    checked_metric: Metric | None = metric
    index = open_index(
        api_key=key, index_host=index_host, index_name=index_name, controller_host=controller_host,
        timeout=timeout, create_index=create_index, dimension=dimension, metric=checked_metric,
        cloud=cloud, region=region,
    )
    extra: dict[str, int] = {}
    if max_request_bytes is not None:
        extra["max_request_bytes"] = max_request_bytes
    if max_vectors_per_upsert is not None:
        extra["max_vectors_per_upsert"] = max_vectors_per_upsert
    return PineconeStore(index, namespace_prefix=namespace_prefix, metric=checked_metric, **extra)
