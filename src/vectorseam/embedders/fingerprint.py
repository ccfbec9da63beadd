"""Which embedder filled a collection: the fingerprint recorded on it and the checks that keep vector
spaces apart. Ingest, search, migration and analysis all create or read collections, so the rule lives
here, below all of them."""

from __future__ import annotations

from vectorseam.embedders.base import FINGERPRINT_KEY, Embedder
from vectorseam.errors import EmbedderMismatchError
from vectorseam.store import VectorStore
from vectorseam.types import CollectionInfo, CollectionSpec, Metric


def collection_spec(name: str, embedder: Embedder, metric: Metric = "cosine") -> CollectionSpec:
    """The spec a collection filled by ``embedder`` must have: its dimension and fingerprint."""
    return CollectionSpec(name, embedder.dimension, metric, {FINGERPRINT_KEY: embedder.fingerprint})


def check_embedder(info: CollectionInfo, embedder: Embedder) -> None:
    """Refuse to mix vector spaces: a query embedded by another model would return garbage silently."""
    recorded = info.metadata.get(FINGERPRINT_KEY)
    if recorded is not None and recorded != embedder.fingerprint:
        raise EmbedderMismatchError(
            f"collection {info.name!r} was embedded with {recorded!r}, but the configured embedder is "
            f"{embedder.fingerprint!r}. Configure the original embedder, or re-embed into a new collection "
            f"with `vectorseam reindex {info.name} --embedder ...`"
        )


def ensure_collection_for(store: VectorStore, name: str, embedder: Embedder) -> CollectionInfo:
    info = store.ensure_collection(collection_spec(name, embedder))
    check_embedder(info, embedder)
    return info
