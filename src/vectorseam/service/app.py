"""The FastAPI application: routes, error mapping, middleware, and the model warm-up at start.

Errors a caller can cause (every :class:`VectorseamError`) map to a 4xx carrying the library's own
message, which already says what was wrong, where and what to do. Anything else is a 500 whose body
gives only the request id; the traceback goes to the log under that id (both written by the
middleware, :mod:`vectorseam.service.middleware`, where the id is still known).
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from vectorseam import errors
from vectorseam.client import VectorSeam
from vectorseam.config import ServiceSettings
from vectorseam.service.auth import not_visible, scope_warnings
from vectorseam.service.docs import docs_router
from vectorseam.service.limits import RequestTooLarge
from vectorseam.service.logs import get_logger
from vectorseam.service.middleware import RequestContextMiddleware
from vectorseam.service.quotas import KeyQuotas, QuotaMiddleware
from vectorseam.service.responses import error_response
from vectorseam.service.routes_collections import router as collections_router
from vectorseam.service.routes_data import router as data_router
from vectorseam.service.routes_openai import router as openai_router
from vectorseam.service.routes_ops import router as ops_router
from vectorseam.service.routes_page import router as page_router
from vectorseam.service.routes_query import router as query_router
from vectorseam.service.state import AuthError, ServiceState, caller_of

# Most specific first: the first matching class decides the status.
STATUS: list[tuple[type[Exception], int, str]] = [
    (errors.CollectionNotFoundError, 404, "not_found"),
    (errors.MissingExtraError, 501, "not_installed"),  # a feature whose extra this server lacks
    (errors.DimensionMismatchError, 400, "invalid_request_error"),
    (errors.FilterError, 400, "invalid_filter"),
    (errors.ValidationError, 400, "invalid_request_error"),
    (errors.EmbedderMismatchError, 409, "embedder_mismatch"),
    (errors.UnsupportedOperationError, 422, "unsupported_operation"),
    (errors.StoreUnavailableError, 503, "store_unavailable"),
    (errors.CollectionDamagedError, 503, "collection_damaged"),
    (errors.EmbeddingError, 502, "embedding_error"),
    (errors.ConfigError, 500, "configuration_error"),
    (errors.VectorseamError, 400, "invalid_request_error"),
]


def _validation_message(exc: RequestValidationError) -> tuple[str, str | None]:
    parts = []
    first: str | None = None
    for err in exc.errors():
        loc = ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "body"
        first = first or loc
        msg = err.get("msg", "invalid")
        if err.get("type") == "string_unicode":  # pydantic's words name no cause and no remedy
            msg = ("not valid Unicode text (a lone surrogate escape such as \\ud800, half of a pair); "
                   "no store can hold it: send the text as valid UTF-8")
        parts.append(f"{loc}: {msg}")
    return "; ".join(parts) or "invalid request", first


def create_app(client: VectorSeam, settings: ServiceSettings | None = None, warm_up: bool = True) -> FastAPI:
    """The service over ``client``'s store and embedder. ``warm_up`` loads the model in the background."""
    service_settings = settings or client.settings.service
    state = ServiceState(client, service_settings)
    app = FastAPI(
        title="vectorseam",
        version="0.1.0",
        summary="Semantic search, recommendations, answers and OpenAI-compatible embeddings.",
        lifespan=_lifespan(state, warm_up),
        docs_url=None, redoc_url=None, openapi_url=None,  # served by docs_router: behind a key, with a CSP
    )
    app.state.service = state
    _handle_errors(app, state)
    for router in (query_router, data_router, collections_router, openai_router, ops_router, page_router,
                   docs_router(app, public=service_settings.public_docs)):
        _add_routes(app, router)
    quotas = KeyQuotas(service_settings, state.metrics.registry)
    if quotas.active:  # inside CORS, so a browser can read the 429
        app.add_middleware(QuotaMiddleware, quotas=quotas)
    if service_settings.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=service_settings.cors_origins,
                           allow_methods=["GET", "POST", "DELETE", "OPTIONS"],
                           allow_headers=["Authorization", "X-API-Key", "Content-Type", "X-Request-ID"],
                           expose_headers=["X-Request-ID"])
    app.add_middleware(RequestContextMiddleware, metrics=state.metrics,
                       max_body_bytes=service_settings.max_body_bytes, hosts=state.hosts)
    return app


