"""The search backend's HTTP API (issue 23) on a real server: collections and aliases, count, scroll by
cursor, export/import, snapshots, several searches per request, and the search options (pages, cursors,
groups, facets, highlights, score thresholds) on search and recommend, with scoped keys kept in scope."""

from __future__ import annotations

import io
import json
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pyarrow.parquet as pq
import pytest

from tests.test_service_support import (
    ADMIN_KEY,
    COLLECTION,
    READ_KEY,
    TENANT_ADMIN_KEY,
    TENANT_READ_KEY,
    Service,
    running_service,
)

DIM = 384


@pytest.fixture(scope="module")
def svc(local_embedder) -> Service:  # type: ignore[no-untyped-def]
    return running_service(local_embedder)


@pytest.fixture()
def admin(svc: Service) -> Iterator[httpx.Client]:
    with svc.http(ADMIN_KEY) as client:
        yield client


def fresh(prefix: str = "api") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def vec(seed: int) -> list[float]:
    v = np.random.default_rng(seed).normal(size=DIM)
    return [float(x) for x in v / np.linalg.norm(v)]


def chunked(admin: httpx.Client, name: str) -> list[dict[str, Any]]:
    """A collection of 8 documents in 3 chunks each (source_id) plus 4 unchunked records."""
    records = []
    for d in range(8):
        for c in range(3):
            records.append({"id": f"doc{d}#{c}", "vector": vec(100 * d + c),
                            "text": f"chunk {c} of document {d} about {'beans' if d % 2 else 'pasta'}",
                            "metadata": {"source_id": f"doc{d}", "chunk": c, "kind": ["a", "b"][d % 2]}})
    for s in range(4):
        records.append({"id": f"solo{s}", "vector": vec(9000 + s), "text": f"solo note {s} on coffee",
                        "metadata": {"kind": "c"}})
    assert admin.put(f"/v1/collections/{name}", json={"dimension": DIM}).status_code == 201
    resp = admin.post(f"/v1/collections/{name}/records", json={"records": records})
    assert resp.status_code == 200, resp.text
    return records


def test_collection_lifecycle(admin: httpx.Client, local_embedder) -> None:  # type: ignore[no-untyped-def]
    name = fresh()
    created = admin.put(f"/v1/collections/{name}", json={})
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["dimension"] == DIM and body["fingerprint"] == local_embedder.fingerprint and body["count"] == 0
    assert admin.put(f"/v1/collections/{name}", json={}).status_code == 200  # exists alike
    clash = admin.put(f"/v1/collections/{name}", json={"dimension": 3})
    assert clash.status_code == 400 and "dimension" in clash.text
    admin.post(f"/v1/collections/{name}/records", json={"records": [{"id": "a", "text": "tasty beans"}]})
    described = admin.get(f"/v1/collections/{name}").json()
    assert described["count"] == 1 and described["vector_bytes"] == DIM * 4 and described["tuned"] is False
    assert admin.delete(f"/v1/collections/{name}").json() == {"dropped": True}
    assert admin.get(f"/v1/collections/{name}").status_code == 404


def test_read_keys_cannot_manage(svc: Service) -> None:
    with svc.http(READ_KEY) as reader:
        assert reader.put(f"/v1/collections/{fresh()}", json={}).status_code == 403
        assert reader.put("/v1/aliases/live", json={"collection": COLLECTION}).status_code == 403
        assert reader.delete(f"/v1/collections/{COLLECTION}").status_code == 403
        assert reader.post(f"/v1/collections/{COLLECTION}/import", content=b"").status_code == 403


