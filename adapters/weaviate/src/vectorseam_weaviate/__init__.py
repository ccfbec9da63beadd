"""vectorseam adapter for Weaviate (v4 client, collections API); see ``store`` for the mapping."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import weaviate
from weaviate.classes.init import AdditionalConfig, Auth, Timeout

from vectorseam.errors import StoreUnavailableError
from vectorseam_weaviate.options import WeaviateOptions, parse_options
from vectorseam_weaviate.store import WeaviateStore

__all__ = ["WeaviateOptions", "WeaviateStore", "create_store"]


def create_store(**options: Any) -> WeaviateStore:
    """Entry-point factory (``vectorseam.stores`` group, name ``weaviate``); options in ``options``."""
    opts = parse_options(options)
    parsed = urlsplit(opts.url.get_secret_value())
    host = parsed.hostname or ""  # the options checked it is there
    secure = parsed.scheme == "https"
    key = opts.api_key.get_secret_value() if opts.api_key is not None else ""
    try:
        client = weaviate.connect_to_custom(
            http_host=host, http_port=parsed.port or (443 if secure else 80), http_secure=secure,
            grpc_host=opts.grpc_host or host, grpc_port=opts.grpc_port, grpc_secure=secure,
            auth_credentials=Auth.api_key(key) if key else None,
            additional_config=AdditionalConfig(
                timeout=Timeout(init=opts.timeout, query=opts.timeout, insert=opts.timeout)
            ),
            skip_init_checks=opts.skip_init_checks,
        )
    except weaviate.exceptions.WeaviateBaseError as exc:
        raise StoreUnavailableError(
            f"cannot connect to weaviate at {opts.display_url} (gRPC port {opts.grpc_port}): {exc}"
        ) from exc
    return WeaviateStore(client, opts.display_url, prefix=opts.prefix, tenant=opts.tenant,
                         batch_size=opts.batch_size, retries=opts.retries)
