"""The route class of every router that takes a JSON body: bodies parsed by orjson, and the arguments of
simple routes found without FastAPI's dependency solver.

Why orjson: a search by vector carries hundreds of floats, and the standard library's ``json.loads`` of
them took a tenth of the server's time per search (py-spy, benchmarks/load_search.py); orjson parses the
same body about ten times faster. FastAPI reads the body through ``Request.json()``, which keeps the
first result it parsed, so parsing it here first is all it takes. What orjson refuses and the standard
parser accepts (``NaN``/``Infinity`` literals, lone surrogate escapes such as ``\\ud800``, integers past
64 bits), and malformed JSON, is left to FastAPI's own parse: the request then gets exactly the answer
(or the 4xx naming the field) it got before.

Why a plan of the arguments (:class:`ArgumentPlan`): FastAPI (0.16x) solves a route's dependencies anew
on every request, walking the tree and recomputing per node what never changes (cache keys, security
scopes, a ``Response`` placeholder, the query, header and cookie parameters of each node, parsed or not).
For a search route (the key check with its two security schemes, the service state) that was about
0.15 ms of the event loop a request, a sixth of the whole request path around a scan (measured by
calling the app in process, 200 records: 0.92 ms a search through FastAPI's handler, 0.76 ms without).
The plan is made once per route, from FastAPI's own description of it (its ``Dependant``), and only for
routes whose needs are simple: path and query parameters, at most one JSON body, and dependencies that
take nothing but the request and each other (our key check, the state, FastAPI's security schemes).
Values are still validated by FastAPI's own functions, so they are the same values; when anything is
not as expected (a validation error, a body that is not JSON) the request goes to FastAPI's handler,
which answers it as it always did.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any

import orjson
from fastapi.dependencies.models import Dependant
from fastapi.dependencies.utils import request_body_to_args, request_params_to_args
from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response

Handler = Callable[[Request], Coroutine[Any, Any, Response]]
Solve = Callable[[Request, dict[Any, Any]], Awaitable[Any]]


class _Declined(Exception):
    """This request is not one the plan serves: FastAPI's handler answers it."""


class JSONBodyRoute(APIRoute):
    def get_route_handler(self) -> Handler:
        handler = super().get_route_handler()

        async def parse_then_handle(request: Request) -> Response:
            if request.method in ("POST", "PUT", "PATCH"):
                await _parsed_body(request)  # if it cannot, FastAPI reads or parses it again and answers
            return await handler(request)

        plan = ArgumentPlan.of(self)
        if plan is None:
            return parse_then_handle
        endpoint = self.endpoint

        async def planned(request: Request) -> Response:
            try:
                arguments = await plan.arguments(request)
            except _Declined:
                return await parse_then_handle(request)
            response: Response = await endpoint(**arguments)
            return response

        return planned


@dataclass(frozen=True)
class ArgumentPlan:
    """How to find a route's arguments: its dependencies called directly, then FastAPI's validation of
    its path and query parameters and of its body."""

    dependant: Dependant
    dependencies: tuple[tuple[str | None, Solve], ...]
    embed_body_fields: bool

    @classmethod
    def of(cls, route: APIRoute) -> ArgumentPlan | None:
        """The plan for ``route``, or None when FastAPI must keep solving it (an endpoint that is not
        ``async`` or may return something other than a ``Response`` to serialize, header or cookie
        parameters, background tasks, security scopes, dependencies with ``yield`` or parameters)."""
        dependant = route.dependant
        embed = getattr(route, "_embed_body_fields", None)
        if not isinstance(embed, bool) or not inspect.iscoroutinefunction(dependant.call):
            return None
        if not _returns_response(route.endpoint) or dependant.header_params or dependant.cookie_params:
            return None
        if _takes_more_than_the_request(dependant) or len(dependant.body_params) > 1:
            return None
        solves = []
        for sub in dependant.dependencies:
            solve = _direct(sub)
            if solve is None:
                return None
            solves.append((sub.name, solve))
        return cls(dependant, tuple(solves), embed)

    async def arguments(self, request: Request) -> dict[str, Any]:
        values: dict[str, Any] = dict.fromkeys(_request_names(self.dependant), request)
        cache: dict[Any, Any] = {}
        for name, solve in self.dependencies:  # first, as FastAPI does: a refused key is answered first
            value = await solve(request, cache)
            if name is not None:
                values[name] = value
        for fields, received in ((self.dependant.path_params, request.path_params),
                                 (self.dependant.query_params, request.query_params)):
            found, errors = request_params_to_args(fields, received)
            if errors:
                raise _Declined
            values.update(found)
        if self.dependant.body_params:
            found, errors = await request_body_to_args(self.dependant.body_params, await _json_body(request),
                                                       self.embed_body_fields)
            if errors:
                raise _Declined
            values.update(found)
        return values


