"""Distinctive terms per cluster: class-based TF-IDF (as BERTopic's c-TF-IDF).

All texts of a cluster are treated as one document. A term scores high when it is frequent in that
cluster and rare across clusters, so "the" and words every cluster shares sink, and each cluster is
described by what sets it apart rather than by what is common.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def class_tfidf_terms(
    texts: Sequence[str], labels: Sequence[int], n_classes: int, top: int = 8
) -> list[list[tuple[str, float]]]:
    """For each class 0..n_classes-1, its ``top`` terms with their c-TF-IDF weight, best first."""
    from sklearn.feature_extraction.text import CountVectorizer

    docs = [" ".join(t for t, lab in zip(texts, labels, strict=True) if lab == c) for c in range(n_classes)]
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
    out: list[list[tuple[str, float]]] = []
    for c in range(n_classes):
        order = np.argsort(-weights[c], kind="stable")[:top]
        out.append([(str(vocab[i]), float(weights[c, i])) for i in order if weights[c, i] > 0])
    return out
