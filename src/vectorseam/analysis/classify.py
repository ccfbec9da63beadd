"""Zero-shot classification, the Cookbook's method: each record gets the label whose description's
embedding is closest (cosine) to its own. No training data; the descriptions are the model.

A descriptive label ("An Amazon review with a negative sentiment.") usually beats a bare one
("negative") because it sits closer to where real records lie in the embedding space.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from vectorseam.analysis.clustering import write_metadata_field
from vectorseam.analysis.vectors import load_collection
from vectorseam.embedding import Embedder, check_embedder
from vectorseam.errors import ValidationError
from vectorseam.filters import FilterLike
from vectorseam.similarity import unit_rows_f32
from vectorseam.store import VectorStore


@dataclass(frozen=True, slots=True)
class LabelSpec:
    name: str
    description: str

    @classmethod
    def parse(cls, raw: str) -> LabelSpec:
        """``NAME="description"`` or a bare ``NAME`` (then the name is its own description)."""
        name, sep, description = raw.partition("=")
        name, description = name.strip(), description.strip().strip('"').strip("'").strip()
        if not name:
            raise ValidationError(f"label {raw!r} has no name; write NAME=\"description\" or just NAME")
        if sep and not description:
            raise ValidationError(f"label {name!r} has an empty description; write {name}=\"...\" or just {name}")
        return cls(name, description or name)


def check_labels(labels: Sequence[LabelSpec]) -> list[LabelSpec]:
    if len(labels) < 2:
        raise ValidationError(f"zero-shot classification needs at least two labels, got {len(labels)}")
    names = [lab.name for lab in labels]
    repeated = sorted(n for n, c in Counter(names).items() if c > 1)
    if repeated:
        raise ValidationError(f"label names must be unique; repeated: {', '.join(repeated)}")
    return list(labels)


def closest_labels(
    vectors: npt.NDArray[np.float32], label_vectors: npt.NDArray[np.float32]
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]:
    """Index of the closest label per row, and the full (n, labels) cosine matrix."""
    scores = unit_rows_f32(vectors) @ unit_rows_f32(label_vectors).T
    return np.argmax(scores, axis=1).astype(np.int64), scores.astype(np.float32)


@dataclass
class ClassificationResult:
    collection: str
    labels: list[LabelSpec]
    ids: list[str]
    texts: list[str]
    predicted: list[str]
    scores: npt.NDArray[np.float32]  # (records, labels) cosine similarities

    def counts(self) -> dict[str, int]:
        c = Counter(self.predicted)
        return {lab.name: c.get(lab.name, 0) for lab in self.labels}

    def rows(self) -> list[dict[str, object]]:
        return [
            {"id": rid, "label": lab, "text": text,
             "scores": {s.name: round(float(v), 6) for s, v in zip(self.labels, row, strict=True)}}
            for rid, lab, row, text in zip(self.ids, self.predicted, self.scores, self.texts, strict=True)
        ]


def classify_collection(
    store: VectorStore,
    embedder: Embedder,
    collection: str,
    labels: Sequence[LabelSpec],
    filter: FilterLike = None,
    write_field: str | None = None,
) -> ClassificationResult:
    """Label every record; ``write_field`` also stores each record's label in its metadata."""
    labels = check_labels(labels)
    data = load_collection(store, collection, filter)
    check_embedder(data.info, embedder)  # label descriptions must land in the records' vector space
    if len(data) == 0:
        raise ValidationError(f"collection {collection!r} has no records to classify"
                              + (" matching the filter" if filter else ""))
    label_vectors = embedder.embed_documents([lab.description for lab in labels])
    best, scores = closest_labels(data.vectors, label_vectors)
    predicted = [labels[i].name for i in best.tolist()]
    if write_field:
        write_metadata_field(store, collection, data, write_field, predicted)
    return ClassificationResult(collection, labels, data.ids, data.texts, predicted, scores)
