"""Hybrid search with a tuned profile's feedback and learned ranker: the serving side of
:mod:`vectorseam.retrieval.tune`, step for step what the tuner scored.

1. The query vector goes through the profile's adapter; the dense and BM25 lists are searched.
2. Feedback (if tuned): the two lists are fused the profile's way, the vectors of the best
   ``documents`` move the query (:class:`~vectorseam.retrieval.prf.Feedback`), and the dense list is
   searched again with the moved vector.
3. The ranker (if tuned) scores the union of each list's top ``depth`` from the features of
   :func:`~vectorseam.retrieval.ranker.feature_matrix`; candidates whose vectors the dense list did
   not return are fetched in one call. Without a ranker the lists are fused as before.

The hits' scores are the ranker's (or the fusion's), higher is better; ties are broken by id.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from vectorseam.filters import Filter
from vectorseam.retrieval.ranker import ABSENT, RankInputs, feature_matrix, metadata_values, query_leads, text_length
from vectorseam.types import Hit

if TYPE_CHECKING:
    from vectorseam.retrieval.hybrid import RetrievalSearcher
    from vectorseam.retrieval.tune_profile import RetrievalProfile

F32 = npt.NDArray[np.float32]


def _vectors(searcher: RetrievalSearcher, collection: str, ids: Sequence[str],
             known: dict[str, F32]) -> dict[str, F32]:
    """The stored vectors of ``ids``: those the dense list returned, the rest fetched in one call."""
    missing = [i for i in ids if i not in known]
    out = dict(known)
    if missing:
        for r in searcher.store.fetch(collection, missing, include_vectors=True):
            if r.vector is not None:
                out[r.id] = np.asarray(r.vector, dtype=np.float32)
    return out


def tuned_hybrid(searcher: RetrievalSearcher, collection: str, query: str, raw: F32, k: int, f: Filter | None,
                 profile: RetrievalProfile) -> list[Hit]:
    """The hybrid top ``k`` (at least; the ranker returns its whole candidate union) under ``profile``."""
    fusion, feedback, ranker = profile.fusion, profile.feedback, profile.ranker
    qvec = profile.adapt(raw)
    depth = max(k, fusion.depth, ranker.depth if ranker is not None else 0)
    want_vectors = feedback is not None or ranker is not None
    dense = searcher.store.query(collection, qvec, k=depth, filter=f, include_vectors=want_vectors)[0]
    sparse = searcher.store.keyword_search(collection, query, depth, f)
    known = {h.id: np.asarray(h.vector, dtype=np.float32) for h in dense if h.vector is not None}
    searched = qvec
    if feedback is not None:
        first = [rid for rid, _ in fusion.fuse([(h.id, h.score) for h in dense],
                                               [(h.id, h.score) for h in sparse])[: feedback.documents]]
        known = _vectors(searcher, collection, first, known)
        searched = feedback.expand(qvec, [known[i] for i in first if i in known])
        dense = searcher.store.query(collection, searched, k=depth, filter=f, include_vectors=ranker is not None)[0]
        known |= {h.id: np.asarray(h.vector, dtype=np.float32) for h in dense if h.vector is not None}
    by_id = {h.id: h for h in sparse} | {h.id: h for h in dense}
    if ranker is None:
        fused = fusion.fuse([(h.id, h.score) for h in dense], [(h.id, h.score) for h in sparse])
        return [Hit(rid, score, by_id[rid].text, by_id[rid].metadata) for rid, score in fused[:k]]
    r = max(ranker.depth, k)
    d_rank = {h.id: i for i, h in enumerate(dense[:r])}
    b_rank = {h.id: i for i, h in enumerate(sparse[:r])}
    b_score = {h.id: h.score for h in sparse[:r]}
    ids = sorted(set(d_rank) | set(b_rank))
    if not ids:
        return []
    known = _vectors(searcher, collection, ids, known)
    ids = [i for i in ids if i in known]  # a record deleted between the two calls
    matrix = np.stack([known[i] for i in ids])
    texts = [by_id[i].text for i in ids]
    metas = [by_id[i].metadata for i in ids]
    lead_bm25, lead_cover = query_leads(ranker.lead, query, texts, metas)

    def row(values: npt.ArrayLike) -> npt.NDArray[np.float64]:
        return np.asarray(values, dtype=np.float64)[None, :]

    def ranks(where: dict[str, int]) -> npt.NDArray[np.int32]:
        return np.asarray([where.get(i, ABSENT) for i in ids], dtype=np.int32)[None, :]

    inputs = RankInputs(
        valid=np.ones((1, len(ids)), dtype=bool),
        dense=row(matrix @ qvec), dense_raw=row(matrix @ raw),
        dense_rank=ranks(d_rank),
        bm25=row([b_score.get(i, 0.0) for i in ids]),
        bm25_rank=ranks(b_rank),
        lead_bm25=lead_bm25[None, :], lead_cover=lead_cover[None, :], length=text_length(texts)[None, :],
        prf=row(matrix @ searched), metadata=metadata_values(metas, ranker.metadata_fields)[None, :, :],
    )
    scores = ranker.score(feature_matrix(inputs))[0]
    order = sorted(range(len(ids)), key=lambda j: (-scores[j], ids[j]))
    return [Hit(ids[j], float(scores[j]), texts[j], metas[j], known[ids[j]]) for j in order]
