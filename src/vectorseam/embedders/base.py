"""The embedder protocol: how text becomes vectors, and the fingerprint that pins a collection to it.

A collection records the fingerprint of the embedder that filled it; querying or ingesting with a
different fingerprint is refused (vectors from two models are not comparable, and nothing would
fail loudly otherwise: results would just be wrong).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

FINGERPRINT_KEY = "embedder"


@runtime_checkable
class Embedder(Protocol):
    @property
    def dimension(self) -> int:
        """Length of the vectors this embedder returns."""
        ...

    @property
    def fingerprint(self) -> str:
        """Identifies the vector space: provider, model, dimension (and any customization)."""
        ...

    def embed_documents(self, texts: Sequence[str], batch_size: int | None = None) -> npt.NDArray[np.float32]:
        """Embed many texts, in batches; returns a (len(texts), dimension) float32 matrix."""
        ...

    def embed_query(self, text: str) -> npt.NDArray[np.float32]:
        """Embed one query; returns a (dimension,) float32 vector."""
        ...
