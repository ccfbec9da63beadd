"""One ASGI middleware for what every request needs: a request id, the Host check, a body-size cap,
the last-resort 500, metrics and the access log.

Plain ASGI rather than Starlette's BaseHTTPMiddleware so streamed (server-sent events) responses pass
through untouched, and so the body cap also holds for chunked uploads that send no Content-Length.

Why the 500 is answered here and not by an ``exception_handler(Exception)``: Starlette runs that handler
in its outermost middleware, outside this one, after the request id's context variable has been reset;
its body said ``"request_id": null`` and its log line had no id, so nobody could match the two. Here
the id is still set, so the traceback is logged under it and the body and header carry it.
"""

from __future__ import annotations

import os
import re
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vectorseam.service.hosts import HostPolicy
from vectorseam.service.logs import AccessLog, get_logger, request_id_var
from vectorseam.service.metrics import Metrics, method_label
from vectorseam.service.responses import error_bytes

_SAFE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp, metrics: Metrics, max_body_bytes: int, hosts: HostPolicy) -> None:
        self.app = app
        self.metrics = metrics
        self.max_body_bytes = max_body_bytes
        self.hosts = hosts
        self.log = get_logger()
        self.access = AccessLog(self.log)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        given = headers.get("x-request-id", "")
        request_id = given if _SAFE_ID.match(given) else os.urandom(16).hex()  # 32 hex digits, as uuid4().hex
        token = request_id_var.set(request_id)
        scope.setdefault("state", {})["request_id"] = request_id
        start = time.perf_counter()
        self.metrics.series.started()
        exchange = _Exchange(self, receive, send, request_id)
        try:
            refused = self.hosts.rejection(scope["path"], headers)
            length = headers.get("content-length")
            if refused is not None:
                await _send_error(exchange.send, *refused, request_id)
            elif length is not None and (not length.isdigit() or int(length) > self.max_body_bytes):
                await self._reject_body(exchange.send, request_id)
            else:
                await self.app(scope, exchange.receive, exchange.send)
        except Exception as exc:
            self.log.error("unhandled error", exc_info=exc)
            if exchange.started:
                raise  # part of the response is out: the server must cut the connection
            await _send_error(exchange.send, 500, "server_error",
                              "internal error; the server log has the details under this request id", request_id)
        finally:
            self._finished(scope, request_id, exchange.status, time.perf_counter() - start)
            request_id_var.reset(token)

    def _finished(self, scope: Scope, request_id: str, status: int, elapsed: float) -> None:
        """The request's metrics and its access log line."""
        route = _route_template(scope)
        self.metrics.series.finished(scope["method"], route, status, elapsed)
        caller = scope.get("state", {}).get("caller")
        self.access.write({
            "request_id": request_id, "method": method_label(scope["method"]), "route": route,
            "path": scope["path"][:2048], "status": status,
            "duration_ms": round(elapsed * 1000, 2), "caller": caller,
            "client": (scope.get("client") or ("?",))[0],
        })

    async def _reject_body(self, send: Send, request_id: str) -> None:
        await _send_error(send, 413, "request_too_large",
                          f"request body is larger than this server's limit of {self.max_body_bytes} bytes "
                          "(service.max_body_bytes); send fewer records per request", request_id)


class _Exchange:
    """One request's messages between the server and the app: the status the app answered (500 until it
    does), whether its response started, and the body counted against the cap. A chunked body has no
    length up front: past the cap the client gets a 413 and the app is told the client went away (raising
    would be turned into a 400 by the app), and what the app answers after that is dropped."""

    __slots__ = ("_receive", "_send", "middleware", "received", "rejected", "request_id", "started", "status")

    def __init__(self, middleware: RequestContextMiddleware, receive: Receive, send: Send, request_id: str) -> None:
        self.middleware, self._receive, self._send, self.request_id = middleware, receive, send, request_id
        self.status, self.started, self.rejected, self.received = 500, False, False, 0

    async def send(self, message: Message) -> None:
        if self.rejected:
            return  # the 413 has gone out already
        if message["type"] == "http.response.start":
            self.started = True
            self.status = int(message["status"])
            message["headers"] = [*message.get("headers", []), (b"x-request-id", self.request_id.encode())]
        await self._send(message)

    async def receive(self) -> Message:
        if self.rejected:
            return {"type": "http.disconnect"}
        message = await self._receive()
        if message["type"] == "http.request":
            self.received += len(message.get("body", b""))
            if self.received > self.middleware.max_body_bytes:
                if not self.started:
                    await self.middleware._reject_body(self.send, self.request_id)
                self.rejected = True
                return {"type": "http.disconnect"}
        return message


async def _send_error(send: Send, status: int, kind: str, message: str, request_id: str) -> None:
    body = error_bytes(kind, message, request_id)
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def _route_template(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else "unmatched"
