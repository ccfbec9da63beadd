"""Pinecone SDK exceptions -> vectorseam errors that name the backend, the operation and the URL.

The SDK already retries 408/429/5xx and connection errors with decorrelated-jitter backoff (3 retries
by default, honouring ``Retry-After``); what reaches this module is final.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from pinecone.errors import exceptions as pe

from vectorseam.errors import (
    ConfigError,
    StoreUnavailableError,
    ValidationError,
    VectorseamError,
)

T = TypeVar("T")


def call(host: str, operation: str, fn: Callable[[], T]) -> T:
    """Run one SDK call, translating its failure into a clear vectorseam error."""
    try:
        return fn()
    except pe.ApiError as exc:
        raise _api_error(host, operation, exc) from exc
    except (pe.PineconeTimeoutError, pe.PineconeConnectionError) as exc:
        raise StoreUnavailableError(
            f"pinecone {operation} at {host}: the index could not be reached after retries ({exc}); "
            "check index_host and your network"
        ) from exc
    except (pe.PineconeValueError, pe.PineconeTypeError) as exc:
        raise ValidationError(f"pinecone {operation} at {host}: the request was rejected: {exc}") from exc
    except pe.PineconeError as exc:
        raise VectorseamError(f"pinecone {operation} at {host} failed: {exc}") from exc


def _api_error(host: str, operation: str, exc: pe.ApiError) -> VectorseamError:
    status = exc.status_code
    where = f"pinecone {operation} at {host} answered HTTP {status}"
    detail = getattr(exc, "message", None) or str(exc)
    if status in (401, 403):
        return ConfigError(f"{where}: {detail}; check the api_key option (or PINECONE_API_KEY)")
    if status == 404:
        return ConfigError(f"{where}: {detail}; check that index_host names an existing index")
    if status == 413:
        return ValidationError(f"{where}: request too large: {detail}")
    if status == 429 or status >= 500:
        return StoreUnavailableError(f"{where} after retries: {detail}; try again later")
    return ValidationError(f"{where}: {detail}")