def test_alias_switch_and_listing(admin: httpx.Client) -> None:
    blue, green, alias = fresh("blue"), fresh("green"), fresh("live")
    for name, seed in ((blue, 1), (green, 2)):
        admin.put(f"/v1/collections/{name}", json={"dimension": DIM})
        admin.post(f"/v1/collections/{name}/records", json={"records": [{"id": name, "vector": vec(seed)}]})
    assert admin.put(f"/v1/aliases/{alias}", json={"collection": blue}).json() == {"alias": alias, "collection": blue}
    hit = admin.post(f"/v1/collections/{alias}/search", json={"vector": vec(1), "k": 1}).json()
    assert hit["collection"] == blue and hit["hits"][0]["id"] == blue
    admin.put(f"/v1/aliases/{alias}", json={"collection": green})
    assert admin.post(f"/v1/collections/{alias}/search", json={"vector": vec(1), "k": 1}).json()["collection"] == green
    assert {"alias": alias, "collection": green} in admin.get("/v1/aliases").json()["aliases"]
    assert admin.get(f"/v1/collections/{green}").json()["aliases"] == [alias]
    refused = admin.delete(f"/v1/collections/{alias}")
    assert refused.status_code == 409 and "alias" in refused.text
    shadow = admin.put(f"/v1/aliases/{blue}", json={"collection": green})
    assert shadow.status_code == 400 and "is a collection" in shadow.text
    assert admin.delete(f"/v1/aliases/{alias}").json() == {"removed": True}
    assert admin.delete(f"/v1/aliases/{alias}").json() == {"removed": False}


def test_count_and_scroll_by_cursor(admin: httpx.Client) -> None:
    name = fresh()
    records = chunked(admin, name)
    base = f"/v1/collections/{name}"
    assert admin.post(f"{base}/count", json={}).json() == {"count": len(records)}
    assert admin.post(f"{base}/count", json={"filter": {"kind": "a"}}).json() == {"count": 12}
    seen, cursor = [], None
    while True:
        page = admin.post(f"{base}/scroll", json={"limit": 5, "cursor": cursor, "filter": {"kind": {"$ne": "c"}}})
        assert page.status_code == 200, page.text
        seen += [r["id"] for r in page.json()["records"]]
        cursor = page.json()["next_cursor"]
        if cursor is None:
            break
        if len(seen) == 10:  # a write between pages: the cursor stays valid
            admin.post(f"{base}/records", json={"records": [{"id": "doc0#0a", "vector": vec(5)}]})
    assert sorted(seen) == sorted(r["id"] for r in records if r["metadata"]["kind"] != "c")
    first = admin.post(f"{base}/scroll", json={"limit": 5}).json()
    other = admin.post(f"{base}/scroll", json={"limit": 5, "cursor": first["next_cursor"], "filter": {"kind": "a"}})
    assert other.status_code == 400 and "another scroll" in other.text
    with_vectors = admin.post(f"{base}/scroll", json={"limit": 2, "include_vectors": True}).json()["records"]
    assert len(with_vectors[0]["vector"]) == DIM


def test_export_import_and_snapshot_restore(admin: httpx.Client) -> None:
    name = fresh()
    records = chunked(admin, name)
    base = f"/v1/collections/{name}"
    ndjson = admin.post(f"{base}/export", json={"format": "ndjson", "filter": {"kind": "a"}})
    assert ndjson.status_code == 200 and ndjson.headers["content-type"].startswith("application/x-ndjson")
    lines = ndjson.content.decode().splitlines()
    assert json.loads(lines[0])["collection"] == name and len(lines) == 13
    parquet = admin.post(f"{base}/export", json={"format": "parquet"})
    assert pq.ParquetFile(io.BytesIO(parquet.content)).metadata.num_rows == len(records)
    for fmt, data, count in (("ndjson", ndjson.content, 12), ("parquet", parquet.content, len(records))):
        target = fresh("imported")
        done = admin.post(f"/v1/collections/{target}/import", params={"format": fmt}, content=data)
        assert done.status_code == 200, done.text
        assert done.json() == {"collection": target, "written": count}
        assert admin.post(f"/v1/collections/{target}/count", json={}).json()["count"] == count
    snapshot = admin.get(f"{base}/snapshot")
    assert snapshot.status_code == 200 and "snapshot.parquet" in snapshot.headers["content-disposition"]
    restored = fresh("restored")
    info = admin.post(f"/v1/collections/{restored}/snapshot", content=snapshot.content)
    assert info.status_code == 200 and info.json()["count"] == len(records), info.text
    again = admin.post(f"/v1/collections/{restored}/snapshot", content=snapshot.content)
    assert again.status_code == 400 and "already holds records" in again.text
    assert admin.post(f"/v1/collections/{restored}/snapshot", params={"replace": "true"},
                      content=snapshot.content).status_code == 200
    query = {"vector": vec(101), "k": 10}
    a = admin.post(f"{base}/search", json=query).json()["hits"]
    b = admin.post(f"/v1/collections/{restored}/search", json=query).json()["hits"]
    assert [(h["id"], h["score"]) for h in a] == [(h["id"], h["score"]) for h in b]
    bad = admin.post(f"/v1/collections/{fresh()}/import", content=b'{"id": 5}\n')
    assert bad.status_code == 400 and "line 1" in bad.text
    assert admin.post(f"{base}/export", json={"filter": {"kind": {"$regex": "a"}}}).status_code == 400


