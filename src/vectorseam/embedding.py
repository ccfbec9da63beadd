"""The embedder protocol: how text becomes vectors and tokens, and the fingerprint that pins a collection to it.

A collection records the fingerprint of the embedder that filled it; querying or ingesting with a
different fingerprint is refused (vectors from two models are not comparable, and nothing would
fail loudly otherwise: results would just be wrong). The rule lives here, in the core, because ingest,
search, migration, analysis and the framework integrations all create or read collections.

Tokens are the embedder's too: chunking cuts texts into pieces of at most :attr:`Embedder.max_tokens` at
:meth:`Embedder.token_spans`, and :meth:`Embedder.count_tokens` (the service's ``usage``) counts what the
model reads by the same tokenizer. An embedder without a tokenizer here (an HTTP model) counts words and
punctuation marks (:data:`WORDS`); an answer's prompt budget, whose model has no tokenizer here either, uses
the deliberate over-count :data:`ESTIMATE`. Nothing else in vectorseam counts tokens.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from vectorseam.errors import EmbedderMismatchError
from vectorseam.store import VectorStore
from vectorseam.types import CollectionInfo, CollectionSpec, Metric

FINGERPRINT_KEY = "embedder"
REMOTE_MAX_TOKENS = 512  # what an HTTP model is cut to: ~1.3 BPE tokens per word leave OpenAI's 8191 far off

Span = tuple[int, int]


@runtime_checkable
class Embedder(Protocol):
    @property
    def dimension(self) -> int:
        """Length of the vectors this embedder returns."""
        ...

    @property
    def fingerprint(self) -> str:
        """Identifies the vector space: provider, model, dimension (and any customization)."""
        ...

    @property
    def max_tokens(self) -> int:
        """The most tokens (special tokens not counted) the model reads of one text: chunks are cut to fit."""
        ...

    def token_spans(self, text: str) -> list[Span]:
        """Character (start, end) of every token of ``text`` by the model's tokenizer (special tokens
        excluded): chunking cuts there."""
        ...

    def count_tokens(self, texts: Sequence[str]) -> int:
        """The tokens the model reads of ``texts``: of each, at most :attr:`max_tokens` of its own and the
        model's special tokens (what an embeddings API reports as ``usage``)."""
        ...

    def embed_documents(self, texts: Sequence[str], batch_size: int | None = None) -> npt.NDArray[np.float32]:
        """Embed many texts, in batches; returns a (len(texts), dimension) float32 matrix."""
        ...

    def embed_query(self, text: str) -> npt.NDArray[np.float32]:
        """Embed one query; returns a (dimension,) float32 vector."""
        ...


class PatternTokens:
    """Tokens found by a regular expression, for a model whose tokenizer is not here."""

    def __init__(self, pattern: str) -> None:
        self._pattern = re.compile(pattern, re.UNICODE)

    def spans(self, text: str) -> list[Span]:
        return [m.span() for m in self._pattern.finditer(text)]

    def count(self, text: str) -> int:
        return sum(1 for _ in self._pattern.finditer(text))


WORDS = PatternTokens(r"\w+|[^\w\s]")
"""Words and punctuation marks: an HTTP embedder's tokens (OpenAI's BPE makes about 1.3 of a word)."""

ESTIMATE = PatternTokens(r"\w{1,4}|[^\w\s]")
"""Pieces of at most four letters and each punctuation mark: over-counts English a little against BPE
tokenizers, so a prompt budget counted this way is never exceeded."""


class WordTokens:
    """The token members of an :class:`Embedder` whose tokenizer is not here (an HTTP model, a framework's):
    words and punctuation marks (:data:`WORDS`), texts cut to :data:`REMOTE_MAX_TOKENS`."""

    @property
    def max_tokens(self) -> int:
        return REMOTE_MAX_TOKENS

    def token_spans(self, text: str) -> list[Span]:
        return WORDS.spans(text)

    def count_tokens(self, texts: Sequence[str]) -> int:
        return sum(WORDS.count(t) for t in texts)


def collection_spec(name: str, embedder: Embedder, metric: Metric = "cosine") -> CollectionSpec:
    """The spec a collection filled by ``embedder`` must have: its dimension and fingerprint."""
    return CollectionSpec(name, embedder.dimension, metric, {FINGERPRINT_KEY: embedder.fingerprint})


def check_embedder(info: CollectionInfo, embedder: Embedder) -> None:
    """Refuse to mix vector spaces: a query embedded by another model would return garbage silently."""
    recorded = info.metadata.get(FINGERPRINT_KEY)
    if recorded is not None and recorded != embedder.fingerprint:
        raise EmbedderMismatchError(
            f"collection {info.name!r} was embedded with {recorded!r}, but the configured embedder is "
            f"{embedder.fingerprint!r}. Configure the original embedder, or re-embed into a new collection "
            f"with `vectorseam reindex {info.name} --embedder ...`"
        )


def ensure_collection_for(store: VectorStore, name: str, embedder: Embedder) -> CollectionInfo:
    """The collection ``name`` for ``embedder``: created if need be, refused if another embedder filled it."""
    info = store.ensure_collection(collection_spec(name, embedder))
    check_embedder(info, embedder)
    return info
