"""The pieces of the search options on their own: the Query model's rules, cursors, value identity and
facet order, emulated grouping's fill rounds, highlights, and the facade's query path end to end on the
embedded store (pages by cursor under writes, thresholds, document ids in recommendations)."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np
import pydantic
import pytest

from vectorseam import cursors
from vectorseam.client import VectorSeam
from vectorseam.config import Settings, StoreSettings
from vectorseam.errors import ValidationError
from vectorseam.filters import Filter, In, matches
from vectorseam.query import DOCUMENT_FIELD, Query, SearchOptions
from vectorseam.retrieval.grouping import group_hits, group_ranking
from vectorseam.retrieval.highlight import highlight_texts
from vectorseam.types import Hit, Record
from vectorseam.values import facet_top, plain, value_key


def test_query_rules() -> None:
    assert Query(text="x", group_size=2).grouping == (DOCUMENT_FIELD, 2)
    assert Query(text="x", group_by="author").grouping == ("author", 1)
    assert Query(text="x").grouping is None
    assert Query(vector=np.ones(3, np.float32)).vector == (1.0, 1.0, 1.0)
    assert Query(positive="a").positive == ("a",)
    assert Query(text="x", facets=("a", "b", "a")).facets == ("a", "b")
    for bad, needle in [({}, "exactly one kind"), ({"text": "x", "positive": ["a"]}, "exactly one kind"),
                        ({"vector": [1.0], "mode": "bm25"}, "needs query text"),
                        ({"positive": ["a"], "mmr": 0.5}, "mode must be 'dense'"),
                        ({"vector": [1.0], "highlight": True}, "give query text"),
                        ({"text": "x", "offset": 3, "cursor": "abc"}, "not both"),
                        ({"text": "x", "weights": (-1.0, 1.0)}, ">= 0"), ({"text": "x", "fitler": {}}, "fitler")]:
        with pytest.raises(pydantic.ValidationError, match=needle):
            Query(**bad)
    q = Query(text="x", k=3, facets=("a",))
    assert q.options() == SearchOptions(facets=("a",)) and q.with_options(SearchOptions(offset=4)).offset == 4


def test_cursors_are_bound_to_their_request() -> None:
    token = cursors.encode("search", "r1", o=10, s=0.5, i="doc")
    assert cursors.decode(token, "search", "r1") == {"o": 10, "s": 0.5, "i": "doc"}
    with pytest.raises(ValidationError, match="another search"):
        cursors.decode(token, "search", "r2")
    with pytest.raises(ValidationError, match="a search cursor was given to a scroll"):
        cursors.decode(token, "scroll", "r1")
    forged = base64.urlsafe_b64encode(json.dumps({"v": 9, "t": "search"}).encode()).decode()
    for garbage in ("!!!", "bm90IGpzb24", forged):
        with pytest.raises(ValidationError, match="not a cursor this server made"):
            cursors.decode(garbage, "search", "r1")


def test_values_group_and_count_alike_everywhere() -> None:
    assert value_key(1) == value_key(1.0) != value_key(True)
    assert value_key("1") != value_key(1)
    assert plain(3.0) == 3 and type(plain(3.0)) is int and plain(2.5) == 2.5 and plain(True) is True
    counts = {value_key(v): (v, n) for v, n in [("b", 2), ("a", 2), (1, 2), (False, 2), (0.5, 5)]}
    assert facet_top(counts, 4) == [(0.5, 5), (False, 2), (1, 2), ("a", 2)]


def hits_of(spec: list[tuple[str, str | None, float]]) -> list[Hit]:
    return [Hit(rid, score, "", {} if doc is None else {DOCUMENT_FIELD: doc}) for rid, doc, score in spec]


def test_emulated_grouping_fills_in_rounds_and_stays_exact() -> None:
    """Six documents whose chunks lie far apart in the ranking; the fills must find each one's best chunks."""
    everything = hits_of([(f"{d}#{c}", d, 1.0 - (c * 6 + i) / 100) for i, d in enumerate("abcdef")
                          for c in range(4)] + [("solo", None, 0.999)])
    everything.sort(key=lambda h: (-h.score, h.id))
    asked: list[tuple[Filter, int]] = []

    def ranking(n: int) -> list[Hit]:
        return everything[:n]

    def fill(condition: Filter, n: int) -> list[Hit]:
        asked.append((condition, n))
        return [h for h in everything if matches(condition, h.metadata)][:n]

    want = group_hits(everything, DOCUMENT_FIELD, 3)[:4]
    got = group_ranking(ranking, DOCUMENT_FIELD, 3, 4, fill, None, start_depth=5).groups
    assert [(g.value, [h.id for h in g.hits]) for g in got] == [(g.value, [h.id for h in g.hits]) for g in want]
    assert got[0].value == "a" and got[1].value == "solo" and len(got[1].hits) == 1
    assert all(isinstance(c, In) for c, _ in asked) and len(asked) <= 3