def test_group_by_document_facets_highlights(admin: httpx.Client) -> None:
    name = fresh()
    chunked(admin, name)
    body = {"query": "beans", "mode": "bm25", "k": 3, "group_size": 2, "facets": ["kind"], "highlight": True}
    resp = admin.post(f"/v1/collections/{name}/search", json=body)
    assert resp.status_code == 200, resp.text
    out = resp.json()
    assert len(out["groups"]) == 3 and all(len(g["hits"]) == 2 for g in out["groups"])
    docs = [g["value"] for g in out["groups"]]
    assert len(set(docs)) == 3 and all(h["metadata"]["source_id"] == g["value"] for g in out["groups"]
                                       for h in g["hits"])
    assert [h["id"] for h in out["hits"]] == [g["hits"][0]["id"] for g in out["groups"]]
    assert out["facets"] == {"kind": [{"value": "a", "count": 12}, {"value": "b", "count": 12},
                                      {"value": "c", "count": 4}]}
    mark = out["hits"][0]["highlight"]
    assert mark["terms"] == ["beans"] and [mark["snippet"][a:b] for a, b in mark["spans"]] == ["beans"]
    hits_scope = admin.post(f"/v1/collections/{name}/search", json={**body, "facet_scope": "hits"}).json()
    assert hits_scope["facets"] == {"kind": [{"value": "b", "count": 6}]}


def test_pages_by_offset_and_cursor_and_threshold(admin: httpx.Client) -> None:
    name = fresh()
    chunked(admin, name)
    base = f"/v1/collections/{name}/search"
    whole = admin.post(base, json={"vector": vec(7), "k": 12}).json()["hits"]
    first = admin.post(base, json={"vector": vec(7), "k": 6}).json()
    second = admin.post(base, json={"vector": vec(7), "k": 6, "cursor": first["next_cursor"]}).json()
    by_offset = admin.post(base, json={"vector": vec(7), "k": 6, "offset": 6}).json()
    assert [h["id"] for h in first["hits"] + second["hits"]] == [h["id"] for h in whole]
    assert [h["id"] for h in by_offset["hits"]] == [h["id"] for h in second["hits"]]
    wrong = admin.post(base, json={"vector": vec(8), "k": 6, "cursor": first["next_cursor"]})
    assert wrong.status_code == 400 and "another search" in wrong.text
    cut = whole[4]["score"]
    kept = admin.post(base, json={"vector": vec(7), "k": 12, "score_threshold": cut}).json()
    assert [h["id"] for h in kept["hits"]] == [h["id"] for h in whole[:5]] and kept["next_cursor"] is None
    both = admin.post(base, json={"vector": vec(7), "offset": 1, "cursor": first["next_cursor"]})
    assert both.status_code == 422


def test_recommend_by_a_chunked_documents_id(admin: httpx.Client) -> None:
    name = fresh()
    chunked(admin, name)
    resp = admin.post(f"/v1/collections/{name}/recommend", json={"positive": ["doc3"], "k": 4, "group_by": "source_id"})
    assert resp.status_code == 200, resp.text
    groups = resp.json()["groups"]
    assert len(groups) == 4 and "doc3" not in [g["value"] for g in groups]
    missing = admin.post(f"/v1/collections/{name}/recommend", json={"positive": ["doc99"]})
    assert missing.status_code == 400 and "doc99" in missing.text


def test_several_searches_in_one_request(admin: httpx.Client) -> None:
    resp = admin.post("/v1/search", json={"searches": [
        {"collection": COLLECTION, "query": "delicious beans", "k": 2},
        {"collection": COLLECTION, "query": "late parcel", "mode": "bm25", "k": 1, "facets": ["category"]}]})
    assert resp.status_code == 200, resp.text
    first, second = resp.json()["results"]
    assert len(first["hits"]) == 2 and first["hits"][0]["metadata"]["category"] == "beans"
    assert second["mode"] == "bm25" and "category" in second["facets"]


