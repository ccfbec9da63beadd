"""Test support for backends: the conformance suite every ``VectorStore`` adapter must pass.

Importing this package needs pytest (it is a test-time dependency of adapters, in their ``[test]``
extra), which is why nothing in the runtime library imports it.
"""

from vectorseam.testing.conformance import (
    StoreConformance,
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
)

__all__ = [
    "StoreConformance",
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
]
