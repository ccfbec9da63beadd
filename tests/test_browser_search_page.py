"""The search page in headless Chromium against a real server, one test per thing the page promises:
state in the URL (shareable, back/forward), ids and labelled scores, dates shown as dates, HTML in texts
shown as text with line breaks (never run), errors replacing stale results, ask citations numbered once,
facet counts and "more like this", the collection overview, and the interactive map of clusters.

Drives Debian's Chromium (scripts/install-browser.sh) with Playwright's Python package; Playwright's
own browser download is never needed. The server requires API keys, so the page gets the read-only key
as a user gives it (typed into the key box; later tests find it in the tab's session storage).
"""

from __future__ import annotations

import json
import os
import shutil
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlparse

import pytest
from playwright.sync_api import expect

from tests.test_service_support import ADMIN_KEY, READ_KEY, Service, build_service, running_service

CHROMIUM = os.environ.get("VECTORSEAM_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--disable-dev-shm-usage"]

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(),
                                reason="Chromium is not installed; run scripts/install-browser.sh as root")

# Records as the fine food reviews hold them: HTML line breaks, entities, stray tags, Unix times.
ITEMS = [
    {"id": "html-1", "text": "Great beans.<br /><br />Second line: <b>bold</b> claims &amp; more "
                             "<img src=x onerror=\"window.__xss = 1\"><script>window.__xss = 2</script>",
     "metadata": {"Time": 1303862400, "published": "2024-03-05T10:30:00Z", "Score": 5, "category": "beans"}},
    {"id": "html-2", "text": "Black beans, cooked fast.<br/>Tasty &quot;every&quot; time.",
     "metadata": {"Time": 1219017600, "published": "2023-12-24", "Score": 4, "category": "beans"}},
    {"id": "html-3", "text": "Strong coffee, a little bitter.<BR>Would buy again.",
     "metadata": {"Time": 1351209600, "published": "2022-01-01T00:00:00Z", "Score": 3, "category": "coffee"}},
    # a chunked document, as ingest writes one: chunks doc-a#0 and doc-a#1 of source doc-a
    {"id": "doc-a#0", "text": "Green tea from Japan, grassy and fresh.", "metadata": {"source_id": "doc-a", "chunk": 0}},
    {"id": "doc-a#1", "text": "The green tea tin keeps the leaves fresh.", "metadata": {"source_id": "doc-a", "chunk": 1}},
    {"id": "doc-b#0", "text": "Black tea, malty and strong, good with milk.", "metadata": {"source_id": "doc-b", "chunk": 0}},
]


@pytest.fixture(scope="module")
def svc(local_embedder) -> Service:  # type: ignore[no-untyped-def]
    return running_service(local_embedder)


@pytest.fixture(scope="module")
def own(local_embedder) -> Iterator[Service]:  # type: ignore[no-untyped-def]
    """A server of this module's own (the shared one's collections stay as other tests expect them)."""
    service = build_service(local_embedder)
    with service.http(ADMIN_KEY) as http:
        assert http.post("/v1/collections/items/records", json={"records": ITEMS}).status_code == 200
    try:
        yield service
    finally:
        service.server.stop()


@pytest.fixture()
def page(tmp_path):  # type: ignore[no-untyped-def]
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch_persistent_context(
            str(tmp_path / "profile"), executable_path=CHROMIUM, args=ARGS, headless=True,
            viewport={"width": 1280, "height": 1000})
        try:
            p = browser.new_page()
            p.set_default_timeout(30_000)
            errors: list[str] = []
            p.on("pageerror", lambda exc: errors.append(str(exc)))
            p.errors = errors
            yield p
            assert not errors, errors  # no script error on any page
        finally:
            browser.close()


def open_page(page: Any, svc: Service, query: str = "") -> None:
    """The page with the read key in the tab's session storage, at ``/?query``, ready."""
    page.goto(svc.url + "/")
    page.evaluate(f"sessionStorage.setItem('vectorseam-key', {json.dumps(READ_KEY)})")
    page.goto(svc.url + "/" + (f"?{query}" if query else ""))
    page.wait_for_selector("#collection option", state="attached")


def results_settled(page: Any, title: str) -> None:
    # Locator assertions, not wait_for_function: the page's Content-Security-Policy (script-src 'self')
    # forbids the eval that Playwright's function polling needs, and the tests keep the policy on.
    expect(page.locator("#results-title")).to_have_text(title)


