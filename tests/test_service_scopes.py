"""Keys scoped to collections, and Host/Origin checks against DNS rebinding, on real servers.

The shared server has a read key for ``tenant-a-*`` and ``shared`` and an admin key for ``tenant-a-*``
(tests/test_service_support.py). Every route that names a collection must answer 404 for any other
one, the same 404 as for a collection that does not exist, and an alias counts only when both its
name and its target are in scope.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.test_service_support import (
    ADMIN_KEY,
    COLLECTION,
    TENANT_ADMIN_KEY,
    TENANT_READ_KEY,
    Service,
    running_service,
)
from vectorseam.client import VectorSeam
from vectorseam.config import APIKeySettings, ServiceSettings, Settings
from vectorseam.errors import ConfigError
from vectorseam.service import create_app
from vectorseam.service.auth import hash_key
from vectorseam.service.background import BackgroundServer

MINE, THEIRS, SHARED = "tenant-a-docs", "tenant-b-docs", "shared"
ALIAS_OUT = "tenant-a-sneaky"  # in scope by name, pointing at another tenant's collection
ALIAS_IN = "public-a"  # out of scope by name, pointing at the tenant's own collection
ALIAS_OK = "tenant-a-live"  # in scope by name and by target
VECTOR = [0.3] * 384


@pytest.fixture(scope="module")
def svc(local_embedder) -> Service:  # type: ignore[no-untyped-def]
    service = running_service(local_embedder)
    with service.http(ADMIN_KEY) as admin:
        for name in (MINE, THEIRS, SHARED):
            resp = admin.post(f"/v1/collections/{name}/records", json={"records": [
                {"id": f"{name}-1", "vector": VECTOR, "text": f"a record of {name}", "metadata": {"owner": name}}]})
            assert resp.status_code == 200, resp.text
    service.client.set_alias(ALIAS_OUT, THEIRS)
    service.client.set_alias(ALIAS_IN, MINE)
    service.client.set_alias(ALIAS_OK, MINE)
    return service


@pytest.fixture()
def tenant(svc: Service) -> Iterator[httpx.Client]:
    with svc.http(TENANT_READ_KEY) as client:
        yield client


@pytest.fixture()
def tenant_admin(svc: Service) -> Iterator[httpx.Client]:
    with svc.http(TENANT_ADMIN_KEY) as client:
        yield client


def routes(name: str, target: str | None = None) -> list[tuple[str, str, Any]]:
    base, record = f"/v1/collections/{name}", f"{target or name}-1"
    return [
        ("POST", f"{base}/search", {"vector": VECTOR, "k": 2}),
        ("POST", f"{base}/search", {"query": "record", "mode": "bm25"}),
        ("POST", f"{base}/recommend", {"positive": [record]}),
        ("POST", f"{base}/ask", {"question": "what record?"}),
        ("POST", f"{base}/ask", {"question": "what record?", "stream": True}),
        ("POST", f"{base}/records/fetch", {"ids": [record]}),
        ("GET", f"{base}/records/{record}", None),
    ]


def admin_routes(name: str) -> list[tuple[str, str, Any]]:
    base = f"/v1/collections/{name}"
    return [
        ("POST", f"{base}/records", {"records": [{"id": "intruder", "vector": VECTOR}]}),
        ("POST", f"{base}/records/delete", {"ids": [f"{name}-1"]}),
        ("POST", f"{base}/records/delete", {"filter": {"owner": name}}),
        ("DELETE", f"{base}/records/{name}-1", None),
        ("POST", f"{base}/ingest", {"documents": [{"id": "intruder", "text": "written by another tenant"}]}),
    ]


def not_found(resp: httpx.Response, name: str) -> None:
    assert resp.status_code == 404, resp.text
    body = resp.json()
    assert body["error"]["message"] == f"collection {name!r} does not exist or is not available to this API key"
    assert body["request_id"] == resp.headers["x-request-id"]


def test_listing_shows_only_the_keys_collections(svc: Service, tenant: httpx.Client,
                                                 tenant_admin: httpx.Client) -> None:
    assert {c["name"] for c in tenant.get("/v1/collections").json()["collections"]} == {MINE, SHARED}
    assert {c["name"] for c in tenant_admin.get("/v1/collections").json()["collections"]} == {MINE}
    with svc.http(ADMIN_KEY) as admin:
        assert {MINE, THEIRS, SHARED, COLLECTION} <= {c["name"] for c in admin.get("/v1/collections").json()[
            "collections"]}


@pytest.mark.parametrize(("name", "target"), [(MINE, MINE), (SHARED, SHARED), (ALIAS_OK, MINE)])
def test_the_keys_own_collections_answer(tenant: httpx.Client, name: str, target: str) -> None:
    for method, path, body in routes(name, target):
        resp = tenant.request(method, path, json=body)
        assert resp.status_code == 200, (path, resp.text)


@pytest.mark.parametrize("name", [THEIRS, COLLECTION, ALIAS_OUT, ALIAS_IN])
def test_other_collections_are_404_on_every_read_route(tenant: httpx.Client, name: str) -> None:
    for method, path, body in routes(name, MINE if name == ALIAS_IN else THEIRS if name == ALIAS_OUT else None):
        not_found(tenant.request(method, path, json=body), name)


@pytest.mark.parametrize("name", [THEIRS, SHARED, COLLECTION, ALIAS_OUT, ALIAS_IN, "tenant-b-new"])
def test_a_scoped_admin_key_writes_nowhere_else(svc: Service, tenant_admin: httpx.Client, name: str) -> None:
    with svc.http(ADMIN_KEY) as admin:
        before = {c["name"]: c["count"] for c in admin.get("/v1/collections").json()["collections"]}
        for method, path, body in admin_routes(name):
            not_found(tenant_admin.request(method, path, json=body), name)
        time.sleep(0.2)  # an ingest job, had one started, would have run by now
        assert {c["name"]: c["count"] for c in admin.get("/v1/collections").json()["collections"]} == before


def test_an_absent_collection_looks_the_same_as_a_hidden_one(tenant: httpx.Client) -> None:
    absent = tenant.post("/v1/collections/tenant-a-absent/search", json={"vector": VECTOR})
    not_found(absent, "tenant-a-absent")
    assert THEIRS not in absent.text and COLLECTION not in absent.text  # the store's message lists them all


def test_a_scoped_admin_key_writes_and_ingests_in_scope(tenant_admin: httpx.Client, tenant: httpx.Client) -> None:
    for method, path, body in admin_routes("tenant-a-scratch")[:1]:
        assert tenant_admin.request(method, path, json=body).status_code == 200
    resp = tenant_admin.post("/v1/collections/tenant-a-jobs/ingest", json={"documents": [
        {"id": "j1", "text": "ingested by the tenant"}, {"id": "j1", "text": "a repeated id"}]})
    assert resp.status_code == 202, resp.text
    deadline = time.monotonic() + 60
    while tenant_admin.get(resp.headers["location"]).json()["state"] not in ("succeeded", "failed"):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    own = tenant_admin.get(resp.headers["location"]).json()
    assert own["written"] == 1 and own["rejects"] and not own["details_hidden"]
    seen_by_reader = tenant.get(resp.headers["location"]).json()  # same tenant, read key: no details
    assert seen_by_reader["rejected"] == 1 and seen_by_reader["rejects"] == [] and seen_by_reader["details_hidden"]


def test_jobs_show_only_the_keys_collections(svc: Service, tenant: httpx.Client) -> None:
    with svc.http(ADMIN_KEY) as admin:
        resp = admin.post(f"/v1/collections/{THEIRS}/ingest", json={"documents": [{"id": "b2", "text": "tenant b"}]})
        assert resp.status_code == 202
    job_id = resp.json()["id"]
    assert tenant.get(f"/v1/jobs/{job_id}").status_code == 404
    listed = tenant.get("/v1/jobs").json()
    assert job_id not in {j["id"] for j in listed}
    assert {j["collection"] for j in listed} <= {MINE, SHARED, "tenant-a-jobs", "tenant-a-scratch"}


def test_scoped_keys_still_reach_routes_without_a_collection(tenant: httpx.Client) -> None:
    assert tenant.get("/v1/models").status_code == 200
    assert tenant.post("/v1/embeddings", json={"input": "x", "model": "all-MiniLM-L6-v2"}).status_code == 200


def test_collection_patterns_are_validated() -> None:
    APIKeySettings(name="ok", hash=hash_key("k"), collections=["tenant-*", "exact", "*"])
    APIKeySettings(name="none", hash=hash_key("k"), collections=[])  # embeddings only
    for bad in (["a*b"], [""], ["**"]):
        with pytest.raises(ValueError, match="collection pattern"):
            APIKeySettings(name="bad", hash=hash_key("k"), collections=bad)
    with pytest.raises(ConfigError, match="collection pattern"):
        from vectorseam.config import load_settings
        load_settings(service={"api_keys": [{"name": "x", "hash": hash_key("k"), "collections": ["a*b"]}]})


# --- Host and Origin: DNS rebinding -------------------------------------------------------------------------


def server(tmp_path, embedder, **service: Any) -> tuple[BackgroundServer, VectorSeam]:  # type: ignore[no-untyped-def]
    client = VectorSeam(settings=Settings(data_dir=tmp_path, service=ServiceSettings(**service)))
    client.embedder = embedder
    return BackgroundServer(create_app(client, warm_up=False)).start(), client


def write(url: str, headers: dict[str, str]) -> httpx.Response:
    return httpx.post(url + "/v1/collections/open/records", headers=headers,
                      json={"records": [{"id": "1", "vector": [0.5] * 384}]})


def test_keyless_service_answers_loopback_names_only(tmp_path, local_embedder) -> None:  # type: ignore[no-untyped-def]
    srv, client = server(tmp_path, local_embedder)
    port = srv.port
    try:
        for host in (f"127.0.0.1:{port}", f"localhost:{port}", "localhost", f"[::1]:{port}", "LOCALHOST.",
                     "127.0.0.2"):
            assert write(srv.url, {"Host": host}).status_code == 200, host
        for host in ("attacker.example", f"attacker.example:{port}", "localhost.attacker.example",
                     "127.0.0.1.nip.io", "[::1", "::1", "", "10.0.0.1"):
            resp = write(srv.url, {"Host": host})
            assert resp.status_code == 421, (host, resp.text)
            body = resp.json()
            assert "service.allowed_hosts" in body["error"]["message"] and "rebinding" in body["error"]["message"]
            assert body["request_id"] == resp.headers["x-request-id"]
        for path in ("/healthz", "/readyz", "/metrics"):  # probes address a pod by IP
            assert httpx.get(srv.url + path, headers={"Host": "10.0.0.7:8000"}).status_code == 200
        # a browser page from another site, even on a loopback Host (a rebound name cannot send that, but a
        # cross-site form post to http://127.0.0.1 can)
        for origin in ("http://attacker.example", "null", "http://localhost.attacker.example:80"):
            resp = write(srv.url, {"Origin": origin})
            assert resp.status_code == 403 and "web page" in resp.json()["error"]["message"], origin
        for origin in (f"http://127.0.0.1:{port}", f"http://localhost:{port}", "http://[::1]:3000"):
            assert write(srv.url, {"Origin": origin}).status_code == 200, origin
        assert httpx.get(srv.url + "/", headers={"Host": "attacker.example"}).status_code == 421  # the page too
    finally:
        srv.stop()
        client.close()


def test_keyless_service_also_answers_allowed_hosts(tmp_path, local_embedder) -> None:  # type: ignore[no-untyped-def]
    srv, client = server(tmp_path, local_embedder, allowed_hosts=["search.internal", "*.lab.example"],
                         cors_origins=["https://app.example"])
    try:
        for host in ("search.internal", "search.internal:8000", "a.lab.example", "localhost"):
            assert write(srv.url, {"Host": host}).status_code == 200, host
        for host in ("lab.example", "other.internal"):
            assert write(srv.url, {"Host": host}).status_code == 421, host
        assert write(srv.url, {"Origin": "http://search.internal:8000"}).status_code == 200
        assert write(srv.url, {"Origin": "https://app.example"}).status_code == 200
        assert write(srv.url, {"Origin": "https://evil.example"}).status_code == 403
    finally:
        srv.stop()
        client.close()


def test_with_keys_any_host_unless_allowed_hosts_are_set(tmp_path, local_embedder) -> None:  # type: ignore[no-untyped-def]
    keys = [APIKeySettings(name="k", hash=hash_key("the-key"), scope="admin")]
    auth = {"Authorization": "Bearer the-key"}
    srv, client = server(tmp_path / "a", local_embedder, api_keys=keys)
    try:
        assert write(srv.url, {**auth, "Host": "anything.example", "Origin": "https://x.example"}).status_code == 200
    finally:
        srv.stop()
        client.close()
    srv, client = server(tmp_path / "b", local_embedder, api_keys=keys, allowed_hosts=["api.example.com"])
    try:
        assert write(srv.url, {**auth, "Host": "api.example.com"}).status_code == 200
        assert write(srv.url, {**auth, "Host": "127.0.0.1"}).status_code == 200
        resp = write(srv.url, {**auth, "Host": "other.example.com"})
        assert resp.status_code == 421 and "service.allowed_hosts" in resp.json()["error"]["message"]
    finally:
        srv.stop()
        client.close()
