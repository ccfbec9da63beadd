"""vectorseam adapter for Weaviate (v4 client, collections API); see ``store`` for the mapping."""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import urlparse

import weaviate
from weaviate.classes.init import AdditionalConfig, Auth, Timeout

from vectorseam.errors import ConfigError, StoreUnavailableError
from vectorseam_weaviate.store import WeaviateStore

__all__ = ["WeaviateStore", "create_store"]


def create_store(
    url: str = "http://localhost:8080",
    grpc_port: int = 50051,
    grpc_host: str | None = None,
    api_key: str | None = None,
    prefix: str = "Vs_",
    tenant: str | None = None,
    batch_size: int = 500,
    timeout: float = 30.0,
    retries: int = 3,
    skip_init_checks: bool = False,
    **unknown: Any,
) -> WeaviateStore:
    """Entry-point factory (``vectorseam.stores`` group, name ``weaviate``)."""
    if unknown:
        raise ConfigError(f"unknown options for the weaviate store: {', '.join(sorted(unknown))}")
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise ConfigError(f"weaviate store: url must look like http://host:8080, got {url!r}")
    secure = parsed.scheme == "https"
    key = api_key or os.environ.get("WEAVIATE_API_KEY")
    try:
        client = weaviate.connect_to_custom(
            http_host=parsed.hostname, http_port=parsed.port or (443 if secure else 80), http_secure=secure,
            grpc_host=grpc_host or parsed.hostname, grpc_port=grpc_port, grpc_secure=secure,
            auth_credentials=Auth.api_key(key) if key else None,
            additional_config=AdditionalConfig(timeout=Timeout(init=timeout, query=timeout, insert=timeout)),
            skip_init_checks=skip_init_checks,
        )
    except weaviate.exceptions.WeaviateBaseError as exc:
        raise StoreUnavailableError(
            f"cannot connect to weaviate at {url} (gRPC port {grpc_port}): {exc}"
        ) from exc
    return WeaviateStore(client, url, prefix=prefix, tenant=tenant, batch_size=batch_size, retries=retries)
