"""Request bodies parsed by orjson: the route class of every router that takes a JSON body.

Why: a search by vector carries hundreds of floats, and the standard library's ``json.loads`` of them
took a tenth of the server's time per search (py-spy, benchmarks/load_search.py); orjson parses the
same body about ten times faster. FastAPI reads the body through ``Request.json()``, which keeps the
first result it parsed, so parsing it here first is all it takes.

What orjson refuses and the standard parser accepts (``NaN``/``Infinity`` literals, lone surrogate
escapes such as ``\\ud800``, integers past 64 bits), and malformed JSON, is left to FastAPI's own
parse: the request then gets exactly the answer (or the 4xx naming the field) it got before.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Coroutine
from typing import Any

import orjson
from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response

Handler = Callable[[Request], Coroutine[Any, Any, Response]]


class JSONBodyRoute(APIRoute):
    def get_route_handler(self) -> Handler:
        handler = super().get_route_handler()

        async def parse_then_handle(request: Request) -> Response:
            if request.method in ("POST", "PUT", "PATCH"):
                try:
                    body = await request.body()
                except Exception:  # a body cut off (over the size cap): FastAPI reads it again and answers
                    body = b""
                if body:  # on an error FastAPI parses it again and reports it as it always did
                    with contextlib.suppress(orjson.JSONDecodeError):
                        request._json = orjson.loads(body)  # what Request.json() returns from now on
            return await handler(request)

        return parse_then_handle
