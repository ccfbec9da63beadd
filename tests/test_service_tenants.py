"""Tenants stay apart and requests stay cheap (issue 22), on real servers with the real model.

Ingest directories per key (and startup refusing overlaps), one answer for missing and forbidden
files, relative paths in messages and jobs, a per-request budget of characters to embed, per-key rate
limits and requests in flight, security headers, docs behind a key, a readiness probe that tells
nothing about the data, and warnings for collection patterns that are not whole-segment prefixes.
The property over every route, key and collection is tests/test_service_tenants_stateful.py; the
latency under load, tests/test_service_rate_limit_load.py.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import re
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from vectorseam.client import VectorSeam
from vectorseam.config import APIKeySettings, ServiceSettings, Settings, StoreSettings
from vectorseam.errors import ConfigError
from vectorseam.service import create_app
from vectorseam.service.auth import hash_key, scope_warnings
from vectorseam.service.background import BackgroundServer
from vectorseam.service.logs import get_logger

OPS, A_ADMIN, A_READ, B_ADMIN, C_ADMIN = "vs_ops-key-000", "vs_a-admin-000", "vs_a-read-000", "vs_b-admin-000", "vs_c-000"
LIMITED, SINGLE = "vs_limited-000", "vs_single-000"
MODEL = "all-MiniLM-L6-v2"
BUDGET = 1000
NOT_FOUND = "no such file in this key's ingest directories (give a path relative to one of them)"


@dataclass
class World:
    root: Path
    url: str
    server: BackgroundServer
    client: VectorSeam

    def http(self, key: str | None) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {key}"} if key else {}, timeout=60)


def key(name: str, secret: str, scope: str = "admin", **more: Any) -> APIKeySettings:
    return APIKeySettings(name=name, hash=hash_key(secret), scope=scope, **more)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, local_embedder: Any) -> Iterator[World]:
    root = tmp_path_factory.mktemp("tenants").resolve()
    a, b, glob = root / "uploads" / "a", root / "uploads" / "b", root / "global"
    for d in (a, b, glob):
        d.mkdir(parents=True)
    (a / "rows.jsonl").write_text('{"id": "a1", "text": "tenant a writes about owls"}\n{"id": "a2", "text": " "}\n')
    (b / "secret.jsonl").write_text('{"id": "b1", "text": "the secret plans of tenant b"}\n')
    (glob / "ops.jsonl").write_text('{"id": "o1", "text": "the operator loads this"}\n')
    (a / "link.jsonl").symlink_to(b / "secret.jsonl")  # inside a's folder, pointing into b's
    settings = Settings(data_dir=root / "data", store=StoreSettings(name="memory"), service=ServiceSettings(
        api_keys=[key("ops", OPS),
                  key("a-ops", A_ADMIN, collections=["tenant-a-*"], ingest_dirs=[a]),
                  key("a-web", A_READ, "read", collections=["tenant-a-*"]),
                  key("b-ops", B_ADMIN, collections=["tenant-b-*"], ingest_dirs=[b]),
                  key("c-ops", C_ADMIN, collections=["tenant-c-*"]),
                  key("limited", LIMITED, "read", rate_limit=0.5, burst=2),
                  key("single", SINGLE, "read", max_in_flight=1)],
        ingest_dirs=[glob], max_input_chars=BUDGET))
    client = VectorSeam(settings=settings)
    client.embedder = local_embedder
    server = BackgroundServer(create_app(client, warm_up=False)).start()
    yield World(root, server.url, server, client)
    server.stop()
    client.close()


def wait_job(http: httpx.Client, location: str) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while (job := http.get(location).json())["state"] not in ("succeeded", "failed"):
        assert time.monotonic() < deadline, job
        time.sleep(0.05)
    return job


# --- ingest directories per key -------------------------------------------------------------------------


def test_each_key_ingests_only_from_its_own_directories(world: World) -> None:
    b_secret = world.root / "uploads" / "b" / "secret.jsonl"
    probes = ["../b/secret.jsonl", str(b_secret), "secret.jsonl", "link.jsonl", "missing.jsonl",
              str(world.root / "uploads" / "a" / "missing.jsonl"), str(world.root / "global" / "ops.jsonl"),
              "ops.jsonl", str(world.root / "data" / "state.sqlite3"), "../../data/service/jobs.sqlite3",
              "/etc/passwd", "sub/../../b/secret.jsonl", ".", "./"]
    with world.http(A_ADMIN) as tenant_a:
        for path in probes:  # missing, elsewhere, a link out: one answer, naming no server directory
            resp = tenant_a.post("/v1/collections/tenant-a-docs/ingest", json={"path": path})
            assert resp.status_code == 400, (path, resp.text)
            assert resp.json()["error"]["message"] == f"path {path!r}: {NOT_FOUND}"
        ok = tenant_a.post("/v1/collections/tenant-a-docs/ingest", json={"path": "rows.jsonl"})
        assert ok.status_code == 202, ok.text
        job = wait_job(tenant_a, ok.headers["location"])
        assert (job["state"], job["written"], job["rejects"]) == (
            "succeeded", 1, ["rows.jsonl:2: text is empty or whitespace only"])  # relative to its directory
        hits = tenant_a.post("/v1/collections/tenant-a-docs/search", json={"query": "secret plans", "k": 10}).json()
        assert [h["id"] for h in hits["hits"]] == ["a1"]
    with world.http(B_ADMIN) as tenant_b:
        resp = tenant_b.post("/v1/collections/tenant-b-docs/ingest", json={"path": "secret.jsonl"})
        assert resp.status_code == 202 and wait_job(tenant_b, resp.headers["location"])["written"] == 1
        assert tenant_b.post("/v1/collections/tenant-b-docs/ingest", json={"path": "rows.jsonl"}).status_code == 400
    with world.http(C_ADMIN) as scoped_without_dirs:  # a scoped key never inherits service.ingest_dirs
        resp = scoped_without_dirs.post("/v1/collections/tenant-c-docs/ingest", json={"path": "ops.jsonl"})
        assert resp.status_code == 400 and "may not ingest files from the server" in resp.text
    with world.http(OPS) as ops:  # keys that reach every collection use service.ingest_dirs
        resp = ops.post("/v1/collections/ops-docs/ingest", json={"path": "ops.jsonl"})
        assert resp.status_code == 202 and wait_job(ops, resp.headers["location"])["written"] == 1


def test_errors_about_a_tenants_file_show_paths_relative_to_its_directory(world: World) -> None:
    with world.http(A_ADMIN) as tenant_a:
        resp = tenant_a.post("/v1/collections/tenant-a-docs/ingest", json={"path": "rows.jsonl", "text_field": "body"})
    assert resp.status_code == 400
    message = resp.json()["error"]["message"]
    assert message.startswith("rows.jsonl: the first row has no text field 'body'; its fields are 'id', 'text'")
    assert str(world.root) not in message


def test_a_job_that_rejects_every_row_fails(world: World) -> None:
    with world.http(A_ADMIN) as tenant_a:
        resp = tenant_a.post("/v1/collections/tenant-a-blank/ingest", json={"documents": [
            {"id": "x", "text": "  "}, {"id": "y", "text": "\t"}]})
        job = wait_job(tenant_a, resp.headers["location"])
    assert job["state"] == "failed" and job["written"] == 0 and job["rejected"] == 2
    assert job["error"].startswith("nothing was written: every one of the 2 rows was rejected")


def test_a_jobs_details_go_to_its_key_and_operators_only(world: World) -> None:
    (world.root / "global" / "ops-bad.jsonl").write_text('{"id": "o2", "text": "fine"}\n{"id": "o3", "text": ""}\n')
    with world.http(OPS) as ops, world.http(A_ADMIN) as tenant_a:
        resp = ops.post("/v1/collections/tenant-a-from-ops/ingest", json={"path": "ops-bad.jsonl"})
        job = wait_job(ops, resp.headers["location"])
        assert job["rejects"] == ["ops-bad.jsonl:2: text is empty or whitespace only"] and not job["details_hidden"]
        seen = tenant_a.get(resp.headers["location"]).json()  # the tenant's collection, the operator's file
        assert seen["rejected"] == 1 and seen["rejects"] == [] and seen["details_hidden"]


def service_for(tmp_path: Path, **kw: Any) -> VectorSeam:
    store = kw.pop("store", StoreSettings(name="memory"))
    return VectorSeam(settings=Settings(data_dir=tmp_path / "data", store=store, service=ServiceSettings(**kw)))


@pytest.mark.parametrize(("case", "message"), [
    ("holds the data directory", "service.ingest_dirs: {tmp} overlaps the data directory"),
    ("inside the data directory", "overlaps the data directory"),
    ("inside the store's files", "overlaps the store's files (store.options.path)"),
    ("a key inside the data directory", "service.api_keys[0] ('a').ingest_dirs: {tmp}/data/ingest overlaps the data"),
    ("two tenants nested", "service.api_keys[0] ('a').ingest_dirs and service.api_keys[1] ('b').ingest_dirs overlap"),
    ("a tenant inside the global list", "service.ingest_dirs and service.api_keys[0] ('a').ingest_dirs overlap"),
    ("two tenants, one directory", "service.shared_ingest_dirs if both may really read it"),
    ("shared inside the data directory", "service.shared_ingest_dirs: {tmp}/data overlaps the data directory"),
])
def test_startup_refuses_directories_that_reach_other_data(tmp_path: Path, case: str, message: str) -> None:
    up = tmp_path / "up"
    ka = lambda dirs, cols=("a-*",): key("a", "ka", collections=list(cols), ingest_dirs=dirs)  # noqa: E731
    kb = lambda dirs, cols=("b-*",): key("b", "kb", collections=list(cols), ingest_dirs=dirs)  # noqa: E731
    config: dict[str, Any] = {
        "holds the data directory": {"ingest_dirs": [tmp_path]},
        "inside the data directory": {"ingest_dirs": [tmp_path / "data" / "memory" / "c"]},
        "inside the store's files": {"store": StoreSettings(name="memory", options={"path": str(tmp_path / "st")}),
                                     "ingest_dirs": [tmp_path / "st" / "x"]},
        "a key inside the data directory": {"api_keys": [ka([tmp_path / "data" / "ingest"])]},
        "two tenants nested": {"api_keys": [ka([up]), kb([up / "b"])]},
        "a tenant inside the global list": {"ingest_dirs": [up], "api_keys": [ka([up / "a"])]},
        "two tenants, one directory": {"api_keys": [ka([up / "common"]), kb([up / "common"])]},
        "shared inside the data directory": {"shared_ingest_dirs": [tmp_path / "data"]},
    }[case]
    client = service_for(tmp_path, **config)
    with pytest.raises(ConfigError) as err:
        create_app(client, warm_up=False)
    assert message.format(tmp=tmp_path.resolve()) in str(err.value), str(err.value)
    client.close()


def test_startup_accepts_separate_shared_and_same_scope_directories(tmp_path: Path) -> None:
    up = tmp_path / "up"
    for config in (
        {"ingest_dirs": [tmp_path / "ops"], "api_keys": [key("a", "ka", collections=["a-*"], ingest_dirs=[up / "a"]),
                                                        key("b", "kb", collections=["b-*"], ingest_dirs=[up / "b"])]},
        {"shared_ingest_dirs": [up / "common"],
         "api_keys": [key("a", "ka", collections=["a-*"], ingest_dirs=[up / "a", up / "common"]),
                      key("b", "kb", collections=["b-*"], ingest_dirs=[up / "common" / "b"])]},
        {"api_keys": [key("a", "ka", collections=["a-*"], ingest_dirs=[up]),  # one tenant, its key and the next one
                      key("a2", "ka2", collections=["a-*"], ingest_dirs=[up / "a"])]},
    ):
        client = service_for(tmp_path, **config)
        create_app(client, warm_up=False)
        client.close()


# --- a budget per request ---------------------------------------------------------------------------------


def store_calls(http: httpx.Client) -> float:
    text = http.get("/metrics").text
    return sum(float(v) for v in re.findall(r'^vectorseam_store_call_duration_seconds_count\{[^}]*\} (\S+)$', text,
                                           re.MULTILINE))


@pytest.mark.parametrize(("path", "body"), [
    ("/v1/embeddings", {"model": MODEL, "input": ["x" * 600, "y" * 401]}),
    ("/v1/embeddings", {"model": MODEL, "input": "z" * 1001}),
    ("/v1/collections/tenant-a-docs/search", {"query": "q" * 1001, "mode": "hybrid"}),
    ("/v1/collections/tenant-a-docs/ask", {"question": "why " * 251}),
])
def test_text_to_embed_is_bounded_per_request_before_any_work(world: World, path: str, body: dict[str, Any]) -> None:
    with world.http(A_READ) as reader:
        before = store_calls(reader)
        resp = reader.post(path, json=body)
        assert resp.status_code == 413, resp.text
        assert resp.json()["error"]["type"] == "request_too_large"
        assert f"over this server's budget of {BUDGET} (service.max_input_chars)" in resp.json()["error"]["message"]
        assert store_calls(reader) == before
        if path == "/v1/embeddings":  # at the budget it works
            assert reader.post(path, json={"model": MODEL, "input": ["x" * 600, "y" * 400]}).status_code == 200


@pytest.mark.parametrize("raw", ['"a\\ud800b"', '["fine", "a\\udfffb"]', '"\\udc80"'])
def test_embeddings_refuse_lone_surrogates_like_every_route(world: World, raw: str) -> None:
    with world.http(A_READ) as reader:
        resp = reader.post("/v1/embeddings", content=f'{{"model": "{MODEL}", "input": {raw}}}',
                           headers={"content-type": "application/json"})
    assert resp.status_code == 422, resp.text
    assert "not valid Unicode text (a lone surrogate" in resp.json()["error"]["message"]


# --- rate limits and requests in flight -------------------------------------------------------------------


def test_a_key_over_its_rate_gets_429_with_retry_after(world: World) -> None:
    with world.http(LIMITED) as limited, world.http(A_READ) as other:
        statuses = [limited.get("/v1/models").status_code for _ in range(2)]  # the burst
        refused = limited.get("/v1/models")
        assert statuses == [200, 200] and refused.status_code == 429, refused.text
        assert refused.headers["retry-after"] in ("1", "2")  # a token every 2 s
        body = refused.json()
        assert body["error"]["type"] == "rate_limit_exceeded" and "rate limit of 0.5 requests per second" in \
            body["error"]["message"] and body["request_id"] == refused.headers["x-request-id"]
        assert other.get("/v1/models").status_code == 200  # another key is not affected
        assert limited.get("/healthz").status_code == 200  # probes are never limited
        metrics = other.get("/metrics").text
        assert re.search(r'^vectorseam_rate_limited_requests_total\{key="limited",limit="rate"\} [1-9]', metrics,
                         re.MULTILINE), metrics
        time.sleep(float(refused.headers["retry-after"]))
        assert limited.get("/v1/models").status_code == 200


def test_a_key_at_its_requests_in_flight_gets_429(world: World) -> None:
    release = threading.Event()

    def slow_body() -> Iterator[bytes]:  # the request is in flight until its body is complete
        yield b'{"model": "' + MODEL.encode() + b'", "input": "held'
        release.wait(60)
        yield b' open"}'

    def hold(out: list[httpx.Response]) -> None:
        with world.http(SINGLE) as single:
            out.append(single.post("/v1/embeddings", content=slow_body(), headers={"content-type": "application/json"}))

    held: list[httpx.Response] = []
    sender = threading.Thread(target=hold, args=(held,))
    try:
        with world.http(SINGLE) as single:
            for _ in range(5):  # the held request is itself refused if it lands while a probe is served: again
                release.clear()
                held = []
                sender = threading.Thread(target=hold, args=(held,))
                sender.start()
                deadline = time.monotonic() + 20
                while not held and (resp := single.get("/v1/models")).status_code != 429:
                    assert resp.status_code == 200 and time.monotonic() < deadline
                    time.sleep(0.05)
                if not held:
                    break
                release.set()
                sender.join(30)
            assert not held and resp.status_code == 429, held
            assert resp.headers["retry-after"] == "1" and "max_in_flight" in resp.json()["error"]["message"]
            with world.http(A_READ) as other:
                assert other.get("/v1/models").status_code == 200
            release.set()
            sender.join(30)
            assert held[0].status_code == 200, held[0].text
            assert single.get("/v1/models").status_code == 200  # the count went back down
            assert 'vectorseam_rate_limited_requests_total{key="single",limit="in_flight"}' in single.get(
                "/metrics").text
    finally:
        release.set()
        if sender.is_alive():
            sender.join(30)


# --- pages, docs, probes ------------------------------------------------------------------------------------


def sha256_source(script: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(script.encode()).digest()).decode() + "'"


def test_the_page_and_the_docs_send_security_headers(world: World) -> None:
    with world.http(None) as anyone, world.http(A_READ) as reader:
        for path, client in (("/", anyone), ("/static/app.js", anyone), ("/static/style.css", anyone),
                             ("/docs", reader), ("/redoc", reader)):
            resp = client.get(path)
            assert resp.status_code == 200, path
            csp = resp.headers["content-security-policy"]
            assert "frame-ancestors 'none'" in csp and "default-src 'none'" in csp and "'unsafe-eval'" not in csp
            assert resp.headers["x-frame-options"] == "DENY" and resp.headers["x-content-type-options"] == "nosniff"
        page_csp = anyone.get("/").headers["content-security-policy"]
        assert "script-src 'self';" in page_csp and "connect-src 'self'" in page_csp
        docs = reader.get("/docs")
        (inline,) = re.findall(r"<script>(.*?)</script>", docs.text, re.DOTALL)
        script_src = re.search(r"script-src ([^;]*)", docs.headers["content-security-policy"])
        assert script_src is not None and script_src[1].split() == ["https://cdn.jsdelivr.net", sha256_source(inline)]


def test_docs_need_a_key_when_keys_are_configured(world: World, tmp_path: Path, local_embedder: Any) -> None:
    with world.http(None) as anyone, world.http(A_READ) as reader:
        for path in ("/docs", "/redoc", "/openapi.json"):
            assert anyone.get(path).status_code == 401, path
            assert reader.get(path).status_code == 200, path
        assert "/v1/embeddings" in reader.get("/openapi.json").json()["paths"]
    client = service_for(tmp_path, api_keys=[key("k", "the-key")], public_docs=True)
    client.embedder = local_embedder
    with BackgroundServer(create_app(client, warm_up=False)) as server:
        for path in ("/docs", "/redoc", "/openapi.json"):
            assert httpx.get(server.url + path).status_code == 200, path
    client.close()


def test_readiness_tells_nothing_about_the_data(world: World) -> None:
    with world.http(None) as anyone:
        body = anyone.get("/readyz", headers={"Host": "probe.example"}).json()
    assert body["checks"]["store"] == "ok (memory)"


def test_files_the_service_writes_under_the_data_directory_are_private(world: World) -> None:
    data = world.root / "data"
    found = [p for p in data.rglob("*") if p.is_file() and "memory" not in p.relative_to(data).parts]
    assert any(p.name == "jobs.sqlite3" for p in found) and any(p.name == "records.sqlite" for p in found)
    for path in found:
        assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0, (path, oct(path.stat().st_mode))


# --- collection patterns ------------------------------------------------------------------------------------


def test_patterns_that_are_not_whole_segment_prefixes_warn_at_startup(tmp_path: Path, local_embedder: Any) -> None:
    keys = [key("a", "ka", collections=["tenant-a*", "tenant-b-*", "exact", "*", "team_*", "v1.*"])]
    (warning,) = scope_warnings(keys)
    assert "'tenant-a*' also matches" in warning and "'tenant-ab-secret'" in warning and "'tenant-a-*'" in warning
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    get_logger().addHandler(handler)
    client = service_for(tmp_path, api_keys=keys)
    client.embedder = local_embedder
    try:
        with BackgroundServer(create_app(client, warm_up=False)):
            pass
    finally:
        get_logger().removeHandler(handler)
        client.close()
    assert [r.getMessage() for r in records if r.levelno == logging.WARNING and "tenant-a*" in r.getMessage()] == [
        warning]


def test_serve_refuses_an_overlapping_directory_in_one_line(tmp_path: Path) -> None:
    from tests.serve_process import clean_env

    for workers in ("1", "2"):  # before any worker starts: each would fail on its own and be restarted
        out = subprocess.run([str(Path(sys.executable).parent / "vectorseam"), "serve", "--port", "0", "--workers",
                              workers], env=clean_env(tmp_path / "data", VECTORSEAM_SERVICE__INGEST_DIRS=json.dumps(
                                  [str(tmp_path)])), capture_output=True, text=True, timeout=120)
        assert out.returncode == 1 and "Traceback" not in out.stderr, out.stderr
        assert out.stderr.strip() == (f"error: service.ingest_dirs: {tmp_path.resolve()} overlaps the data directory "
                                      f"({tmp_path / 'data'}); a key that may ingest from it could read the raw files "
                                      "of every collection. Choose a directory outside it")
