"""A collection read into memory as one matrix, through the protocol's ``scan`` (any backend)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from vectorseam.errors import ValidationError
from vectorseam.filters import FilterLike
from vectorseam.similarity import unit_rows_f32
from vectorseam.store import VectorStore
from vectorseam.types import CollectionInfo, Metadata


@dataclass
class CollectionMatrix:
    """Ids, texts and metadata in scan order, and their vectors as rows of one float32 matrix."""

    info: CollectionInfo
    ids: list[str]
    texts: list[str]
    metadata: list[Metadata]
    vectors: npt.NDArray[np.float32]

    def __len__(self) -> int:
        return len(self.ids)

    def unit_vectors(self) -> npt.NDArray[np.float32]:
        """Rows scaled to length 1, so dot products are cosine similarities (zero rows stay zero)."""
        return unit_rows_f32(self.vectors)


def load_collection(
    store: VectorStore, collection: str, filter: FilterLike = None, batch_size: int = 1000
) -> CollectionMatrix:
    """Every record of ``collection`` (matching ``filter``) with its vector.

    Analyses need all vectors at once (k-means, projections); at 384 float32 per record a million
    records is 1.5 GB, which is why dedup does not use this and streams instead.
    """
    info = store.collection_info(collection)
    ids: list[str] = []
    texts: list[str] = []
    metas: list[Metadata] = []
    rows: list[npt.NDArray[np.float32]] = []
    for batch in store.scan(collection, batch_size=batch_size, filter=filter, include_vectors=True):
        for record in batch:
            if record.vector is None:
                raise ValidationError(
                    f"collection {collection!r}: the {store.capabilities.name} store returned record "
                    f"{record.id!r} without its vector from scan; analysis needs the stored vectors"
                )
            ids.append(record.id)
            texts.append(record.text)
            metas.append(record.metadata)
            rows.append(np.asarray(record.vector, dtype=np.float32))
    vectors = np.stack(rows) if rows else np.zeros((0, info.dimension), dtype=np.float32)
    return CollectionMatrix(info, ids, texts, metas, np.ascontiguousarray(vectors, dtype=np.float32))
