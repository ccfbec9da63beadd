"""A collection's clusters as 2-D points, for an interactive map (the search page draws it in SVG).

The clustering is the one ``vectorseam cluster`` computes (:func:`vectorseam.analysis.clustering.cluster_matrix`:
k-means on unit vectors, k by silhouette unless given) and the projection the one its maps use
(:func:`vectorseam.analysis.maps.project`); only the output differs: coordinates scaled to [0, 1] with each
point's id, cluster and a short text, instead of a PNG and an HTML file.

Both cost seconds (t-SNE on 1,000 points takes several), so results are cached per collection *state*:
the key is a SHA-256 of every id, text and vector read (plus the parameters), so any write that changes
what the map shows (an upsert, a delete, a re-embedding) misses the cache, and nothing else does. The
scan that computes the key is what the computation reads anyway, and costs milliseconds per thousand
records next to the clustering. Collections over ``max_points`` records are mapped on a fixed sample
(seeded, so the same state gives the same map), and the answer says so.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt

from vectorseam.analysis.clustering import DEFAULT_K_RANGE, cluster_matrix
from vectorseam.analysis.maps import Projection, project
from vectorseam.analysis.vectors import CollectionMatrix
from vectorseam.errors import ValidationError

DEFAULT_MAX_POINTS = 2000
TEXT_CHARS = 240
CACHE_ENTRIES = 8


@dataclass(frozen=True)
class MapPoint:
    id: str
    x: float  # in [0, 1], left to right
    y: float  # in [0, 1], bottom to top
    cluster: int
    text: str  # the record's text, cut at TEXT_CHARS


@dataclass(frozen=True)
class MapCluster:
    index: int
    label: str  # the cluster's name, else its top terms
    size: int  # records of the mapped sample in it
    terms: list[str]


@dataclass(frozen=True)
class ClusterMap:
    collection: str
    state: str  # the SHA-256 the cache is keyed by
    projection: Projection
    k: int
    silhouette: float | None
    total: int  # records in the collection
    points: list[MapPoint]
    clusters: list[MapCluster]
    cached: bool = False

    @property
    def sampled(self) -> bool:
        return len(self.points) < self.total


def collection_state(data: CollectionMatrix) -> str:
    """SHA-256 over the collection's name, spec, ids, texts and vectors, in scan order."""
    h = hashlib.sha256()
    info = data.info
    h.update(f"{info.name}\0{info.dimension}\0{info.metric}\0{sorted(info.metadata.items())}\0".encode())
    for rid, text in zip(data.ids, data.texts, strict=True):
        h.update(rid.encode("utf-8", "surrogatepass") + b"\0" + text.encode("utf-8", "surrogatepass") + b"\1")
    h.update(np.ascontiguousarray(data.vectors, dtype=np.float32).tobytes())
    return h.hexdigest()


def _sample(data: CollectionMatrix, max_points: int, seed: int) -> CollectionMatrix:
    if len(data) <= max_points:
        return data
    keep = np.sort(np.random.default_rng(seed).choice(len(data), size=max_points, replace=False))
    return CollectionMatrix(data.info, [data.ids[i] for i in keep], [data.texts[i] for i in keep],
                            [data.metadata[i] for i in keep], data.vectors[keep])


def _unit_square(coords: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    low = coords.min(axis=0)
    span = np.maximum(coords.max(axis=0) - low, 1e-12)
    return np.asarray((coords - low) / span, dtype=np.float64)


def compute_map(data: CollectionMatrix, state: str, k: int | None = None, projection: Projection = "tsne",
                seed: int = 0, max_points: int = DEFAULT_MAX_POINTS) -> ClusterMap:
    if max_points < 3:
        raise ValidationError(f"max_points must be at least 3, got {max_points}")
    mapped = _sample(data, max_points, seed)
    if len(mapped) < 3:
        raise ValidationError(f"collection {data.info.name!r} holds {len(mapped)} record(s); a map needs at least 3")
    result = cluster_matrix(mapped, k, DEFAULT_K_RANGE, seed)
    xy = _unit_square(project(mapped.unit_vectors(), projection, seed))
    points = [MapPoint(rid, round(float(xy[i, 0]), 5), round(float(xy[i, 1]), 5), int(result.labels[i]),
                       text if len(text) <= TEXT_CHARS else text[:TEXT_CHARS - 1] + "…")
              for i, (rid, text) in enumerate(zip(mapped.ids, mapped.texts, strict=True))]
    clusters = [MapCluster(c.index, c.label, c.size, list(c.terms)) for c in result.clusters]
    return ClusterMap(data.info.name, state, projection, result.k, result.silhouette, len(data), points, clusters)


class MapCache:
    """The last few maps, keyed by collection state and parameters; safe across request threads.

    Two requests for the same missing map compute it once: the second waits for the first."""

    def __init__(self, entries: int = CACHE_ENTRIES) -> None:
        self.entries = entries
        self._maps: OrderedDict[tuple[object, ...], ClusterMap] = OrderedDict()
        self._lock = threading.Lock()
        self._computing: dict[tuple[object, ...], threading.Lock] = {}

    def get(self, data: CollectionMatrix, k: int | None = None, projection: Projection = "tsne", seed: int = 0,
            max_points: int = DEFAULT_MAX_POINTS) -> ClusterMap:
        state = collection_state(data)
        key = (state, k, projection, seed, max_points)
        with self._lock:
            found = self._maps.get(key)
            if found is not None:
                self._maps.move_to_end(key)
                return replace(found, cached=True)
            gate = self._computing.setdefault(key, threading.Lock())
        with gate:
            with self._lock:
                found = self._maps.get(key)
            if found is not None:
                return replace(found, cached=True)
            made = compute_map(data, state, k, projection, seed, max_points)
            with self._lock:
                self._maps[key] = made
                while len(self._maps) > self.entries:
                    self._maps.popitem(last=False)
                self._computing.pop(key, None)
            return made
