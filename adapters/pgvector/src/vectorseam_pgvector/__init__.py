"""PostgreSQL + pgvector store adapter for vectorseam (entry point ``vectorseam.stores: pgvector``)."""

from __future__ import annotations

from typing import Any

from vectorseam_pgvector.options import PgVectorOptions, parse_options
from vectorseam_pgvector.store import PgVectorStore

__all__ = ["PgVectorOptions", "PgVectorStore", "create_store"]


def create_store(**options: Any) -> PgVectorStore:
    """Entry-point factory: options as in the configuration (see the adapter's README)."""
    return PgVectorStore(parse_options(options))
