"""BM25 as Qdrant sparse vectors: document weights written with each point, ``idf`` computed by Qdrant.

How close this gets to vectorseam's one BM25 definition (:mod:`vectorseam.keywords`), and why:

* **Tokens** are vectorseam's (:func:`vectorseam.keywords.tokenize_all`), each mapped to a sparse index
  by :func:`vectorseam.keywords.term_index` (a 32-bit hash: Qdrant keeps no vocabulary). Two tokens
  sharing an index add up; at SciFact's vocabulary that happens about once in ten collections.
* **idf** is Qdrant's ``Modifier.IDF``, which is Lucene's formula ``ln(1 + (N - df + 0.5) / (df + 0.5))``
  over the points holding the sparse vector, computed from the live collection at query time, so it
  follows every write in every process. Every point holds one (empty for a text without tokens),
  so ``N`` counts every record, as in the reference.
* **The document side** ``tf / (tf + k1 (1 - b + b dl / avgdl))`` is fixed when a point is written.
  Qdrant keeps no length statistics, so ``avgdl`` is the mean length of the collection's *first*
  upsert with any tokens, stored in the collection's metadata and used for every later write. While
  the collection's true mean stays within a few percent of it (a corpus loaded in batches of
  hundreds of records), scores differ from the reference by well under 1% and rankings by the odd
  near-tie: measured on SciFact, see the README. :meth:`QdrantStore.reweight_keywords` rewrites every
  point's weights with the current mean when a collection's texts have changed character.
* **Hybrid** is one round trip: a ``query_batch_points`` call with the dense and the sparse query
  (both filtered), fused by :func:`vectorseam.keywords.fuse_hits`. Qdrant's own fusion (``prefetch``
  plus ``RrfQuery``, with ``k = rrf_k + 1`` since it scores ``1 / (rank + k - 1)``) gives the same
  scores except where a list holds records with *equal* scores: it ranks those in its own order,
  not by id, and BM25 ties are common (records with the same term counts and length), so the
  fused order differed from the definition in the conformance suite. It also cannot weight the
  two lists as vectorseam does (it scales ranks, ``1 / (rank / w + k - 1)``).

Collections created before sparse vectors were added have none (Qdrant cannot add one to an
existing collection): their keyword search raises ``UnsupportedOperationError``, so vectorseam's BM25
sidecar answers for them, until they are migrated to a new collection (``vectorseam migrate``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from qdrant_client import models

from vectorseam.keywords import query_terms, term_index, term_weight

SPARSE = "bm25"  # the sparse vector's name; the dense vector stays the unnamed default one
DENSE = ""


def sparse_config() -> dict[str, models.SparseVectorParams]:
    return {SPARSE: models.SparseVectorParams(modifier=models.Modifier.IDF)}


def has_sparse(config: object) -> bool:
    """Whether a collection's ``sparse_vectors`` config holds the keyword vector."""
    return isinstance(config, dict) and SPARSE in config


def first_avgdl(token_lists: Sequence[Sequence[str]]) -> float | None:
    """The mean length of a collection's first write, or None when it has no token at all (then the
    next write with tokens sets it: a point without tokens has no weight that could depend on it)."""
    total = sum(len(t) for t in token_lists)
    return total / len(token_lists) if total else None


def _sparse(weights: dict[int, float]) -> models.SparseVector:
    indices = sorted(weights)
    return models.SparseVector(indices=indices, values=[weights[i] for i in indices])


def document_vector(tokens: Sequence[str], avgdl: float) -> models.SparseVector:
    """A record's BM25 document weights by token index (tokens sharing an index add up)."""
    weights: dict[int, float] = {}
    dl = len(tokens)
    for term, tf in Counter(tokens).items():
        index = term_index(term)
        weights[index] = weights.get(index, 0.0) + float(term_weight(tf, dl, avgdl))
    return _sparse(weights)


def query_vector(query: str) -> models.SparseVector | None:
    """The query's token counts by index (Qdrant multiplies each by its idf); None without a token."""
    counts: dict[int, float] = {}
    for term, n in query_terms(query).items():
        index = term_index(term)
        counts[index] = counts.get(index, 0.0) + n
    return _sparse(counts) if counts else None
