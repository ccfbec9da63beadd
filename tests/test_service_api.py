"""The HTTP API end to end on a real uvicorn server: search, recommend, records, ingest, embeddings, ops."""

from __future__ import annotations

import base64
import json
import logging
import time

import httpx
import numpy as np
import pytest

from tests.test_service_support import (
    COLLECTION,
    MAX_BATCH,
    MAX_BODY,
    MAX_K,
    MAX_TEXT,
    READ_KEY,
    Service,
    running_service,
)
from vectorseam.service.logs import JsonFormatter


@pytest.fixture(scope="module")
def svc(local_embedder) -> Service:  # type: ignore[no-untyped-def]
    return running_service(local_embedder)


@pytest.fixture()
def http(svc: Service):  # type: ignore[no-untyped-def]
    with svc.http() as client:
        yield client


def search(http: httpx.Client, **body: object) -> httpx.Response:
    return http.post(f"/v1/collections/{COLLECTION}/search", json=body)


# --- operations -----------------------------------------------------------------------------------

def test_health_and_readiness(http: httpx.Client) -> None:
    assert http.get("/healthz").json() == {"status": "ok"}
    ready = http.get("/readyz")
    assert ready.status_code == 200
    body = ready.json()
    assert body["status"] == "ready" and body["checks"]["store"].startswith("ok (memory")
    assert body["checks"]["embedder"] == "ok"


def test_collections_lists_the_collection_with_its_count(http: httpx.Client) -> None:
    cols = {c["name"]: c for c in http.get("/v1/collections").json()["collections"]}
    assert cols[COLLECTION]["dimension"] == 384 and cols[COLLECTION]["metric"] == "cosine"
    assert cols[COLLECTION]["count"] >= 32
    assert cols[COLLECTION]["metadata"]["embedder"].startswith("local:")


def test_openapi_spec_lists_every_route(http: httpx.Client) -> None:
    paths = http.get("/openapi.json").json()["paths"]
    for path in ("/v1/collections/{name}/search", "/v1/collections/{name}/recommend", "/v1/collections/{name}/ask",
                 "/v1/collections/{name}/records", "/v1/collections/{name}/ingest", "/v1/jobs/{job_id}",
                 "/v1/embeddings", "/healthz", "/readyz", "/metrics"):
        assert path in paths, path


# --- search -----------------------------------------------------------------------------------------

def test_text_search_ranks_the_topic_first(http: httpx.Client) -> None:
    resp = search(http, query="a cup of delicious coffee", k=5)
    assert resp.status_code == 200, resp.text
    hits = resp.json()["hits"]
    assert len(hits) == 5
    assert [h["metadata"]["category"] for h in hits[:3]] == ["coffee"] * 3
    scores = [h["score"] for h in hits]
    assert scores == sorted(scores, reverse=True)
    assert resp.headers["x-request-id"]


def test_filter_restricts_hits(http: httpx.Client) -> None:
    hits = search(http, query="food", k=20, filter={"Score": {"$gte": 4}, "category": {"$in": ["beans", "pasta"]}})
    body = hits.json()["hits"]
    assert body and all(h["metadata"]["Score"] >= 4 and h["metadata"]["category"] in ("beans", "pasta")
                        for h in body)


def test_vector_search_equals_text_search(http: httpx.Client, local_embedder) -> None:  # type: ignore[no-untyped-def]
    vector = local_embedder.embed_query("late delivery").tolist()
    by_vector = [h["id"] for h in search(http, vector=vector, k=4).json()["hits"]]
    by_text = [h["id"] for h in search(http, query="late delivery", k=4).json()["hits"]]
    assert by_vector == by_text


@pytest.mark.parametrize("mode", ["bm25", "hybrid"])
def test_keyword_and_hybrid_modes(http: httpx.Client, mode: str) -> None:
    resp = search(http, query="habanero", k=3, mode=mode)
    assert resp.status_code == 200, resp.text
    assert resp.json()["mode"] == mode
    assert "habanero" in resp.json()["hits"][0]["text"]


