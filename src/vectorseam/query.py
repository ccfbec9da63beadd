"""The one typed query into retrieval, and what it answers.

A :class:`Query` says what to rank (text, a vector, both, or stored examples to recommend from), how
(``mode``, ``mmr``, a tuned profile), and what shape the answer takes (:class:`SearchOptions`: a page
by ``offset`` or ``cursor``, ``group_by`` a field, ``facets``, ``highlight``, ``score_threshold``).
The facade runs it (:meth:`vectorseam.client.VectorSeam.query`), the HTTP service's request bodies
carry the same :class:`SearchOptions` fields, and :mod:`vectorseam.remote` sends them as they are,
so Python, HTTP and the remote client share one definition of every option and its limits.

Why pydantic and not a dataclass: the same model validates a Python call and a JSON body, states its
limits in the OpenAPI schema, and serializes for the remote client. Models are frozen: a query is a
value that can be logged, compared and sent again.

The answer types are plain dataclasses (:class:`SearchResult`, :class:`Group`, :class:`FacetValue`,
:class:`Highlight`, :class:`ScrollPage`, and a question's :class:`Answer` with its :class:`Passage` list),
built from :class:`~vectorseam.types.Hit` and :class:`~vectorseam.types.Record` like the rest of the library.

The builders :func:`text_query`, :func:`vector_query` and :func:`recommendation` make the query of the
classic calls (``search``, ``search_vector``, ``recommend``) the same way for the facade and the remote
client; :func:`query_of` turns what a query refuses into one :class:`~vectorseam.errors.ValidationError`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple, TypeAlias, get_args

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic import ValidationError as PydanticValidationError

from vectorseam.errors import ValidationError
from vectorseam.filters import FilterLike, to_dict
from vectorseam.types import CollectionInfo, Hit, Metadata, Record, Scalar

Mode: TypeAlias = Literal["dense", "bm25", "hybrid"]
FacetScope: TypeAlias = Literal["filter", "hits"]
Strategy: TypeAlias = Literal["average_vector", "best_score"]
MODES: tuple[str, ...] = get_args(Mode)
STRATEGIES: tuple[str, ...] = get_args(Strategy)

# The metadata field a chunk of a split document carries its document's id in (written by
# ``vectorseam.ingest.job``, with ``chunk`` and ``chunks``): grouping by it returns each document once.
DOCUMENT_FIELD = "source_id"

MAX_OFFSET = 10_000
MAX_GROUP_SIZE = 100
MAX_FACETS = 20
MAX_FACET_LIMIT = 1000
MAX_CURSOR_CHARS = 4096
MAX_QUERY_TEXT = 100_000
MAX_SCROLL_LIMIT = 10_000
MAX_CANDIDATES = 10_000


class SearchOptions(BaseModel):
    """How a search answers: which page, grouped how, with which facet counts and highlights.

    * ``offset`` skips that many results (or groups); ``cursor`` continues from a ``next_cursor`` a
      previous page returned, by score and id rather than by position, so a write between two pages
      neither repeats nor skips a result still ranked below the last one seen. Not both.
    * ``group_by`` a metadata field returns the best ``group_size`` hits of each distinct value, groups
      ordered by their best hit; ``k`` and the page count groups. ``group_size`` alone groups by
      :data:`DOCUMENT_FIELD` (``source_id``), so a chunked document comes back once with its best
      chunks; a record without the field is a group of its own (for ``source_id``: its own id).
    * ``facets`` counts the values of these fields among every record the filter admits
      (``facet_scope="filter"``) or among the hits returned (``"hits"``); the ``facet_limit`` most
      frequent per field, ties by value. A list field counts each of its values once.
    * ``highlight`` marks the query's words (by the BM25 tokenizer: case, stems and stop words as
      keyword search sees them) in each hit's text, with a snippet of about ``highlight_chars``.
    * ``score_threshold`` drops hits scoring below it (the mode's own score: similarity, BM25 or RRF).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    offset: int = Field(default=0, ge=0, le=MAX_OFFSET, description="results (or groups) to skip")
    cursor: str | None = Field(default=None, min_length=1, max_length=MAX_CURSOR_CHARS,
                               description="the next_cursor of the previous page (instead of offset)")
    score_threshold: float | None = Field(default=None, allow_inf_nan=False,
                                          description="leave out hits scoring below this")
    group_by: str | None = Field(default=None, min_length=1, max_length=256, description=(
        "a metadata field: one group per distinct value, best hits first ('source_id': one per document)"))
    group_size: int | None = Field(default=None, ge=1, le=MAX_GROUP_SIZE, description=(
        "hits per group (default 1); alone, it groups by 'source_id'"))
    facets: tuple[str, ...] = Field(default=(), max_length=MAX_FACETS, description="metadata fields to count values of")
    facet_limit: int = Field(default=10, ge=1, le=MAX_FACET_LIMIT, description="values per facet, most frequent first")
    facet_scope: FacetScope = Field(default="filter", description=(
        "'filter': count among every record the filter admits; 'hits': among the hits returned"))
    highlight: bool = Field(default=False, description="mark the query's words in each hit's text, with a snippet")
    highlight_chars: int = Field(default=200, ge=20, le=5000, description="about how long a highlight snippet is")

    @field_validator("facets")
    @classmethod
    def _distinct_facets(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for name in value:
            if not name or len(name) > 256:
                raise ValueError(f"facet field names are 1-256 characters, got {name!r}")
        return tuple(dict.fromkeys(value))

    @model_validator(mode="after")
    def _one_position(self) -> SearchOptions:
        if self.cursor is not None and self.offset:
            raise ValueError("give 'offset' or 'cursor', not both: a cursor already says where the page starts")
        return self

    @property
    def grouping(self) -> tuple[str, int] | None:
        """(field, hits per group) when the results are grouped, else None."""
        if self.group_by is None and self.group_size is None:
            return None
        return self.group_by or DOCUMENT_FIELD, self.group_size or 1

    def options(self) -> SearchOptions:
        """Just the :class:`SearchOptions` fields of this object (of a :class:`Query`, too)."""
        return SearchOptions(**{name: getattr(self, name) for name in SearchOptions.model_fields})


class Query(SearchOptions):
    """One search: what to rank and how, plus the :class:`SearchOptions` of its answer.

    Exactly one of these says what is ranked:

    * ``text``: embedded by the collection's embedder (``dense``), matched by BM25 (``bm25``) or both
      (``hybrid``); with ``vector`` as well, the vector is the dense side (a framework that embeds
      itself) and the text the keyword side and the words highlighted;
    * ``vector``: a query vector of the collection's dimension (dense);
    * ``positive`` (and ``negative``) ids: recommend records like those and unlike these. The id of a
      chunked document stands for its chunks.

    ``filter`` is a :mod:`vectorseam.filters` filter (the dict form, or one built with ``eq``, ``and_``, ...).
    ``weights`` are hybrid's RRF weights (dense, BM25). ``candidates`` is how many of the best hits MMR
    chooses among (default: about ``4 k + 20``, at most 100). ``profile=False`` ignores the collection's
    tuned retrieval profile, which otherwise applies to every text query.
    """

    text: str | None = Field(default=None, min_length=1, max_length=MAX_QUERY_TEXT)
    vector: tuple[float, ...] | None = Field(default=None, min_length=1, max_length=65_536)
    positive: tuple[str, ...] = Field(default=(), max_length=256)
    negative: tuple[str, ...] = Field(default=(), max_length=256)
    strategy: Strategy = "average_vector"
    k: int = Field(default=10, ge=1, le=100_000)
    filter: Any = None
    mode: Mode = "dense"
    mmr: float | None = Field(default=None, ge=0.0, le=1.0)
    candidates: int | None = Field(default=None, ge=1, le=MAX_CANDIDATES)
    weights: tuple[float, float] | None = None
    profile: bool = True
    include_vectors: bool = False

    @field_validator("vector", mode="before")
    @classmethod
    def _plain_vector(cls, value: Any) -> Any:
        """A numpy array (what embedders return) is as good as a list."""
        if isinstance(value, np.ndarray):
            if value.ndim != 1:
                raise ValueError(f"the query vector must be one-dimensional, got shape {value.shape}")
            return tuple(float(x) for x in value.tolist())
        return value

    @field_validator("positive", "negative", mode="before")
    @classmethod
    def _ids(cls, value: Any) -> Any:
        return (value,) if isinstance(value, str) else value  # one id is not a sequence of characters

    @model_validator(mode="after")
    def _what_is_ranked(self) -> Query:
        ranked = (self.text is not None or self.vector is not None, bool(self.positive))
        if sum(ranked) != 1:
            raise ValueError("give query text, a vector (or both), or positive example ids: exactly one kind")
        if self.negative and not self.positive:
            raise ValueError("negative ids steer a recommendation; give positive ids as well")
        if self.mode != "dense" and self.text is None:
            raise ValueError(f"mode {self.mode!r} needs query text")
        if self.positive and (self.mode != "dense" or self.mmr is not None):
            raise ValueError("a recommendation ranks by vectors: mode must be 'dense', without mmr")
        if self.highlight and self.text is None:
            raise ValueError("highlight marks the query's words: give query text")
        if self.weights is not None and not all(w >= 0 for w in self.weights):
            raise ValueError(f"weights must be >= 0, got {self.weights}")
        return self

    def with_options(self, options: SearchOptions) -> Query:
        """This query with ``options`` in place of its own."""
        return self.model_copy(update={name: getattr(options, name) for name in SearchOptions.model_fields})


class Upserted(NamedTuple):
    written: int
    embedded: int  # records whose vector was computed from their text (by the facade, or the service)


@dataclass(frozen=True, slots=True)
class Highlight:
    """Where the query's words occur in a hit's text.

    ``snippet`` is a window of the text around the best cluster of matches (the text's start when
    nothing matched), beginning ``offset`` characters into the text (a page shows "…" before it when
    that is not 0, and after it when it ends before the text does); ``spans`` are ``[start, end)``
    character offsets of each match *in the snippet*, so a page marks them up itself (no HTML comes
    from the server); ``terms`` are the distinct matched words as the text spells them."""

    terms: tuple[str, ...]
    snippet: str
    spans: tuple[tuple[int, int], ...]
    offset: int = 0


@dataclass(frozen=True, slots=True)
class FacetValue:
    value: Scalar
    count: int


@dataclass(slots=True)
class Group:
    """Hits sharing one value of the ``group_by`` field, best first. ``value`` is None for a record
    without the field (a group of its own), except for ``source_id``, whose value is then the record's
    own id: an unchunked record is its own document."""

    value: Scalar | None
    hits: list[Hit]


@dataclass(slots=True)
class SearchResult:
    """A page of results. With grouping, ``hits`` holds each group's best hit (one per document for
    ``source_id``) and ``groups`` the groups themselves. ``highlights`` maps hit ids to theirs; ``facets``
    field names to value counts; ``next_cursor`` continues after this page (None: nothing more)."""

    hits: list[Hit]
    groups: list[Group] | None = None
    facets: dict[str, list[FacetValue]] = field(default_factory=dict)
    highlights: dict[str, Highlight] = field(default_factory=dict)
    next_cursor: str | None = None


@dataclass(frozen=True)
class Passage:
    """A retrieved hit as an answer cites it (``[number]``); ``metadata`` is the hit's, so callers need no
    second fetch."""

    number: int
    id: str
    text: str
    score: float
    metadata: Metadata = field(default_factory=dict)


@dataclass
class Answer:
    """An answer to a question from the passages retrieved for it: ``citations`` are the passages its
    ``[n]`` name, ``unknown_citations`` numbers that name none; ``extractive`` when no language model wrote
    it (the passages' closest sentences); ``abstained`` when the passages do not hold an answer."""

    question: str
    text: str
    passages: list[Passage]
    citations: list[Passage] = field(default_factory=list)
    unknown_citations: list[int] = field(default_factory=list)
    extractive: bool = False
    abstained: bool = False

    @property
    def cited_ids(self) -> list[str]:
        return [p.id for p in self.citations]


@dataclass(frozen=True, slots=True)
class CollectionDescription:
    """A collection as the API describes it: its spec and count (``info``), the fingerprint of the
    embedder that fills it, the bytes its vectors take (count x dimension x 4), the aliases naming it,
    and whether it has a tuned retrieval profile."""

    info: CollectionInfo
    fingerprint: str | None
    vector_bytes: int
    aliases: list[str]
    tuned: bool


@dataclass(slots=True)
class ScrollPage:
    """Records in a fixed key order; ``next_cursor`` continues after them (None: that was the last)."""

    records: list[Record]
    next_cursor: str | None = None


def query_of(**fields: Any) -> Query:
    """A :class:`Query` of these fields; what it refuses is one :class:`~vectorseam.errors.ValidationError`
    naming each field and its rule (the Python API and the CLI say what the service's 400 says)."""
    try:
        return Query(**fields)
    except PydanticValidationError as exc:
        problems = [f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" if e["loc"] else str(e["msg"])
                    for e in exc.errors(include_url=False)]
        raise ValidationError(f"invalid query: {'; '.join(problems)}") from None


def text_query(text: str, k: int = 10, filter: FilterLike = None, mode: str = "dense", mmr: float | None = None,
               profile: bool = True) -> Query:
    """The query of a search by text (what ``search`` and ``retrieve`` take)."""
    return query_of(text=text, k=k, filter=filter, mode=mode, mmr=mmr, profile=profile)


def vector_query(vector: npt.ArrayLike, k: int = 10, filter: FilterLike = None, mmr: float | None = None,
                 candidates: int | None = None, include_vectors: bool = False) -> Query:
    """The query of a search by a vector of the collection's dimension."""
    plain = tuple(float(x) for x in np.asarray(vector, dtype=np.float32).ravel().tolist())
    return query_of(vector=plain, k=k, filter=filter, mmr=mmr, candidates=candidates, include_vectors=include_vectors)


def recommendation(positive: Sequence[str] | str, negative: Sequence[str] | str = (), k: int = 10,
                   filter: FilterLike = None, strategy: str = "average_vector") -> Query:
    """The query of records like ``positive`` and unlike ``negative``."""
    return query_of(positive=positive, negative=negative, k=k, filter=filter, strategy=strategy)


def filter_dict(filter: Any) -> Mapping[str, Any] | None:
    """A filter as its dict form (what JSON carries): built filters are converted, dicts kept."""
    if filter is None or isinstance(filter, Mapping):
        return filter
    return to_dict(filter)
