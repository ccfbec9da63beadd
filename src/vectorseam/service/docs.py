"""The API docs (``/docs``, ``/redoc``, ``/openapi.json``) and the security headers of every page.

Why the docs need a key when keys are configured: the spec lists every route and limit of a server
that is otherwise closed, and FastAPI served it to anyone. ``service.public_docs = true`` opens them
(a browser cannot send the key when it opens ``/docs``). An open service (no keys, loopback only)
keeps them open.

Why a Content-Security-Policy per page: the search page loads only its own script and style, so
``'self'`` is all it needs, and no other site may frame it (``frame-ancestors 'none'`` and
``X-Frame-Options`` for older browsers: no clickjacking of a page holding a key). Swagger UI and
ReDoc load their bundles from jsDelivr as FastAPI always did; the policy allows exactly that origin,
and Swagger's one inline script by its hash, so no other script can run on those pages either.
"""

from __future__ import annotations

import base64
import hashlib
import re
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse

from vectorseam.service.state import require

CDN = "https://cdn.jsdelivr.net"
FRAMING = {"X-Frame-Options": "DENY", "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}
PAGE_CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
            "base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
PAGE_HEADERS = {**FRAMING, "Content-Security-Policy": PAGE_CSP}
_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)
_INLINE_STYLE = re.compile(r"<style>(.*?)</style>", re.DOTALL)


def _hashes(pattern: re.Pattern[str], html: str) -> str:
    return " ".join(f"'sha256-{base64.b64encode(hashlib.sha256(m.encode()).digest()).decode()}'"
                    for m in pattern.findall(html))


def docs_headers(html: str) -> dict[str, str]:
    """The headers of a docs page: its CDN bundles and its own inline script and style, nothing else."""
    csp = (f"default-src 'none'; script-src {CDN} {_hashes(_INLINE_SCRIPT, html)}; "
           # Swagger UI and ReDoc set styles from their scripts; ReDoc's schema view runs in a blob: worker
           f"style-src {CDN} 'unsafe-inline'; img-src 'self' data: https://fastapi.tiangolo.com; font-src {CDN} data:; "
           "connect-src 'self'; worker-src blob:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
    return {**FRAMING, "Content-Security-Policy": csp}


def docs_router(app: FastAPI, public: bool) -> APIRouter:
    """``/openapi.json``, ``/docs`` and ``/redoc``; behind a key (any scope) unless ``public``."""
    router = APIRouter(include_in_schema=False, dependencies=[] if public else [require("read")])
    swagger = bytes(get_swagger_ui_html(openapi_url="/openapi.json", title=f"{app.title} - API docs").body).decode()
    redoc = bytes(get_redoc_html(openapi_url="/openapi.json", title=f"{app.title} - API reference",
                                 with_google_fonts=False).body).decode()

    @router.get("/openapi.json")
    def openapi() -> JSONResponse:
        spec: dict[str, Any] = app.openapi()
        return JSONResponse(spec, headers={"X-Content-Type-Options": "nosniff"})

    @router.get("/docs")
    def swagger_ui() -> HTMLResponse:
        return HTMLResponse(swagger, headers=docs_headers(swagger))

    @router.get("/redoc")
    def redoc_page() -> HTMLResponse:
        return HTMLResponse(redoc, headers=docs_headers(redoc))

    return router
