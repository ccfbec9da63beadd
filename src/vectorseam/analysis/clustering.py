"""k-means over a collection's stored vectors, each cluster described by terms and central members.

Vectors are scaled to unit length first, so k-means groups by direction (cosine similarity), which
is what text embeddings encode; for the normalised default model this changes nothing. With no k
given, k is chosen by the silhouette score over a range (on a sample for large collections: the
score is O(n^2)).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from vectorseam.analysis.terms import class_tfidf_terms
from vectorseam.analysis.vectors import CollectionMatrix, load_collection
from vectorseam.errors import ValidationError
from vectorseam.extras import require
from vectorseam.filters import FilterLike
from vectorseam.store import VectorStore
from vectorseam.types import Record

if TYPE_CHECKING:
    from vectorseam.config import LLMSettings

SILHOUETTE_SAMPLE = 3000
DEFAULT_K_RANGE = (2, 10)


@dataclass
class Cluster:
    index: int
    size: int
    terms: list[str]
    central_ids: list[str]
    central_texts: list[str]
    name: str | None = None

    @property
    def label(self) -> str:
        """The model's name when there is one, else the top terms."""
        return self.name or ", ".join(self.terms[:3]) or f"cluster {self.index}"


@dataclass
class ClusteringResult:
    collection: str
    k: int
    labels: list[int]  # cluster of each record, aligned with data.ids
    clusters: list[Cluster]
    silhouette: float | None
    data: CollectionMatrix
    silhouette_by_k: dict[int, float] = field(default_factory=dict)

    def to_json(self) -> dict[str, object]:
        return {
            "collection": self.collection,
            "k": self.k,
            "silhouette": self.silhouette,
            "silhouette_by_k": {str(k): s for k, s in self.silhouette_by_k.items()},
            "clusters": [
                {"cluster": c.index, "size": c.size, "name": c.name, "terms": c.terms,
                 "central": [{"id": i, "text": t} for i, t in zip(c.central_ids, c.central_texts, strict=True)]}
                for c in self.clusters
            ],
            "assignments": {rid: lab for rid, lab in zip(self.data.ids, self.labels, strict=True)},
        }


def _check_k(k: int, n: int, collection: str) -> None:
    if not isinstance(k, int) or isinstance(k, bool) or k <= 0:
        raise ValidationError(f"k must be a positive number of clusters, got {k!r}")
    if n < k:
        raise ValidationError(
            f"collection {collection!r} holds {n} record(s), too few for {k} clusters; "
            f"ask for at most {n} clusters or add records"
        )


def _kmeans(x: npt.NDArray[np.float32], k: int, seed: int) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]:
    require("analysis", "clustering", ("sklearn",))
    from sklearn.cluster import KMeans

    model = KMeans(n_clusters=k, n_init=4, random_state=seed).fit(x)
    return model.labels_.astype(np.int64), model.cluster_centers_.astype(np.float32)


def _silhouette(x: npt.NDArray[np.float32], labels: npt.NDArray[np.int64], seed: int) -> float:
    require("analysis", "clustering", ("sklearn",))
    from sklearn.metrics import silhouette_score

    if len(set(labels.tolist())) < 2:
        return -1.0
    sample = min(len(x), SILHOUETTE_SAMPLE)
    return float(silhouette_score(x, labels, sample_size=sample, random_state=seed))