def test_scoped_keys_stay_in_scope(svc: Service, admin: httpx.Client) -> None:
    mine, theirs = f"tenant-a-{uuid.uuid4().hex[:6]}", fresh("tenant-b")
    for name in (mine, theirs):
        admin.put(f"/v1/collections/{name}", json={"dimension": DIM})
        admin.post(f"/v1/collections/{name}/records", json={"records": [{"id": "x", "vector": vec(3)}]})
    admin.put(f"/v1/aliases/tenant-a-{uuid.uuid4().hex[:6]}", json={"collection": theirs})
    absent = f"tenant-a-absent-{uuid.uuid4().hex[:4]}"
    with svc.http(TENANT_READ_KEY) as tenant, svc.http(TENANT_ADMIN_KEY) as tenant_admin:
        for name in (theirs, absent):
            for method, path, body in [("GET", f"/v1/collections/{name}", None),
                                       ("POST", f"/v1/collections/{name}/count", {}),
                                       ("POST", f"/v1/collections/{name}/scroll", {"limit": 10}),
                                       ("POST", f"/v1/collections/{name}/export", {}),
                                       ("GET", f"/v1/collections/{name}/snapshot", None)]:
                resp = tenant.request(method, path, json=body)
                assert resp.status_code == 404, (path, resp.text)
                assert resp.json()["error"]["message"] == (f"collection {name!r} does not exist or is not "
                                                           "available to this API key")
        assert tenant.get(f"/v1/collections/{mine}").status_code == 200
        assert all(a["collection"] != theirs for a in tenant.get("/v1/aliases").json()["aliases"])
        assert tenant_admin.put(f"/v1/collections/{theirs}", json={}).status_code == 404
        assert tenant_admin.delete(f"/v1/collections/{theirs}").status_code == 404
        assert tenant_admin.put(f"/v1/aliases/tenant-a-{uuid.uuid4().hex[:6]}",
                                json={"collection": theirs}).status_code == 404
        multi = tenant.post("/v1/search", json={"searches": [{"collection": mine, "vector": vec(3)},
                                                              {"collection": theirs, "vector": vec(3)}]})
        assert multi.status_code == 404 and theirs in multi.text
        assert tenant_admin.put(f"/v1/aliases/tenant-a-{uuid.uuid4().hex[:6]}",
                                json={"collection": mine}).status_code == 200
    assert admin.get(f"/v1/collections/{theirs}").json()["count"] == 1
    # the server is shared with other modules: a tenant-a-* collection left here shows in their tenant's listing
    assert admin.delete(f"/v1/collections/{mine}").json() == {"dropped": True}


NEW_ROUTES = {
    ("put", "/v1/collections/{name}"), ("get", "/v1/collections/{name}"), ("delete", "/v1/collections/{name}"),
    ("get", "/v1/aliases"), ("put", "/v1/aliases/{alias}"), ("delete", "/v1/aliases/{alias}"),
    ("post", "/v1/collections/{name}/count"), ("post", "/v1/collections/{name}/scroll"),
    ("post", "/v1/collections/{name}/export"), ("post", "/v1/collections/{name}/import"),
    ("get", "/v1/collections/{name}/snapshot"), ("post", "/v1/collections/{name}/snapshot"), ("post", "/v1/search"),
}


def test_openapi_lists_every_route_with_examples(admin: httpx.Client) -> None:
    spec = admin.get("/openapi.json").json()
    operations = {(method, path): op for path, item in spec["paths"].items() for method, op in item.items()}
    assert set(operations) >= NEW_ROUTES
    schemas = spec["components"]["schemas"]
    for (method, path), op in operations.items():
        assert op.get("summary"), (method, path)
        body = op.get("requestBody")
        if body is None:
            continue
        for media, content in body["content"].items():
            ref = content.get("schema", {}).get("$ref", "")
            schema = schemas.get(ref.rsplit("/", 1)[-1], {}) if ref else content.get("schema", {})
            has_example = "example" in content or "examples" in content or "examples" in schema or any(
                "examples" in prop for prop in schema.get("properties", {}).values())
            assert has_example or schema.get("format") == "binary", f"{method.upper()} {path} ({media}) has no example"
    search = schemas["SearchRequest"]["properties"]
    assert {"offset", "cursor", "group_by", "group_size", "facets", "facet_scope", "highlight",
            "score_threshold"} <= set(search)
