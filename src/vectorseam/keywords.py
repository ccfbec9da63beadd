"""One tokenizer and one BM25 definition for every keyword index: the stores' native ones and the sidecar.

Every backend that searches by keywords (the memory store in its own process, pgvector in SQL, Qdrant
with sparse vectors, the BM25 sidecar of :mod:`vectorseam.stores.bm25_sidecar` for the rest) tokenizes with
:func:`tokenize_all` and weights with :func:`idf` and :func:`term_weight`, so their scores agree:

* **Tokens** come from bm25s itself (:func:`bm25s.tokenize`: lower-cased ``\\w\\w+`` words, its English
  stop words, PyStemmer's English Snowball stemmer).
* **Scores** are Lucene's BM25, bm25s's default ``lucene`` method::

      score(d, q) = sum over query tokens t (repeats count again) of idf(t) * tf / (tf + k1 (1 - b + b dl / avgdl))
      idf(t) = ln(1 + (N - df + 0.5) / (df + 0.5))

  with ``k1 = 1.5``, ``b = 0.75``, ``N`` the number of records (an empty text counts), ``df`` the
  number of records holding ``t``, ``dl`` a record's token count and ``avgdl`` their mean.

A backend whose document weights are fixed when a record is written (Qdrant: the sparse vector) uses
the ``avgdl`` it knows then; each adapter documents the difference and its measured effect.

Hybrid search everywhere is Reciprocal Rank Fusion (:func:`rrf_fuse`, :func:`fuse_hits`) of the dense
and the BM25 top ``depth`` lists, each filtered by the store, ties broken by id.

bm25s and PyStemmer are imported on first use: importing them costs about 0.4 s, which a process that
never searches by keywords (a store opened to write vectors) should not pay.
"""

from __future__ import annotations

import hashlib
import math
import re
import threading
from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from vectorseam.errors import ValidationError
from vectorseam.types import Hit

if TYPE_CHECKING:
    import Stemmer

K1 = 1.5
B = 0.75
DEFAULT_RRF_K = 60

_split = re.compile(r"(?u)\b\w\w+\b").findall  # bm25s's (scikit-learn's CountVectorizer's) token pattern
_stop_words: frozenset[str] | None = None
_local = threading.local()


def tokenize_all(texts: Sequence[str]) -> list[list[str]]:
    """bm25s's tokens for each text (English stop words, Snowball stemmer).

    Pass many texts at once: bm25s stems each distinct word once per call, and its per-call setup is
    paid once. SciFact's abstracts took 1.8 s in one call, 2.4 s with our former per-text tokeniser,
    4.3 s with one call per text (best of 4 each).
    """
    if not texts:
        return []
    import bm25s

    tokens: list[list[str]] = bm25s.tokenize(
        list(texts), stopwords="en", stemmer=_thread_stemmer(), return_ids=False, show_progress=False
    )
    return tokens


def _thread_stemmer() -> Stemmer.Stemmer:
    """This thread's stemmer: PyStemmer's are not thread-safe (a service searches from many threads)."""
    stemmer: Stemmer.Stemmer | None = getattr(_local, "stemmer", None)
    if stemmer is None:
        import Stemmer

        stemmer = _local.stemmer = Stemmer.Stemmer("english")
    return stemmer


def tokenize(text: str) -> list[str]:
    """The tokens of one text (a query): :func:`tokenize_all`'s, computed by bm25s's own steps without its
    per-call set-up (lower-case, its token pattern, its stop-word list, the stemmer; tests check the two
    agree), which took 0.8 ms a query against 4 us here."""
    global _stop_words
    if _stop_words is None:
        from bm25s.tokenization import _infer_stopwords

        _stop_words = frozenset(_infer_stopwords("en"))
    stop = _stop_words
    return list(_thread_stemmer().stemWords([w for w in _split(text.lower()) if w not in stop]))


