"""Screenshots of the search page and its cluster map for the docs (docs/images/), from a real server.

    .venv/bin/python scripts/page_screenshots.py                  # ingests the demo reviews into a temp dir
    .venv/bin/python scripts/page_screenshots.py --data-dir DIR   # a data dir that already holds 'reviews'

Ingests the Cookbook's 1k fine food reviews as ``make demo`` does (unless given a data directory that has
them), starts ``vectorseam serve`` on a free loopback port, and drives Debian's Chromium
(scripts/install-browser.sh) with Playwright: a hybrid search with a filter, then the map with a point
hovered. Not part of the test suite (the browser tests check the page; this only takes pictures).
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlencode

import httpx

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "cookbook" / "fine_food_reviews_1k.csv"
BIN = Path(sys.executable).parent
CHROMIUM = os.environ.get("VECTORSEAM_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, help="a data directory (kept; 'reviews' is ingested once if absent)")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "images")
    args = parser.parse_args()
    env = {k: v for k, v in os.environ.items() if not k.startswith("VECTORSEAM_")}
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    with tempfile.TemporaryDirectory(prefix="vectorseam-shots-") as tmp:
        data_dir = args.data_dir or Path(tmp) / "data"
        env["VECTORSEAM_DATA_DIR"] = str(data_dir)
        listed = subprocess.run([str(BIN / "vectorseam"), "collections", "--json"], env=env, capture_output=True,
                                text=True, check=True).stdout
        if '"reviews"' not in listed:  # about a minute or two: 1,000 reviews through the real model
            subprocess.run([str(BIN / "vectorseam"), "ingest", str(DATA), "--collection", "reviews", "--no-progress",
                            "--text-template", "Title: {Summary}; Content: {Text}",
                            "--metadata-fields", "Score,ProductId,UserId,Time"], env=env, check=True)
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        server = subprocess.Popen([str(BIN / "vectorseam"), "serve", "--host", "127.0.0.1", "--port", str(port)],
                                  env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 180
            while True:
                try:
                    if httpx.get(url + "/readyz", timeout=5).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if server.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit("vectorseam serve did not get ready")
                time.sleep(0.3)
            shoot(url, args.out)
        finally:
            server.terminate()
            server.wait(timeout=30)


def shoot(url: str, out: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    out.mkdir(parents=True, exist_ok=True)
    query = urlencode({"collection": "reviews", "q": "delicious beans", "mode": "hybrid", "k": "5",
                       "filter": '{"Score": {"$gte": 4}}'})
    with sync_playwright() as pw, tempfile.TemporaryDirectory() as profile:
        browser = pw.chromium.launch_persistent_context(profile, executable_path=CHROMIUM, args=ARGS, headless=True,
                                                        viewport={"width": 1280, "height": 900})
        page = browser.new_page()
        page.set_default_timeout(180_000)
        page.goto(f"{url}/?{query}")
        expect(page.locator("#results-title")).to_have_text("Results for “delicious beans”")
        page.wait_for_selector("#fields:not([hidden])")
        page.screenshot(path=str(out / "search-page.png"), full_page=True)
        page.click("#map-btn")
        page.wait_for_selector("#map circle.pt")
        page.locator("#map circle.pt").last.hover()  # drawn last, so on top: the hover reaches it
        page.wait_for_selector("#map-tip:not([hidden])")
        page.locator("#map-box").screenshot(path=str(out / "cluster-map.png"))
        browser.close()
    print(f"wrote {out / 'search-page.png'} and {out / 'cluster-map.png'}")


if __name__ == "__main__":
    main()
