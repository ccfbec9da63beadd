"""Analysis of a whole collection: clustering and maps, near-duplicates, zero-shot labels, customized
embeddings.

Everything here reads a collection through the store protocol's ``scan``, so it works the same on
every backend; nothing depends on a backend's internals.
"""

from __future__ import annotations

from vectorseam.analysis.classify import ClassificationResult, LabelSpec, classify_collection
from vectorseam.analysis.clustering import Cluster, ClusteringResult, cluster_collection
from vectorseam.analysis.customize import apply_matrix, train_matrix
from vectorseam.analysis.dedup import DedupResult, find_duplicates
from vectorseam.analysis.maps import write_map
from vectorseam.analysis.vectors import CollectionMatrix, load_collection
from vectorseam.embedders.custom_matrix import CustomizedEmbedder, CustomMatrix

__all__ = [
    "ClassificationResult",
    "Cluster",
    "ClusteringResult",
    "CollectionMatrix",
    "CustomMatrix",
    "CustomizedEmbedder",
    "DedupResult",
    "LabelSpec",
    "apply_matrix",
    "classify_collection",
    "cluster_collection",
    "find_duplicates",
    "load_collection",
    "train_matrix",
    "write_map",
]
