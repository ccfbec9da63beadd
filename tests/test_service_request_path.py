"""What a request costs on its way through the service: routes served by an argument plan instead of
FastAPI's dependency solver (service/json_route.py), the access line written without the logging
machinery when only our handler would see it (service/logs.py), and the per-request metrics kept as
plain counts (service/metrics.py). Each must answer exactly as the general path it short-cuts."""

from __future__ import annotations

import io
import json
import logging
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Annotated, Any

import httpx
import pytest

pytest.importorskip("fastapi", reason="the service extra is not installed")

import fastapi.routing
from fastapi import APIRouter, Depends, FastAPI, Header, Request
from starlette.responses import JSONResponse, Response

from tests.test_service_support import COLLECTION, READ_KEY, TENANT_READ_KEY, Service, running_service
from vectorseam.service.background import BackgroundServer
from vectorseam.service.json_route import ArgumentPlan, JSONBodyRoute
from vectorseam.service.logs import AccessLog, JsonFormatter, configure_logging, get_logger
from vectorseam.service.metrics import Metrics
from vectorseam.service.routes_data import router as data_router
from vectorseam.service.routes_query import router as query_router


@pytest.fixture(scope="module")
def svc(local_embedder) -> Service:  # type: ignore[no-untyped-def]
    return running_service(local_embedder)


@pytest.fixture()
def solver_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Each request FastAPI's own solver handles (its path), counted."""
    calls: list[str] = []
    original = fastapi.routing.solve_dependencies

    async def counting(**kwargs: Any) -> Any:
        if kwargs["dependant"].path:  # the route's own call, not a sub-dependency's
            calls.append(kwargs["dependant"].path)
        return await original(**kwargs)

    monkeypatch.setattr(fastapi.routing, "solve_dependencies", counting)
    return calls


def _route(router: APIRouter, path: str, method: str) -> fastapi.routing.APIRoute:
    return next(r for r in router.routes if isinstance(r, fastapi.routing.APIRoute) and r.path == path
                and method in r.methods)


def test_hot_routes_have_a_plan_and_plain_def_routes_do_not() -> None:
    assert ArgumentPlan.of(_route(query_router, "/v1/collections/{name}/search", "POST")) is not None
    assert ArgumentPlan.of(_route(data_router, "/v1/collections/{name}/records/{record_id:path}", "GET")) is not None
    # a plain def: FastAPI runs it on a thread and serializes what it returns
    assert ArgumentPlan.of(_route(data_router, "/v1/collections/{name}/records/{record_id:path}", "DELETE")) is None


def test_planned_requests_skip_the_solver_and_bad_ones_get_fastapis_answer(svc: Service,
                                                                           solver_calls: list[str]) -> None:
    search = f"/v1/collections/{COLLECTION}/search"
    with svc.http(READ_KEY) as http:
        good = http.post(search, json={"query": "dark roast coffee", "k": 3})
        assert good.status_code == 200 and len(good.json()["hits"]) == 3
        assert http.get(f"/v1/collections/{COLLECTION}/records/r00").json()["id"] == "r00"
        assert solver_calls == []
        bad = http.post(search, json={"query": "coffee", "k": "many"})  # the plan declines; FastAPI answers
        assert bad.status_code == 422 and bad.json()["error"]["param"] == "k", bad.text
        not_json = http.post(search, content=b'{"query": "coffee"}', headers={"content-type": "text/plain"})
        assert not_json.status_code == 422, not_json.text
        broken = http.post(search, content=b'{"query": ', headers={"content-type": "application/json"})
        assert broken.status_code == 422 and "JSON" in broken.text, broken.text
        # FastAPI answers malformed JSON from its body parse, before any solving
        assert solver_calls == [search.replace(COLLECTION, "{name}")] * 2
    with svc.http(None) as anonymous:  # the key check is the plan's first step, as it is FastAPI's
        assert anonymous.post(search, json={"query": "coffee"}).status_code == 401
    with svc.http(TENANT_READ_KEY) as tenant:  # a key scoped to other collections: not found, not forbidden
        hidden = tenant.post(search, json={"query": "coffee"})
        assert hidden.status_code == 404 and "not available to this API key" in hidden.json()["error"]["message"]
    assert len(solver_calls) == 2


