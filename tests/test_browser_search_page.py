"""The search page in headless Chromium against a real server: search, "more like this", ask.

Drives Debian's Chromium (scripts/install-browser.sh) with Playwright's Python package; Playwright's
own browser download is never needed. The server requires API keys, so the test types the read-only
key into the page's key box as a user would.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.test_service_support import READ_KEY, Service, running_service

CHROMIUM = os.environ.get("VECTORSEAM_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--disable-dev-shm-usage"]

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(),
                                reason="Chromium is not installed; run scripts/install-browser.sh as root")


@pytest.fixture(scope="module")
def svc(local_embedder) -> Service:  # type: ignore[no-untyped-def]
    return running_service(local_embedder)


@pytest.fixture()
def page(tmp_path):  # type: ignore[no-untyped-def]
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch_persistent_context(
            str(tmp_path / "profile"), executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            p = browser.new_page()
            p.set_default_timeout(30_000)
            yield p
        finally:
            browser.close()


def test_search_then_more_like_this_then_ask(svc: Service, page, tmp_path) -> None:  # type: ignore[no-untyped-def]
    page.goto(svc.url + "/")
    # Without a key the page's first call gets 401, and it opens the key box for the user.
    page.wait_for_selector("#status.error")
    assert "missing API key" in page.text_content("#status")
    assert page.get_attribute("#key-box", "open") is not None
    page.fill("#api-key", READ_KEY)
    page.dispatch_event("#api-key", "change")
    page.wait_for_function("document.querySelectorAll('#collection option').length > 0")
    page.select_option("#collection", "reviews")

    page.fill("#query", "a cup of delicious coffee")
    page.fill("#k", "4")
    page.click("#search-btn")
    page.wait_for_selector("#results li.hit")
    assert page.text_content("#results-title") == "Results for “a cup of delicious coffee”"
    hits = page.query_selector_all("#results li.hit")
    assert len(hits) == 4
    assert "coffee" in hits[0].query_selector(".text").text_content().lower()
    assert "category=coffee" in hits[0].query_selector(".meta").text_content()
    assert float(hits[0].query_selector(".score").text_content()) > 0.3
    first_id = hits[0].get_attribute("data-id")

    hits[0].query_selector("a.more-like").click()
    page.wait_for_function(f"document.getElementById('results-title').textContent === 'More like {first_id}'")
    similar = page.query_selector_all("#results li.hit")
    assert similar and first_id not in [h.get_attribute("data-id") for h in similar]
    with svc.http(READ_KEY) as http:  # the page shows exactly what the API recommends
        want = http.post("/v1/collections/reviews/recommend", json={"positive": [first_id], "k": 4}).json()
    assert [h.get_attribute("data-id") for h in similar] == [h["id"] for h in want["hits"]]

    page.fill("#filter", '{"Score": {"$gte": 4}}')
    page.select_option("#mode", "hybrid")
    page.click("#search-btn")
    page.wait_for_function("document.getElementById('results-title').textContent.startsWith('Results')")
    scores = [h.query_selector(".meta").text_content() for h in page.query_selector_all("#results li.hit")]
    assert scores and all("Score=4" in s or "Score=5" in s for s in scores)

    page.fill("#filter", "{broken")
    page.click("#search-btn")
    page.wait_for_selector("#status.error")
    assert "not valid JSON" in page.text_content("#status")
    page.fill("#filter", "")

    page.fill("#question", "Which food arrived spoiled?")
    page.click("#ask-btn")
    page.wait_for_function("document.getElementById('status').textContent === 'Answered.'")
    answer = page.text_content("#answer")
    assert "[" in answer and "Extracted" in answer
    citations = page.query_selector_all("#citations li.citation")
    assert citations and any("spoil" in c.text_content().lower() or "mould" in c.text_content().lower()
                             for c in citations)
    page.screenshot(path=str(tmp_path / "search-page.png"), full_page=True)
