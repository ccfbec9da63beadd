"""BM25 as Qdrant sparse vectors (local mode): what the conformance suite does not cover.

Sharing between processes: qdrant-client's local mode locks its folder, so two processes cannot have
one local collection open at once (the second is refused, said here); the replica scenario needs a
Qdrant server and is in test_qdrant_integration_server.py, skipped where none runs. A process that
opens the folder after another closed it sees that one's keyword writes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from qdrant_client import QdrantClient, models
from vectorseam_qdrant import keywords, layout
from vectorseam_qdrant.store import create_store

from vectorseam.errors import StoreUnavailableError, UnsupportedOperationError
from vectorseam.keywords import tokenize_all
from vectorseam.testing.conformance.keywords import assert_keyword_ranking, keyword_records, reference_bm25
from vectorseam.types import CollectionSpec, Record

DIM = 8


def test_local_folder_is_one_process_at_a_time_and_keeps_the_keyword_index(tmp_path: Path) -> None:
    first = create_store(path=str(tmp_path))
    first.ensure_collection(CollectionSpec("docs", DIM))
    records = keyword_records(dimension=DIM)
    first.upsert("docs", records)
    with pytest.raises(StoreUnavailableError, match="one process per folder"):
        create_store(path=str(tmp_path))
    first.upsert("docs", [Record("k005", records[5].vector, "zebra crossing", records[5].metadata)])
    first.close()
    second = create_store(path=str(tmp_path))
    try:
        assert [h.id for h in second.keyword_search("docs", "zebra", 5)] == ["k005"]
        assert second.hybrid_search("docs", "zebra", np.asarray(records[5].vector), 1)[0].id == "k005"
    finally:
        second.close()


def test_collections_without_the_sparse_vector_refuse_natively_and_still_work(tmp_path: Path) -> None:
    """A collection an earlier vectorseam created (no sparse vector): writes and dense search go on, keyword
    search raises UnsupportedOperationError, the type RetrievalSearcher falls back to the sidecar on."""
    raw = QdrantClient(path=str(tmp_path))
    raw.create_collection("old", vectors_config=models.VectorParams(size=DIM, distance=models.Distance.COSINE),
                          metadata=layout.spec_metadata(DIM, "cosine", {}))
    raw.close()
    store = create_store(path=str(tmp_path))
    try:
        records = keyword_records(dimension=DIM)
        store.upsert("old", records)
        assert store.query("old", np.asarray(records[3].vector), 1)[0][0].id == records[3].id
        with pytest.raises(UnsupportedOperationError, match="migrated to a new collection"):
            store.keyword_search("old", "apple", 3)
        with pytest.raises(UnsupportedOperationError):
            store.hybrid_search("old", "apple", np.ones(DIM, np.float32), 3)
    finally:
        store.close()


def test_reweighting_restores_exact_scores_after_the_mean_length_moved() -> None:
    store = create_store(location=":memory:")
    store.ensure_collection(CollectionSpec("docs", DIM))
    records = keyword_records(dimension=DIM)
    store.upsert("docs", records[:10])  # the first write fixes avgdl from 10 records
    store.upsert("docs", records[10:])
    moved = max(abs(h.score - reference_bm25(records, "apple river")[h.id]) / h.score
                for h in store.keyword_search("docs", "apple river", 10))
    assert moved > 1e-3, "the first write's mean should differ from the collection's"
    avgdl = store.reweight_keywords("docs", batch_size=7)
    lengths = [len(t) for t in tokenize_all([r.text for r in records])]
    assert avgdl == pytest.approx(sum(lengths) / len(lengths))
    for query in ("apple river", "protein cell gene", "banana banana apple"):
        assert_keyword_ranking(store.keyword_search("docs", query, 10), reference_bm25(records, query), 10, 1e-5,
                               query)
    store.close()


def test_tokens_sharing_a_sparse_index_add_up(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(keywords, "term_index", lambda term: 7)
    vector = keywords.document_vector(["cat", "cat", "dog"], 3.0)
    assert vector.indices == [7] and len(vector.values) == 1
    assert vector.values[0] == pytest.approx(2 / (2 + 1.5) + 1 / (1 + 1.5))
    query = keywords.query_vector("cats and dogs")
    assert query is not None and query.indices == [7] and query.values == [2.0]
    assert keywords.query_vector("the and of") is None