def test_a_lone_search_runs_on_the_event_loop_and_searches_in_flight_on_threads(svc: Service) -> None:
    """A request alone needs no thread hop (service/off_loop.py); requests in flight keep their threads,
    where they share the store's scans. Either way each gets the same hits."""
    ran_on: list[str] = []
    stop = svc.client.observe_store(
        lambda call: ran_on.append(threading.current_thread().name) if call.operation == "query" else None)
    search = f"/v1/collections/{COLLECTION}/search"
    body = {"vector": svc.client.embedder.embed_query("dark roast coffee").tolist(), "k": 5}
    try:
        with svc.http(READ_KEY) as http:
            alone = [http.post(search, json=body).json()["hits"] for _ in range(4)]
        # the first may go to a thread (nothing measured yet); each later one follows a short one
        assert all(name.startswith("uvicorn-") for name in ran_on[1:4]), ran_on
        ran_on.clear()

        def client(_: int) -> list[list[dict[str, Any]]]:
            with svc.http(READ_KEY) as http:
                return [http.post(search, json=body).json()["hits"] for _ in range(5)]

        with ThreadPoolExecutor(8) as pool:
            together = [hits for batch in pool.map(client, range(8)) for hits in batch]
    finally:
        stop()
    assert all(hits == alone[0] for hits in alone + together)
    assert any(name.startswith("vectorseam-request") for name in ran_on), ran_on


def _app_with(router: APIRouter) -> Iterator[httpx.Client]:
    app = FastAPI()
    app.include_router(router)
    app.add_api_route("/readyz", lambda: {"ok": True})  # what BackgroundServer waits for
    server = BackgroundServer(app).start()
    try:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            yield client
    finally:
        server.stop()


_who_calls: list[str] = []


async def _who(request: Request) -> str:
    _who_calls.append(request.url.path)
    return "me"


async def _wrapped(caller: Annotated[str, Depends(_who)]) -> str:
    return caller.upper()


_small = APIRouter(route_class=JSONBodyRoute)


@_small.get("/items/{n}", dependencies=[Depends(_who)])
async def _item(n: int, caller: Annotated[str, Depends(_wrapped)], limit: int = 5) -> Response:
    return JSONResponse({"n": n, "caller": caller, "limit": limit})


@_small.get("/header")
async def _header(x_tag: Annotated[str, Header()]) -> Response:
    return JSONResponse({"tag": x_tag})


def test_a_plan_calls_a_shared_dependency_once_and_validates_like_fastapi() -> None:
    router, calls = _small, _who_calls
    planned = [ArgumentPlan.of(r) for r in router.routes if isinstance(r, fastapi.routing.APIRoute)]
    assert planned[0] is not None and planned[1] is None  # header parameters are left to FastAPI
    for client in _app_with(router):
        assert client.get("/items/3", params={"limit": "7"}).json() == {"n": 3, "caller": "ME", "limit": 7}
        assert calls == ["/items/3"]  # once, though the route and ``wrapped`` both depend on it
        wrong = client.get("/items/three")
        assert wrong.status_code == 422 and wrong.json()["detail"][0]["loc"] == ["path", "n"]
        assert client.get("/header", headers={"x-tag": "a"}).json() == {"tag": "a"}


@pytest.fixture()
def json_logging() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    """The server's logging set up as ``serve`` does, its stream captured; what it changed, restored."""
    names = (get_logger().name, "uvicorn", "uvicorn.error")
    saved = [(logging.getLogger(n).handlers, logging.getLogger(n).level, logging.getLogger(n).propagate)
             for n in names]
    flags = (logging._srcfile, logging.logThreads, logging.logMultiprocessing)  # type: ignore[attr-defined]
    factory = logging.getLogRecordFactory()
    logging.setLogRecordFactory(logging.LogRecord)  # another test may have imported Ray, which installs its own
    configure_logging("info")
    logger = get_logger()
    stream = io.StringIO()
    assert isinstance(logger.handlers[0], logging.StreamHandler)
    logger.handlers[0].setStream(stream)
    try:
        yield logger, stream
    finally:
        for name, (handlers, level, propagate) in zip(names, saved, strict=True):
            logging.getLogger(name).handlers, logging.getLogger(name).level = handlers, level
            logging.getLogger(name).propagate = propagate
        logging._srcfile, logging.logThreads, logging.logMultiprocessing = flags  # type: ignore[attr-defined]
        logging.setLogRecordFactory(factory)


