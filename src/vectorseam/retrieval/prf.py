"""Pseudo-relevance feedback: the query moved towards its own best first-pass results (dense Rocchio).

A query adapter learns from judged documents, so it helps most where judged documents are asked
about again. Feedback needs no judgement: the query's own top hybrid results stand in for relevant
documents, ``q' = unit(q + weight * mean(top m document vectors))``, and the dense list is searched
again with ``q'``. A document nobody judged gains exactly as a judged one does, which is why it is
the step of choice for "queries about new documents". What is tuned is ``m`` and ``weight``, on
held-out folds like every other step; the cost is one more dense query per search.

RM3 (expanding the BM25 query with terms of the feedback documents) is not offered: the keyword
indexes of the stores take a query text, not weighted terms, so the expanded query could not be
searched as RM3 defines it on every backend.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from vectorseam.errors import ValidationError
from vectorseam.similarity import unit_rows_f32

F32 = npt.NDArray[np.float32]
FEEDBACK_DOCUMENTS = (3, 5, 10)
FEEDBACK_WEIGHTS = (0.25, 0.5, 1.0, 2.0)


@dataclass(frozen=True)
class Feedback:
    """Rocchio feedback from the ``documents`` best first-pass results, mixed in with ``weight``."""

    documents: int = 5
    weight: float = 0.5

    def check(self) -> Feedback:
        if self.documents <= 0 or self.weight < 0:
            raise ValidationError(f"feedback needs documents > 0 and weight >= 0, got {self.documents}, {self.weight}")
        return self

    def describe(self) -> str:
        return f"dense feedback from the top {self.documents} (weight {self.weight:g})"

    def expand(self, query: npt.ArrayLike, feedback: Sequence[npt.ArrayLike] | F32) -> F32:
        """One query vector moved towards the mean of its feedback documents' vectors, unit length."""
        q = np.asarray(query, dtype=np.float32)
        docs = np.asarray(feedback, dtype=np.float32).reshape(-1, q.shape[-1])[: self.documents]
        if not len(docs):
            return q
        moved: F32 = unit_rows_f32((q + self.weight * unit_rows_f32(docs).mean(axis=0))[None, :])[0]
        return moved

    def expand_many(self, queries: F32, first_pass: Sequence[Sequence[int]], documents: F32) -> F32:
        """Each query row expanded with the document rows of its first pass (the tuner's batch form)."""
        out = np.array(queries, dtype=np.float32, copy=True)
        for i, rows in enumerate(first_pass):
            top = list(rows[: self.documents])
            if top:
                out[i] = queries[i] + self.weight * unit_rows_f32(documents[top]).mean(axis=0)
        return unit_rows_f32(out)


def feedback_grid() -> list[Feedback]:
    return [Feedback(m, w) for m in FEEDBACK_DOCUMENTS for w in FEEDBACK_WEIGHTS]