def test_mmr_returns_k_distinct_hits(http: httpx.Client) -> None:
    plain = search(http, query="coffee", k=5).json()["hits"]
    diverse = search(http, query="coffee", k=5, mmr=0.2).json()["hits"]
    assert len(diverse) == 5 and len({h["id"] for h in diverse}) == 5
    assert diverse[0]["id"] == plain[0]["id"]  # the best hit always stays first
    assert {h["metadata"]["category"] for h in diverse} != {h["metadata"]["category"] for h in plain}


@pytest.mark.parametrize(("body", "status", "needle"), [
    ({"query": "x", "k": MAX_K + 1}, 400, "service.max_k"),
    ({"query": "x", "k": 100_000}, 422, "k"),
    ({"query": "x", "k": 0}, 422, "k"),
    ({"query": "x" * (MAX_TEXT + 1)}, 400, "service.max_text_chars"),
    ({"query": "x", "vector": [0.1] * 384}, 422, "exactly one"),
    ({}, 422, "exactly one"),
    ({"query": "x", "fitler": {"a": 1}}, 422, "fitler"),
    ({"query": "x", "filter": {"Score": {"$regex": "a"}}}, 400, "unknown operator"),
    ({"query": "x", "filter": {"Score": None}}, 400, "$exists"),
    ({"vector": [0.1, 0.2]}, 400, "dimension"),
    ({"query": "   "}, 400, "empty"),
    ({"query": "x", "mode": "fuzzy"}, 422, "mode"),
    ({"query": "x", "mmr": 1.5}, 422, "mmr"),
])
def test_bad_search_input_is_a_clear_4xx(http: httpx.Client, body: dict, status: int, needle: str) -> None:
    resp = search(http, **body)
    assert resp.status_code == status, resp.text
    err = resp.json()["error"]
    assert needle in err["message"]
    assert resp.json()["request_id"] == resp.headers["x-request-id"]


def test_unknown_collection_is_404_naming_the_existing_ones(http: httpx.Client) -> None:
    resp = http.post("/v1/collections/nope/search", json={"query": "x"})
    assert resp.status_code == 404
    assert "'nope'" in resp.json()["error"]["message"] and COLLECTION in resp.json()["error"]["message"]


# --- recommend and ask ---------------------------------------------------------------------------------

def test_recommend_more_like_a_record(http: httpx.Client) -> None:
    resp = http.post(f"/v1/collections/{COLLECTION}/recommend", json={"positive": ["r20"], "k": 3})
    assert resp.status_code == 200, resp.text
    hits = resp.json()["hits"]
    assert "r20" not in [h["id"] for h in hits]
    assert hits[0]["metadata"]["category"] == "pets"


def test_recommend_unknown_id_is_400(http: httpx.Client) -> None:
    resp = http.post(f"/v1/collections/{COLLECTION}/recommend", json={"positive": ["missing-id"]})
    assert resp.status_code == 400 and "missing-id" in resp.json()["error"]["message"]


def test_ask_answers_with_citations(http: httpx.Client) -> None:
    resp = http.post(f"/v1/collections/{COLLECTION}/ask", json={"question": "Which food arrived spoiled?"})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["method"] == "extractive" and not body["abstained"]
    assert body["citations"] and all(f"[{c['number']}]" in body["answer"] for c in body["citations"])
    assert any(c["metadata"]["category"] == "spoiled" for c in body["citations"])


def test_ask_streams_server_sent_events(http: httpx.Client) -> None:
    events = []
    with http.stream("POST", f"/v1/collections/{COLLECTION}/ask",
                     json={"question": "Which food arrived spoiled?", "stream": True}) as resp:
        assert resp.status_code == 200
        assert resp.headers["content-type"].startswith("text/event-stream")
        for block in resp.read().decode().split("\n\n"):
            if block.strip():
                name = block.split("\n")[0].removeprefix("event: ")
                data = json.loads(block.split("\n")[1].removeprefix("data: "))
                events.append((name, data))
    names = [n for n, _ in events]
    assert names[0] == "passages" and names[-1] == "answer" and "token" in names
    final = events[-1][1]
    assert "".join(d for n, d in events if n == "token") == final["answer"]
    assert final["citations"]


def test_ask_errors_before_streaming_are_4xx(http: httpx.Client) -> None:
    resp = http.post("/v1/collections/nope/ask", json={"question": "anything?", "stream": True})
    assert resp.status_code == 404


