"""Hostile and malformed input on a real server: a 4xx with a clear message and the request id, never a 500.

Each case here answered 500 (or misbehaved otherwise) before: filters with absurd numbers, depth or
size, ingest paths no file system takes, ids containing '/', job details shown to read keys, inline
documents with a repeated id, and random HTTP methods as metric labels.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from fastapi import FastAPI

from tests.test_service_support import ADMIN_KEY, COLLECTION, READ_KEY, Service, running_service
from vectorseam.client import VectorSeam
from vectorseam.config import ServiceSettings, Settings
from vectorseam.service import create_app
from vectorseam.service.background import BackgroundServer
from vectorseam.service.logs import JsonFormatter

DEFAULTS = ServiceSettings()


@pytest.fixture(scope="module")
def svc(local_embedder) -> Service:  # type: ignore[no-untyped-def]
    return running_service(local_embedder)


@pytest.fixture()
def http(svc: Service) -> Iterator[httpx.Client]:
    with svc.http() as client:
        yield client


@pytest.fixture()
def reader(svc: Service) -> Iterator[httpx.Client]:
    with svc.http(READ_KEY) as client:
        yield client


def nested(op: str, depth: int) -> dict[str, Any]:
    spec: dict[str, Any] = {"Score": 1}
    for _ in range(depth - 1):
        spec = {op: spec if op == "$not" else [spec]}
    return spec


def assert_error(resp: httpx.Response, status: int, *needles: str) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    body: dict[str, Any] = resp.json()
    assert body["request_id"] and body["request_id"] == resp.headers["x-request-id"], body
    for needle in needles:
        assert needle in body["error"]["message"], body
    return body


HOSTILE_FILTERS = [
    pytest.param({"Score": {"$gte": 10 ** 400}}, "out of range", id="400-digit-int"),
    pytest.param({"Score": {"$in": [1, -(10 ** 400)]}}, "out of range", id="400-digit-int-in-list"),
    pytest.param(nested("$not", 500), "service.max_filter_depth", id="not-500-deep"),
    pytest.param(nested("$and", 400), "service.max_filter_depth", id="and-400-deep"),
    pytest.param(nested("$or", DEFAULTS.max_filter_depth + 1), "service.max_filter_depth", id="or-just-too-deep"),
    pytest.param({"category": {"$in": ["x"] * (DEFAULTS.max_filter_values + 1)}}, "service.max_filter_values",
                 id="in-too-long"),
    pytest.param({"category": {"$nin": list(range(DEFAULTS.max_filter_values + 1))}}, "service.max_filter_values",
                 id="nin-too-long"),
    pytest.param({"$or": [{"category": {"$in": list(range(1000))}}] * 5}, "service.max_filter_terms",
                 id="too-costly"),
]
FILTER_ROUTES = [
    pytest.param("search", {"vector": [0.1] * 384, "k": 3}, READ_KEY, id="search"),
    pytest.param("search", {"query": "coffee", "mode": "hybrid"}, READ_KEY, id="search-hybrid"),
    pytest.param("recommend", {"positive": ["r00"]}, READ_KEY, id="recommend"),
    pytest.param("ask", {"question": "which coffee?"}, READ_KEY, id="ask"),
    pytest.param("ask", {"question": "which coffee?", "stream": True}, READ_KEY, id="ask-stream"),
    pytest.param("records/delete", {}, ADMIN_KEY, id="delete-by-filter"),
]


@pytest.mark.parametrize(("route", "body", "key"), FILTER_ROUTES)
@pytest.mark.parametrize(("spec", "needle"), HOSTILE_FILTERS)
def test_hostile_filters_are_400_on_every_filter_route(svc: Service, route: str, body: dict[str, Any], key: str,
                                                       spec: dict[str, Any], needle: str) -> None:
    with svc.http(key) as client:
        resp = client.post(f"/v1/collections/{COLLECTION}/{route}", json={**body, "filter": spec})
        assert_error(resp, 400, needle)
        counts = {c["name"]: c["count"] for c in client.get("/v1/collections").json()["collections"]}
        assert counts[COLLECTION] >= 32  # nothing deleted


def test_limits_leave_ordinary_filters_alone(reader: httpx.Client) -> None:
    spec = {"$and": [nested("$not", 10), {"category": {"$in": ["x"] * DEFAULTS.max_filter_values}}]}
    resp = reader.post(f"/v1/collections/{COLLECTION}/search", json={"vector": [0.1] * 384, "filter": spec})
    assert resp.status_code == 200, resp.text


def store_queries(client: httpx.Client) -> float:
    text = client.get("/metrics").text
    line = next(ln for ln in text.splitlines()
                if ln.startswith('vectorseam_store_call_duration_seconds_count{operation="query"'))
    return float(line.rsplit(" ", 1)[1])


def test_a_huge_in_list_is_refused_fast_without_touching_the_store(reader: httpx.Client) -> None:
    reader.post(f"/v1/collections/{COLLECTION}/search", json={"vector": [0.1] * 384})  # the metric exists
    before = store_queries(reader)
    spec = {"category": {"$in": list(range(30_000))}}  # about 200 kB of JSON, under the body limit
    start = time.perf_counter()
    resp = reader.post(f"/v1/collections/{COLLECTION}/search", json={"vector": [0.1] * 384, "filter": spec})
    elapsed = time.perf_counter() - start
    body = assert_error(resp, 400, "30000 values", "service.max_filter_values")
    assert len(body["error"]["message"]) < 500  # the list is not echoed back
    assert elapsed < 2.0, elapsed
    assert store_queries(reader) == before  # refused before any store call (and so before any store lock)


@pytest.mark.parametrize(("path", "needle"), [
    ("rows\x00.jsonl", "NUL"),
    ("a" * 4000 + ".jsonl", "too long"),
    ("sub/" + "b" * 300 + "/x.csv", "too long"),
    ("sub/missing.csv", "no such file"),
])
def test_ingest_paths_no_file_system_takes_are_400(http: httpx.Client, path: str, needle: str) -> None:
    resp = http.post("/v1/collections/files/ingest", json={"path": path})
    body = assert_error(resp, 400, needle)
    assert len(body["error"]["message"]) < 1000


# --- request ids on every error, in the body, the header and the log ---------------------------------


@pytest.fixture()
def captured() -> Iterator[list[logging.LogRecord]]:
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    logger = logging.getLogger("vectorseam.service")
    handler, old_level = Keep(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield records
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)


def test_a_500_carries_its_request_id_in_body_header_and_log(tmp_path, local_embedder,  # type: ignore[no-untyped-def]
                                                             captured: list[logging.LogRecord]) -> None:
    client = VectorSeam(settings=Settings(data_dir=tmp_path, service=ServiceSettings()))
    client.embedder = local_embedder
    app: FastAPI = create_app(client, warm_up=False)

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("a bug")

    with BackgroundServer(app) as server:
        resp = httpx.get(server.url + "/boom", headers={"X-Request-ID": "trace-500"})
        generated = httpx.get(server.url + "/boom")
    client.close()
    body = assert_error(resp, 500, "request id")
    assert body["request_id"] == "trace-500" and "a bug" not in resp.text
    assert_error(generated, 500)
    lines = [json.loads(JsonFormatter().format(r)) for r in captured]
    failure = next(ln for ln in lines if ln["message"] == "unhandled error" and ln.get("request_id") == "trace-500")
    assert "RuntimeError: a bug" in failure["exception"]
    access = next(ln for ln in lines if ln["message"] == "request" and ln.get("request_id") == "trace-500")
    assert access["status"] == 500


@pytest.mark.parametrize(("method", "path", "body", "key", "status"), [
    ("GET", f"/v1/collections/{COLLECTION}/records/no-such-id", None, READ_KEY, 404),
    ("GET", "/v1/jobs/no-such-job", None, READ_KEY, 404),
    ("GET", "/v1/no-such-route", None, READ_KEY, 404),
    ("POST", f"/v1/collections/{COLLECTION}/search", {"query": "x"}, None, 401),
    ("POST", f"/v1/collections/{COLLECTION}/records", {"records": [{"id": "a", "text": "t"}]}, READ_KEY, 403),
    ("PUT", f"/v1/collections/{COLLECTION}/search", {"query": "x"}, READ_KEY, 405),
    ("POST", f"/v1/collections/{COLLECTION}/search", {"query": 3}, READ_KEY, 422),
    ("POST", f"/v1/collections/{COLLECTION}/search", {"query": "x" * 300_000}, READ_KEY, 413),
])
def test_every_error_body_carries_the_request_id(svc: Service, method: str, path: str, body: object,
                                                 key: str | None, status: int) -> None:
    with svc.http(key) as client:
        assert_error(client.request(method, path, json=body), status)


def test_job_logs_carry_the_request_id_that_started_the_job(http: httpx.Client,
                                                            captured: list[logging.LogRecord]) -> None:
    resp = http.post("/v1/collections/logged/ingest", json={"documents": [{"id": "l1", "text": "logged row"}]},
                     headers={"X-Request-ID": "ingest-trace-1"})
    assert resp.status_code == 202, resp.text
    wait_for(http, resp.headers["location"])
    time.sleep(0.1)
    finished = [r for r in captured if r.getMessage() == "ingest job finished"]
    assert finished and json.loads(JsonFormatter().format(finished[-1]))["request_id"] == "ingest-trace-1"


# --- metrics labels are bounded ----------------------------------------------------------------------------


def test_invented_http_methods_are_one_metric_label(http: httpx.Client) -> None:
    invented = [f"XMETHOD{i}" for i in range(30)]
    answers = [http.request(method, "/healthz") for method in invented]
    assert all(r.status_code in (400, 404, 405) for r in answers)
    text = http.get("/metrics").text
    assert not any(m in text for m in invented)
    if any("x-request-id" in r.headers for r in answers):  # h11 passes any method on; httptools refuses them
        assert 'method="other"' in text
    methods = {part.split('"')[1] for part in text.split('method=')[1:]}
    assert methods <= {"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH", "other"}


# --- ids containing '/' and other characters URLs must encode ----------------------------------------------


@pytest.mark.parametrize("record_id", ["sub/c.txt", "deep/er/d.md", "a b/ü?#%&+.txt", "/leading-slash", "50%"])
def test_ids_with_slashes_and_encoded_characters_round_trip(http: httpx.Client, record_id: str) -> None:
    put = http.post(f"/v1/collections/{COLLECTION}/records",
                    json={"records": [{"id": record_id, "vector": [0.2] * 384, "text": "odd id"}]})
    assert put.status_code == 200, put.text
    url = f"/v1/collections/{COLLECTION}/records/{quote(record_id, safe='/')}"
    got = http.get(url)
    assert got.status_code == 200, got.text
    assert got.json()["id"] == record_id
    assert http.delete(url).json() == {"deleted": 1}
    assert_error(http.get(url), 404, repr(record_id))


# --- ingest jobs: what a read key sees, and repeated ids in inline documents ---------------------------------


def wait_for(http: httpx.Client, location: str, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job: dict[str, Any] = http.get(location).json()
        if job["state"] in ("succeeded", "failed"):
            return job
        time.sleep(0.1)
    raise AssertionError(f"job {location} did not finish in {timeout} s")


def test_read_keys_do_not_see_server_paths_or_reject_reasons(svc: Service, http: httpx.Client,
                                                             reader: httpx.Client) -> None:
    (svc.ingest_dir / "secret-rows.jsonl").write_text('{"id": "s1", "text": "fine"}\n{"id": "s2", "text": ""}\n',
                                                       encoding="utf-8")
    resp = http.post("/v1/collections/files/ingest", json={"path": "secret-rows.jsonl"})
    assert resp.status_code == 202, resp.text
    job = wait_for(http, resp.headers["location"])
    assert job["rejected"] == 1 and "secret-rows.jsonl" in job["rejects"][0] and not job["details_hidden"]
    as_reader = reader.get(resp.headers["location"]).json()
    assert as_reader["rejected"] == 1 and as_reader["rejects"] == [] and as_reader["details_hidden"]
    listed = reader.get("/v1/jobs").text
    assert "secret-rows" not in listed and str(svc.ingest_dir) not in listed
    assert job["id"] in listed


def test_inline_documents_with_a_repeated_id_keep_the_first_and_say_so(http: httpx.Client) -> None:
    resp = http.post("/v1/collections/inline-dups/ingest", json={"documents": [
        {"id": "d", "text": "the first text for d"},
        {"id": "e", "text": "the only text for e"},
        {"id": "d", "text": "the second text for d"},
    ]})
    assert resp.status_code == 202, resp.text
    job = wait_for(http, resp.headers["location"])
    assert job["state"] == "succeeded" and job["written"] == 2 and job["rejected"] == 1, job
    assert "duplicate id 'd'" in job["rejects"][0] and "documents[2]" in job["rejects"][0]
    assert http.get("/v1/collections/inline-dups/records/d").json()["text"] == "the first text for d"
    count = {c["name"]: c["count"] for c in http.get("/v1/collections").json()["collections"]}["inline-dups"]
    assert count == job["written"] == 2