FIELDS = {"request_id": "abc123", "method": "POST", "route": "/v1/collections/{name}/search",
          "path": "/v1/collections/a/search", "status": 200, "duration_ms": 7.25, "caller": "ops",
          "client": "127.0.0.1"}


def test_access_line_written_directly_is_the_line_the_formatter_makes(
        json_logging: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = json_logging
    AccessLog(logger).write(dict(FIELDS))
    direct = json.loads(stream.getvalue())
    record = logger.makeRecord(logger.name, logging.INFO, "(f)", 0, "request", (), None, extra=dict(FIELDS))
    formatted = json.loads(JsonFormatter().format(record))
    assert set(direct) == set(formatted) and list(direct) == list(formatted)
    assert {k: v for k, v in direct.items() if k != "ts"} == {k: v for k, v in formatted.items() if k != "ts"}
    assert direct["ts"][:16] == formatted["ts"][:16] and direct["ts"].endswith("Z")


def test_access_line_goes_through_logging_when_anything_else_listens(
        json_logging: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = json_logging
    seen: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record)

    keep = Keep()
    logger.addHandler(keep)
    try:
        AccessLog(logger).write(dict(FIELDS))
    finally:
        logger.removeHandler(keep)
    assert [r.getMessage() for r in seen] == ["request"] and vars(seen[0])["status"] == 200
    assert json.loads(stream.getvalue())["request_id"] == "abc123"  # our handler still wrote it

    def stamped(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = logging.LogRecord(*args, **kwargs)
        record.stamp = "from the factory"
        return record

    logging.setLogRecordFactory(stamped)  # a field only the factory knows: the line must go through it
    AccessLog(logger).write(dict(FIELDS))
    assert json.loads(stream.getvalue().splitlines()[-1])["stamp"] == "from the factory"
    logger.setLevel(logging.WARNING)
    AccessLog(logger).write(dict(FIELDS))
    assert stream.getvalue().count("\n") == 2  # below the level: no line


def _samples(text: str) -> dict[str, float]:
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            out[name] = float(value)
    return out


def test_request_series_render_as_prometheus_counters_and_histograms() -> None:
    metrics = Metrics()
    series = metrics.series
    series.started()
    series.started()
    series.finished("POST", "/v1/collections/{name}/search", 200, 0.003)
    series.finished("POST", "/v1/collections/{name}/search", 200, 0.0025)  # on a bound: counted in its bucket
    series.started()
    series.finished("BREW", "unmatched", 418, 0.2)
    series.started()  # one still in flight
    series.store_call("memory", "query", 0.004)
    got = _samples(metrics.render().decode())
    route = 'method="POST",route="/v1/collections/{name}/search"'
    assert got[f'vectorseam_http_requests_total{{{route},status="200"}}'] == 2
    assert got['vectorseam_http_requests_total{method="other",route="unmatched",status="418"}'] == 1
    assert got[f'vectorseam_http_request_duration_seconds_bucket{{le="0.001",{route}}}'] == 0
    assert got[f'vectorseam_http_request_duration_seconds_bucket{{le="0.0025",{route}}}'] == 1
    assert got[f'vectorseam_http_request_duration_seconds_bucket{{le="0.005",{route}}}'] == 2
    assert got[f'vectorseam_http_request_duration_seconds_bucket{{le="+Inf",{route}}}'] == 2
    assert got[f'vectorseam_http_request_duration_seconds_count{{{route}}}'] == 2
    assert got[f'vectorseam_http_request_duration_seconds_sum{{{route}}}'] == pytest.approx(0.0055)
    assert got["vectorseam_http_requests_in_flight"] == 1
    assert got['vectorseam_store_call_duration_seconds_count{operation="query",store="memory"}'] == 1