# --- records ----------------------------------------------------------------------------------------

def test_records_upsert_fetch_delete(http: httpx.Client, local_embedder) -> None:  # type: ignore[no-untyped-def]
    vec = local_embedder.embed_documents(["explicit vector"])[0].tolist()
    resp = http.post(f"/v1/collections/{COLLECTION}/records", json={"records": [
        {"id": "new-1", "text": "Buttery croissants that taste like a Paris bakery.", "metadata": {"Score": 5}},
        {"id": "new-2", "text": "explicit vector", "vector": vec, "metadata": {"tags": ["a", "b"]}},
    ]})
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"written": 2, "embedded": 1}
    top = search(http, query="french pastry", k=1).json()["hits"][0]
    assert top["id"] == "new-1"
    fetched = http.post(f"/v1/collections/{COLLECTION}/records/fetch",
                        json={"ids": ["new-2", "ghost"], "include_vectors": True}).json()
    assert fetched["missing"] == ["ghost"]
    assert fetched["records"][0]["metadata"] == {"tags": ["a", "b"]}
    assert np.allclose(fetched["records"][0]["vector"], vec, atol=1e-6)
    assert http.get(f"/v1/collections/{COLLECTION}/records/new-1").json()["text"].startswith("Buttery")
    assert http.delete(f"/v1/collections/{COLLECTION}/records/new-1").json() == {"deleted": 1}
    assert http.post(f"/v1/collections/{COLLECTION}/records/delete", json={"ids": ["new-2"]}).json() == {"deleted": 1}
    assert http.get(f"/v1/collections/{COLLECTION}/records/new-1").status_code == 404


def test_bad_batch_writes_nothing(http: httpx.Client) -> None:
    before = http.get("/v1/collections").json()["collections"][0]["count"]
    resp = http.post(f"/v1/collections/{COLLECTION}/records", json={"records": [
        {"id": "ok-1", "vector": [0.1] * 384},
        {"id": "bad-1", "vector": [0.1] * 3},
    ]})
    assert resp.status_code == 400 and "bad-1" in resp.json()["error"]["message"]
    assert http.get("/v1/collections").json()["collections"][0]["count"] == before
    nested = http.post(f"/v1/collections/{COLLECTION}/records",
                       json={"records": [{"id": "n", "text": "t", "metadata": {"a": {"b": 1}}}]})
    assert nested.status_code == 422 and "metadata" in nested.json()["error"]["message"]
    empty = http.post(f"/v1/collections/{COLLECTION}/records", json={"records": [{"id": "e"}]})
    assert empty.status_code == 400 and "no vector and no text" in empty.json()["error"]["message"]
    too_many = http.post(f"/v1/collections/{COLLECTION}/records/fetch", json={"ids": ["x"] * (MAX_BATCH + 1)})
    assert too_many.status_code == 400 and "service.max_batch" in too_many.json()["error"]["message"]


def test_delete_needs_ids_or_filter(http: httpx.Client) -> None:
    resp = http.post(f"/v1/collections/{COLLECTION}/records/delete", json={})
    assert resp.status_code == 422 and "exactly one" in resp.json()["error"]["message"]


# --- ingest jobs ----------------------------------------------------------------------------------------

