"""vectorseam adapter for Pinecone: each collection is a namespace of one index (see ``store``)."""

from __future__ import annotations

from typing import Any

from vectorseam_pinecone.options import PineconeOptions, parse_options
from vectorseam_pinecone.store import PineconeStore, open_index

__all__ = ["PineconeOptions", "PineconeStore", "create_store"]


def create_store(**options: Any) -> PineconeStore:
    """Entry-point factory (``vectorseam.stores`` group, name ``pinecone``); options in ``options``."""
    opts = parse_options(options)
    index = open_index(
        api_key=opts.api_key.get_secret_value(), index_host=opts.index_host, index_name=opts.index_name,
        controller_host=opts.controller_host, timeout=opts.timeout, create_index=opts.create_index,
        dimension=opts.dimension, metric=opts.metric, cloud=opts.cloud, region=opts.region,
    )
    return PineconeStore(
        index, namespace_prefix=opts.namespace_prefix, metric=opts.metric,
        max_request_bytes=opts.max_request_bytes, max_vectors_per_upsert=opts.max_vectors_per_upsert,
    )