def test_a_list_value_has_no_group() -> None:
    with pytest.raises(ValidationError, match="record 'x' holds a list"):
        group_hits([Hit("x", 1.0, "", {"tags": ["a", "b"]})], "tags", 2)


def test_highlights_mark_stems_and_cut_at_words() -> None:
    text = ("Shipping was slow. " * 10) + "The runner kept running; beans, beans and more Beans arrived. " + (
        "Nothing else to say. " * 10)
    mark, none, short = highlight_texts([text, "nothing matches here", "Beans!"], "run bean", 60)
    assert {"running", "beans", "Beans"} <= set(mark.terms)
    assert all(mark.snippet[a:b].lower().startswith(("run", "bean")) for a, b in mark.spans)
    assert mark.offset > 0 and text[mark.offset:].startswith(mark.snippet)
    assert not mark.snippet[0].isspace() and len(mark.snippet) <= 60 + 20
    assert none.terms == () and none.spans == () and none.snippet == "nothing matches here"
    assert short.snippet == "Beans!" and short.spans == ((0, 5),)


@pytest.fixture()
def vs(tmp_path: Path) -> VectorSeam:
    facade = VectorSeam(settings=Settings(data_dir=tmp_path / "data", store=StoreSettings(name="memory")))
    facade.create_collection("c", dimension=8)
    rng = np.random.default_rng(3)
    facade.upsert([Record(f"d{d}#{c}", rng.normal(size=8).astype(np.float32), f"chunk {c} of {d}",
                          {DOCUMENT_FIELD: f"d{d}", "n": d % 3}) for d in range(20) for c in range(3)]
                  + [Record(f"solo{i}", rng.normal(size=8).astype(np.float32), "solo", {"n": 9}) for i in range(5)],
                  "c")
    return facade


def test_cursor_pages_survive_writes(vs: VectorSeam) -> None:
    q = np.random.default_rng(4).normal(size=8).astype(np.float32)
    whole = [h.id for h in vs.query(Query(vector=q, k=65), "c").hits]
    first = vs.query(Query(vector=q, k=10), "c")
    assert [h.id for h in first.hits] == whole[:10] and first.next_cursor
    vs.upsert([Record("new-best", q, "the query itself", {})], "c")  # ranks first: before the cursor
    vs.delete([whole[12]], collection="c")  # on the next page
    second = vs.query(Query(vector=q, k=10, cursor=first.next_cursor), "c")
    assert [h.id for h in second.hits] == [i for i in whole[10:21] if i != whole[12]]
    by_offset = vs.query(Query(vector=q, k=10, offset=10), "c")
    assert [h.id for h in by_offset.hits][:1] == [whole[9]]  # an offset counts positions: the insert shifts it


def test_threshold_groups_and_recommend_by_document(vs: VectorSeam) -> None:
    q = np.random.default_rng(5).normal(size=8).astype(np.float32)
    ranked = vs.query(Query(vector=q, k=65), "c").hits
    cut = ranked[7].score
    kept = vs.query(Query(vector=q, k=65, score_threshold=cut), "c")
    assert [h.id for h in kept.hits] == [h.id for h in ranked[:8]] and kept.next_cursor is None
    grouped = vs.query(Query(vector=q, k=25, group_size=3), "c")
    assert len(grouped.groups or []) == 25 and {len(g.hits) for g in grouped.groups or []} == {1, 3}
    docs = [g.value for g in grouped.groups or []]
    assert len(set(docs)) == 25 and {f"solo{i}" for i in range(5)} <= set(docs)
    recommended = vs.recommend("d4", k=5, collection="c")
    assert not {h.id for h in recommended} & {"d4#0", "d4#1", "d4#2"}
    by_chunks = vs.recommend(["d4#0", "d4#1", "d4#2"], k=5, collection="c")
    assert [h.id for h in recommended] == [h.id for h in by_chunks]
    with pytest.raises(ValidationError, match="no record with id 'd99'"):
        vs.recommend("d99", collection="c")
