"""Highlights: which of the query's words a hit's text holds, and a snippet around the best cluster.

Words are matched the way keyword search sees them (:mod:`vectorseam.keywords`: bm25s's word pattern,
lower case, English stop words dropped, Snowball stems), so "running" in a text matches the query
"runs" and "the" matches nothing, and a hybrid hit is highlighted for exactly the words BM25 scored.
A dense hit may match no word at all (it is similar in meaning): its snippet is then the start of
its text and it has no spans.

The snippet is the window of about ``chars`` characters holding the most distinct matched words (then
the most matches, then the earliest), widened evenly around them and cut at word boundaries. Spans are
character offsets into the snippet, and the snippet's ``offset`` in the text is given, so a page marks
the words up itself: the server sends no HTML, and nothing a record's text holds can inject any.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from vectorseam.keywords import tokenize_all
from vectorseam.query import Highlight

WORD = re.compile(r"(?u)\b\w\w+\b")  # bm25s's token pattern, as in vectorseam.keywords


def highlight_texts(texts: Sequence[str], query: str, chars: int = 200) -> list[Highlight]:
    """The highlight of each of ``texts`` for ``query`` (one tokenizer call for all of them)."""
    wanted = set(tokenize_all([query])[0]) if query.strip() else set()
    found = [[(m.start(), m.end()) for m in WORD.finditer(text)] for text in texts]
    distinct = sorted({text[s:e].lower() for text, spans in zip(texts, found, strict=True) for s, e in spans})
    stems = dict(zip(distinct, tokenize_all(distinct), strict=True)) if wanted and distinct else {}
    out = []
    for text, spans in zip(texts, found, strict=True):
        matches = [(s, e) for s, e in spans if wanted.intersection(stems.get(text[s:e].lower(), ()))]
        out.append(_highlight(text, matches, chars))
    return out


def _highlight(text: str, matches: list[tuple[int, int]], chars: int) -> Highlight:
    terms = tuple(dict.fromkeys(text[s:e] for s, e in matches))
    if not matches:
        start, end = 0, _cut_end(text, 0, min(len(text), chars))
        return Highlight(terms, text[start:end], (), start)
    first, last = _best_window(text, matches, chars)
    inside = matches[first : last + 1]
    lo, hi = inside[0][0], inside[-1][1]
    room = max(0, chars - (hi - lo))
    start = max(0, lo - room // 2)
    end = min(len(text), max(hi, start + chars))
    start = max(0, min(start, end - chars))
    start, end = _cut_start(text, start, lo), _cut_end(text, hi, end)
    spans = tuple((s - start, e - start) for s, e in matches if s >= start and e <= end)
    return Highlight(terms, text[start:end], spans, start)


def _best_window(text: str, matches: list[tuple[int, int]], chars: int) -> tuple[int, int]:
    """Indices of the first and last match of the best window (see the module docstring)."""
    best: tuple[int, int, int] | None = None
    chosen = (0, 0)
    for i, (s, _) in enumerate(matches):
        j = i
        while j + 1 < len(matches) and matches[j + 1][1] - s <= chars:
            j += 1
        distinct = len({text[a:b].lower() for a, b in matches[i : j + 1]})
        score = (distinct, j - i + 1, -i)
        if best is None or score > best:
            best, chosen = score, (i, j)
    return chosen


def _cut_start(text: str, start: int, limit: int) -> int:
    """``start`` moved forward past a word it would cut, never past ``limit`` (the first match)."""
    if start == 0 or not (text[start - 1].isalnum() and text[start].isalnum()):
        return start
    space = text.find(" ", start, limit)
    return space + 1 if space >= 0 else start


def _cut_end(text: str, limit: int, end: int) -> int:
    """``end`` moved back before a word it would cut, never before ``limit`` (the last match's end)."""
    if end >= len(text) or not (text[end - 1].isalnum() and text[end].isalnum()):
        return end
    space = text.rfind(" ", limit, end)
    return space if space > limit else end
