"""Splitting long texts into overlapping chunks that fit the embedder's token limit.

Why by tokens of the embedder's own tokenizer: the local model silently truncates at 256 word
pieces, so a chunk measured in characters or words either wastes capacity or loses its tail
unnoticed. Chunks are sliced from the *original* text by the tokenizer's character offsets, so the
stored text is what the source said, not a lower-cased re-decoding of word pieces.

A window ends, when possible, where a word starts (never inside a word such as
``token|##ization``), and consecutive windows share ``overlap`` tokens so a sentence cut by a
boundary is still whole in one of the two chunks.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from vectorseam.embedding import Span
from vectorseam.errors import ValidationError

Spans = Callable[[str], list[Span]]


@dataclass(frozen=True, slots=True)
class ChunkSpec:
    """``max_tokens`` per chunk (special tokens excluded) and ``overlap`` tokens shared by neighbours."""

    max_tokens: int
    overlap: int = 32

    def __post_init__(self) -> None:
        if self.max_tokens < 8:
            raise ValidationError(f"chunk size must be at least 8 tokens, got {self.max_tokens}")
        if not 0 <= self.overlap < self.max_tokens // 2:
            raise ValidationError(
                f"chunk overlap must be between 0 and half the chunk size ({self.max_tokens // 2 - 1}), "
                f"got {self.overlap}"
            )


def _is_word_start(text: str, pos: int) -> bool:
    return pos == 0 or not (text[pos - 1].isalnum() and text[pos].isalnum())


def chunk_text(text: str, spec: ChunkSpec, token_spans: Spans) -> list[str]:
    """The chunks of ``text`` cut at ``token_spans`` (an embedder's :meth:`~vectorseam.embedding.Embedder.token_spans`);
    a text that fits is returned whole, and never tokenized when short: a token covers at least one
    character, so a text of at most ``max_tokens`` characters fits without counting (the tokenizer is
    then never loaded)."""
    if len(text) <= spec.max_tokens:
        return [text]
    spans = token_spans(text)
    n = len(spans)
    if n <= spec.max_tokens:
        return [text]
    chunks: list[str] = []
    start = 0
    while start < n:
        end = min(start + spec.max_tokens, n)
        if end < n:
            # move the cut back to a word start, but keep at least 3/4 of the window
            floor = start + (spec.max_tokens * 3) // 4
            cut = end
            while cut > floor and not _is_word_start(text, spans[cut][0]):
                cut -= 1
            end = cut if cut > floor else end
        piece = text[spans[start][0] : spans[end - 1][1]].strip()
        if piece:
            chunks.append(piece)
        if end >= n:
            break
        nxt = max(end - spec.overlap, start + 1)
        while nxt > start + 1 and not _is_word_start(text, spans[nxt][0]):
            nxt -= 1  # start the next window at a word start too (more overlap, never less)
        start = nxt
    return chunks
