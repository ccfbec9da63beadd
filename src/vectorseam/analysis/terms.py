"""Distinctive terms per cluster: class-based TF-IDF (as BERTopic's c-TF-IDF).

All texts of a cluster are treated as one document. A term scores high when it is frequent in that
cluster and rare across clusters, so "the" and words every cluster shares sink, and each cluster is
described by what sets it apart rather than by what is common. A term found in *every* cluster is left
out altogether: it cannot tell one from another, yet a frequent one (the "title" and "content" of a text
template such as ``Title: {Summary}; Content: {Text}``) still outweighed the distinctive words. HTML tags
(the reviews' ``<br />``) are markup, not words, and are removed before counting.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from vectorseam.extras import require

_TAG = re.compile(r"</?[a-zA-Z][^<>]{0,200}>")


def class_tfidf_terms(
    texts: Sequence[str], labels: Sequence[int], n_classes: int, top: int = 8
) -> list[list[tuple[str, float]]]:
    """For each class 0..n_classes-1, its ``top`` terms with their c-TF-IDF weight, best first."""
    require("analysis", "describing clusters by their terms", ("sklearn",))
    from sklearn.feature_extraction.text import CountVectorizer

    docs = [_TAG.sub(" ", " ".join(t for t, lab in zip(texts, labels, strict=True) if lab == c))
            for c in range(n_classes)]
    vectorizer = CountVectorizer(stop_words="english", ngram_range=(1, 2), min_df=1,
                                 token_pattern=r"(?u)\b[a-zA-Z][a-zA-Z0-9'-]+\b")
    try:
        counts = vectorizer.fit_transform(docs).toarray().astype(np.float64)
    except ValueError:  # every text is only stop words or digits
        return [[] for _ in range(n_classes)]
    vocab = vectorizer.get_feature_names_out()
    words_per_class = counts.sum(axis=1, keepdims=True)
    words_per_class[words_per_class == 0] = 1.0
    tf = counts / words_per_class
    average_words = float(counts.sum()) / max(n_classes, 1)
    idf = np.log1p(average_words / np.maximum(counts.sum(axis=0), 1.0))
    weights = tf * idf
    if n_classes > 1:  # a word in every cluster describes none of them, nor does a phrase holding it
        everywhere = (counts > 0).all(axis=0)
        common = {str(w) for w, e in zip(vocab, everywhere, strict=True) if e and " " not in str(w)}
        weights[:, everywhere | np.array([any(part in common for part in str(w).split()) for w in vocab])] = 0.0
    out: list[list[tuple[str, float]]] = []
    for c in range(n_classes):
        order = np.argsort(-weights[c], kind="stable")[:top]
        out.append([(str(vocab[i]), float(weights[c, i])) for i in order if weights[c, i] > 0])
    return out
