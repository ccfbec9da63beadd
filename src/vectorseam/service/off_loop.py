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

Why a call may run on the event loop after all: handing a call to a thread and its result back wakes two
threads, and on a machine with few cores each wake can wait for a core (on two cores shared with a client
and BLAS's spinning threads, the hop cost 0.16 ms of a 7 ms search by vector over 100k records, the scan
itself 5.6 ms). When the request is the only one the worker is serving (and no ingest job runs beside it),
no other request is waiting for the loop, so a call that has been short runs there directly: the last
call of the same function took at most ``INLINE_BUDGET_S``. What that costs is bounded by the budget: a
request arriving meanwhile is read when the call ends, at most about the budget later (a search arriving
would have waited that long for the store's scan anyway). A call longer than its predecessor (a larger
collection, the store reloading another process's writes) runs long once; the next goes to a thread.
"""

from __future__ import annotations

import asyncio
import contextvars
import math
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

from pydantic import BaseModel
from starlette.responses import Response

P = ParamSpec("P")
T = TypeVar("T")

# as many as AnyIO's default limiter admits: a request waiting for a store scan holds one thread
MAX_THREADS = 40
# a call whose predecessor took at most this long may run on the event loop when its request is alone
INLINE_BUDGET_S = 0.010


def _never() -> bool:
    return False


class OffLoop:
    """A thread pool for the routes' blocking work; ``shutdown`` when the service stops. ``alone`` says
    whether the caller's request is the only work the service has now (then a short call runs on the
    event loop itself; by default, never)."""

    def __init__(self, max_threads: int = MAX_THREADS, alone: Callable[[], bool] = _never,
                 inline_budget_s: float = INLINE_BUDGET_S) -> None:
        self._pool = ThreadPoolExecutor(max_workers=max_threads, thread_name_prefix="vectorseam-request")
        self._alone = alone
        self._budget = inline_budget_s
        self._took: dict[Callable[..., object], float] = {}  # each function's last call, in seconds

    async def run(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """``fn(*args, **kwargs)`` in a copy of the caller's context, on a pool thread or, when the request
        is alone and ``fn``'s last call was short, here; its exception, if any, is raised here (FastAPI's
        error handlers answer it as for any route)."""
        context = contextvars.copy_context()
        took = self._took

        def timed() -> T:
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                took[fn] = time.perf_counter() - start

        if took.get(fn, math.inf) <= self._budget:
            await asyncio.sleep(0)  # requests read with this one start first, and count as in flight
            if self._alone():
                return context.run(timed)
        return await asyncio.get_running_loop().run_in_executor(self._pool, context.run, timed)

    def shutdown(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


def json_response(model: BaseModel, status_code: int = 200) -> Response:
    """``model`` as FastAPI would have sent it for a route with that ``response_model``."""
    return Response(model.model_dump_json(by_alias=True), status_code=status_code, media_type="application/json")
