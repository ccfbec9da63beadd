"""Test support for backends: reference helpers and the conformance suite every ``VectorStore`` passes.

pytest is a dev/test dependency only (adapters list it in their ``[test]`` extra), so importing this
package must not need it: the reference helpers (:mod:`vectorseam.testing.reference`) are imported
here directly, while the conformance mixins (:mod:`vectorseam.testing.conformance`, which is pytest
code) are imported on first use of one of their names.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from vectorseam.testing.reference import (
    assert_ranking,
    assert_same_record,
    catalog_records,
    make_records,
    normalized_metadata,
    random_vectors,
    reference_candidates,
    reference_scores,
    reference_top_k,
    unique_collection_name,
    vector_of,
)

if TYPE_CHECKING:
    from vectorseam.testing.conformance import (
        BulkLoadTests,
        CollectionTests,
        DateFilterTests,
        DurabilityTests,
        ExactVectorTests,
        FilterTests,
        KeywordTests,
        QueryTests,
        RecommendTests,
        ScanTests,
        StoreConformance,
        WriteTests,
    )

def __getattr__(name: str) -> Any:
    """The conformance mixins, imported (with pytest) only when a test asks for one."""
    if name not in _CONFORMANCE_NAMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    try:
        from vectorseam.testing import conformance
    except ImportError as exc:
        if exc.name not in ("pytest", "_pytest"):
            raise
        raise ImportError(
            f"vectorseam.testing.{name} is pytest code: install pytest (the dev/test extra) to run the "
            "conformance suite", name=exc.name
        ) from exc
    return getattr(conformance, name)


__all__ = [
    "BulkLoadTests",
    "CollectionTests",
    "DateFilterTests",
    "DurabilityTests",
    "ExactVectorTests",
    "FilterTests",
    "KeywordTests",
    "QueryTests",
    "RecommendTests",
    "ScanTests",
    "StoreConformance",
    "WriteTests",
    "assert_ranking",
    "assert_same_record",
    "catalog_records",
    "make_records",
    "normalized_metadata",
    "random_vectors",
    "reference_candidates",
    "reference_scores",
    "reference_top_k",
    "unique_collection_name",
    "vector_of",
]
_CONFORMANCE_NAMES = frozenset(name for name in __all__ if name[0].isupper())