def _add_routes(app: FastAPI, router: APIRouter) -> None:
    """The router's routes on the app itself rather than through ``include_router``: recent FastAPI wraps an
    included router in a layer that matches a request against each of its routes twice, with bookkeeping
    per route, which was half of ``/healthz``'s cost (cProfile, benchmarks/load_search.py). Our routers
    are included with no options of their own and their routes already carry their full paths, tags and
    dependencies, so the routes are the same ones, found by plain matching. (They are shared by every app
    made in the process, so ``app.dependency_overrides`` does not reach them; nothing here uses it.)"""
    app.router.routes.extend(router.routes)


def _lifespan(state: ServiceState, warm_up: bool) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    """Start-up warnings about open access and key scopes, the model's warm-up; at shutdown the job
    threads stop and the store's observers are removed."""
    log = get_logger()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if state.keys.open:
            log.warning("no API keys configured: every route is open to whoever can reach this address "
                        "(only allowed on a loopback host unless service.allow_unauthenticated is set); "
                        "requests must name a loopback host or one in service.allowed_hosts")
        for warning in scope_warnings(state.settings.api_keys):
            log.warning(warning)
        if warm_up:
            threading.Thread(target=_warm, args=(state,), name="vectorseam-warmup", daemon=True).start()
        else:
            state.ready.set()
        yield
        state.jobs.shutdown()
        state.off_loop.shutdown()
        state.stop_observing()

    return lifespan


def _handle_errors(app: FastAPI, state: ServiceState) -> None:
    """Every error as one JSON shape (:func:`error_response`): library errors by :data:`STATUS`, with the
    server's paths scrubbed from 5xx messages to scoped keys; oversized bodies, auth, validation, HTTP."""
    log = get_logger()

    @app.exception_handler(errors.VectorseamError)
    async def _library_error(request: Request, exc: errors.VectorseamError) -> JSONResponse:
        caller = caller_of(request)
        name = request.path_params.get("name", getattr(exc, "collection", None))  # multi-search names it
        if isinstance(exc, errors.CollectionNotFoundError) and caller is not None and caller.scoped:
            # the store's message lists every collection; a scoped key must not learn the others
            return error_response(404, "not_found", not_visible(name if isinstance(name, str) else "?"))
        for cls, status, kind in STATUS:
            if isinstance(exc, cls):
                message = str(exc)
                if status >= 500:
                    log.error("request failed", extra={"error": type(exc).__name__, "detail": message})
                    if caller is None or caller.scoped:  # the server's own words may name its files
                        message = state.scrub(message)
                return error_response(status, kind, message)
        return error_response(400, "invalid_request_error", str(exc))  # STATUS ends with the base class

    @app.exception_handler(RequestTooLarge)
    async def _too_large(request: Request, exc: RequestTooLarge) -> JSONResponse:
        return error_response(413, "request_too_large", str(exc))

    @app.exception_handler(AuthError)
    async def _auth_error(request: Request, exc: AuthError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        kind = "authentication_error" if exc.status == 401 else "permission_error"
        return error_response(exc.status, kind, exc.message, headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        message, param = _validation_message(exc)
        return error_response(422, "invalid_request_error", message, param=param)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return error_response(exc.status_code, "http_error", str(exc.detail), dict(exc.headers or {}))


def _warm(state: ServiceState) -> None:
    try:
        state.client.embedder.embed_query("warm up")
    except Exception as exc:  # reported by /readyz and the log; the process stays up for diagnosis
        state.warmup_error = f"{type(exc).__name__}: {exc}"
        get_logger().exception("embedder warm-up failed")
    else:
        state.ready.set()
        get_logger().info("embedder ready", extra={"fingerprint": state.client.embedder.fingerprint})


def app_from_environment() -> FastAPI:
    """Factory for ``uvicorn --factory`` and multi-worker serving: configuration from the environment."""
    from vectorseam.service import balanced_accept
    from vectorseam.service.logs import configure_logging

    balanced_accept.install()  # several workers share the connections (a worker process builds its app here)
    client = VectorSeam()
    configure_logging(client.settings.service.log_level)
    return create_app(client)
