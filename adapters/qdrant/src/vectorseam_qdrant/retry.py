"""Which Qdrant failures are transient, and translation of client errors into vectorseam errors.

The retry loop and its policy are vectorseam's (:class:`vectorseam.retrying.RetryPolicy`, built from
the ``retries``/``backoff``/``backoff_max`` options); this module supplies the classifier. Only
failures that another attempt can cure are retried: the server could not be reached, timed out,
answered 5xx or 429, or gRPC reported UNAVAILABLE / DEADLINE_EXCEEDED / RESOURCE_EXHAUSTED. Waits
grow exponentially with *full jitter* (a uniform draw below the exponential cap) so that many clients
failing together do not retry in lock-step. When attempts run out, callers get one
:class:`StoreUnavailableError` naming the backend, the URL and the last cause, raised ``from None``
so no stack of client internals reaches the user. Every operation vectorseam sends is idempotent
(upserts and deletes by id, reads), so repeating one is safe.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import TypeVar

import httpx
from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse

from vectorseam.errors import ConfigError, StoreUnavailableError, ValidationError, VectorseamError
from vectorseam.retrying import RetryPolicy

T = TypeVar("T")

_RETRY_STATUS = frozenset({429})
_GRPC_TRANSIENT = frozenset({"UNAVAILABLE", "DEADLINE_EXCEEDED", "RESOURCE_EXHAUSTED", "ABORTED"})


def _grpc_code(exc: BaseException) -> str | None:
    code = getattr(exc, "code", None)
    if not callable(code):
        return None
    try:
        value = code()
    except Exception:  # a non-gRPC exception with an unrelated code() method
        return None
    name = getattr(value, "name", None)
    return name if isinstance(name, str) else None


def _grpc_details(exc: BaseException) -> str:
    details = getattr(exc, "details", None)
    if callable(details):
        try:
            return str(details())
        except Exception:
            return ""
    return ""


def is_transient(exc: BaseException) -> bool:
    if isinstance(exc, UnexpectedResponse):
        status = exc.status_code or 0
        return status >= 500 or status in _RETRY_STATUS
    if isinstance(exc, ResponseHandlingException):
        return isinstance(exc.source, httpx.TransportError | TimeoutError | ConnectionError)
    if isinstance(exc, httpx.TransportError | TimeoutError | ConnectionError):
        return True
    return _grpc_code(exc) in _GRPC_TRANSIENT


def describe(exc: BaseException) -> str:
    """A one-line cause without client internals."""
    if isinstance(exc, UnexpectedResponse):
        return f"HTTP {exc.status_code} {exc.reason_phrase}: {_server_message(exc)}".strip()
    if isinstance(exc, ResponseHandlingException):
        return describe(exc.source)
    code = _grpc_code(exc)
    if code is not None:
        return f"gRPC {code}: {_grpc_details(exc)}".strip()
    text = str(exc).strip() or type(exc).__name__
    return f"{type(exc).__name__}: {text}" if type(exc).__name__ not in text else text


def _server_message(exc: UnexpectedResponse) -> str:
    try:
        body = exc.structured()
        status = body.get("status") if isinstance(body, dict) else None
        if isinstance(status, dict) and "error" in status:
            return str(status["error"])
    except Exception:  # not JSON
        pass
    return exc.content[:200].decode("utf-8", "replace")


def is_not_found(exc: BaseException) -> bool:
    if isinstance(exc, UnexpectedResponse):
        return exc.status_code == 404
    return _grpc_code(exc) == "NOT_FOUND"


def translate(exc: Exception, backend: str, what: str) -> VectorseamError:
    """A non-transient client error as the vectorseam error a caller can act on."""
    if isinstance(exc, VectorseamError):
        return exc
    cause = describe(exc)
    status = exc.status_code if isinstance(exc, UnexpectedResponse) else None
    code = _grpc_code(exc)
    if status in (401, 403) or code in ("UNAUTHENTICATED", "PERMISSION_DENIED"):
        return ConfigError(
            f"the {backend} refused {what} ({cause}); check the store's api_key option"
        )
    if status == 400 or status == 422 or code == "INVALID_ARGUMENT":
        return ValidationError(f"the {backend} rejected {what}: {cause}")
    return VectorseamError(f"the {backend} failed {what}: {cause}")


def call_server(
    fn: Callable[[], T],
    *,
    policy: RetryPolicy,
    backend: str,
    what: str,
    rng: random.Random,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Run ``fn``; retry transient failures per ``policy``; raise StoreUnavailableError when they persist."""
    try:
        return policy.call(fn, is_transient=is_transient, rng=rng, sleep=sleep)
    except Exception as exc:
        if not is_transient(exc):
            raise
        raise StoreUnavailableError(
            f"the {backend} is unavailable: {what} failed after {policy.attempts} attempt(s); "
            f"last error: {describe(exc)}. Check that the server is running and reachable, "
            "or raise the store's 'retries'/'timeout' options"
        ) from None
