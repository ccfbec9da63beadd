"""Screening duplicates as they arrive: between embedding a batch and upserting it, each new document
is compared with what the collection already holds (the store's nearest neighbour, any backend) and
with the earlier documents of its own batch; a duplicate is tagged (``metadata["duplicate_of"]``)
or dropped, and every decision is reported, so nothing disappears without a trace.

Wiring into an ingest loop::

    screen = DuplicateScreen(store, collection, threshold=0.98, mode="tag")
    for docs in batches:
        vectors = embedder.embed_documents([d.text for d in docs])
        docs, vectors = screen(docs, vectors)        # tagged, or duplicates removed
        store.upsert(collection, [Record(d.id, v, d.text, d.metadata) for d, v in zip(docs, vectors)])
    report.duplicates = screen.notes
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, TypeAlias

import numpy as np
import numpy.typing as npt

from vectorseam.errors import CollectionNotFoundError, ValidationError
from vectorseam.ingest.sources import Document
from vectorseam.similarity import check_threshold, unit_rows_f32
from vectorseam.store import VectorStore

Mode: TypeAlias = Literal["tag", "drop"]
DUPLICATE_FIELD = "duplicate_of"
SCORE_FIELD = "duplicate_score"


@dataclass(frozen=True, slots=True)
class DuplicateNote:
    """Document ``id`` (from ``origin``) is a duplicate of ``duplicate_of`` with cosine ``score``."""

    id: str
    duplicate_of: str
    score: float
    origin: str
    action: Mode

    def __str__(self) -> str:
        where = f"{self.origin}: " if self.origin else ""
        verb = "dropped" if self.action == "drop" else "tagged"
        return f"{where}{verb} {self.id!r} as a duplicate of {self.duplicate_of!r} (cosine {self.score:.4f})"


@dataclass
class DuplicateScreen:
    store: VectorStore
    collection: str
    threshold: float = 0.98
    mode: Mode = "tag"
    notes: list[DuplicateNote] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.threshold = check_threshold(self.threshold)
        if self.mode not in ("tag", "drop"):
            raise ValidationError(f"duplicate mode must be 'tag' or 'drop', got {self.mode!r}")

    def __call__(
        self, docs: Sequence[Document], vectors: npt.NDArray[np.float32]
    ) -> tuple[list[Document], npt.NDArray[np.float32]]:
        """The batch to write: duplicates tagged in their metadata, or left out (and noted)."""
        if len(docs) != len(vectors):
            raise ValidationError(f"duplicate screen: {len(docs)} documents but {len(vectors)} vectors")
        if not docs:
            return [], vectors
        unit = unit_rows_f32(np.asarray(vectors, dtype=np.float32))
        found = self._in_store(docs, unit)
        # Earlier documents of the same batch count as already there; a match with one that is itself
        # a duplicate points at that one's original, so a dropped document is never referenced.
        sims = unit @ unit.T
        for j in range(len(docs)):
            for i in range(j):
                score = float(sims[i, j])
                if docs[i].id == docs[j].id or score < self.threshold:
                    continue
                original = found[i][0] if i in found else docs[i].id
                if j not in found or score > found[j][1]:
                    found[j] = (original, score)
        keep: list[int] = []
        out: list[Document] = []
        for j, doc in enumerate(docs):
            if j in found:
                original, score = found[j]
                self.notes.append(DuplicateNote(doc.id, original, score, doc.origin, self.mode))
                if self.mode == "drop":
                    continue
                doc = Document(doc.id, doc.text, {**doc.metadata, DUPLICATE_FIELD: original,
                                                  SCORE_FIELD: round(score, 6)}, doc.origin)
            keep.append(j)
            out.append(doc)
        return out, np.ascontiguousarray(vectors[keep], dtype=np.float32)

    def _in_store(self, docs: Sequence[Document], unit: npt.NDArray[np.float32]) -> dict[int, tuple[str, float]]:
        try:
            hits = self.store.query(self.collection, unit, k=2, include_vectors=True)
        except CollectionNotFoundError:
            return {}  # the first batch of a new collection has nothing to duplicate
        found: dict[int, tuple[str, float]] = {}
        for j, row in enumerate(hits):
            for hit in row:
                if hit.id == docs[j].id:
                    continue  # re-ingesting the same id replaces it; it is not its own duplicate
                if hit.vector is None:
                    raise ValidationError(f"the {self.store.capabilities.name} store returned no vector for {hit.id!r}")
                other = unit_rows_f32(np.asarray(hit.vector, dtype=np.float32)[None, :])[0]
                score = float(unit[j] @ other)
                if score >= self.threshold:
                    found[j] = (hit.id, score)
                break
        return found