def _takes_more_than_the_request(dependant: Dependant) -> bool:
    """Whether FastAPI fills a parameter of ``dependant`` with something a plan does not make: a
    websocket, the response to amend, background tasks, security scopes."""
    return any(name is not None for name in (dependant.websocket_param_name, dependant.response_param_name,
                                             dependant.background_tasks_param_name,
                                             dependant.security_scopes_param_name))


def _request_names(dependant: Dependant) -> list[str]:
    """The parameters that take the request itself (as ``Request`` or ``HTTPConnection``)."""
    return [name for name in (dependant.request_param_name, dependant.http_connection_param_name) if name]


def _direct(dependant: Dependant) -> Solve | None:
    """``dependant`` as a coroutine of the request and the request's cache of solved dependencies, or None
    when it takes anything but the request and other such dependencies. Cached per request by the
    callable, as FastAPI does for dependencies without scopes (``use_cache``, the default)."""
    call = dependant.call
    if call is None or dependant.own_oauth_scopes or _takes_more_than_the_request(dependant):
        return None
    if any((dependant.path_params, dependant.query_params, dependant.header_params, dependant.cookie_params,
            dependant.body_params)):
        return None
    if not _is_coroutine(call):  # a plain ``def`` (FastAPI runs it on a thread) or a generator
        return None
    subs = []
    for sub in dependant.dependencies:
        solve = _direct(sub)
        if solve is None or sub.name is None:
            return None
        subs.append((sub.name, solve))
    own = _request_names(dependant)
    use_cache = dependant.use_cache

    async def solve_it(request: Request, cache: dict[Any, Any]) -> Any:
        if use_cache and call in cache:
            return cache[call]
        kwargs: dict[str, Any] = {name: request for name in own}
        for name, sub_solve in subs:
            kwargs[name] = await sub_solve(request, cache)
        value = await call(**kwargs)
        cache.setdefault(call, value)
        return value

    return solve_it


def _is_coroutine(call: Callable[..., Any]) -> bool:
    if inspect.isgeneratorfunction(call) or inspect.isasyncgenfunction(call):
        return False
    return inspect.iscoroutinefunction(call) or (
        not inspect.isroutine(call) and not inspect.isclass(call)
        and inspect.iscoroutinefunction(getattr(call, "__call__", None)))  # noqa: B004 (an instance, e.g. HTTPBearer)


def _returns_response(endpoint: Callable[..., Any]) -> bool:
    """Whether the endpoint is annotated to return a ``Response``, which FastAPI sends as it is."""
    try:
        returned = typing.get_type_hints(endpoint).get("return")
    except Exception:  # an annotation that does not resolve: leave the route to FastAPI
        return False
    return isinstance(returned, type) and issubclass(returned, Response)


async def _json_body(request: Request) -> Any:
    """The body as FastAPI would validate it, when it is JSON that orjson reads; else the request is
    declined (FastAPI's own parse answers a missing or other content type, or malformed JSON)."""
    content_type = request.headers.get("content-type", "")
    media = content_type.split(";", 1)[0].strip().lower()
    if not (media == "application/json" or (media.startswith("application/") and media.endswith("+json"))):
        raise _Declined
    parsed = await _parsed_body(request)
    if parsed is _UNREAD:
        raise _Declined
    return parsed


_UNREAD = object()


async def _parsed_body(request: Request) -> Any:
    """The body parsed by orjson and kept as what ``Request.json()`` returns from now on; ``_UNREAD`` when
    it is empty, cut off (over the size cap, or the client went) or not JSON that orjson reads."""
    try:
        body = await request.body()
    except Exception:
        return _UNREAD
    if not body:
        return _UNREAD
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        return _UNREAD
    request._json = parsed
    return parsed
