"""The parts of a search answer beyond its hits: groups, facet counts, highlights (issue 23's options).

They mirror :mod:`vectorseam.query`'s result types field for field, so :mod:`vectorseam.remote` reads
them back into those types unchanged.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

Scalar = str | int | float | bool


class HighlightOut(BaseModel):
    terms: list[str] = Field(description="the distinct words of the text that match the query's words")
    snippet: str = Field(description="a window of the text around the best cluster of matches")
    spans: list[tuple[int, int]] = Field(description="[start, end) of each match, in characters of the snippet")
    offset: int = Field(description="where the snippet starts in the text ('…' before it when not 0)")


class FacetValueOut(BaseModel):
    value: Scalar
    count: int

