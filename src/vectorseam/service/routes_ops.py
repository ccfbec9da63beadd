"""Probes, metrics and the search page.

``/healthz`` (liveness) only says the process answers: restarting a pod because its database is down
would not bring the database back. ``/readyz`` (readiness) checks the store and that the embedding
model is loaded, so traffic reaches a replica only when it can really answer.
"""

from __future__ import annotations

import time
from importlib import resources
from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import HTMLResponse, JSONResponse, Response

from vectorseam.service.state import ServiceState, get_state

router = APIRouter(tags=["operations"])
StateDep = Annotated[ServiceState, Depends(get_state)]
STATIC = resources.files("vectorseam.service") / "static"


@router.get("/healthz", summary="Liveness: the process is up")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="Readiness: the store answers and the model is loaded",
            responses={503: {"description": "not ready; the body says why"}})
def readyz(state: StateDep) -> JSONResponse:
    checks: dict[str, str] = {}
    ok = True
    start = time.perf_counter()
    try:
        n = len(state.client.collections())
        checks["store"] = f"ok ({state.client.store.capabilities.name}, {n} collections)"
    except Exception as exc:  # any failure to reach the store means not ready; the reason is reported
        ok = False
        checks["store"] = f"error: {type(exc).__name__}: {exc}"
    if state.warmup_error is not None:
        ok = False
        checks["embedder"] = f"error: {state.warmup_error}"
    elif not state.ready.is_set():
        ok = False
        checks["embedder"] = "loading"
    else:
        checks["embedder"] = "ok"
    checks["took_ms"] = f"{(time.perf_counter() - start) * 1000:.1f}"
    return JSONResponse(status_code=200 if ok else 503, content={"status": "ready" if ok else "not ready",
                                                                "checks": checks})


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
def metrics(state: StateDep) -> Response:
    return Response(state.metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")


def _static(name: str) -> str:
    return (STATIC / name).read_text(encoding="utf-8")


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
def page() -> HTMLResponse:
    return HTMLResponse(_static("index.html"))


@router.get("/static/app.js", include_in_schema=False)
def script() -> Response:
    return Response(_static("app.js"), media_type="text/javascript; charset=utf-8")


@router.get("/static/style.css", include_in_schema=False)
def style() -> Response:
    return Response(_static("style.css"), media_type="text/css; charset=utf-8")