def shown_hits(page: Any) -> list[dict[str, Any]]:
    return page.evaluate("""() => [...document.querySelectorAll('#results li.hit')].map(li => ({
        id: li.dataset.id, score: Number(li.querySelector('.score').textContent),
        kind: li.querySelector('.score-kind').textContent, rid: li.querySelector('.rid').textContent,
        text: li.querySelector('.text').innerText, meta: li.querySelector('.meta').innerText}))""")


def api(svc: Service, path: str, body: dict[str, Any] | None = None) -> Any:
    with svc.http(READ_KEY) as http:
        resp = http.post(path, json=body) if body is not None else http.get(path)
        assert resp.status_code == 200, resp.text
        return resp.json()


def test_search_then_more_like_this_then_ask(svc: Service, page) -> None:  # type: ignore[no-untyped-def]
    page.goto(svc.url + "/")
    # Without a key the page's first call gets 401, and it opens the key box for the user.
    page.wait_for_selector("#status.error")
    assert "missing API key" in page.text_content("#status")
    assert page.get_attribute("#key-box", "open") is not None
    page.fill("#api-key", READ_KEY)
    page.dispatch_event("#api-key", "change")
    page.wait_for_selector("#collection option", state="attached")
    page.select_option("#collection", "reviews")

    page.fill("#query", "a cup of delicious coffee")
    page.fill("#k", "4")
    page.click("#search-btn")
    results_settled(page, "Results for “a cup of delicious coffee”")
    hits = shown_hits(page)
    assert len(hits) == 4
    assert "coffee" in hits[0]["text"].lower() and "category=coffee" in hits[0]["meta"]
    assert hits[0]["score"] > 0.3
    first_id = hits[0]["id"]

    page.click("#results li.hit >> nth=0 >> a.more-like")
    results_settled(page, f"More like {first_id}")
    similar = [h["id"] for h in shown_hits(page)]
    assert similar and first_id not in similar
    want = api(svc, "/v1/collections/reviews/recommend", {"positive": [first_id], "k": 4})
    assert similar == [h["id"] for h in want["hits"]]  # the page shows exactly what the API recommends

    page.fill("#filter", '{"Score": {"$gte": 4}}')
    page.select_option("#mode", "hybrid")
    page.click("#search-btn")
    results_settled(page, "Results for “a cup of delicious coffee”")
    assert all("Score=4" in h["meta"] or "Score=5" in h["meta"] for h in shown_hits(page))


def test_state_lives_in_the_url_shareable_and_back_forward(svc: Service, page) -> None:  # type: ignore[no-untyped-def]
    open_page(page, svc)
    page.select_option("#collection", "reviews")
    page.fill("#query", "dog treats")
    page.select_option("#mode", "hybrid")
    page.fill("#filter", '{"category": "pets"}')
    page.click("#search-btn")
    results_settled(page, "Results for “dog treats”")
    first = [h["id"] for h in shown_hits(page)]
    params = parse_qs(urlparse(page.url).query)
    assert params == {"collection": ["reviews"], "q": ["dog treats"], "mode": ["hybrid"],
                      "filter": ['{"category": "pets"}']}
    shared = page.url

    page.fill("#query", "stale bread")
    page.select_option("#mode", "dense")
    page.fill("#filter", "")
    page.click("#search-btn")
    results_settled(page, "Results for “stale bread”")
    second = [h["id"] for h in shown_hits(page)]
    assert parse_qs(urlparse(page.url).query) == {"collection": ["reviews"], "q": ["stale bread"]}

    page.go_back()  # the earlier search comes back, form and results alike
    results_settled(page, "Results for “dog treats”")
    assert [h["id"] for h in shown_hits(page)] == first
    assert page.input_value("#query") == "dog treats" and page.input_value("#mode") == "hybrid"
    assert page.input_value("#filter") == '{"category": "pets"}'
    page.go_forward()
    results_settled(page, "Results for “stale bread”")
    assert [h["id"] for h in shown_hits(page)] == second and page.input_value("#filter") == ""

    page.goto("about:blank")  # a bookmark or a shared link opens on the same search
    page.goto(shared)
    results_settled(page, "Results for “dog treats”")
    assert [h["id"] for h in shown_hits(page)] == first
    assert page.input_value("#collection") == "reviews"
    want = api(svc, "/v1/collections/reviews/search",
               {"query": "dog treats", "mode": "hybrid", "k": 5, "filter": {"category": "pets"}})
    assert first == [h["id"] for h in want["hits"]]