def cluster_matrix(
    data: CollectionMatrix,
    k: int | None = None,
    k_range: tuple[int, int] = DEFAULT_K_RANGE,
    seed: int = 0,
    top_terms: int = 8,
    top_members: int = 3,
    llm: LLMSettings | None = None,
) -> ClusteringResult:
    """Cluster vectors already read; ``k=None`` picks k in ``k_range`` (inclusive) by silhouette."""
    n = len(data)
    name = data.info.name
    x = data.unit_vectors()
    by_k: dict[int, float] = {}
    silhouette: float | None
    if k is None:
        low, high = k_range
        if low < 2 or high < low:
            raise ValidationError(f"k range must be 2 <= min <= max, got {low}..{high}")
        if n < 3:
            raise ValidationError(
                f"collection {name!r} holds {n} record(s); choosing k automatically needs at least 3"
            )
        high = min(high, n - 1)
        low = min(low, high)
        best: tuple[float, int, npt.NDArray[np.int64], npt.NDArray[np.float32]] | None = None
        for candidate in range(low, high + 1):
            labels, centers = _kmeans(x, candidate, seed)
            score = _silhouette(x, labels, seed)
            by_k[candidate] = score
            if best is None or score > best[0]:
                best = (score, candidate, labels, centers)
        assert best is not None
        silhouette, k, labels, centers = best
    else:
        _check_k(k, n, name)
        labels, centers = _kmeans(x, k, seed)
        silhouette = _silhouette(x, labels, seed) if 1 < k < n else None
    clusters = _describe(data, x, labels, centers, k, top_terms, top_members)
    if llm is not None:
        from vectorseam.analysis.naming import name_clusters

        names = name_clusters(llm, [(c.terms, c.central_texts) for c in clusters])
        for c, cname in zip(clusters, names, strict=True):
            c.name = cname
    return ClusteringResult(name, k, labels.tolist(), clusters, silhouette, data, by_k)


def _describe(
    data: CollectionMatrix,
    x: npt.NDArray[np.float32],
    labels: npt.NDArray[np.int64],
    centers: npt.NDArray[np.float32],
    k: int,
    top_terms: int,
    top_members: int,
) -> list[Cluster]:
    terms = class_tfidf_terms(data.texts, labels.tolist(), k, top_terms)
    out = []
    for c in range(k):
        members = np.flatnonzero(labels == c)
        center = centers[c] / max(float(np.linalg.norm(centers[c])), 1e-12)
        closeness = x[members] @ center
        central = members[np.argsort(-closeness, kind="stable")[:top_members]]
        out.append(Cluster(
            index=c,
            size=len(members),
            terms=[t for t, _ in terms[c]],
            central_ids=[data.ids[i] for i in central],
            central_texts=[data.texts[i] for i in central],
        ))
    return out


def cluster_collection(
    store: VectorStore,
    collection: str,
    k: int | None = None,
    k_range: tuple[int, int] = DEFAULT_K_RANGE,
    filter: FilterLike = None,
    seed: int = 0,
    top_terms: int = 8,
    top_members: int = 3,
    llm: LLMSettings | None = None,
    assign_field: str | None = None,
) -> ClusteringResult:
    """Cluster a collection of any store; ``assign_field`` also writes each record's cluster to its metadata."""
    if k is not None:
        _check_k(k, 10**12, collection)  # k <= 0 fails before the collection is read
    data = load_collection(store, collection, filter)
    if k is not None:
        _check_k(k, len(data), collection)
    result = cluster_matrix(data, k, k_range, seed, top_terms, top_members, llm)
    if assign_field:
        write_metadata_field(store, collection, data, assign_field, result.labels)
    return result


def write_metadata_field(
    store: VectorStore,
    collection: str,
    data: CollectionMatrix,
    field_name: str,
    values: Sequence[int | str | float | None],
    batch_size: int = 500,
) -> int:
    """Set one metadata field on every record read, re-upserting it with its stored vector and text."""
    if not field_name or not isinstance(field_name, str):
        raise ValidationError(f"metadata field name must be a non-empty string, got {field_name!r}")
    written = 0
    for start in range(0, len(data), batch_size):
        stop = min(start + batch_size, len(data))
        batch = [
            Record(data.ids[i], data.vectors[i], data.texts[i], {**data.metadata[i], field_name: values[i]})
            for i in range(start, stop)
        ]
        written += store.upsert(collection, batch)
    return written


def map_categories(result: ClusteringResult, color_by: str = "cluster") -> list[str]:
    """Each point's legend entry: its cluster (number and label) or the value of a metadata field."""
    if color_by == "cluster":
        names = {c.index: f"{c.index}: {c.label}" for c in result.clusters}
        return [names[lab] for lab in result.labels]
    present = sum(1 for m in result.data.metadata if color_by in m)
    if present == 0:
        fields = sorted({k for m in result.data.metadata for k in m})
        raise ValidationError(
            f"no record has metadata field {color_by!r} to colour by; fields present: "
            f"{', '.join(fields) or 'none'} (or use 'cluster')"
        )
    return [str(m.get(color_by, "(missing)")) for m in result.data.metadata]