def wait_for(http: httpx.Client, location: str, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = http.get(location).json()
        if job["state"] in ("succeeded", "failed"):
            return job  # type: ignore[no-any-return]
        time.sleep(0.1)
    raise AssertionError(f"job {location} did not finish in {timeout} s")


def test_ingest_documents_in_the_background(http: httpx.Client) -> None:
    resp = http.post("/v1/collections/fresh/ingest", json={"documents": [
        {"id": "d1", "text": "Volcanic eruptions release ash clouds.", "metadata": {"topic": "geo"}},
        {"id": "d2", "text": "Tectonic plates drift a few centimetres a year."},
    ]})
    assert resp.status_code == 202, resp.text
    assert resp.json()["state"] in ("queued", "running", "succeeded")
    job = wait_for(http, resp.headers["location"])
    assert job["state"] == "succeeded" and job["written"] == 2 and job["rejected"] == 0
    hits = http.post("/v1/collections/fresh/search", json={"query": "volcano", "k": 1}).json()["hits"]
    assert hits[0]["id"] == "d1"
    assert any(j["id"] == job["id"] for j in http.get("/v1/jobs").json())


def test_ingest_file_from_an_allowed_directory_reports_rejects(svc: Service, http: httpx.Client) -> None:
    path = svc.ingest_dir / "rows.jsonl"
    path.write_text('{"id": "f1", "text": "Sourdough needs a lively starter."}\n'
                    '{"id": "f2", "text": ""}\n'
                    'not json\n', encoding="utf-8")
    resp = http.post("/v1/collections/files/ingest", json={"path": "rows.jsonl"})
    assert resp.status_code == 202, resp.text
    job = wait_for(http, resp.headers["location"])
    assert job["state"] == "succeeded" and job["written"] == 1 and job["rejected"] == 2
    assert all("rows.jsonl:" in r for r in job["rejects"])


@pytest.mark.parametrize("path", ["/etc/passwd", "../../etc/passwd", "missing.csv"])
def test_ingest_cannot_read_outside_its_directories(http: httpx.Client, path: str) -> None:
    resp = http.post("/v1/collections/files/ingest", json={"path": path})
    assert resp.status_code == 400
    assert "ingest_dirs" in resp.json()["error"]["message"] or "no such file" in resp.json()["error"]["message"]


def test_unknown_job_is_404(http: httpx.Client) -> None:
    assert http.get("/v1/jobs/0123").status_code == 404


# --- OpenAI-compatible embeddings ----------------------------------------------------------------------

def test_embeddings_in_openai_wire_format(http: httpx.Client, local_embedder) -> None:  # type: ignore[no-untyped-def]
    resp = http.post("/v1/embeddings", json={"input": ["delicious beans", "bad delivery"],
                                             "model": "sentence-transformers/all-MiniLM-L6-v2"})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["object"] == "list" and [d["index"] for d in body["data"]] == [0, 1]
    assert body["usage"]["prompt_tokens"] == body["usage"]["total_tokens"] > 4
    got = np.asarray([d["embedding"] for d in body["data"]], dtype=np.float32)
    assert np.allclose(got, local_embedder.embed_documents(["delicious beans", "bad delivery"]), atol=1e-5)
    b64 = http.post("/v1/embeddings", json={"input": "delicious beans", "model": "all-MiniLM-L6-v2",
                                            "encoding_format": "base64"}).json()
    decoded = np.frombuffer(base64.b64decode(b64["data"][0]["embedding"]), dtype="<f4")
    assert np.allclose(decoded, got[0], atol=1e-6)
    assert [m["id"] for m in http.get("/v1/models").json()["data"]] == [
        "sentence-transformers/all-MiniLM-L6-v2", "all-MiniLM-L6-v2"]


@pytest.mark.parametrize(("body", "status", "needle"), [
    ({"input": "x", "model": "text-embedding-3-small"}, 400, "not served here"),
    ({"input": "x", "model": "all-MiniLM-L6-v2", "dimensions": 128}, 400, "dimensions"),
    ({"input": "", "model": "all-MiniLM-L6-v2"}, 400, "empty"),
    ({"input": [], "model": "all-MiniLM-L6-v2"}, 400, "at least one"),
    ({"input": [[1, 2, 3]], "model": "all-MiniLM-L6-v2"}, 422, "input"),
    ({"input": ["x"] * (MAX_BATCH + 1), "model": "all-MiniLM-L6-v2"}, 400, "service.max_batch"),
])
def test_bad_embeddings_requests(http: httpx.Client, body: dict, status: int, needle: str) -> None:
    resp = http.post("/v1/embeddings", json=body)
    assert resp.status_code == status, resp.text
    assert needle in resp.json()["error"]["message"]


def test_openai_embedder_runs_against_the_service(svc: Service, local_embedder) -> None:  # type: ignore[no-untyped-def]
    from vectorseam.embedders.openai_api import OpenAIEmbedder
    from vectorseam.errors import EmbeddingError

    texts = ["delicious beans", "whole wheat pasta", "bad delivery"]
    emb = OpenAIEmbedder(model="all-MiniLM-L6-v2", api_key=READ_KEY, base_url=svc.url + "/v1", batch_size=2)
    assert emb.dimension == 384  # probed from the server: the model is unknown to the client
    got = emb.embed_documents(texts)
    assert np.allclose(np.sum(got * local_embedder.embed_documents(texts), axis=1), 1.0, atol=1e-5)
    wrong = OpenAIEmbedder(model="all-MiniLM-L6-v2", api_key="wrong", base_url=svc.url + "/v1",
                           dimension=384, max_retries=0)
    with pytest.raises(EmbeddingError, match="401"):
        wrong.embed_query("x")


# --- limits, metrics, logs, CORS --------------------------------------------------------------------------

def test_oversized_body_is_413(svc: Service, http: httpx.Client) -> None:
    big = json.dumps({"records": [{"id": "big", "text": "x" * (MAX_BODY + 10)}]}).encode()
    resp = http.post(f"/v1/collections/{COLLECTION}/records", content=big,
                     headers={"content-type": "application/json"})
    assert resp.status_code == 413 and "service.max_body_bytes" in resp.json()["error"]["message"]

    def chunks():  # type: ignore[no-untyped-def]
        for i in range(0, len(big), 16384):
            yield big[i:i + 16384]

    chunked = http.post(f"/v1/collections/{COLLECTION}/records", content=chunks(),
                        headers={"content-type": "application/json"})
    assert chunked.status_code == 413


def test_malformed_json_is_422(http: httpx.Client) -> None:
    resp = http.post(f"/v1/collections/{COLLECTION}/search", content=b"{not json",
                     headers={"content-type": "application/json"})
    assert resp.status_code == 422 and "JSON" in resp.json()["error"]["message"]


def test_metrics_count_requests_by_route_template(http: httpx.Client) -> None:
    search(http, query="coffee", k=1)
    text = http.get("/metrics").text
    line = next(ln for ln in text.splitlines() if ln.startswith("vectorseam_http_requests_total{")
                and 'route="/v1/collections/{name}/search"' in ln and 'status="200"' in ln)
    assert float(line.rsplit(" ", 1)[1]) >= 1
    assert 'vectorseam_http_request_duration_seconds_bucket{le="0.005",method="POST",route="/v1/collections/{name}/search"}' in text \
        or "vectorseam_http_request_duration_seconds_bucket{" in text
    assert 'vectorseam_store_call_duration_seconds_count{operation="query",store="memory"}' in text
    assert "vectorseam_store_errors_total" in text or "vectorseam_store_errors_created" not in text


def test_access_log_is_json_with_request_id_and_no_secret(http: httpx.Client) -> None:
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    logger = logging.getLogger("vectorseam.service")
    handler = Keep()
    logger.addHandler(handler)
    old_level = logger.level
    logger.setLevel(logging.INFO)
    try:
        resp = search(http, query="secret query text", k=1)
        time.sleep(0.1)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)
    lines = [json.loads(JsonFormatter().format(r)) for r in records if r.getMessage() == "request"]
    mine = [ln for ln in lines if ln.get("request_id") == resp.headers["x-request-id"]]
    assert mine, lines
    entry = mine[0]
    assert entry["route"] == "/v1/collections/{name}/search" and entry["status"] == 200
    assert entry["caller"] == "ops"
    dumped = json.dumps(lines)
    assert "vs_test-admin-key" not in dumped and "secret query text" not in dumped


def test_given_request_id_is_kept(http: httpx.Client) -> None:
    resp = http.get("/healthz", headers={"X-Request-ID": "trace-123"})
    assert resp.headers["x-request-id"] == "trace-123"
    odd = http.get("/healthz", headers={"X-Request-ID": "bad id\twith spaces"})
    assert odd.headers["x-request-id"] != "bad id\twith spaces"


def test_cors_allows_configured_origins_only(http: httpx.Client) -> None:
    ok = http.options(f"/v1/collections/{COLLECTION}/search", headers={
        "Origin": "http://allowed.example", "Access-Control-Request-Method": "POST"})
    assert ok.headers.get("access-control-allow-origin") == "http://allowed.example"
    bad = http.options(f"/v1/collections/{COLLECTION}/search", headers={
        "Origin": "http://evil.example", "Access-Control-Request-Method": "POST"})
    assert bad.headers.get("access-control-allow-origin") is None
