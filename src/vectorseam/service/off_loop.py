"""The hot read routes (search, recommend, one record by id): their blocking part on the service's own
threads, their answer encoded once.

Why not FastAPI's default (a plain ``def`` route, run through AnyIO's thread pool, its return value
validated against ``response_model`` and then encoded): on the request path of a search that machinery
(a capacity limiter, cancel scopes, run-variable lookups, then a second validation of a model the route
has just built) cost about 0.15 ms of the event loop's time a request, measured with the server's CPU
time per request of a search over a 200-record collection (benchmarks/load_search.py's client: 1.46 ms
round trip before, 1.30 ms after). The event loop is the one thread every request passes through;
what it spends on a request, every other request in flight waits for. Here the route is ``async``, hands
its work to a plain thread pool with ``run_in_executor`` (the request's context variables go along, as
AnyIO passes them), and the model is encoded to JSON in that thread, once, by pydantic's serializer.

The OpenAPI document is unchanged: each route keeps its ``response_model``; only the answer's bytes are
produced here instead of by FastAPI (the same ``by_alias`` JSON).
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

from pydantic import BaseModel
from starlette.responses import Response

P = ParamSpec("P")
T = TypeVar("T")

# as many as AnyIO's default limiter admits: a request waiting for a store scan holds one thread
MAX_THREADS = 40


class OffLoop:
    """A thread pool for the routes' blocking work; ``shutdown`` when the service stops."""

    def __init__(self, max_threads: int = MAX_THREADS) -> None:
        self._pool = ThreadPoolExecutor(max_workers=max_threads, thread_name_prefix="vectorseam-request")

    async def run(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """``fn(*args, **kwargs)`` on a pool thread, in a copy of the caller's context; its exception, if
        any, is raised here (FastAPI's error handlers answer it as for any route)."""
        context = contextvars.copy_context()
        call = functools.partial(context.run, fn, *args, **kwargs)
        return await asyncio.get_running_loop().run_in_executor(self._pool, call)

    def shutdown(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


def json_response(model: BaseModel, status_code: int = 200) -> Response:
    """``model`` as FastAPI would have sent it for a route with that ``response_model``."""
    return Response(model.model_dump_json(by_alias=True), status_code=status_code, media_type="application/json")
