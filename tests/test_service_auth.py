"""API keys and scopes on a real server: missing, wrong and read-only keys on admin routes."""

from __future__ import annotations

import hashlib
import subprocess
import sys

import httpx
import pytest

from tests.test_service_support import ADMIN_KEY, COLLECTION, READ_KEY, Service, running_service
from vectorseam.client import VectorSeam
from vectorseam.config import APIKeySettings, ServiceSettings, Settings
from vectorseam.errors import ConfigError
from vectorseam.service import create_app
from vectorseam.service.auth import KeyRing, check_exposure, hash_key, new_key
from vectorseam.service.background import BackgroundServer

CLI = [sys.executable, "-c", "from vectorseam.cli import main; main()"]
ADMIN_ROUTES = [
    ("POST", f"/v1/collections/{COLLECTION}/records", {"records": [{"id": "a", "vector": [0.0] * 384}]}),
    ("POST", f"/v1/collections/{COLLECTION}/records/delete", {"ids": ["nothing-here"]}),
    ("DELETE", f"/v1/collections/{COLLECTION}/records/nothing-here", None),
    ("POST", f"/v1/collections/{COLLECTION}/ingest", {"documents": [{"id": "x", "text": "auth probe"}]}),
]
READ_ROUTES = [
    ("GET", "/v1/collections", None),
    ("POST", f"/v1/collections/{COLLECTION}/search", {"vector": [0.1] * 384, "k": 1}),
    ("POST", f"/v1/collections/{COLLECTION}/records/fetch", {"ids": ["r00"]}),
    ("GET", "/v1/models", None),
]


@pytest.fixture(scope="module")
def svc(local_embedder) -> Service:  # type: ignore[no-untyped-def]
    return running_service(local_embedder)


def call(svc: Service, method: str, path: str, body: object, headers: dict[str, str]) -> httpx.Response:
    return httpx.request(method, svc.url + path, json=body, headers=headers, timeout=60)


@pytest.mark.parametrize(("method", "path", "body"), ADMIN_ROUTES + READ_ROUTES)
def test_missing_key_is_401(svc: Service, method: str, path: str, body: object) -> None:
    resp = call(svc, method, path, body, {})
    assert resp.status_code == 401
    assert resp.headers["www-authenticate"] == "Bearer"
    assert "missing API key" in resp.json()["error"]["message"]


@pytest.mark.parametrize("headers", [
    {"Authorization": "Bearer wrong-key"},
    {"Authorization": f"Bearer {ADMIN_KEY}x"},
    {"X-API-Key": ADMIN_KEY[:-1]},
    {"Authorization": f"Basic {ADMIN_KEY}"},
])
@pytest.mark.parametrize(("method", "path", "body"), ADMIN_ROUTES[:2])
def test_wrong_key_is_401(svc: Service, method: str, path: str, body: object, headers: dict[str, str]) -> None:
    resp = call(svc, method, path, body, headers)
    assert resp.status_code == 401, resp.text


@pytest.mark.parametrize(("method", "path", "body"), ADMIN_ROUTES)
def test_read_key_on_admin_route_is_403(svc: Service, method: str, path: str, body: object) -> None:
    before = httpx.get(svc.url + "/v1/collections", headers={"X-API-Key": READ_KEY}).json()
    resp = call(svc, method, path, body, {"Authorization": f"Bearer {READ_KEY}"})
    assert resp.status_code == 403
    assert "'web'" in resp.json()["error"]["message"] and "'admin'" in resp.json()["error"]["message"]
    after = httpx.get(svc.url + "/v1/collections", headers={"X-API-Key": READ_KEY}).json()
    assert after == before  # nothing was written


@pytest.mark.parametrize(("method", "path", "body"), READ_ROUTES)
@pytest.mark.parametrize("key", [READ_KEY, ADMIN_KEY])
def test_read_routes_accept_read_and_admin_keys(svc: Service, method: str, path: str, body: object,
                                                key: str) -> None:
    assert call(svc, method, path, body, {"Authorization": f"Bearer {key}"}).status_code == 200
    assert call(svc, method, path, body, {"X-API-Key": key}).status_code == 200


def test_admin_key_writes(svc: Service) -> None:
    resp = call(svc, "POST", f"/v1/collections/{COLLECTION}/records",
                {"records": [{"id": "auth-probe", "text": "written with the admin key"}]},
                {"Authorization": f"Bearer {ADMIN_KEY}"})
    assert resp.status_code == 200
    gone = call(svc, "DELETE", f"/v1/collections/{COLLECTION}/records/auth-probe", None, {"X-API-Key": ADMIN_KEY})
    assert gone.json() == {"deleted": 1}


def test_probes_and_page_need_no_key(svc: Service) -> None:
    for path in ("/healthz", "/readyz", "/metrics", "/"):
        assert httpx.get(svc.url + path).status_code == 200, path
    for path in ("/openapi.json", "/docs", "/redoc"):  # with keys configured the docs need one (service.public_docs)
        assert httpx.get(svc.url + path).status_code == 401, path
        assert httpx.get(svc.url + path, headers={"Authorization": f"Bearer {READ_KEY}"}).status_code == 200, path


def test_keys_are_hashed_and_compared_by_hash() -> None:
    key = new_key()
    assert key.startswith("vs_") and len(key) > 40 and new_key() != key
    digest = hash_key(key)
    assert digest == "sha256:" + hashlib.sha256(key.encode()).hexdigest()
    ring = KeyRing([APIKeySettings(name="a", hash=digest, scope="admin"),
                    APIKeySettings(name="b", hash=hash_key("other"), scope="read")])
    assert ring.identify(key).name == "a"  # type: ignore[union-attr]
    assert ring.identify("other").scope == "read"  # type: ignore[union-attr]
    assert ring.identify(key + " ") is None and ring.identify("") is None
    with pytest.raises(ConfigError):
        hash_key(" padded ")
    with pytest.raises(Exception, match="sha256"):
        APIKeySettings(name="plain", hash="the-key-itself")


def test_no_keys_means_open_on_loopback_only() -> None:
    open_ring = KeyRing([])
    check_exposure("127.0.0.1", open_ring, False)
    check_exposure("::1", open_ring, False)
    with pytest.raises(ConfigError, match="refusing to serve without API keys on 0.0.0.0"):
        check_exposure("0.0.0.0", open_ring, False)
    check_exposure("0.0.0.0", open_ring, True)
    check_exposure("0.0.0.0", KeyRing([APIKeySettings(name="a", hash=hash_key("k"))]), False)


def test_open_server_without_keys(tmp_path, local_embedder) -> None:  # type: ignore[no-untyped-def]
    client = VectorSeam(settings=Settings(data_dir=tmp_path, service=ServiceSettings()))
    client.embedder = local_embedder
    with BackgroundServer(create_app(client, warm_up=False)) as server:
        resp = httpx.post(server.url + "/v1/collections/open/records",
                          json={"records": [{"id": "1", "vector": [0.5] * 384}]})
        assert resp.status_code == 200
    client.close()


def test_cli_hashes_a_key_from_stdin_and_makes_new_ones(tmp_path) -> None:  # type: ignore[no-untyped-def]
    out = subprocess.run([*CLI, "serve", "--hash-key"], input="my-key\n",
                         capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == hash_key("my-key")
    made = subprocess.run([*CLI, "serve", "--new-key"],
                          capture_output=True, text=True, timeout=60, cwd=tmp_path)
    key_line, hash_line = made.stdout.splitlines()
    assert hash_line.removeprefix("hash: ") == hash_key(key_line.removeprefix("key:  "))
