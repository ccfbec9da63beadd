"""Running a :class:`~vectorseam.query.Query`: one path from the typed query to a page of results.

:class:`QueryRunner` turns a query into a *ranking* (a function from a depth n to the best n hits: a
dense, BM25 or hybrid search, by text, by vector or both, or a recommendation) and then shapes the
answer the same way whatever produced the ranking:

* **pages**: ``offset`` counts positions; a ``cursor`` continues after the (score, id) of the previous
  page's last result, deepening the ranking until a full page follows it, so writes between pages
  neither repeat nor skip a result still ranked below that key. A ranking not ordered by score (MMR)
  pages by position instead;
* **score_threshold** drops hits below it;
* **grouping** (:mod:`vectorseam.retrieval.grouping`): natively for a plain dense query on a store
  with :class:`~vectorseam.store.NativeGrouping`, emulated otherwise;
* **facets** (:mod:`vectorseam.retrieval.facets`) over the filter or over the hits returned;
* **highlights** (:mod:`vectorseam.retrieval.highlight`) of every hit returned;
* a **recommendation** from the id of a chunked document uses its chunks (found by ``source_id``).
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from vectorseam import cursors
from vectorseam.filters import Filter, In, parse_filter, to_dict
from vectorseam.query import DOCUMENT_FIELD, Group, Query, SearchOptions, SearchResult
from vectorseam.retrieval.facets import facet_counts, hit_facets
from vectorseam.retrieval.grouping import MAX_DEPTH, Fill, Grouped, group_ranking, vector_groups
from vectorseam.retrieval.highlight import highlight_texts
from vectorseam.retrieval.hybrid import RetrievalSearcher, check_query
from vectorseam.retrieval.recommend import recommend
from vectorseam.store import NativeGrouping, VectorStore
from vectorseam.types import Hit, as_vector

Ranking = Callable[[int], list[Hit]]
_PLAIN = SearchOptions()


@dataclass(frozen=True, slots=True)
class _Plan:
    ranking: Ranking
    vector: npt.NDArray[np.float32] | None  # the query vector when the ranking is one plain dense query
    fill: Fill | None  # the same ranking under one more condition, where its scores are absolute


def _key(hit: Hit) -> tuple[float, str]:
    return (-hit.score, hit.id)


def _ordered(hits: Sequence[Hit]) -> bool:
    return all(_key(a) <= _key(b) for a, b in itertools.pairwise(hits))


def expand_documents(store: VectorStore, collection: str, ids: Sequence[str]) -> list[str]:
    """``ids`` with each id that names no record but a chunked document (``source_id``) replaced by the
    ids of its chunks; other unknown ids are kept (the caller's error names them)."""
    wanted = list(dict.fromkeys(ids))
    if not wanted:
        return []
    found = {r.id for r in store.fetch(collection, wanted, include_vectors=False)}
    missing = [i for i in wanted if i not in found]
    chunks: dict[str, list[str]] = {}
    if missing:
        for page in store.scan(collection, batch_size=1000, filter=In(DOCUMENT_FIELD, tuple(missing)),
                               include_vectors=False):
            for record in page:
                chunks.setdefault(str(record.metadata.get(DOCUMENT_FIELD)), []).append(record.id)
    out: list[str] = []
    for i in wanted:
        out.extend(sorted(chunks[i]) if i in chunks else [i])
    return list(dict.fromkeys(out))


def _given_vector(query: Query) -> npt.NDArray[np.float64] | None:
    """The query's vector as float64, the floats exactly as JSON gave them: made once a search, for its
    cursor digest and (cast) for the ranking; each conversion of 384 Python floats cost about as much
    as the rest of that step."""
    return None if query.vector is None else np.asarray(query.vector, dtype=np.float64)


def ranking_identity(collection: str, query: Query, f: Filter | None, given: npt.NDArray[np.float64] | None) -> str:
    """The digest a search cursor is bound to: everything that decides the ranking, not the page. The
    query vector (``given``, from :func:`_given_vector`) enters as the SHA-256 of its float64 bytes
    (``json.dumps`` of 384 floats cost more than the rest of a small search: py-spy, load_search)."""
    return cursors.digest(
        "search", collection, query.text, None if given is None else hashlib.sha256(given.tobytes()).hexdigest(),
        list(query.positive), list(query.negative), query.strategy, query.mode, query.mmr, query.candidates,
        None if query.weights is None else list(query.weights), query.profile,
        None if f is None else to_dict(f), query.grouping, query.score_threshold)


class QueryRunner:
    """Runs queries over one :class:`~vectorseam.retrieval.hybrid.RetrievalSearcher` (its store and embedder):
    the one entry into retrieval of the facade, and through it of the service, the CLI and the integrations."""

    def __init__(self, retrieval: RetrievalSearcher) -> None:
        self.retrieval = retrieval
        self.store = retrieval.store

    # -- the ranking ---------------------------------------------------------------------------------
    def _plan(self, collection: str, q: Query, f: Filter | None, given: npt.NDArray[np.float64] | None) -> _Plan:
        if q.text is not None:
            check_query(q.text)
        if q.positive:
            return self._recommendation(collection, q, f)
        if given is not None and q.text is None:
            return self._by_vector(collection, q, f, given)
        return self._by_text(collection, q, f, given)

    def _recommendation(self, collection: str, q: Query, f: Filter | None) -> _Plan:
        store = self.store
        pos = expand_documents(store, collection, q.positive)
        neg = expand_documents(store, collection, q.negative)
        return _Plan(lambda n: recommend(store, collection, pos, neg, n, f, q.strategy), None, None)

    def _by_vector(self, collection: str, q: Query, f: Filter | None, given: npt.NDArray[np.float64]) -> _Plan:
        vector = as_vector(given, None, "query vector")
        pool = self._pool(q)
        return _Plan(lambda n: self.retrieval.search_vector(collection, vector, n, f, q.mmr, max(pool, n)),
                     vector if q.mmr is None else None, self._dense_fill(collection, vector))

    def _by_text(self, collection: str, q: Query, f: Filter | None,
                 given_vector: npt.NDArray[np.float64] | None) -> _Plan:
        """Text alone (embedded here), or text with the caller's vector of it (the dense side: a framework
        that embeds itself): the collection's tuned profile applies alike, since the caller's vector is in
        the collection's space (its fingerprint vouches for it)."""
        retrieval, text = self.retrieval, q.text
        assert text is not None
        given = None if given_vector is None else as_vector(given_vector, None, "query vector")
        if q.mode == "dense" and q.mmr is None:  # one vector query: groups and fills can use the vector
            raw = given if given is not None else retrieval.embed(collection, text)
            tuned = retrieval.tuned(collection, q.mode, q.profile)
            qvec = raw if tuned is None else tuned.adapt(raw)
            return _Plan(lambda n: self.store.query(collection, qvec, k=n, filter=f)[0], qvec,
                         self._dense_fill(collection, qvec))
        pool = self._pool(q)
        return _Plan(lambda n: retrieval.search(collection, text, n, f, q.mode, q.mmr, q.profile, vector=given,
                                                weights=q.weights, candidates=max(pool, n)),
                     None, self._keyword_fill(collection, q))

    def _pool(self, q: Query) -> int:
        """The MMR pool of ``q``: fixed by the query (not the page), so its pages are cut from one ranking."""
        return q.candidates or self.retrieval.candidate_pool(q.k)

    def _dense_fill(self, collection: str, vector: npt.NDArray[np.float32]) -> Fill:
        def fill(condition: Filter, size: int) -> list[Hit]:
            return self.store.query(collection, vector, k=size, filter=condition)[0]

        return fill

    def _keyword_fill(self, collection: str, q: Query) -> Fill | None:
        """The BM25 ranking under one more condition (its scores are absolute); other rankings fuse or
        re-rank, so no fill stands for them."""
        if q.mode != "bm25" or q.mmr is not None or q.text is None:
            return None
        text = q.text

        def fill(condition: Filter, size: int) -> list[Hit]:
            return self.store.keyword_search(collection, text, size, condition)

        return fill

    # -- the answer ----------------------------------------------------------------------------------
    def hits_many(self, collection: str, queries: Sequence[Query]) -> list[list[Hit]]:
        """The hits of each query, in order. Plain dense text queries alike but for their text (no tuned
        profile to apply, no page, groups or facets) are embedded as one batch and sent as one store query."""
        if not queries:
            return []
        first = queries[0]
        alike = all(q.model_copy(update={"text": first.text}) == first for q in queries)
        if (alike and first.text is not None and first.vector is None and first.mode == "dense" and first.mmr is None
                and first.options() == _PLAIN and not first.include_vectors
                and self.retrieval.tuned(collection, "dense", first.profile) is None):
            texts = [q.text or "" for q in queries]
            return self.retrieval.search_many(collection, texts, first.k, first.filter, profile=False)
        return [self.run(collection, q).hits for q in queries]

    def run(self, collection: str, q: Query) -> SearchResult:
        f = parse_filter(q.filter)
        given = _given_vector(q)
        request = ranking_identity(collection, q, f, given)
        start, after = q.offset, None
        if q.cursor is not None:
            position = cursors.decode(q.cursor, "search", request)
            start = int(position.get("o", 0))
            if position.get("s") is not None:
                after = (float(position["s"]), str(position["i"]))
        plan = self._plan(collection, q, f, given)
        if q.grouping is None:
            hits, more = self._hits_page(plan, q, start, after)
            groups = None
        else:
            groups, more = self._groups_page(collection, plan, q, f, start, after)
            hits = [g.hits[0] for g in groups]
        shown = [h for g in groups for h in g.hits] if groups is not None else hits
        shown = self._with_vectors(collection, shown, q.include_vectors)
        if groups is not None:
            by_id = {h.id: h for h in shown}
            for g in groups:
                g.hits = [by_id[h.id] for h in g.hits]
            hits = [g.hits[0] for g in groups]
        else:
            hits = shown
        result = SearchResult(hits, groups)
        if q.facets:
            result.facets = (facet_counts(self.store, collection, q.facets, f, q.facet_limit)
                             if q.facet_scope == "filter" else hit_facets((h.metadata for h in shown), q.facets,
                                                                          q.facet_limit))
        if q.highlight and q.text is not None and shown:
            marks = highlight_texts([h.text for h in shown], q.text, q.highlight_chars)
            result.highlights = {h.id: mark for h, mark in zip(shown, marks, strict=True)}
        if more and hits:
            last = hits[-1]
            result.next_cursor = cursors.encode("search", request, o=start + len(hits), s=last.score, i=last.id)
        return result

    def _hits_page(self, plan: _Plan, q: Query, start: int, after: tuple[float, str] | None) -> tuple[list[Hit], bool]:
        depth = min(MAX_DEPTH, start + q.k + 1)
        while True:
            ranked = plan.ranking(depth)
            final = len(ranked) < depth or depth >= MAX_DEPTH
            ranked = _above(ranked, q.score_threshold)
            rest = _after(ranked, start, after)
            if len(rest) > q.k or final:
                return rest[: q.k], len(rest) > q.k
            depth = min(MAX_DEPTH, depth * 2)

    def _groups_page(self, collection: str, plan: _Plan, q: Query, f: Filter | None, start: int,
                     after: tuple[float, str] | None) -> tuple[list[Group], bool]:
        assert q.grouping is not None
        field, size = q.grouping
        wanted = start + q.k + 1
        while True:
            grouped = self._grouped(collection, plan, field, size, wanted, f)
            groups = [g for g in (_group_above(g, q.score_threshold) for g in grouped.groups) if g is not None]
            rest = _after_groups(groups, start, after)
            if len(rest) > q.k or grouped.final or len(grouped.groups) < wanted:
                return rest[: q.k], len(rest) > q.k
            wanted *= 2

    def _grouped(self, collection: str, plan: _Plan, field: str, size: int, wanted: int,
                 f: Filter | None) -> Grouped:
        if plan.vector is not None and isinstance(self.store, NativeGrouping):
            groups = vector_groups(self.store, collection, plan.vector, wanted, field, size, f)
            return Grouped(groups, len(groups) < wanted)
        return group_ranking(plan.ranking, field, size, wanted, plan.fill, f)

    def _with_vectors(self, collection: str, hits: list[Hit], include: bool) -> list[Hit]:
        if not include:
            return [h if h.vector is None else Hit(h.id, h.score, h.text, h.metadata) for h in hits]
        missing = [h.id for h in hits if h.vector is None]
        fetched = self.store.fetch(collection, missing, include_vectors=True) if missing else []
        vectors = {r.id: r.vector for r in fetched}
        return [h if h.vector is not None else Hit(h.id, h.score, h.text, h.metadata, vectors.get(h.id))
                for h in hits]


def _above(hits: list[Hit], threshold: float | None) -> list[Hit]:
    return hits if threshold is None else [h for h in hits if h.score >= threshold]


def _group_above(group: Group, threshold: float | None) -> Group | None:
    if threshold is None:
        return group
    kept = _above(group.hits, threshold)
    return Group(group.value, kept) if kept else None


def _after(hits: list[Hit], start: int, after: tuple[float, str] | None) -> list[Hit]:
    """The hits following the previous page: after its last (score, id) in a score-ordered ranking,
    else (MMR) from position ``start``."""
    if after is None or not _ordered(hits):
        return hits[start:]
    key = (-after[0], after[1])
    return [h for h in hits if _key(h) > key]


def _after_groups(groups: list[Group], start: int, after: tuple[float, str] | None) -> list[Group]:
    if after is None or not _ordered([g.hits[0] for g in groups]):
        return groups[start:]
    key = (-after[0], after[1])
    return [g for g in groups if _key(g.hits[0]) > key]