def query_terms(text: str) -> dict[str, int]:
    """A query's distinct tokens with how often each occurs (a repeated token counts again, as in bm25s)."""
    return dict(Counter(tokenize(text)))


def idf(n: Any, df: Any) -> Any:
    """Lucene's inverse document frequency of a token in ``df`` of ``n`` records (numpy arrays too)."""
    if isinstance(n, (int, float)) and isinstance(df, (int, float)):
        return math.log(1.0 + (n - df + 0.5) / (df + 0.5))
    return np.log(1.0 + (np.asarray(n, dtype=np.float64) - df + 0.5) / (np.asarray(df, dtype=np.float64) + 0.5))


def term_weight(tf: Any, dl: Any, avgdl: float, k1: float = K1, b: float = B) -> Any:
    """The document side of BM25: ``tf / (tf + k1 (1 - b + b dl / avgdl))`` (numpy arrays too).

    ``avgdl`` of 0 (a collection of empty texts) reads as 1: no record has a token then anyway.
    """
    return tf / (tf + k1 * (1.0 - b + b * dl / (avgdl or 1.0)))


def term_index(term: str) -> int:
    """A stable unsigned 32-bit index for a token, for sparse vectors of backends without a vocabulary table.

    Two tokens of one collection share an index with probability about ``V^2 / 2^33`` (V tokens: 0.1
    for SciFact's 30k, 1.2 for 100k); their document frequencies and weights then add up, which the
    adapters using it document.
    """
    return int.from_bytes(hashlib.blake2b(term.encode(), digest_size=4).digest(), "little")


def check_rrf(rrf_k: float, weights: Sequence[float] | None, lists: int) -> list[float]:
    """The RRF weights to use (ones by default), after checking the constant and their number."""
    if rrf_k < 0:
        raise ValidationError(f"the RRF constant must be >= 0, got {rrf_k}")
    w = [float(x) for x in weights] if weights is not None else [1.0] * lists
    if len(w) != lists:
        raise ValidationError(f"{len(w)} RRF weights for {lists} rankings")
    return w


def rrf_fuse(
    rankings: Sequence[Sequence[str]], rrf_k: float = DEFAULT_RRF_K, weights: Sequence[float] | None = None
) -> list[tuple[str, float]]:
    """Reciprocal Rank Fusion of several best-first id lists, ``sum_i w_i / (rrf_k + rank_i(d))`` (Cormack et
    al., 2009: no score calibration between BM25 and cosine needed); ties broken by id."""
    w = check_rrf(rrf_k, weights, len(rankings))
    fused: dict[str, float] = {}
    for weight, ranking in zip(w, rankings, strict=True):
        for rank, rid in enumerate(ranking, 1):
            fused[rid] = fused.get(rid, 0.0) + weight / (rrf_k + rank)
    return sorted(fused.items(), key=lambda item: (-item[1], item[0]))


def fuse_hits(
    dense: Sequence[Hit], sparse: Sequence[Hit], k: int, rrf_k: float = DEFAULT_RRF_K,
    weights: Sequence[float] | None = None,
) -> list[Hit]:
    """The hybrid result of a dense and a BM25 list: :func:`rrf_fuse` of their ids, the fused score on each
    hit, text and metadata from whichever list holds it (the dense one when both do)."""
    by_id = {h.id: h for h in sparse} | {h.id: h for h in dense}
    fused = rrf_fuse([[h.id for h in dense], [h.id for h in sparse]], rrf_k, weights)
    return [Hit(rid, score, by_id[rid].text, by_id[rid].metadata) for rid, score in fused[:k]]


def check_depth(depth: int, k: int) -> int:
    """How many candidates each half of a hybrid search takes: ``depth``, at least ``k``."""
    if isinstance(depth, bool) or not isinstance(depth, int) or depth <= 0:
        raise ValidationError(f"the hybrid depth must be a positive integer, got {depth!r}")
    return max(depth, k)