@pytest.mark.parametrize(("mode", "kind", "note"), [
    ("dense", "cos", "cosine similarity"), ("bm25", "BM25", "BM25 keyword score"),
    ("hybrid", "RRF", "reciprocal rank fusion")])
def test_ids_and_labelled_scores(svc: Service, page, mode: str, kind: str, note: str) -> None:  # type: ignore[no-untyped-def]
    open_page(page, svc, f"collection=reviews&q=coffee+beans&mode={mode}")
    results_settled(page, "Results for “coffee beans”")
    want = api(svc, "/v1/collections/reviews/search", {"query": "coffee beans", "mode": mode, "k": 5})
    assert want["mode"] == mode  # the response says which scores these are; the page labels them so
    hits = shown_hits(page)
    assert [h["id"] for h in hits] == [h["id"] for h in want["hits"]]
    assert [h["rid"] for h in hits] == [f"id {h['id']}" for h in want["hits"]]
    for shown, got in zip(hits, want["hits"], strict=True):
        assert shown["kind"] == kind
        assert shown["score"] == pytest.approx(got["score"], abs=5e-4)
    assert note in page.text_content("#score-note")


def test_dates_as_dates_and_html_as_text_with_line_breaks(own: Service, page) -> None:  # type: ignore[no-untyped-def]
    open_page(page, own, "collection=items&q=beans&mode=bm25")
    results_settled(page, "Results for “beans”")
    hits = {h["id"]: h for h in shown_hits(page)}
    first = hits["html-1"]
    assert first["text"].startswith("Great beans.\n\nSecond line: <b>bold</b> claims & more <img src=x")
    assert "<script>window.__xss = 2</script>" in first["text"]  # shown as the characters it is
    assert page.evaluate("document.querySelectorAll('#results img, #results b, #results script').length") == 0
    assert page.evaluate("window.__xss") is None  # and never run
    assert hits["html-2"]["text"] == "Black beans, cooked fast.\nTasty \"every\" time."
    assert "Time=2011-04-27" in first["meta"] and "published=2024-03-05 10:30 UTC" in first["meta"]
    assert "Time=2008-08-18" in hits["html-2"]["meta"] and "published=2023-12-24" in hits["html-2"]["meta"]
    assert "Score=5" in first["meta"]  # a number of a field not named as a time stays a number
    titles = page.evaluate("""() => Object.fromEntries([...document.querySelectorAll(
        "#results li.hit[data-id='html-1'] code.date")].map(c => [c.textContent.split('=')[0], c.title]))""")
    assert titles == {"Time": "1303862400 (Unix time, seconds)", "published": "2024-03-05T10:30:00Z"}


def test_an_error_replaces_the_results_and_the_heading(svc: Service, page) -> None:  # type: ignore[no-untyped-def]
    open_page(page, svc, "collection=reviews&q=green+tea")
    results_settled(page, "Results for “green tea”")
    assert shown_hits(page)
    page.fill("#query", "black beans")
    page.fill("#filter", '{"Score": {"$near": 4}}')  # the server refuses it: 400
    page.click("#search-btn")
    results_settled(page, "Search failed: “black beans”")
    assert page.query_selector_all("#results li") == [] and page.text_content("#score-note") == ""
    assert "$near" in page.text_content("#status.error")
    assert page.is_hidden("#facets-box")

    page.fill("#filter", "")
    page.click("#search-btn")
    results_settled(page, "Results for “black beans”")
    page.fill("#filter", "{broken")  # caught in the page, before any request
    page.click("#search-btn")
    results_settled(page, "Search failed: “black beans”")
    assert page.query_selector_all("#results li") == []
    assert "not valid JSON" in page.text_content("#status.error")


def test_ask_numbers_each_citation_once(svc: Service, page) -> None:  # type: ignore[no-untyped-def]
    open_page(page, svc, "collection=reviews")
    page.fill("#question", "Which food arrived spoiled?")
    page.click("#ask-btn")
    expect(page.locator("#status")).to_have_text("Answered.", timeout=120_000)
    answer = page.text_content("#answer")
    assert "[" in answer and "Extracted" in answer
    cites = page.evaluate("""() => [...document.querySelectorAll('#citations li.citation')].map(li => li.innerText)""")
    assert cites and any("spoil" in c.lower() or "mould" in c.lower() for c in cites)
    for n, text in enumerate(cites, 1):  # "[n] ..." once: the list draws no numbers of its own
        assert text.startswith(f"[{n}] id "), text
    assert page.evaluate("getComputedStyle(document.getElementById('citations')).listStyleType") == "none"
    assert page.evaluate("document.getElementById('citations').tagName") == "UL"


