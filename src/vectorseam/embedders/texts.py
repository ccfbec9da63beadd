"""Input checks shared by every embedder, so each rejects bad text the same way."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, TypeAlias

from vectorseam.errors import ValidationError

TooLongPolicy: TypeAlias = Literal["truncate", "error"]


def check_texts(texts: Sequence[str]) -> list[str]:
    """Reject non-strings and empty or whitespace-only texts, naming the position.

    An empty text embeds to a meaningless vector that would then match queries at random.
    """
    if isinstance(texts, str):
        raise ValidationError("embed_documents takes a list of texts, got a single string")
    out: list[str] = []
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise ValidationError(f"text {i}: expected a string, got {type(text).__name__}")
        if not text.strip():
            raise ValidationError(f"text {i}: text is empty or whitespace only; give it some content or drop it")
        out.append(text)
    return out
