"""Retries in the transport, as qdrant-client does: one frozen policy, applied to every request the
client sends, so no call site loops by hand.

A response the server could not serve now (429 Too Many Requests, 502, 503, 504) or a connection that
failed before any answer is tried again after the policy's backoff with jitter
(:class:`vectorseam.retrying.RetryPolicy`, the same policy the store adapters and load jobs use), or
after the server's ``Retry-After`` when it
says so (capped by the policy's ``max_delay``). Every route of the API is safe to send again: reads
change nothing, writes are idempotent by record id. Other errors (4xx, 500) come back at once: sending
the same request again would get the same answer.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable

import httpx

from vectorseam.retrying import RetryPolicy

RETRY_STATUS = frozenset({429, 502, 503, 504})
RETRY_ERRORS: tuple[type[Exception], ...] = (httpx.ConnectError, httpx.ConnectTimeout, httpx.RemoteProtocolError,
                                             httpx.ReadError)
DEFAULT_POLICY = RetryPolicy(attempts=5, backoff=0.25, max_delay=10.0)


def retry_after(response: httpx.Response, policy: RetryPolicy) -> float | None:
    """The wait the server asked for (``Retry-After`` in seconds), capped by the policy; None if it gave none."""
    raw = response.headers.get("retry-after")
    if raw is None:
        return None
    try:
        return min(max(float(raw), 0.0), policy.max_delay)
    except ValueError:
        return None  # an HTTP date: the policy's own backoff instead


class RetryTransport(httpx.BaseTransport):
    """An httpx transport that retries what :mod:`this module <vectorseam.remote.transport>` says is
    transient, per ``policy``, around ``inner`` (a plain :class:`httpx.HTTPTransport` by default)."""

    def __init__(self, inner: httpx.BaseTransport | None = None, policy: RetryPolicy = DEFAULT_POLICY,
                 sleep: Callable[[float], None] = time.sleep, rng: random.Random | None = None) -> None:
        self.inner = inner or httpx.HTTPTransport()
        self.policy = policy
        self._sleep = sleep
        self._rng = rng or random.Random()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        attempt = 0
        while True:
            last = attempt + 1 >= self.policy.attempts
            try:
                response = self.inner.handle_request(request)
            except RETRY_ERRORS:
                if last:
                    raise
                self._sleep(self.policy.delay(attempt, self._rng))
                attempt += 1
                continue
            if response.status_code not in RETRY_STATUS or last:
                return response
            response.read()
            response.close()
            wait = retry_after(response, self.policy)
            self._sleep(wait if wait is not None else self.policy.delay(attempt, self._rng))
            attempt += 1

    def close(self) -> None:
        self.inner.close()


class AsyncRetryTransport(httpx.AsyncBaseTransport):
    """:class:`RetryTransport` for :class:`httpx.AsyncClient`: the same policy, waiting with ``asyncio.sleep``."""

    def __init__(self, inner: httpx.AsyncBaseTransport | None = None, policy: RetryPolicy = DEFAULT_POLICY,
                 rng: random.Random | None = None) -> None:
        self.inner = inner or httpx.AsyncHTTPTransport()
        self.policy = policy
        self._rng = rng or random.Random()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        attempt = 0
        while True:
            last = attempt + 1 >= self.policy.attempts
            try:
                response = await self.inner.handle_async_request(request)
            except RETRY_ERRORS:
                if last:
                    raise
                await asyncio.sleep(self.policy.delay(attempt, self._rng))
                attempt += 1
                continue
            if response.status_code not in RETRY_STATUS or last:
                return response
            await response.aread()
            await response.aclose()
            wait = retry_after(response, self.policy)
            await asyncio.sleep(wait if wait is not None else self.policy.delay(attempt, self._rng))
            attempt += 1

    async def aclose(self) -> None:
        await self.inner.aclose()