def test_facet_counts_narrow_the_search_and_more_like_this_per_hit(svc: Service, page) -> None:  # type: ignore[no-untyped-def]
    open_page(page, svc, "collection=reviews&q=tasty+food&k=12")
    results_settled(page, "Results for “tasty food”")
    hits = shown_hits(page)
    page.wait_for_selector("#facets-box:not([hidden]) .facet[data-field='category']")
    shown = page.evaluate("""() => Object.fromEntries([...document.querySelectorAll('.facet[data-field=category] li')]
        .map(li => [JSON.parse(li.querySelector('button').dataset.value), Number(li.querySelector('.count').textContent)]))""")
    overview = api(svc, "/v1/collections/reviews/overview")
    want = api(svc, "/v1/collections/reviews/search", {"query": "tasty food", "k": 12, "facets": ["category"],
                                                       "facet_limit": 8}
               if "facets" in overview["search_options"] else {"query": "tasty food", "k": 12})
    if want.get("facets"):  # the server counts among every record the filter admits
        assert shown == {f["value"]: f["count"] for f in want["facets"]["category"]}
        assert "among every record" in page.text_content("#facets-note")
    else:  # counted among the hits shown, and the page says so
        assert shown == dict(Counter(h["metadata"]["category"] for h in want["hits"]))
        assert "among the results shown" in page.text_content("#facets-note")
    assert sum(shown.values()) >= len(hits) > 0

    chosen = max(shown, key=lambda v: (shown[v], v))  # the commonest category among the hits
    page.click(f".facet[data-field='category'] button[data-value='{json.dumps(chosen)}']")
    page.wait_for_url(lambda url: json.loads(parse_qs(urlparse(url).query).get("filter", ["{}"])[0]) == {"category": chosen})
    expect(page.locator("#results li.hit .meta").filter(has_not_text=f"category={chosen}")).to_have_count(0)
    want = api(svc, "/v1/collections/reviews/search", {"query": "tasty food", "k": 12, "filter": {"category": chosen}})
    expect(page.locator("#results li.hit")).to_have_count(len(want["hits"]))
    narrowed = shown_hits(page)
    assert [h["id"] for h in narrowed] == [h["id"] for h in want["hits"]] and len(narrowed) >= 2

    for target in (narrowed[0]["id"], narrowed[-1]["id"]):  # every hit has its own "more like this"
        page.goto(svc.url + "/?" + urlencode({"collection": "reviews", "q": "tasty food", "k": "12",
                                              "filter": json.dumps({"category": chosen})}))
        results_settled(page, "Results for “tasty food”")
        page.click(f"#results li.hit[data-id='{target}'] a.more-like")
        results_settled(page, f"More like {target}")
        want_like = api(svc, "/v1/collections/reviews/recommend",
                        {"positive": [target], "k": 12, "filter": {"category": chosen}})
        assert [h["id"] for h in shown_hits(page)] == [h["id"] for h in want_like["hits"]]
        assert parse_qs(urlparse(page.url).query)["like"] == [target]


def test_collection_overview_count_fields_ranges_embedder(svc: Service, own: Service, page) -> None:  # type: ignore[no-untyped-def]
    open_page(page, svc, "collection=reviews")
    page.wait_for_selector("#fields:not([hidden]) tr[data-field='Score']")
    summary = page.text_content("#overview-summary")
    assert summary == ("reviews: 32 records, 384-d cosine vectors, embedder "
                       "local:sentence-transformers/all-MiniLM-L6-v2:384:normalized.")
    rows = page.evaluate("""() => Object.fromEntries([...document.querySelectorAll('#fields tbody tr')]
        .map(tr => [tr.dataset.field, [...tr.children].slice(1).map(td => td.textContent)]))""")
    assert rows["Score"] == ["number", "1 – 5"]
    assert rows["category"][0] == "string" and rows["category"][1].startswith("9 distinct: coffee (5), ")

    open_page(page, own, "collection=items")
    page.wait_for_selector("#fields:not([hidden]) tr[data-field='Time']")
    rows = page.evaluate("""() => Object.fromEntries([...document.querySelectorAll('#fields tbody tr')]
        .map(tr => [tr.dataset.field, [...tr.children].slice(1).map(td => td.textContent)]))""")
    # three of the six records have these fields, and the overview says so
    assert rows["Time"] == ["date (Unix time)", "2008-08-18 – 2012-10-26 · in 3 records"]
    assert rows["published"] == ["date", "2022-01-01 – 2024-03-05 10:30 UTC · in 3 records"]
    assert rows["Score"] == ["number", "3 – 5 · in 3 records"]
    assert page.text_content("#overview-summary").startswith("items: 6 records, 384-d cosine vectors")


