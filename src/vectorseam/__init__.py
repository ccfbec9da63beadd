"""vectorseam: retrieval on text embeddings over pluggable vector stores."""

from vectorseam.client import VectorSeam
from vectorseam.errors import VectorseamError
from vectorseam.store import VectorStore
from vectorseam.types import CollectionInfo, CollectionSpec, Hit, Record

__all__ = ["CollectionInfo", "CollectionSpec", "Hit", "Record", "VectorSeam", "VectorStore", "VectorseamError"]
__version__ = "0.1.0"
