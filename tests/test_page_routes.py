"""The routes behind the search page's overview and map, and what they compute: field kinds and ranges
(times recognised, numbers not mistaken for them) and a cluster map cached per collection state."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.test_service_support import (
    ADMIN_KEY,
    COLLECTION,
    READ_KEY,
    REVIEWS,
    TENANT_READ_KEY,
    Service,
    build_service,
    running_service,
)
from vectorseam.analysis.fields import summarize_metadata


def test_field_kinds_and_ranges() -> None:
    n, fields = summarize_metadata([
        {"Time": 1303862400, "price": 1_500_000_000, "created_ms": 1_700_000_000_123, "published": "2024-03-05",
         "tags": ["a", "b"], "ok": True, "Score": 5, "odd": "x"},
        {"Time": 1219017600, "price": 2_000_000_000, "created_ms": 1_600_000_000_000,
         "published": "2023-01-01T12:00:00+02:00", "tags": ["b"], "ok": False, "Score": 1, "odd": 3},
        {"Score": 4.5, "tags": [], "odd": None},
    ])
    by = {f.name: f for f in fields}
    assert n == 3 and list(by) == sorted(by)
    assert (by["Time"].kind, by["Time"].low, by["Time"].high) == ("unix_time", 1219017600, 1303862400)
    assert by["price"].kind == "number"  # in the Unix range, but not named as a time
    assert by["created_ms"].kind == "unix_time_ms"
    assert (by["published"].kind, by["published"].low, by["published"].high) == (
        "time", "2023-01-01T10:00:00.000000Z", "2024-03-05T00:00:00.000000Z")
    assert by["tags"].kind == "string" and by["tags"].is_list and by["tags"].present == 2
    assert by["tags"].top == [("b", 2), ("a", 1)]
    assert by["ok"].kind == "bool" and by["ok"].distinct == 2
    assert (by["Score"].kind, by["Score"].low, by["Score"].high, by["Score"].present) == ("number", 1, 5, 3)
    assert by["odd"].kind == "mixed" and by["odd"].present == 2  # null is no value


@pytest.fixture(scope="module")
def svc(local_embedder) -> Service:  # type: ignore[no-untyped-def]
    return running_service(local_embedder)


@pytest.fixture(scope="module")
def own(local_embedder) -> Iterator[Service]:  # type: ignore[no-untyped-def]
    service = build_service(local_embedder)
    try:
        yield service
    finally:
        service.server.stop()


def test_overview_route(svc: Service) -> None:
    with svc.http(READ_KEY) as http:
        body = http.get(f"/v1/collections/{COLLECTION}/overview").json()
    assert (body["collection"], body["count"], body["dimension"], body["metric"]) == (COLLECTION, len(REVIEWS), 384,
                                                                                      "cosine")
    assert body["embedder"] == "local:sentence-transformers/all-MiniLM-L6-v2:384:normalized"
    fields = {f["name"]: f for f in body["fields"]}
    assert set(fields) == {"category", "Score"}
    assert (fields["Score"]["kind"], fields["Score"]["low"], fields["Score"]["high"]) == ("number", 1, 5)
    assert fields["category"]["distinct"] == len({c for c, _, _ in REVIEWS})
    assert fields["category"]["top"][0] == {"value": "coffee", "count": 5}
    assert isinstance(body["search_options"], list)


def test_overview_and_map_keep_key_scopes(svc: Service) -> None:
    with svc.http(TENANT_READ_KEY) as http:  # this key may read tenant-a-* and shared only
        for path in ("overview", "map"):
            resp = http.get(f"/v1/collections/{COLLECTION}/{path}")
            assert resp.status_code == 404, resp.text
    with svc.http(None) as http:
        assert http.get(f"/v1/collections/{COLLECTION}/overview").status_code == 401


def test_map_route_is_cached_per_collection_state(own: Service) -> None:
    with own.http(ADMIN_KEY) as http:
        first = http.get(f"/v1/collections/{COLLECTION}/map", params={"projection": "pca"}).json()
        assert not first["cached"] and first["total"] == len(REVIEWS) and not first["sampled"]
        assert sorted(p["id"] for p in first["points"]) == sorted(f"r{i:02d}" for i in range(len(REVIEWS)))
        assert all(0 <= p["x"] <= 1 and 0 <= p["y"] <= 1 for p in first["points"])
        assert sum(c["size"] for c in first["clusters"]) == len(REVIEWS) == len(first["points"])
        assert {p["cluster"] for p in first["points"]} == {c["index"] for c in first["clusters"]}
        assert first["k"] == len(first["clusters"]) >= 2 and all(c["label"] for c in first["clusters"])

        again = http.get(f"/v1/collections/{COLLECTION}/map", params={"projection": "pca"}).json()
        assert again["cached"] and again["state"] == first["state"] and again["points"] == first["points"]

        sampled = http.get(f"/v1/collections/{COLLECTION}/map", params={"projection": "pca", "max_points": 10}).json()
        assert sampled["sampled"] and len(sampled["points"]) == 10 and sampled["total"] == len(REVIEWS)

        # a write that changes what the map shows misses the cache
        assert http.post(f"/v1/collections/{COLLECTION}/records", json={"records": [
            {"id": "r00", "text": "Fresh sourdough bread with a crisp crust.", "metadata": {"category": "bread"}}]},
        ).status_code == 200
        changed = http.get(f"/v1/collections/{COLLECTION}/map", params={"projection": "pca"}).json()
        assert not changed["cached"] and changed["state"] != first["state"]
        assert next(p for p in changed["points"] if p["id"] == "r00")["text"].startswith("Fresh sourdough")

        too_few = http.get(f"/v1/collections/{COLLECTION}/map", params={"max_points": 2})
        assert too_few.status_code == 422 and "max_points" in too_few.text


def test_cluster_terms_skip_markup_and_words_every_cluster_shares() -> None:
    """Map legends (and `vectorseam cluster`) name clusters by their terms: not by the reviews' <br />,
    nor by the text template's "title"/"content" that every cluster holds."""
    from vectorseam.analysis.terms import class_tfidf_terms

    texts = [f"Title: {s}; Content: {t}<br /><br />{t}" for s, t in [
        ("Coffee", "dark roast coffee beans"), ("Espresso", "strong coffee with crema"),
        ("Cat", "my cat loves this kibble"), ("Dog", "dog treats for my puppy and cat")]]
    terms = class_tfidf_terms(texts, [0, 0, 1, 1], 2, top=8)
    flat = {t for cluster in terms for t, _ in cluster}
    assert not {word for term in flat for word in term.split()} & {"br", "title", "content"}, terms
    assert "coffee" in {t for t, _ in terms[0]} and "cat" in {t for t, _ in terms[1]}