def test_map_of_clusters_hover_shows_text_click_finds_similar(svc: Service, page) -> None:  # type: ignore[no-untyped-def]
    open_page(page, svc, "collection=reviews")
    page.click("#map-btn")
    page.wait_for_selector("#map circle.pt", timeout=120_000)
    data = api(svc, "/v1/collections/reviews/map")
    assert data["total"] == 32 and not data["sampled"]
    circles = page.query_selector_all("#map circle.pt")
    assert sorted(c.get_attribute("data-id") for c in circles) == sorted(p["id"] for p in data["points"])
    legend = page.query_selector_all("#map-legend li.cluster")
    assert len(legend) == data["k"] == len(data["clusters"]) and data["k"] >= 2
    assert {c.get_attribute("fill") for c in circles} and len({c.get_attribute("fill") for c in circles}) == data["k"]

    top = circles[-1].get_attribute("data-id")  # drawn last, so no other point covers it
    point = next(p for p in data["points"] if p["id"] == top)
    page.hover(f"#map circle.pt[data-id='{point['id']}']")
    page.wait_for_selector("#map-tip:not([hidden])")
    tip = page.inner_text("#map-tip")
    assert f"id {point['id']}" in tip and point["text"][:40] in tip
    page.mouse.move(0, 0)
    page.wait_for_selector("#map-tip[hidden]", state="attached")

    page.click(f"#map circle.pt[data-id='{point['id']}']")
    results_settled(page, f"More like {point['id']}")
    want = api(svc, "/v1/collections/reviews/recommend", {"positive": [point["id"]], "k": 5})
    assert [h["id"] for h in shown_hits(page)] == [h["id"] for h in want["hits"]]
    assert parse_qs(urlparse(page.url).query)["like"] == [point["id"]]

    page.click("#map-btn")  # drawn again from the cache: the collection did not change
    expect(page.locator("#map-status")).to_contain_text("from the cache")


def test_highlights_mark_the_query_words_as_text(own: Service, page) -> None:  # type: ignore[no-untyped-def]
    open_page(page, own, "collection=items&q=coffee+bitter&mode=bm25")
    results_settled(page, "Results for “coffee bitter”")
    overview = api(own, "/v1/collections/items/overview")
    if "highlight" not in overview["search_options"]:
        pytest.fail("the server takes no 'highlight' search option (issue 23's search options have not landed)")
    marks = page.evaluate("""() => [...document.querySelectorAll("#results li.hit[data-id='html-3'] mark")]
        .map(m => m.textContent)""")
    assert sorted(m.lower() for m in marks) == ["bitter", "coffee"]
    want = api(own, "/v1/collections/items/search", {"query": "coffee bitter", "mode": "bm25", "k": 5,
                                                      "highlight": True})
    got = next(h for h in want["hits"] if h["id"] == "html-3")["highlight"]
    assert sorted(got["terms"]) == sorted(marks)


def test_one_hit_per_document_in_a_chunked_collection(own: Service, page) -> None:  # type: ignore[no-untyped-def]
    open_page(page, own, "collection=items&q=fresh+green+tea&k=5")
    results_settled(page, "Results for “fresh green tea”")
    ids = [h["id"] for h in shown_hits(page)]
    assert "doc-a#0" in ids and "doc-a#1" in ids  # chunks side by side, as stored
    page.check("#per-doc")
    page.click("#search-btn")
    page.wait_for_url(lambda url: parse_qs(urlparse(url).query).get("doc") == ["1"])
    expect(page.locator("#results li.hit[data-id='doc-a#1'], #results li.hit[data-id='doc-a#0']")).to_have_count(1)
    want = api(own, "/v1/collections/items/search", {"query": "fresh green tea", "k": 5, "group_size": 1})
    shown = shown_hits(page)
    assert [h["id"] for h in shown] == [h["id"] for h in want["hits"]]
    assert sum("source_id=doc-a" in h["meta"] for h in shown) == 1  # each document once
    assert sum("source_id=doc-b" in h["meta"] for h in shown) <= 1
    page.reload()  # the choice is in the URL too
    results_settled(page, "Results for “fresh green tea”")
    assert page.is_checked("#per-doc") and [h["id"] for h in shown_hits(page)] == [h["id"] for h in want["hits"]]
