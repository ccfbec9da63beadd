"""Two ``vectorseam serve`` processes over one PostgreSQL database, as two replicas of a service.

Each process has a data directory of its own (nothing on local disk is shared), both use the real
embedding model and one pgvector schema. A record upserted through one replica, or a record whose text
it changed (the record count stays the same), is found by BM25 and hybrid search through the other on
the very next request, filters included; neither replica writes a BM25 sidecar.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.serve_process import ServeProcess, clean_env


@pytest.fixture()
def replicas(tmp_path: Path, pg_server: Any) -> Iterator[list[str]]:
    schema = f"replicas_{uuid.uuid4().hex[:8]}"
    started: list[ServeProcess] = []
    try:
        for i in (0, 1):
            env = clean_env(tmp_path / f"data{i}", VECTORSEAM_STORE__NAME="pgvector",
                            VECTORSEAM_STORE__OPTIONS__DSN=pg_server.dsn(), VECTORSEAM_STORE__OPTIONS__SCHEMA=schema)
            started.append(ServeProcess.start(env, tmp_path / f"server{i}.log"))
        deadline = time.monotonic() + 180  # two processes load the model on two shared cores
        for served in started:
            served.wait_ready(deadline)
        yield [served.url for served in started]
    finally:
        for served in started:
            served.stop()
    for i in (0, 1):
        assert not (tmp_path / f"data{i}" / "bm25").exists(), "a replica wrote a BM25 sidecar"


def _search(http: httpx.Client, url: str, query: str, mode: str, filter: dict[str, Any] | None = None,
            k: int = 5) -> list[dict[str, Any]]:
    body: dict[str, Any] = {"query": query, "mode": mode, "k": k}
    if filter is not None:
        body["filter"] = filter
    response = http.post(f"{url}/v1/collections/docs/search", json=body)
    assert response.status_code == 200, response.text
    hits: list[dict[str, Any]] = response.json()["hits"]
    return hits


def test_a_write_through_one_replica_is_found_through_the_other_at_once(replicas: list[str]) -> None:
    first, second = replicas
    http = httpx.Client(timeout=120)
    texts = {
        "tea": "Fragrant jasmine green tea with a delicate floral aroma.",
        "coffee": "Rich dark roast coffee with a smooth chocolate finish.",
        "beans": "Organic pinto beans cook quickly and taste wonderful in chili.",
        "pasta": "Whole wheat pasta that holds its shape and tastes nutty.",
    }
    records = [{"id": rid, "text": text, "metadata": {"shelf": "drinks" if rid in ("tea", "coffee") else "food"}}
               for rid, text in texts.items()]
    assert http.post(f"{first}/v1/collections/docs/records", json={"records": records}).status_code == 200
    for mode in ("bm25", "hybrid"):
        assert _search(http, second, "jasmine tea", mode)[0]["id"] == "tea", mode
    # A new record through the second replica, searched through the first.
    new = {"id": "kombucha", "text": "Sparkling kombucha brewed with ginger and lemon.", "metadata": {"shelf": "drinks"}}
    assert http.post(f"{second}/v1/collections/docs/records", json={"records": [new]}).status_code == 200
    for mode in ("bm25", "hybrid"):
        hits = _search(http, first, "ginger kombucha", mode, {"shelf": "drinks"})
        assert hits[0]["id"] == "kombucha", mode
    # A changed text (same record count) through the first, searched through the second: the new words
    # are found, the old ones no longer.
    changed = {"id": "pasta", "text": "Saffron risotto, creamy and slow cooked.", "metadata": {"shelf": "food"}}
    assert http.post(f"{first}/v1/collections/docs/records", json={"records": [changed]}).status_code == 200
    assert [h["id"] for h in _search(http, second, "saffron risotto", "bm25")] == ["pasta"]
    assert _search(http, second, "saffron risotto", "hybrid", {"shelf": "food"})[0]["id"] == "pasta"
    assert _search(http, second, "whole wheat nutty", "bm25") == []
    assert _search(http, second, "saffron", "bm25", {"shelf": "drinks"}) == []
    # A delete through the second, searched through the first.
    assert http.post(f"{second}/v1/collections/docs/records/delete", json={"ids": ["kombucha"]}).status_code == 200
    assert _search(http, first, "ginger kombucha", "bm25") == []
