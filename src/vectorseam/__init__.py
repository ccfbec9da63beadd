"""vectorseam: retrieval on text embeddings over pluggable vector stores.

The names below are loaded on first use (PEP 562), so ``import vectorseam`` (and every ``vectorseam``
command's start) costs only what it uses: ``from vectorseam import VectorSeam`` loads the facade, the
configuration and numpy, not the store or the model, which load when first needed.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from vectorseam.client import VectorSeam
    from vectorseam.errors import VectorseamError
    from vectorseam.store import VectorStore
    from vectorseam.types import CollectionInfo, CollectionSpec, Hit, Record

_EXPORTS: dict[str, str] = {
    "VectorSeam": "vectorseam.client",
    "VectorseamError": "vectorseam.errors",
    "VectorStore": "vectorseam.store",
    "CollectionInfo": "vectorseam.types",
    "CollectionSpec": "vectorseam.types",
    "Hit": "vectorseam.types",
    "Record": "vectorseam.types",
}

__all__ = ["CollectionInfo", "CollectionSpec", "Hit", "Record", "VectorSeam", "VectorStore", "VectorseamError"]
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
