"""Per-key rate limits and requests in flight: a key over its share gets 429 with ``Retry-After``.

Why: one key could keep every worker thread busy (256 inputs of 10,000 characters to
``/v1/embeddings`` cost 28 s of CPU), and every other key waited behind it. Each key may have a
rate (a token bucket: ``rate_limit`` requests per second, ``burst`` at once) and a cap on its
requests being served at the same time (``max_in_flight``); keys without their own take the
``service.key_*`` defaults, and a key with none is not limited.

Why here, as ASGI middleware in front of the routes, and this small: it runs on the event loop
before a request takes a worker thread, so a refused request costs a header scan, one SHA-256, a
dict lookup and some arithmetic. The loop is one thread, so the counters need no lock, and nothing
is held across an ``await``. Requests without a valid key pass through and get their 401 from the
route. The limits are per server process: with ``workers = N`` (or N replicas) a key gets N times
its rate; ``/metrics`` counts every refusal by key and limit.
"""

from __future__ import annotations

import hashlib
import math
import time
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter
from starlette.types import ASGIApp, Receive, Scope, Send

from vectorseam.config import APIKeySettings, ServiceSettings
from vectorseam.service.auth import ANONYMOUS, HASH_PREFIX
from vectorseam.service.hosts import EXEMPT_PATHS
from vectorseam.service.responses import error_bytes


@dataclass(slots=True)
class Quota:
    """One key's bucket and in-flight count; ``rate`` None: no rate limit, ``max_in_flight`` None: no cap."""

    name: str
    rate: float | None
    burst: float
    max_in_flight: int | None
    tokens: float = 0.0
    stamp: float = 0.0
    in_flight: int = 0

    def __post_init__(self) -> None:
        self.tokens, self.stamp = self.burst, time.monotonic()

    def take(self) -> float:
        """0 when the request may go on (a token is taken), else the seconds until a token is back."""
        if self.rate is None:
            return 0.0
        now = time.monotonic()
        tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if tokens >= 1.0:
            self.tokens = tokens - 1.0
            return 0.0
        self.tokens = tokens
        return (1.0 - tokens) / self.rate


def quota_for(name: str, key: APIKeySettings | None, settings: ServiceSettings) -> Quota | None:
    rate = key.rate_limit if key is not None and key.rate_limit is not None else settings.key_rate_limit
    burst = key.burst if key is not None and key.burst is not None else settings.key_burst
    cap = key.max_in_flight if key is not None and key.max_in_flight is not None else settings.key_max_in_flight
    if rate is None and cap is None:
        return None
    return Quota(name, rate, float(burst if burst is not None else max(1, math.ceil(2 * (rate or 0)))), cap)


class KeyQuotas:
    """The quotas of the configured keys (of the anonymous caller when there are none)."""

    def __init__(self, settings: ServiceSettings, registry: CollectorRegistry) -> None:
        self.by_digest: dict[bytes, Quota] = {}
        for key in settings.api_keys:
            quota = quota_for(key.name, key, settings)
            if quota is not None:
                self.by_digest.setdefault(bytes.fromhex(key.hash.removeprefix(HASH_PREFIX)), quota)
        self.anonymous = quota_for(ANONYMOUS.name, None, settings) if not settings.api_keys else None
        self.refused = Counter("vectorseam_rate_limited_requests", "requests refused with 429 by key and limit "
                               "(rate: the key's rate_limit, in_flight: its max_in_flight)", ["key", "limit"],
                               registry=registry)

    @property
    def active(self) -> bool:
        return bool(self.by_digest) or self.anonymous is not None

    def of(self, scope: Scope) -> Quota | None:
        if self.anonymous is not None:
            return self.anonymous
        authorization = api_key = None
        for name, value in scope.get("headers", ()):  # the first of each, as the routes read them
            if name == b"authorization" and authorization is None:
                authorization = value
            elif name == b"x-api-key" and api_key is None:
                api_key = value
        presented = api_key
        if authorization is not None:
            scheme, _, credentials = authorization.decode("latin-1").partition(" ")
            if scheme.lower() == "bearer" and credentials.strip():
                presented = credentials.strip().encode("latin-1")
        if not presented:
            return None
        return self.by_digest.get(hashlib.sha256(presented.decode("latin-1").encode("utf-8")).digest())


class QuotaMiddleware:
    def __init__(self, app: ASGIApp, quotas: KeyQuotas) -> None:
        self.app = app
        self.quotas = quotas

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        quota = self.quotas.of(scope) if scope["type"] == "http" and scope["path"] not in EXEMPT_PATHS else None
        if quota is None:
            await self.app(scope, receive, send)
            return
        if quota.max_in_flight is not None and quota.in_flight >= quota.max_in_flight:
            await self._refuse(scope, send, quota, "in_flight", 1.0,
                               f"the API key {quota.name!r} already has {quota.in_flight} requests being served, "
                               f"its limit (max_in_flight); wait for one to finish")
            return
        wait = quota.take()
        if wait > 0:
            await self._refuse(scope, send, quota, "rate", wait,
                               f"the API key {quota.name!r} is over its rate limit of {quota.rate:g} requests per "
                               f"second (rate_limit, burst {quota.burst:g}); retry after the Retry-After seconds")
            return
        quota.in_flight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            quota.in_flight -= 1

    async def _refuse(self, scope: Scope, send: Send, quota: Quota, limit: str, wait: float, message: str) -> None:
        self.quotas.refused.labels(quota.name, limit).inc()
        state = scope.setdefault("state", {})
        state["caller"] = quota.name  # for the access log: which key was refused
        request_id = str(state.get("request_id", ""))
        body = error_bytes("rate_limit_exceeded", message, request_id)
        await send({"type": "http.response.start", "status": 429,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                                (b"retry-after", str(max(1, math.ceil(wait))).encode())]})
        await send({"type": "http.response.body", "body": body})
